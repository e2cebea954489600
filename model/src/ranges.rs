//! Sets of integers stored as sorted, coalesced, inclusive ranges (ports).
//!
//! Representation: one range lives inline, more in a shared `Arc<[_]>`. An
//! agent's free ports are usually one range (tasks take the lowest free
//! ports), so cloning a `Ranges`, which happens once per offer, copies three
//! words instead of allocating; fragmented lists are shared on clone (a
//! reference count increment) and only ever rebuilt by an operation. One
//! inline range keeps `Ranges` at 24 bytes and `Value` at 32, which sets the
//! size of every slot of `Resources`.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Ranges kept inline (no allocation): an agent's default port range.
const INLINE: usize = 1;

/// A set of u64 values as disjoint, non-adjacent, sorted inclusive ranges.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "Vec<(u64, u64)>", into = "Vec<(u64, u64)>")]
pub struct Ranges(Repr);

/// Invariant: `Inline` iff there are at most [`INLINE`] ranges, so the
/// representation of a set is unique (equality and hashing still go through
/// `pairs()`, which does not rely on it).
#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        pairs: [(u64, u64); INLINE],
    },
    Shared(Arc<[(u64, u64)]>),
}

impl Default for Ranges {
    fn default() -> Self {
        Ranges::empty()
    }
}

impl PartialEq for Ranges {
    fn eq(&self, other: &Self) -> bool {
        self.pairs() == other.pairs()
    }
}
impl Eq for Ranges {}

impl Hash for Ranges {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.pairs().hash(state);
    }
}

impl fmt::Debug for Ranges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Ranges").field(&self.pairs()).finish()
    }
}

impl From<Vec<(u64, u64)>> for Ranges {
    fn from(v: Vec<(u64, u64)>) -> Self {
        Ranges::from_pairs(v)
    }
}

impl From<Ranges> for Vec<(u64, u64)> {
    fn from(r: Ranges) -> Self {
        r.pairs().to_vec()
    }
}

/// Collects sorted, coalesced pairs, inline until they no longer fit.
struct Builder {
    len: usize,
    inline: [(u64, u64); INLINE],
    heap: Vec<(u64, u64)>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            len: 0,
            inline: [(0, 0); INLINE],
            heap: Vec::new(),
        }
    }
    fn last_mut(&mut self) -> Option<&mut (u64, u64)> {
        if self.heap.is_empty() {
            self.len.checked_sub(1).map(|i| &mut self.inline[i])
        } else {
            self.heap.last_mut()
        }
    }
    /// Appends a pair that is not below the last one; coalesces overlapping
    /// and adjacent pairs.
    fn push(&mut self, (b, e): (u64, u64)) {
        if let Some(last) = self.last_mut()
            && b <= last.1.saturating_add(1)
        {
            last.1 = last.1.max(e);
            return;
        }
        if self.heap.is_empty() && self.len < INLINE {
            self.inline[self.len] = (b, e);
            self.len += 1;
            return;
        }
        if self.heap.is_empty() {
            self.heap.reserve(INLINE * 2);
            self.heap.extend_from_slice(&self.inline[..self.len]);
        }
        self.heap.push((b, e));
    }
    fn finish(self) -> Ranges {
        if self.heap.is_empty() {
            Ranges(Repr::Inline {
                len: self.len as u8,
                pairs: self.inline,
            })
        } else {
            Ranges(Repr::Shared(self.heap.into()))
        }
    }
}

