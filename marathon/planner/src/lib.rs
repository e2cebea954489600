//! The decision core of Agora's Marathon: app definitions with Marathon's
//! defaults and validation, constraint matching and offer placement,
//! scale-down selection, deployment plans and rolling-restart steps. Plain
//! data in, plain data out: the `agora-marathon` crate owns the state, the
//! offers, the clock and the store, and calls these functions. See
//! `README.md` beside this crate for the problem statement and invariants.
//!
//! # Layout
//! - `ids.rs`: [`PathId`] (`/prod/web/api`), [`InstanceId`], [`DeploymentId`], [`Version`].
//! - `app.rs`: [`App`] and its parts with Marathon's defaults; [`change`]
//!   tells a scale-only change from a restart.
//! - `validate.rs`: [`validate_app`], violations named by JSON path.
//! - `constraint.rs`: [`Constraint`] parsing (regexes compiled once) and the
//!   agent-only half of matching; [`AgentFacts`].
//! - `instance.rs`: [`InstanceView`]: goal and observed condition apart.
//! - `placement/`: [`place`] over per-value [`PlacementCounters`] and the
//!   cluster [`Inventory`]; [`DeclineReason`]s and the [`RejectSummary`] funnel.
//! - `scale.rs`: [`select_to_kill`], largest GROUP_BY bucket first.
//! - `deploy/`: [`plan`] (dependency-ordered steps) and [`step`] (launches
//!   and kills for one action, rolling restarts per the upgrade strategy).
//!
//! Architecture invariant: no IO, clock, threads or randomness (checked by
//! `src/tests/tidy.rs`); time and ids come in as arguments.
//!
//! API boundary: plain data types with public fields and free functions.
#![forbid(unsafe_code)]

mod app;
mod constraint;
mod deploy;
mod error;
mod ids;
mod instance;
mod placement;
mod scale;
mod validate;

pub use app::{
    App, AppChange, AppResources, BackoffPolicy, DockerContainer, EnvValue, HealthCheck,
    HealthProtocol, HostPort, KillSelection, NetworkMode, PortSpec, ReadinessCheck,
    UnreachableStrategy, UpgradeStrategy, VersionInfo, change,
};
pub use constraint::{AgentFacts, Constraint, Field, FullRegex, Operator, parse_constraints};
pub use deploy::{
    Action, Apps, DeploymentAction, DeploymentPlan, Step, StepInput, StepOutcome, StepStatus,
    capacity, plan, plan_with_kills, step,
};
pub use error::{ConstraintError, IdError, PlanError, Violation};
pub use ids::{DeploymentId, InstanceId, PathId, Version};
pub use instance::{Condition, Goal, InstanceView, UnreachableDecision, unreachable_decision};
pub use placement::{
    DEFAULT_MAX_INSTANCES_PER_OFFER, DeclineReason, FUNNEL, FieldCounter, FunnelStage, Inventory,
    OfferOutcome, OfferView, Placement, PlacementCounters, PlacementInput, PlacementPlan,
    ReasonKind, RejectSummary, place,
};
pub use scale::select_to_kill;
pub use validate::validate_app;

#[cfg(test)]
mod tests;
