//! Agora's allocator: a pure function from an immutable [`ClusterSnapshot`]
//! to the offers to make ([`Allocation`]s), following Mesos'
//! `HierarchicalDRF` fair-share stage (weighted DRF across roles, DRF across
//! the frameworks of a role, offer filters, GPU filtering, static
//! reservations). The master re-validates the plan against live state before
//! it sends offers. See `README.md` beside this crate for the problem
//! statement and invariants.
//!
//! # Layout
//! - `lib.rs`: the public API (plain data in, plain data out).
//! - `allocate.rs`: the allocation cycle (mechanism).
//! - `sorter.rs`: fairness policy behind `trait Sorter` (weighted DRF).
//! - `filters.rs`: offer filters (refused resources per agent, with expiry).
//! - `snapshot.rs`: [`build_snapshot`], the snapshot from plain views of
//!   the master's state (agent totals, task and offer usage, frameworks).
//! - `hash.rs`: a fast hasher for id lookups (ids are master-generated).
//!
//! Architecture invariant: this crate does no IO and has no async runtime,
//! clock or unseeded randomness; `now` and the shuffle seed are arguments,
//! so the same inputs always give the same plan.
//!
//! API boundary: only the types below, [`allocate`] and [`build_snapshot`]
//! (with its input views) are public.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};

use agora_model::{AgentId, FrameworkId, MonoTime, Resources, Role};

mod allocate;
mod filters;
mod hash;
mod snapshot;
mod sorter;
mod tallies;

pub use snapshot::{AgentInput, FrameworkInput, UsageInput, build_snapshot};
pub use tallies::{AgentTallyInput, FrameworkTallyInput, build_snapshot_from_tallies};

#[cfg(test)]
mod tests;

/// Allocator policy knobs (Mesos master flags of the same meaning).
#[derive(Debug, Clone, PartialEq)]
pub struct AllocatorConfig {
    /// Offer agents that have GPUs only to GPU-aware frameworks
    /// (Mesos `--filter_gpu_resources`, default on), so scarce GPU machines
    /// are not filled with CPU-only work.
    pub filter_gpu_resources: bool,
    /// Resource names left out of DRF shares (Mesos
    /// `--fair_sharing_excluded_resource_names`), e.g. `gpus`, so one scarce
    /// resource does not dominate every share. Only `cpus`, `mem`, `disk` and
    /// `gpus` take part in shares at all, so other names have no effect.
    pub fair_sharing_excluded: Vec<String>,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            filter_gpu_resources: true,
            fair_sharing_excluded: Vec::new(),
        }
    }
}

/// Everything the allocator looks at, captured by the master at the start of
/// a cycle.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterSnapshot {
    /// Registered agents, in any order (the result does not depend on it).
    pub agents: Vec<AgentView>,
    /// Role weights for weighted DRF; a missing role weighs 1.0. Weights that
    /// are not finite and positive are treated as 1.0 (the master validates
    /// them; the allocator must still never divide by zero).
    pub role_weights: BTreeMap<Role, f64>,
    /// Subscribed frameworks, active or not, in any order.
    pub frameworks: Vec<FrameworkView>,
}

/// One agent as the allocator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentView {
    /// The agent's id.
    pub id: AgentId,
    /// Everything the agent advertises; active agents' totals make up the
    /// cluster total that shares are measured against.
    pub total: Resources,
    /// `total` minus running tasks minus outstanding offers: what may be
    /// offered now.
    pub free: Resources,
    /// Inactive (draining, deactivated, unreachable) agents get no offers.
    pub active: bool,
}

/// One framework as the allocator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameworkView {
    /// The framework's id; ties in DRF order are broken by it.
    pub id: FrameworkId,
    /// Roles the framework subscribed with.
    pub roles: Vec<Role>,
    /// Roles for which the framework sent SUPPRESS: no offers for them.
    pub suppressed_roles: BTreeSet<Role>,
    /// Disconnected or deactivated frameworks get no offers, but what they
    /// hold still counts towards their roles' shares.
    pub active: bool,
    /// The framework has the `GPU_RESOURCES` capability.
    pub gpu_aware: bool,
    /// Its tasks plus outstanding offers, per role.
    pub allocated: BTreeMap<Role, Resources>,
    /// Offer filters from declines (`refuse_seconds`), expired or not.
    pub filters: Vec<OfferFilter>,
}

/// "Do not offer me these resources on this agent again until `expires`."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferFilter {
    /// The agent the refused offer was on.
    pub agent: AgentId,
    /// What was refused; an offer is filtered if this contains it.
    pub resources: Resources,
    /// The filter is active while `now < expires`.
    pub expires: MonoTime,
}

/// One offer to make: `resources` on `agent` to `framework`, for `role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The framework to offer to.
    pub framework: FrameworkId,
    /// The role the resources are allocated to.
    pub role: Role,
    /// The agent the resources are on.
    pub agent: AgentId,
    /// Unreserved resources and resources reserved for `role`; never empty
    /// and always allocatable.
    pub resources: Resources,
}

/// Runs one allocation cycle (Mesos `HierarchicalDRF` stage 2, fair share)
/// and returns the offers to make, in the order they were decided.
///
/// Agents are visited in an order shuffled by `seed`; filters are judged
/// against `now`. The same snapshot, config, `now` and `seed` always give the
/// same result.
pub fn allocate(
    snapshot: &ClusterSnapshot,
    config: &AllocatorConfig,
    now: MonoTime,
    seed: u64,
) -> Vec<Allocation> {
    allocate::run::<sorter::DrfSorter>(snapshot, config, now, seed)
}
