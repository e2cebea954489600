//! Fairness policy: in which order roles, and the frameworks within a role,
//! are served. The allocation loop only asks a [`Sorter`] for its order and
//! tells it about new allocations, so a different policy (Mesos also has a
//! weighted-random sorter) is a new `impl Sorter` in this file plus one line
//! in `lib.rs`.
use std::cmp::Ordering;
use std::collections::BTreeSet;

use agora_model::resources::{CPUS, DISK, GPUS, MEM};
use agora_model::{Resources, Scalar};

/// The resources dominant shares are computed over. Mesos uses every scalar;
/// the master only schedules on these four, and a fixed array keeps share
/// updates in the inner loop free of allocation and string comparison.
pub(crate) const FAIRNESS_RESOURCES: [&str; 4] = [CPUS, MEM, DISK, GPUS];

/// Number of dimensions of a [`Quantities`].
const DIMS: usize = FAIRNESS_RESOURCES.len();

/// Weight of a client that has none (Mesos default role weight).
pub(crate) const DEFAULT_WEIGHT: f64 = 1.0;

/// Amounts of the [`FAIRNESS_RESOURCES`] in thousandths, summed over all
/// reservation roles (a reserved cpu is still a cpu of the cluster).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Quantities([i64; DIMS]);

impl Quantities {
    /// The fairness-relevant amounts in `resources`, over all roles. Four
    /// field reads for a bag without reservations (`Resources` keeps the
    /// unreserved well-known scalars in fixed slots).
    pub(crate) fn of(resources: &Resources) -> Quantities {
        Quantities([
            resources.cpus().milli(),
            resources.mem().milli(),
            resources.disk().milli(),
            resources.gpus().milli(),
        ])
    }

    /// The unreserved part of [`Quantities::of`]: always four field reads.
    pub(crate) fn unreserved(resources: &Resources) -> Quantities {
        // `unreserved_well_known` is in cpus, mem, disk, gpus order, as
        // FAIRNESS_RESOURCES is.
        Quantities(resources.unreserved_well_known().map(Scalar::milli))
    }

    /// The amount of resource `name` (zero for untracked names).
    pub(crate) fn get(&self, name: &str) -> Scalar {
        FAIRNESS_RESOURCES
            .iter()
            .position(|n| *n == name)
            .map_or(Scalar::ZERO, |i| Scalar::from_milli(self.0[i]))
    }

    /// Adds `other` into `self`.
    pub(crate) fn add(&mut self, other: &Quantities) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// `self` with the `excluded` names zeroed. Used on the cluster total: a
    /// zero total takes a dimension out of every share.
    pub(crate) fn without(mut self, excluded: &[String]) -> Quantities {
        for (i, name) in FAIRNESS_RESOURCES.iter().enumerate() {
            if excluded.iter().any(|e| e == name) {
                self.0[i] = 0;
            }
        }
        self
    }

    /// Weighted dominant share: the largest fraction of `total` held in any
    /// dimension, divided by `weight`. Dimensions with a zero total are
    /// skipped, as in Mesos.
    fn dominant_share(&self, total: &Quantities, weight: f64) -> f64 {
        let mut max = 0.0_f64;
        for (held, all) in self.0.iter().zip(total.0) {
            if all > 0 {
                max = max.max(*held as f64 / all as f64);
            }
        }
        max / weight
    }
}

/// A share as a totally ordered key. Shares are finite and non-negative
/// (weights are sanitised), so `total_cmp` is the numeric order.
#[derive(Debug, Clone, Copy)]
struct Share(f64);

