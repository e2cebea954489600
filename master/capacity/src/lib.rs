//! Agora's capacity model (issue 9 §1): from one consistent snapshot of
//! the master's agents, what is **total**, **reserved** per role,
//! **allocated** to tasks, **offered** and **free** — per agent, per
//! attribute value, per role and for the cluster, with the parts adding up
//! exactly — and **what fits**: how many more instances of a task shape, for
//! a role and Marathon constraints, where, and why not, computed by a dry
//! run of the very placement code Marathon uses (`agora-marathon-planner`),
//! never a second copy of its rules.
//!
//! # Layout
//! - `amount.rs`: [`Amount`], one quantity per dimension (cpus, mem, disk,
//!   gpus, ports), exact arithmetic.
//! - `breakdown.rs`: [`Snapshot`] in, [`Capacity`] out.
//! - `fit.rs`: [`fit`] — [`FitRequest`] in, [`FitAnswer`] (count, per-agent
//!   placements and bottlenecks, the rejection funnel) out.
//! - `shapes.rs`: [`fragmentation`] for reference shapes (placeable per
//!   agent and cluster, largest task per agent, stranded resources) and
//!   [`what_if`] (add an agent, drain one).
//! - `history.rs`: [`History`], the downsampled utilisation rings the
//!   masters replicate (10 s × 1 h, 1 min × 1 day, 1 h × 30 days), and
//!   [`sample`], one sample of a capacity answer.
//!
//! Architecture invariant: no IO, clock or threads; plain data in and out
//! (the master's loop copies a [`Snapshot`] out; HTTP handlers call these
//! functions outside the loop).
//!
//! API boundary: plain serde-serializable data and free functions.
#![forbid(unsafe_code)]

mod amount;
mod breakdown;
mod fit;
mod history;
mod shapes;

pub use amount::Amount;
pub use breakdown::{AgentCapacity, AgentSnapshot, Breakdown, Capacity, Snapshot, breakdown};
pub use fit::{AgentFit, FitAnswer, FitRequest, FunnelStep, MAX_FIT, MAX_PORTS, fit};
pub use history::{
    CLUSTER_SCOPE, History, HistoryQuery, HistorySample, HistorySeries, MAX_HISTORY_SCOPES,
    SAMPLE_PERIOD_MS, TIERS, milli, sample,
};
pub use shapes::{
    AgentFragment, Fragmentation, ReferenceShape, ShapeCount, WhatIf, default_shapes,
    fragmentation, what_if,
};

#[cfg(test)]
mod tests;
