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
    /// Tasks and offers on agents that are not connected count nowhere:
    /// inactive agents are out of the allocator entirely.
    pub(crate) fn snapshot(&self, now: MonoTime) -> ClusterSnapshot {
        let agents = self
            .agents
            .values()
            .filter(|a| a.status == AgentStatus::Connected)
            .map(|a| AgentInput {
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
                .filter(|flt| flt.expires > now)
                .map(|flt| OfferFilter {
                    agent: flt.agent.clone(),
                    resources: flt.resources.clone(),
                    expires: flt.expires,
                })
                .collect(),
        });
        let tasks = self.tasks.values().map(|t| UsageInput {
            agent: &t.spec.agent_id,
            framework: &t.framework,
            role: &t.role,
            resources: &t.spec.resources,
        });
        let offers = self.offers.values().map(|o| UsageInput {
            agent: &o.offer.agent_id,
            framework: &o.offer.framework_id,
            role: &o.offer.role,
            resources: &o.offer.resources,
        });
        let mut role_weights = BTreeMap::new();
        for (r, w) in self
            .cfg
            .role_weights
            .iter()
            .chain(self.registry.weights.iter())
        {
            if let Ok(role) = Role::parse(r.clone()) {
                role_weights.insert(role, *w);
            }
        }
        build_snapshot(agents, frameworks, tasks.chain(offers), role_weights)
    }
}