impl PartialEq for Share {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Share {}
impl PartialOrd for Share {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Share {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Orders clients (roles, or the frameworks of one role) so that the one
/// furthest below its fair share comes first.
///
/// Clients are dense indices chosen by the caller. `tie` is the client's
/// rank by name and must be unique per sorter: equal shares are served in
/// name order, which keeps the result independent of input order.
pub(crate) trait Sorter {
    /// An empty sorter measuring shares against `total`.
    fn new(total: Quantities) -> Self;
    /// Adds a client with its weight and what it already holds.
    fn add(&mut self, client: usize, tie: usize, weight: f64, allocated: Quantities);
    /// Charges `delta` more to `client` (ignored for unknown clients).
    fn allocated(&mut self, client: usize, delta: &Quantities);
    /// The clients, first to be served first.
    fn sorted(&self) -> impl Iterator<Item = usize> + '_;
    /// Compares two clients by the order of [`Sorter::sorted`].
    fn compare(&self, a: usize, b: usize) -> Ordering;
}

/// One client of a [`DrfSorter`].
#[derive(Debug, Clone)]
struct Client {
    weight: f64,
    tie: usize,
    allocated: Quantities,
    share: Share,
}

impl Client {
    fn key(&self, id: usize) -> (Share, usize, usize) {
        (self.share, self.tie, id)
    }
}

/// A client's place in the order: `(share, tie, client)`.
type Key = (Share, usize, usize);

/// Orders of at most this many clients are a sorted `Vec`.
const SMALL_ORDER: usize = 32;

/// The service order. Most sorters are small (the frameworks of one role;
/// at 1,000 roles, one each): a sorted `Vec` updates by rotating a few
/// entries of one cache line, with no allocation, where a `BTreeSet` removes
/// and inserts a node entry, twice per offer. Large ones (the roles) use a
/// `BTreeSet`, O(log n) per update.
#[derive(Debug, Clone)]
enum Order {
    Small(Vec<Key>),
    Large(BTreeSet<Key>),
}

impl Order {
    fn insert(&mut self, key: Key) {
        match self {
            Order::Small(v) if v.len() < SMALL_ORDER => {
                let i = v.partition_point(|k| *k < key);
                v.insert(i, key);
            }
            Order::Small(v) => {
                let mut set: BTreeSet<Key> = v.drain(..).collect();
                set.insert(key);
                *self = Order::Large(set);
            }
            Order::Large(set) => {
                set.insert(key);
            }
        }
    }

    fn remove(&mut self, key: &Key) {
        match self {
            Order::Small(v) => {
                if let Ok(i) = v.binary_search(key) {
                    v.remove(i);
                }
            }
            Order::Large(set) => {
                set.remove(key);
            }
        }
    }

    /// Replaces `old` by `new`: in a small order, one rotation of the
    /// entries between the two positions.
    fn update(&mut self, old: &Key, new: Key) {
        match self {
            Order::Small(v) => match v.binary_search(old) {
                Ok(i) => {
                    // Entries below `new`, counting `old` if it is below.
                    let j = v.partition_point(|k| *k < new);
                    if j > i {
                        v[i..j].rotate_left(1);
                        v[j - 1] = new;
                    } else {
                        v[j..=i].rotate_right(1);
                        v[j] = new;
                    }
                }
                Err(_) => self.insert(new),
            },
            Order::Large(set) => {
                set.remove(old);
                set.insert(new);
            }
        }
    }

    fn iter(&self) -> OrderIter<'_> {
        match self {
            Order::Small(v) => OrderIter::Small(v.iter()),
            Order::Large(set) => OrderIter::Large(set.iter()),
        }
    }
}

enum OrderIter<'a> {
    Small(std::slice::Iter<'a, Key>),
    Large(std::collections::btree_set::Iter<'a, Key>),
}

impl<'a> Iterator for OrderIter<'a> {
    type Item = &'a Key;
    fn next(&mut self) -> Option<&'a Key> {
        match self {
            OrderIter::Small(i) => i.next(),
            OrderIter::Large(i) => i.next(),
        }
    }
}

/// Weighted Dominant Resource Fairness (Ghodsi et al., NSDI'11; Mesos
/// `DRFSorter`): lowest weighted dominant share first, ties by name.
///
/// The order is kept sorted ([`Order`]) and updated per allocation,
/// instead of re-sorting every client for every agent (the cost Mesos 1.7
/// had to remove, MESOS-9249).
#[derive(Debug, Clone)]
pub(crate) struct DrfSorter {
    total: Quantities,
    /// Indexed by client; `None` for indices never added.
    clients: Vec<Option<Client>>,
    /// Iteration order is service order.
    order: Order,
}

impl Sorter for DrfSorter {
    fn new(total: Quantities) -> Self {
        DrfSorter {
            total,
            clients: Vec::new(),
            order: Order::Small(Vec::new()),
        }
    }

