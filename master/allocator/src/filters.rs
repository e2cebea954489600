//! Offer filters: after a framework declines (or leaves part of an offer
//! unused) it asks not to be offered the same resources on that agent again
//! for `refuse_seconds`. A filter blocks an offer when the refused resources
//! contain everything that would be offered (Mesos
//! `RefusedOfferFilter::filter`), so offering less never slips past a filter
//! while offering more does.
use agora_model::{AgentId, MonoTime, Resources};

use crate::OfferFilter;
use crate::hash::FxHashMap;

/// A dense number for an agent that some active filter names. Filter checks
/// in the allocation loop compare these instead of id strings, whose bytes
/// are cold in cache at 10,000 agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FilteredAgent(usize);

/// Numbers the agents named by active filters while collecting each
/// framework's active filters. Only looked up, never iterated, so its hash
/// order cannot leak into the plan.
#[derive(Debug, Default)]
pub(crate) struct FilterIndex<'a> {
    agents: FxHashMap<&'a AgentId, FilteredAgent>,
}

impl<'a> FilterIndex<'a> {
    /// One framework's filters still active at `now` (active while
    /// `now < expires`, so a filter expiring exactly now no longer blocks).
    pub(crate) fn active(
        &mut self,
        filters: &'a [OfferFilter],
        now: MonoTime,
    ) -> ActiveFilters<'a> {
        let mut by_agent: Vec<_> = filters
            .iter()
            .filter(|f| now < f.expires)
            .map(|f| {
                let next = FilteredAgent(self.agents.len());
                (*self.agents.entry(&f.agent).or_insert(next), &f.resources)
            })
            .collect();
        by_agent.sort_unstable_by_key(|(agent, _)| *agent);
        ActiveFilters { by_agent }
    }

    /// The agent's number, or `None` if no active filter names it (then no
    /// framework's filters need checking there).
    pub(crate) fn agent(&self, agent: &AgentId) -> Option<FilteredAgent> {
        if self.agents.is_empty() {
            // No filters at all: skip hashing the id.
            return None;
        }
        self.agents.get(agent).copied()
    }
}

/// One framework's active filters, sorted by agent: the per-agent check is
/// a binary search over integers.
#[derive(Debug, Default)]
pub(crate) struct ActiveFilters<'a> {
    by_agent: Vec<(FilteredAgent, &'a Resources)>,
}

impl ActiveFilters<'_> {
    /// What was refused on `agent`, if anything is still filtered there. The
    /// caller builds the offer to check only when this is `Some`.
    pub(crate) fn on(&self, agent: FilteredAgent) -> Option<Refused<'_, '_>> {
        let start = self.by_agent.partition_point(|(a, _)| *a < agent);
        let len = self.by_agent[start..].partition_point(|(a, _)| *a == agent);
        (len > 0).then(|| Refused(&self.by_agent[start..start + len]))
    }
}

/// The active filters of one framework on one agent.
pub(crate) struct Refused<'f, 'a>(&'f [(FilteredAgent, &'a Resources)]);

impl Refused<'_, '_> {
    /// Would offering `offered` be blocked?
    pub(crate) fn blocks(&self, offered: &Resources) -> bool {
        self.0.iter().any(|(_, refused)| refused.contains(offered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(agent: &str, resources: &str, expires: u64) -> OfferFilter {
        OfferFilter {
            agent: AgentId::new_unchecked(agent),
            resources: Resources::parse(resources).unwrap(),
            expires: MonoTime(expires),
        }
    }

    #[test]
    fn blocks_only_contained_offers_on_the_same_agent_until_expiry() {
        let filters = [
            filter("a1", "cpus:4;mem:1024", 100),
            filter("a2", "cpus:1", 50),
            filter("a1", "disk:1", 100),
        ];
        let small = Resources::parse("cpus:2;mem:512").unwrap();
        let big = Resources::parse("cpus:8;mem:512").unwrap();
        let check = |now: u64, agent: &str, offer: &Resources| {
            let mut index = FilterIndex::default();
            let active = index.active(&filters, MonoTime(now));
            index
                .agent(&AgentId::new_unchecked(agent))
                .and_then(|a| active.on(a))
                .is_some_and(|r| r.blocks(offer))
        };
        assert!(check(10, "a1", &small));
        assert!(!check(10, "a1", &big));
        assert!(!check(10, "a3", &small));
        assert!(!check(100, "a1", &small), "expired");
        let mut index = FilterIndex::default();
        index.active(&filters, MonoTime(100));
        assert_eq!(index.agent(&AgentId::new_unchecked("a1")), None);
    }
}
