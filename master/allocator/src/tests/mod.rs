//! Allocator tests: an [`AllocatorHarness`] that holds a snapshot, runs
//! cycles and records their plans, fixtures with valid defaults
//! (`agent`, `framework`), hand-written cases (`cases.rs`) and proptest
//! invariants (`props.rs`).

use std::collections::{BTreeMap, BTreeSet};

use agora_model::{AgentId, FrameworkId, MonoTime, Resources, Role};

use crate::{
    AgentView, Allocation, AllocatorConfig, ClusterSnapshot, FrameworkView, OfferFilter, allocate,
};

mod cases;
mod props;

/// Parses the Mesos text form; fixtures are always valid.
pub(crate) fn res(text: &str) -> Resources {
    Resources::parse(text).unwrap()
}

pub(crate) fn role(name: &str) -> Role {
    Role::parse(name).unwrap()
}

/// An active agent with nothing running: `free == total`.
pub(crate) fn agent(id: &str, resources: &str) -> AgentView {
    let total = res(resources);
    AgentView {
        id: AgentId::new_unchecked(id),
        free: total.clone(),
        total,
        active: true,
    }
}

/// An active, non-GPU framework holding nothing, in `roles`.
pub(crate) fn framework(id: &str, roles: &[&str]) -> FrameworkView {
    FrameworkView {
        id: FrameworkId::new_unchecked(id),
        roles: roles.iter().map(|r| role(r)).collect(),
        suppressed_roles: BTreeSet::new(),
        active: true,
        gpu_aware: false,
        allocated: BTreeMap::new(),
        filters: Vec::new(),
    }
}

/// A snapshot plus the knobs of `allocate`, with every plan it returned.
/// Tests mutate `snapshot` directly or through the helpers, which keep
/// `free` and `allocated` consistent the way the master does.
pub(crate) struct AllocatorHarness {
    pub(crate) snapshot: ClusterSnapshot,
    pub(crate) config: AllocatorConfig,
    pub(crate) now: MonoTime,
    pub(crate) seed: u64,
    /// Every plan returned by [`AllocatorHarness::cycle`], oldest first.
    pub(crate) plans: Vec<Vec<Allocation>>,
}

impl AllocatorHarness {
    pub(crate) fn new() -> Self {
        AllocatorHarness {
            snapshot: ClusterSnapshot::default(),
            config: AllocatorConfig::default(),
            now: MonoTime(1_000),
            seed: 7,
            plans: Vec::new(),
        }
    }

    /// Adds `n` identical agents `agent-0`, `agent-1`, ... and returns their ids.
    pub(crate) fn agents(&mut self, n: usize, resources: &str) -> Vec<AgentId> {
        (0..n)
            .map(|_| {
                let a = agent(&format!("agent-{}", self.snapshot.agents.len()), resources);
                let id = a.id.clone();
                self.snapshot.agents.push(a);
                id
            })
            .collect()
    }

    pub(crate) fn add_framework(&mut self, fw: FrameworkView) -> FrameworkId {
        let id = fw.id.clone();
        self.snapshot.frameworks.push(fw);
        id
    }

    pub(crate) fn framework_mut(&mut self, id: &FrameworkId) -> &mut FrameworkView {
        self.snapshot
            .frameworks
            .iter_mut()
            .find(|f| &f.id == id)
            .unwrap()
    }

    pub(crate) fn agent_mut(&mut self, id: &AgentId) -> &mut AgentView {
        self.snapshot
            .agents
            .iter_mut()
            .find(|a| &a.id == id)
            .unwrap()
    }

    /// Runs one cycle, records and returns its plan.
    pub(crate) fn cycle(&mut self) -> Vec<Allocation> {
        let plan = allocate(&self.snapshot, &self.config, self.now, self.seed);
        self.plans.push(plan.clone());
        plan
    }

    /// The framework launches `task` out of `offer` (if it fits) and declines
    /// the rest without a filter: the task is charged to the framework's role
    /// and leaves the agent's free resources. Returns whether it fit.
    pub(crate) fn launch(&mut self, offer: &Allocation, task: &Resources) -> bool {
        if !offer.resources.contains(task) {
            return false;
        }
        let agent = self.agent_mut(&offer.agent);
        agent.free.subtract(task);
        let fw = self.framework_mut(&offer.framework);
        fw.allocated
            .entry(offer.role.clone())
            .or_default()
            .add(task);
        true
    }

    /// The framework declines `offer` with a filter lasting `ms`.
    pub(crate) fn decline(&mut self, offer: &Allocation, ms: u64) {
        let expires = MonoTime(self.now.0 + ms);
        let filter = OfferFilter {
            agent: offer.agent.clone(),
            resources: offer.resources.clone(),
            expires,
        };
        self.framework_mut(&offer.framework).filters.push(filter);
    }

    /// What `framework` received, per agent, in the last plan.
    pub(crate) fn last_offers_to(&self, framework: &FrameworkId) -> Vec<&Allocation> {
        self.plans
            .last()
            .map(|p| p.iter().filter(|a| &a.framework == framework).collect())
            .unwrap_or_default()
    }
}
