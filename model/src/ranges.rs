//! Sets of integers stored as sorted, coalesced, inclusive ranges (ports).
use serde::{Deserialize, Serialize};
use std::fmt;

/// A set of u64 values as disjoint, non-adjacent, sorted inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "Vec<(u64, u64)>", into = "Vec<(u64, u64)>")]
pub struct Ranges(Vec<(u64, u64)>);

impl From<Vec<(u64, u64)>> for Ranges {
    fn from(v: Vec<(u64, u64)>) -> Self {
        Ranges::from_pairs(v)
    }
}

impl From<Ranges> for Vec<(u64, u64)> {
    fn from(r: Ranges) -> Self {
        r.0
    }
}

impl Ranges {
    /// Builds from any pairs: reversed pairs are swapped, overlaps merged.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u64, u64)>) -> Ranges {
        let mut v: Vec<(u64, u64)> = pairs
            .into_iter()
            .map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
            .collect();
        v.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (b, e) in v {
            match out.last_mut() {
                Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => out.push((b, e)),
            }
        }
        Ranges(out)
    }
    /// One range.
    pub fn single(begin: u64, end: u64) -> Ranges {
        Ranges::from_pairs([(begin, end)])
    }
    /// The ranges as pairs.
    pub fn pairs(&self) -> &[(u64, u64)] {
        &self.0
    }
    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// How many values the set holds.
    pub fn count(&self) -> u64 {
        self.0.iter().map(|(b, e)| e - b + 1).sum()
    }
    /// Does the set hold `v`?
    pub fn contains_value(&self, v: u64) -> bool {
        self.0.iter().any(|&(b, e)| b <= v && v <= e)
    }
    /// Union.
    pub fn union(&self, other: &Ranges) -> Ranges {
        Ranges::from_pairs(self.0.iter().chain(other.0.iter()).copied())
    }
    /// Difference: values in `self` not in `other`.
    pub fn difference(&self, other: &Ranges) -> Ranges {
        let mut out = Vec::new();
        for &(mut b, e) in &self.0 {
            let mut done = false;
            for &(ob, oe) in &other.0 {
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
        Ranges(out)
    }
    /// Is every value of `other` in `self`?
    pub fn contains(&self, other: &Ranges) -> bool {
        other
            .0
            .iter()
            .all(|&(ob, oe)| self.0.iter().any(|&(b, e)| b <= ob && oe <= e))
    }
    /// The `n` lowest values, or None if there are fewer than `n`.
    pub fn take_lowest(&self, n: u64) -> Option<Ranges> {
        let mut left = n;
        let mut out = Vec::new();
        for &(b, e) in &self.0 {
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
        (left == 0).then_some(Ranges(out))
    }
    /// Iterates over every value (use on small sets only).
    pub fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(|&(b, e)| b..=e)
    }
}

impl fmt::Display for Ranges {
    /// Mesos text form: `[31000-32000, 33000-33000]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, (b, e)) in self.0.iter().enumerate() {
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
