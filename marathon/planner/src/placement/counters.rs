//! Per-value instance counters, kept incrementally by the caller as
//! instances are placed and go away, so a placement decision costs
//! O(constraints × log values) whatever the number of running instances; and
//! the cluster's inventory of known values, over which GROUP_BY balances.
use std::collections::{BTreeMap, BTreeSet};

use crate::constraint::{AgentFacts, Constraint, Field};

/// How one app's instances spread over the values of one field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldCounter {
    /// Instances per value (only values with at least one).
    by_value: BTreeMap<String, u32>,
    /// How many values have each count (counts ≥ 1): GROUP_BY asks "how many
    /// groups are used" and "how many are above k" without a scan.
    histogram: BTreeMap<u32, u32>,
    /// Instances that have a value for the field.
    placed: u32,
}

/// The empty counter, for fields nobody counted.
pub(crate) static EMPTY: FieldCounter = FieldCounter {
    by_value: BTreeMap::new(),
    histogram: BTreeMap::new(),
    placed: 0,
};

impl FieldCounter {
    /// Instances on `value`.
    pub fn count(&self, value: &str) -> u32 {
        self.by_value.get(value).copied().unwrap_or(0)
    }

    /// Instances that have a value for the field.
    pub fn placed(&self) -> u32 {
        self.placed
    }

    /// Values with at least one instance.
    pub fn used_values(&self) -> u32 {
        self.histogram.values().sum()
    }

    /// Values with more than `k` instances.
    pub fn values_above(&self, k: u32) -> u32 {
        self.histogram
            .range(k.saturating_add(1)..)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Instances per value, in value order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.by_value.iter().map(|(v, n)| (v.as_str(), *n))
    }

    /// The histogram (count → number of values), for overlays.
    pub(crate) fn histogram(&self) -> &BTreeMap<u32, u32> {
        &self.histogram
    }

    /// One more instance on `value`.
    pub fn add(&mut self, value: &str) {
        let n = self.by_value.entry(value.to_string()).or_insert(0);
        move_bucket(&mut self.histogram, *n, *n + 1);
        *n += 1;
        self.placed += 1;
    }

    /// One instance fewer on `value` (no-op if it had none).
    pub fn remove(&mut self, value: &str) {
        let Some(n) = self.by_value.get_mut(value) else {
            return;
        };
        move_bucket(&mut self.histogram, *n, *n - 1);
        *n -= 1;
        if *n == 0 {
            self.by_value.remove(value);
        }
        self.placed -= 1;
    }
}

/// Moves one value from the bucket of count `from` to that of `to`
/// (count 0 has no bucket).
pub(crate) fn move_bucket(histogram: &mut BTreeMap<u32, u32>, from: u32, to: u32) {
    if from > 0
        && let Some(n) = histogram.get_mut(&from)
    {
        *n -= 1;
        if *n == 0 {
            histogram.remove(&from);
        }
    }
    if to > 0 {
        *histogram.entry(to).or_insert(0) += 1;
    }
}

/// One app's counters, one per field its constraints count by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlacementCounters {
    fields: BTreeMap<Field, FieldCounter>,
}

impl PlacementCounters {
    /// Counters for the fields of `constraints` that depend on instances
    /// (UNIQUE, CLUSTER without value, GROUP_BY, MAX_PER).
    pub fn for_constraints(constraints: &[Constraint]) -> PlacementCounters {
        let fields = constraints
            .iter()
            .filter(|c| c.counts_instances())
            .map(|c| (c.field.clone(), FieldCounter::default()))
            .collect();
        PlacementCounters { fields }
    }

    /// Counters for `constraints` over existing instances (where each
    /// runs): for a new app version whose constraints changed, or a new
    /// leader. After that, keep them with [`PlacementCounters::add`] and
    /// [`PlacementCounters::remove`].
    pub fn of<'a>(
        constraints: &[Constraint],
        running_on: impl IntoIterator<Item = &'a AgentFacts>,
    ) -> PlacementCounters {
        let mut c = PlacementCounters::for_constraints(constraints);
        for agent in running_on {
            c.add(agent);
        }
        c
    }

    /// Counts an instance on an agent with these facts.
    pub fn add(&mut self, agent: &AgentFacts) {
        for (field, counter) in &mut self.fields {
            if let Some(v) = agent.value(field) {
                counter.add(v);
            }
        }
    }

    /// Stops counting an instance on an agent with these facts.
    pub fn remove(&mut self, agent: &AgentFacts) {
        for (field, counter) in &mut self.fields {
            if let Some(v) = agent.value(field) {
                counter.remove(v);
            }
        }
    }

    /// The counter of `field` (empty if not counted).
    pub fn field(&self, field: &Field) -> &FieldCounter {
        self.fields.get(field).unwrap_or(&EMPTY)
    }
}

/// The values each field has across the cluster's known agents (not only
/// the offers seen so far): GROUP_BY without a value balances over these.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    known: BTreeMap<Field, BTreeSet<String>>,
}

impl Inventory {
    /// Records an agent's hostname, fault domain and attributes.
    pub fn add_agent(&mut self, agent: &AgentFacts) {
        let mut put = |f: Field, v: &str| {
            let set = self.known.entry(f).or_default();
            if !set.contains(v) {
                set.insert(v.to_string());
            }
        };
        put(Field::Hostname, &agent.hostname);
        if let Some(r) = &agent.region {
            put(Field::Region, r);
        }
        if let Some(z) = &agent.zone {
            put(Field::Zone, z);
        }
        for (k, v) in &agent.attributes {
            put(Field::Attribute(k.clone()), v);
        }
    }

    /// An inventory of these agents.
    pub fn of<'a>(agents: impl IntoIterator<Item = &'a AgentFacts>) -> Inventory {
        let mut inv = Inventory::default();
        for a in agents {
            inv.add_agent(a);
        }
        inv
    }

    /// How many distinct values `field` has.
    pub fn values(&self, field: &Field) -> u32 {
        self.known
            .get(field)
            .map_or(0, |s| u32::try_from(s.len()).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_track_only_counting_fields() {
        let constraints = [
            Constraint::parse(&["hostname", "UNIQUE"]).unwrap(),
            Constraint::parse(&["rack", "LIKE", "r.*"]).unwrap(),
        ];
        let a = AgentFacts {
            hostname: "h1".into(),
            attributes: [("rack".to_string(), "r1".to_string())].into(),
            ..Default::default()
        };
        let c = PlacementCounters::of(&constraints, [&a, &a]);
        assert_eq!(c.field(&Field::Hostname).count("h1"), 2);
        assert_eq!(c.field(&Field::Attribute("rack".into())).placed(), 0);
    }

    #[test]
    fn counters_keep_the_histogram_in_step() {
        let mut c = FieldCounter::default();
        for v in ["a", "a", "b", "c", "a"] {
            c.add(v);
        }
        assert_eq!((c.count("a"), c.count("b"), c.count("z")), (3, 1, 0));
        assert_eq!(c.used_values(), 3);
        assert_eq!(c.values_above(1), 1);
        assert_eq!(c.values_above(0), 3);
        assert_eq!(c.placed(), 5);
        c.remove("b");
        c.remove("b");
        assert_eq!(c.used_values(), 2);
        assert_eq!(c.placed(), 4);
        for _ in 0..3 {
            c.remove("a");
        }
        c.remove("c");
        assert_eq!(c, FieldCounter::default());
    }
}
