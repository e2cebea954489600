//! The allocator's snapshot of the master's state, taken at the start of
//! each allocation run. This file only lists the master's maps as plain
//! views; `agora_allocator::build_snapshot` does the work, so it can be
//! benchmarked (`benches/benches/allocator.rs`, "snapshot" row) without a
//! running master.
use std::collections::BTreeMap;

use agora_allocator::{
    AgentInput, ClusterSnapshot, FrameworkInput, OfferFilter, UsageInput, build_snapshot,
};
use agora_model::{Capability, MonoTime, Role};

use crate::state::{AgentStatus, Master};

impl Master {
    /// Connected agents with `free = total - tasks - outstanding offers`,
    /// every framework with what it holds per role and its unexpired
    /// filters, and the role weights (configured, then registry ones).
    /// Usage comes from each connected agent's per-(framework, role) tally,
    /// so this is O(agents + frameworks + framework-roles per agent), not a
    /// walk over every task. Tasks and offers on agents that are not
    /// connected count nowhere: inactive agents are out of the allocator.
    pub(crate) fn snapshot(&self, now: MonoTime) -> ClusterSnapshot {
        let connected = || {
            self.agents
                .values()
                .filter(|a| a.status() == AgentStatus::Connected)
        };
        let agents = connected().map(|a| AgentInput {
            id: &a.id,
            total: &a.total,
        });
        let frameworks = self.frameworks.values().map(|f| FrameworkInput {
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
        });
        let usage = connected().flat_map(|a| {
            a.allocated
                .iter()
                .map(move |((framework, role), held)| UsageInput {
                    agent: &a.id,
                    framework,
                    role,
                    resources: held,
                })
        });
        let mut role_weights = BTreeMap::new();
        for (r, w) in &self.cfg.role_weights {
            if let Ok(role) = Role::parse(r.clone()) {
                role_weights.insert(role, *w);
            }
        }
        for (role, w) in &self.registry.weights {
            role_weights.insert(role.clone(), *w);
        }
        build_snapshot(agents, frameworks, usage, role_weights)
    }
}
