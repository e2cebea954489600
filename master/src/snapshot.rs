//! The allocator's snapshot of the master's state, taken at the start of
//! each allocation run. This file only lists the master's maps and tallies
//! as plain views; `agora_allocator::build_snapshot_from_tallies` does the
//! work, so it can be benchmarked (`benches/benches/allocator.rs`,
//! "snapshot" group) without a running master.
use std::collections::BTreeMap;

use agora_allocator::{
    AgentTallyInput, ClusterSnapshot, FrameworkInput, FrameworkTallyInput, OfferFilter,
    build_snapshot_from_tallies,
};
use agora_model::{Capability, FrameworkId, MonoTime, Resources, Role};

use crate::state::{AgentStatus, FrameworkEntry, Master};

impl Master {
    /// Connected agents with `free = total - tasks - outstanding offers`,
    /// every framework with what it holds per role and its unexpired
    /// filters, and the role weights (configured, then registry ones).
    /// Everything comes from tallies kept as tasks and offers change, so
    /// this is O(agents + frameworks), not a walk over tasks or (agent,
    /// framework) pairs. Tasks and offers on agents that are not connected
    /// count nowhere: inactive agents are out of the allocator, so their
    /// part is taken back out of the frameworks' tallies (there are few).
    pub(crate) fn snapshot(&self, now: MonoTime) -> ClusterSnapshot {
        let agents = self
            .agents
            .values()
            .filter(|a| a.status() == AgentStatus::Connected)
            .map(|a| AgentTallyInput {
                id: &a.id,
                total: &a.total,
                used: &a.used,
                offered: &a.offered,
            });
        let off_line = self.held_on_agents_not_connected();
        let frameworks = self.frameworks.values().map(|f| FrameworkTallyInput {
            framework: self.framework_input(f, now),
            allocated: held_on_connected_agents(f, &off_line),
        });
        let mut snapshot = build_snapshot_from_tallies(agents, frameworks, self.role_weights());
        self.deactivate_draining(&mut snapshot);
        snapshot
    }

    /// Draining agents stay in the snapshot (their tasks still count in
    /// their frameworks' shares) but inactive: the allocator offers nothing
    /// from them. Agents come in id order, so each drain is a binary search.
    fn deactivate_draining(&self, snapshot: &mut ClusterSnapshot) {
        for id in self.registry.maintenance.keys() {
            if let Ok(i) = snapshot.agents.binary_search_by(|a| a.id.cmp(id)) {
                snapshot.agents[i].active = false;
            }
        }
    }

    pub(crate) fn framework_input<'a>(
        &self,
        f: &'a FrameworkEntry,
        now: MonoTime,
    ) -> FrameworkInput<'a> {
        FrameworkInput {
            id: &f.id,
            roles: &f.info.roles,
            suppressed_roles: &f.suppressed,
            active: f.connected(),
            gpu_aware: f.info.has(Capability::GpuResources),
            filters: f
                .filters
                .iter()
                .filter(|(_, flt)| flt.expires > now)
                .map(|((agent, _), flt)| OfferFilter {
                    agent: agent.clone(),
                    resources: flt.resources.clone(),
                    expires: flt.expires,
                })
                .collect(),
        }
    }

    /// Tasks' and offers' resources per (framework, role) on agents that
    /// are known but not connected.
    fn held_on_agents_not_connected(&self) -> BTreeMap<(&FrameworkId, &Role), Resources> {
        let mut held: BTreeMap<(&FrameworkId, &Role), Resources> = BTreeMap::new();
        let off_line = self
            .agents
            .values()
            .filter(|a| a.status() != AgentStatus::Connected);
        for a in off_line {
            for ((fw, role), r) in &a.allocated {
                held.entry((fw, role)).or_default().add(r);
            }
        }
        held
    }

    /// Configured role weights, overridden by the registry's.
    pub(crate) fn role_weights(&self) -> BTreeMap<Role, f64> {
        let mut role_weights = BTreeMap::new();
        for (r, w) in &self.cfg.role_weights {
            if let Ok(role) = Role::parse(r.clone()) {
                role_weights.insert(role, *w);
            }
        }
        for (role, w) in &self.registry.weights {
            role_weights.insert(role.clone(), *w);
        }
        role_weights
    }
}

/// What `f` holds per role on connected agents: its tally minus its part of
/// `off_line`.
fn held_on_connected_agents(
    f: &FrameworkEntry,
    off_line: &BTreeMap<(&FrameworkId, &Role), Resources>,
) -> BTreeMap<Role, Resources> {
    let mut held = f.allocated.clone();
    if off_line.is_empty() {
        return held;
    }
    for (role, r) in held.iter_mut() {
        if let Some(away) = off_line.get(&(&f.id, role)) {
            r.subtract(away);
        }
    }
    held.retain(|_, r| !r.is_empty());
    held
}