impl Ranges {
    /// The empty set, usable in `static`s.
    pub const fn empty() -> Ranges {
        Ranges(Repr::Inline {
            len: 0,
            pairs: [(0, 0); INLINE],
        })
    }
    /// Builds from any pairs: reversed pairs are swapped, overlaps merged.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u64, u64)>) -> Ranges {
        let mut v: Vec<(u64, u64)> = pairs
            .into_iter()
            .map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
            .collect();
        v.sort_unstable();
        let mut out = Builder::new();
        for p in v {
            out.push(p);
        }
        out.finish()
    }
    /// One range.
    pub fn single(begin: u64, end: u64) -> Ranges {
        let mut pairs = [(0, 0); INLINE];
        pairs[0] = (begin.min(end), begin.max(end));
        Ranges(Repr::Inline { len: 1, pairs })
    }
    /// The ranges as pairs.
    pub fn pairs(&self) -> &[(u64, u64)] {
        match &self.0 {
            Repr::Inline { len, pairs } => &pairs[..usize::from(*len)],
            Repr::Shared(v) => v,
        }
    }
    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }
    /// How many values the set holds.
    pub fn count(&self) -> u64 {
        self.pairs().iter().map(|(b, e)| e - b + 1).sum()
    }
    /// Does the set hold `v`?
    pub fn contains_value(&self, v: u64) -> bool {
        self.pairs().iter().any(|&(b, e)| b <= v && v <= e)
    }
    /// Union: a merge of two sorted lists, no sorting and, for few ranges,
    /// no allocation.
    pub fn union(&self, other: &Ranges) -> Ranges {
        let (a, b) = (self.pairs(), other.pairs());
        if b.is_empty() {
            return self.clone();
        }
        if a.is_empty() {
            return other.clone();
        }
        // Summing tasks' ports adds single ranges to a single range, most
        // often one that touches it: no merge loop for that.
        if let (&[(ab, ae)], &[(bb, be)]) = (a, b)
            && ab <= be.saturating_add(1)
            && bb <= ae.saturating_add(1)
        {
            return Ranges::single(ab.min(bb), ae.max(be));
        }
        let (mut i, mut j) = (0, 0);
        let mut out = Builder::new();
        while i < a.len() || j < b.len() {
            let take_a = j == b.len() || (i < a.len() && a[i] <= b[j]);
            if take_a {
                out.push(a[i]);
                i += 1;
            } else {
                out.push(b[j]);
                j += 1;
            }
        }
        out.finish()
    }
    /// Difference: values in `self` not in `other`.
    pub fn difference(&self, other: &Ranges) -> Ranges {
        if other.is_empty() {
            return self.clone();
        }
        let mut out = Builder::new();
        for &(mut b, e) in self.pairs() {
            let mut done = false;
            for &(ob, oe) in other.pairs() {
                if oe < b || ob > e {
                    continue;
                }
                if ob > b {
                    out.push((b, ob - 1));
                }
                if oe >= e {
                    done = true;
                    break;
                }
                b = oe + 1;
            }
            if !done {
                out.push((b, e));
            }
        }
        out.finish()
    }
    /// Is every value of `other` in `self`?
    pub fn contains(&self, other: &Ranges) -> bool {
        let mine = self.pairs();
        other
            .pairs()
            .iter()
            .all(|&(ob, oe)| mine.iter().any(|&(b, e)| b <= ob && oe <= e))
    }
    /// The `n` lowest values, or None if there are fewer than `n`.
    pub fn take_lowest(&self, n: u64) -> Option<Ranges> {
        let mut left = n;
        let mut out = Builder::new();
        for &(b, e) in self.pairs() {
            if left == 0 {
                break;
            }
            let len = e - b + 1;
            if len <= left {
                out.push((b, e));
                left -= len;
            } else {
                out.push((b, b + left - 1));
                left = 0;
            }
        }
        (left == 0).then(|| out.finish())
    }
    /// Iterates over every value (use on small sets only).
    pub fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.pairs().iter().flat_map(|&(b, e)| b..=e)
    }
}

impl fmt::Display for Ranges {
    /// Mesos text form: `[31000-32000, 33000-33000]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, (b, e)) in self.pairs().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{b}-{e}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_ranges() -> impl Strategy<Value = Ranges> {
        proptest::collection::vec((0u64..200, 0u64..20), 0..6)
            .prop_map(|v| Ranges::from_pairs(v.into_iter().map(|(b, l)| (b, b + l))))
    }

    #[test]
    fn coalesces_and_subtracts() {
        let r = Ranges::from_pairs([(5, 10), (1, 3), (4, 4), (20, 25)]);
        assert_eq!(r.pairs(), &[(1, 10), (20, 25)]);
        let d = r.difference(&Ranges::from_pairs([(3, 5), (21, 30)]));
        assert_eq!(d.pairs(), &[(1, 2), (6, 10), (20, 20)]);
        assert_eq!(r.take_lowest(12).unwrap().pairs(), &[(1, 10), (20, 21)]);
        assert!(r.take_lowest(100).is_none());
    }

    proptest! {
        #[test]
        fn difference_and_union_agree_with_sets(a in arb_ranges(), b in arb_ranges()) {
            let sa: std::collections::BTreeSet<u64> = a.values().collect();
            let sb: std::collections::BTreeSet<u64> = b.values().collect();
            let d: std::collections::BTreeSet<u64> = a.difference(&b).values().collect();
            prop_assert_eq!(d, sa.difference(&sb).copied().collect());
            let u: std::collections::BTreeSet<u64> = a.union(&b).values().collect();
            prop_assert_eq!(u, sa.union(&sb).copied().collect());
            prop_assert_eq!(a.contains(&b), sb.is_subset(&sa));
            prop_assert_eq!(a.union(&b).difference(&b).union(&b), a.union(&b));
        }
    }
}