    fn add(&mut self, client: usize, tie: usize, weight: f64, allocated: Quantities) {
        let weight = if weight.is_finite() && weight > 0.0 {
            weight
        } else {
            DEFAULT_WEIGHT
        };
        let share = Share(allocated.dominant_share(&self.total, weight));
        let entry = Client {
            weight,
            tie,
            allocated,
            share,
        };
        if self.clients.len() <= client {
            self.clients.resize(client + 1, None);
        }
        if let Some(old) = self.clients[client].replace(entry.clone()) {
            self.order.remove(&old.key(client));
        }
        self.order.insert(entry.key(client));
    }

    fn allocated(&mut self, client: usize, delta: &Quantities) {
        let total = self.total;
        let Some(Some(entry)) = self.clients.get_mut(client) else {
            return;
        };
        let old = entry.key(client);
        entry.allocated.add(delta);
        entry.share = Share(entry.allocated.dominant_share(&total, entry.weight));
        self.order.update(&old, entry.key(client));
    }

    fn sorted(&self) -> impl Iterator<Item = usize> + '_ {
        self.order.iter().map(|&(_, _, client)| client)
    }

    fn compare(&self, a: usize, b: usize) -> Ordering {
        let key = |c: usize| {
            self.clients
                .get(c)
                .and_then(Option::as_ref)
                .map(|e| e.key(c))
        };
        key(a).cmp(&key(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(cpus: i64, mem: i64) -> Quantities {
        Quantities([cpus * 1000, mem * 1000, 0, 0])
    }

    #[test]
    fn lowest_weighted_dominant_share_first_ties_by_name() {
        let mut s = DrfSorter::new(q(100, 1000));
        s.add(0, 2, 1.0, q(10, 0)); // share 0.1
        s.add(1, 1, 2.0, q(0, 300)); // 0.3 / 2 = 0.15
        s.add(2, 0, 1.0, q(10, 100)); // 0.1, but earlier name than client 0
        assert_eq!(s.sorted().collect::<Vec<_>>(), vec![2, 0, 1]);
        s.allocated(2, &q(10, 0)); // 0.2
        assert_eq!(s.sorted().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(s.compare(1, 2), Ordering::Less);
    }

    #[test]
    fn excluded_and_empty_dimensions_do_not_count() {
        let r = Resources::cpus_mem_disk(1.0, 10.0, 0.0).with_scalar(GPUS, Scalar::from_units(1));
        let total = Quantities::of(
            &Resources::cpus_mem_disk(10.0, 1000.0, 0.0).with_scalar(GPUS, Scalar::from_units(1)),
        );
        assert_eq!(Quantities::of(&r).dominant_share(&total, 1.0), 1.0);
        let total = total.without(&["gpus".to_string()]);
        assert_eq!(Quantities::of(&r).dominant_share(&total, 1.0), 0.1);
    }

    proptest::proptest! {
        /// The `Vec` order agrees with a `BTreeSet` through inserts,
        /// updates and removals, including the switch to the set.
        #[test]
        fn small_order_matches_a_btreeset(
            ops in proptest::collection::vec((0usize..40, 0u8..8, proptest::bool::ANY), 0..120),
        ) {
            let mut order = Order::Small(Vec::new());
            let mut reference: BTreeSet<Key> = BTreeSet::new();
            let mut current: Vec<Option<Key>> = vec![None; 40];
            for (client, share, remove) in ops {
                let key = (Share(f64::from(share) / 8.0), client, client);
                match (current[client].take(), remove) {
                    (Some(old), true) => {
                        order.remove(&old);
                        reference.remove(&old);
                    }
                    (Some(old), false) => {
                        order.update(&old, key);
                        reference.remove(&old);
                        reference.insert(key);
                        current[client] = Some(key);
                    }
                    (None, _) => {
                        order.insert(key);
                        reference.insert(key);
                        current[client] = Some(key);
                    }
                }
                let got: Vec<Key> = order.iter().copied().collect();
                let want: Vec<Key> = reference.iter().copied().collect();
                proptest::prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn bad_weights_fall_back_to_default() {
        let mut s = DrfSorter::new(q(10, 10));
        s.add(0, 0, 0.0, q(1, 0));
        s.add(1, 1, f64::NAN, q(2, 0));
        assert_eq!(s.sorted().collect::<Vec<_>>(), vec![0, 1]);
    }
}
