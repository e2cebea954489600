//! Agent-side health checks. [`HealthTracker`] is the sans-IO decision core
//! (probe result + now in, actions out); `probe` runs the probes and feeds
//! results to the event loop.
//!
//! Semantics (Mesos health checks): failures are ignored until the first
//! success or until the grace period (counted from the task's start) ends;
//! the first result and every change of health are reported; after
//! `consecutive_failures` counted failures in a row the task is killed,
//! unless the check is `never_kill`.
pub(crate) mod probe;

use agora_model::{HealthCheck, MonoTime};

/// What the event loop should do after a probe result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthAction {
    /// Send a RUNNING update with this health.
    Report(bool),
    /// Kill the task for being unhealthy.
    Kill,
}

/// Health state of one task.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    consecutive_failures_to_kill: u32,
    never_kill: bool,
    grace_ends: MonoTime,
    seen_success: bool,
    failures_in_a_row: u32,
    healthy: Option<bool>,
    kill_requested: bool,
}

impl HealthTracker {
    /// A tracker for a task that started at `started`.
    pub fn new(check: &HealthCheck, started: MonoTime) -> HealthTracker {
        HealthTracker {
            consecutive_failures_to_kill: check.consecutive_failures.max(1),
            never_kill: check.never_kill,
            grace_ends: started + check.grace_period,
            seen_success: false,
            failures_in_a_row: 0,
            healthy: None,
            kill_requested: false,
        }
    }

    /// The health last reported, if any.
    pub fn healthy(&self) -> Option<bool> {
        self.healthy
    }

    /// Failures counted in a row so far.
    pub fn failures_in_a_row(&self) -> u32 {
        self.failures_in_a_row
    }

    /// Feeds one probe result.
    pub fn on_result(&mut self, ok: bool, now: MonoTime) -> Vec<HealthAction> {
        let mut actions = Vec::new();
        if ok {
            self.seen_success = true;
            self.failures_in_a_row = 0;
            if self.healthy != Some(true) {
                self.healthy = Some(true);
                actions.push(HealthAction::Report(true));
            }
            return actions;
        }
        if !self.seen_success && now < self.grace_ends {
            // Still starting up: a failure now says nothing.
            return actions;
        }
        self.failures_in_a_row += 1;
        if self.healthy != Some(false) {
            self.healthy = Some(false);
            actions.push(HealthAction::Report(false));
        }
        if !self.never_kill
            && !self.kill_requested
            && self.failures_in_a_row >= self.consecutive_failures_to_kill
        {
            self.kill_requested = true;
            actions.push(HealthAction::Kill);
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_model::HealthCheckKind;
    use std::time::Duration;

    fn check(failures: u32, grace_ms: u64, never_kill: bool) -> HealthCheck {
        let mut c = HealthCheck::with_defaults(HealthCheckKind::Tcp { port: 1 });
        c.consecutive_failures = failures;
        c.grace_period = Duration::from_millis(grace_ms);
        c.never_kill = never_kill;
        c
    }

    #[test]
    fn failures_in_grace_are_ignored_until_first_success() {
        let mut h = HealthTracker::new(&check(2, 1000, false), MonoTime(0));
        assert!(h.on_result(false, MonoTime(100)).is_empty());
        assert!(h.on_result(false, MonoTime(900)).is_empty());
        assert_eq!(h.healthy(), None);
        assert_eq!(
            h.on_result(true, MonoTime(950)),
            vec![HealthAction::Report(true)]
        );
        // After a success, failures count even inside the grace period.
        assert_eq!(
            h.on_result(false, MonoTime(960)),
            vec![HealthAction::Report(false)]
        );
        assert_eq!(h.on_result(false, MonoTime(970)), vec![HealthAction::Kill]);
        // Killing is asked for once.
        assert!(h.on_result(false, MonoTime(980)).is_empty());
    }

    #[test]
    fn grace_end_starts_counting_and_reports_only_changes() {
        let mut h = HealthTracker::new(&check(3, 100, false), MonoTime(0));
        assert!(h.on_result(false, MonoTime(50)).is_empty());
        assert_eq!(
            h.on_result(false, MonoTime(100)),
            vec![HealthAction::Report(false)]
        );
        assert_eq!(
            h.on_result(true, MonoTime(200)),
            vec![HealthAction::Report(true)]
        );
        assert!(h.on_result(true, MonoTime(300)).is_empty());
        assert_eq!(
            h.on_result(false, MonoTime(400)),
            vec![HealthAction::Report(false)]
        );
        assert!(h.on_result(false, MonoTime(500)).is_empty());
        assert_eq!(h.failures_in_a_row(), 2);
        assert_eq!(h.on_result(false, MonoTime(600)), vec![HealthAction::Kill]);
    }

    #[test]
    fn never_kill_only_reports() {
        let mut h = HealthTracker::new(&check(1, 0, true), MonoTime(0));
        assert_eq!(
            h.on_result(false, MonoTime(1)),
            vec![HealthAction::Report(false)]
        );
        assert!(h.on_result(false, MonoTime(2)).is_empty());
    }
}
