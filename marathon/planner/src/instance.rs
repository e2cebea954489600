//! What the planner sees of a running instance: its goal (what we want) and
//! its observed condition (what the agent reported) kept apart, as Marathon's
//! `Goal` and `Condition` are, plus health, readiness and where it runs.
use agora_model::MonoTime;

use crate::constraint::AgentFacts;
use crate::ids::{InstanceId, Version};

/// What we want of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Goal {
    /// Keep it running.
    #[default]
    Running,
    /// Kill it (a kill was requested; it is on its way out).
    Stopped,
    /// Kill it and forget it.
    Decommissioned,
}

/// What was last observed of an instance (Marathon's `Condition`, merged
/// where the planner does not tell them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// Waiting for an offer.
    #[default]
    Scheduled,
    /// Launched, not yet running (Provisioned, Staging, Starting).
    Staging,
    /// Running.
    Running,
    /// Unreachable, within `inactiveAfterSeconds`.
    Unreachable,
    /// Unreachable for longer: a replacement is due.
    UnreachableInactive,
    /// Being killed.
    Killing,
    /// Finished, failed, killed, gone, dropped, error: terminal.
    Terminal,
}

impl Condition {
    /// Terminal conditions take no resources and count nowhere.
    pub fn is_terminal(self) -> bool {
        self == Condition::Terminal
    }
}

/// One instance of an app as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    /// Its id.
    pub id: InstanceId,
    /// The config version it was launched with
    /// ([`crate::App::config_version`]).
    pub config_version: Version,
    /// Desired state.
    pub goal: Goal,
    /// Observed state.
    pub condition: Condition,
    /// Passing its health checks (running and no checks counts as healthy).
    pub healthy: bool,
    /// Passing its readiness check (no check counts as ready once healthy).
    pub ready: bool,
    /// When it was launched (for `killSelection`).
    pub started_at: MonoTime,
    /// Where it runs (for GROUP_BY-aware scale-down); empty if unplaced.
    pub agent: AgentFacts,
}

impl InstanceView {
    /// Wanted and not terminal: it holds (or will hold) resources.
    pub fn is_active(&self) -> bool {
        self.goal == Goal::Running && !self.condition.is_terminal()
    }

    /// Active, running, healthy and ready: it serves.
    pub fn is_healthy_ready(&self) -> bool {
        self.is_active() && self.condition == Condition::Running && self.healthy && self.ready
    }

    /// Active, running and healthy (readiness aside).
    pub fn is_healthy(&self) -> bool {
        self.is_active() && self.condition == Condition::Running && self.healthy
    }
}
