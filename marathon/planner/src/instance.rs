//! What the planner sees of a running instance: its goal (what we want) and
//! its observed condition (what the agent reported) kept apart, as Marathon's
//! `Goal` and `Condition` are, plus health, readiness and where it runs.
use agora_model::MonoTime;

use crate::app::UnreachableStrategy;
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
    /// Wanted, not terminal and not given up on: it counts toward the
    /// app's instances. An `UnreachableInactive` instance does not (a
    /// replacement is launched for it, as Marathon does).
    pub fn is_active(&self) -> bool {
        self.is_wanted() && self.condition != Condition::UnreachableInactive
    }

    /// Goal running and not terminal (active, or unreachable and inactive).
    pub fn is_wanted(&self) -> bool {
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

/// What to do about an instance that has been unreachable since `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachableDecision {
    /// Keep waiting for it (it still counts as an instance).
    Wait,
    /// Mark it `UnreachableInactive`: it stops counting and a replacement
    /// is launched.
    Replace,
    /// Expunge it: forget it, and kill it if it ever comes back.
    Expunge,
}

/// Marathon's unreachable handling: inactive after `inactiveAfterSeconds`,
/// expunged after `expungeAfterSeconds` (expunging wins when both are due);
/// never for `disabled`.
pub fn unreachable_decision(
    strategy: &UnreachableStrategy,
    since: MonoTime,
    now: MonoTime,
) -> UnreachableDecision {
    let UnreachableStrategy::Enabled {
        inactive_after,
        expunge_after,
    } = *strategy
    else {
        return UnreachableDecision::Wait;
    };
    let elapsed = now.since(since);
    if elapsed >= expunge_after {
        UnreachableDecision::Expunge
    } else if elapsed >= inactive_after {
        UnreachableDecision::Replace
    } else {
        UnreachableDecision::Wait
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn unreachable_instances_are_replaced_then_expunged() {
        let s = UnreachableStrategy::Enabled {
            inactive_after: Duration::from_secs(300),
            expunge_after: Duration::from_secs(600),
        };
        let at =
            |secs: u64| unreachable_decision(&s, MonoTime(1_000), MonoTime(1_000 + secs * 1_000));
        assert_eq!(at(299), UnreachableDecision::Wait);
        assert_eq!(at(300), UnreachableDecision::Replace);
        assert_eq!(at(599), UnreachableDecision::Replace);
        assert_eq!(at(600), UnreachableDecision::Expunge);
        let d = UnreachableStrategy::Disabled;
        assert_eq!(
            unreachable_decision(&d, MonoTime(0), MonoTime(u64::MAX)),
            UnreachableDecision::Wait
        );
        // The default {0, 0}: forgotten (and so replaced) at once; killed
        // if it comes back.
        let z = UnreachableStrategy::default();
        assert_eq!(
            unreachable_decision(&z, MonoTime(5), MonoTime(5)),
            UnreachableDecision::Expunge
        );
    }
}
