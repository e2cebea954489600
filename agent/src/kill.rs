//! Killing tasks: on the master's request and after failed health checks.
use std::time::Duration;

use agora_model::{Capability, FrameworkId, TaskId, TaskState, TaskStatusReason};
use agora_proto::v1;
use agora_runtime::ContainerHandle;

use crate::checkpoint::KillCause;
use crate::checkpoint::writer::WriteOp;
use crate::event_loop::{AfterWrite, Event, Goal, Lifecycle, State, TaskKey};
use crate::health::HealthAction;
use crate::outcome::Outcome;

/// The longest kill grace period the agent honours: the bound the
/// framework API accepts for `kill_policy.grace_period_seconds` (about 317
/// years), so any grace a framework could ask for passes, and a larger one
/// can only come from a broken master.
const MAX_KILL_GRACE_SECONDS: f64 = 1e10;

/// The master's grace period, if it is usable: NaN, negative and absurdly
/// large values (over [`MAX_KILL_GRACE_SECONDS`], where
/// `Duration::from_secs_f64` would panic past ~1.8e19) are ignored, so the
/// task's own or the default grace applies and the kill still happens.
fn kill_grace(seconds: Option<f64>) -> Option<Duration> {
    let s = seconds?;
    let grace = if s <= MAX_KILL_GRACE_SECONDS {
        Duration::try_from_secs_f64(s).ok()
    } else {
        None
    };
    if grace.is_none() {
        tracing::warn!(
            grace_period_seconds = s,
            "ignoring an unusable kill grace period from the master"
        );
    }
    grace
}

impl State {
    /// `MasterMessage::Kill`. A kill of a task this agent never had (or
    /// already forgot) is answered with TASK_LOST, reason TASK_UNKNOWN, so a
    /// master that still believes in the task learns otherwise; a kill of a
    /// task that already ended is ignored (its terminal update is on its way).
    pub(crate) fn on_kill(&mut self, k: v1::master_message::Kill) {
        let (Ok(fw), Ok(task)) = (FrameworkId::parse(k.framework_id), TaskId::parse(k.task_id))
        else {
            tracing::warn!("ignoring a kill with invalid ids");
            return;
        };
        let key = (fw, task);
        let grace = kill_grace(k.kill_policy.and_then(|p| p.grace_period_seconds));
        let Some(t) = self.tasks.get(&key) else {
            if self
                .completed
                .iter()
                .any(|c| c.framework_id == key.0 && c.task_id == key.1)
            {
                tracing::debug!(task = %key.1, "kill of a completed task; ignored");
                return;
            }
            let msg = "this agent does not know the task";
            return self.report(
                &key,
                Outcome::new(TaskState::Lost, TaskStatusReason::TaskUnknown, msg),
            );
        };
        if t.record.state.is_terminal() || t.goal() != Goal::Run {
            tracing::debug!(task = %key.1, "kill of a task that is ending already; ignored");
            return;
        }
        self.start_kill(&key, KillCause::Requested, grace);
    }

    /// Marks the task as being killed (checkpointed), tells frameworks that
    /// understand TASK_KILLING, and kills the container once the kill
    /// request is on disk, if there is a container yet (otherwise
    /// `on_launched` finishes the job).
    pub(crate) fn start_kill(&mut self, key: &TaskKey, cause: KillCause, grace: Option<Duration>) {
        let default_grace = self.config.default_kill_grace;
        let killing_state = self
            .frameworks
            .get(&key.0)
            .is_some_and(|f| f.has(Capability::TaskKillingState));
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        let first_request = task.goal() == Goal::Run;
        task.record.kill = Some(cause);
        if let Some(p) = task.prober.take() {
            p.abort();
        }
        let grace = grace
            .or(task.record.spec.kill_grace)
            .unwrap_or(default_grace);
        let handle = task.record.handle.clone();
        if handle.is_some() {
            task.lifecycle = Lifecycle::Killing {
                cause,
                was_running: task.was_running(),
            };
        }
        let container_id = task.record.container_id.clone();
        let report_killing =
            first_request && killing_state && task.record.state != TaskState::Killing;
        let healthy = task
            .record
            .healthy
            .filter(|_| cause == KillCause::Unhealthy);
        let then = match handle {
            Some(handle) => AfterWrite::KillRecorded {
                key: key.clone(),
                container_id,
                handle,
                grace,
            },
            None => AfterWrite::Nothing,
        };
        let op = WriteOp::Task(Box::new(task.record.clone()));
        self.persist(op, then);
        if report_killing {
            let mut o = Outcome::new(TaskState::Killing, cause.reason(), "");
            o.healthy = healthy;
            self.report(key, o);
        }
    }

    /// Kills a container (its kill request is on disk).
    pub(crate) fn spawn_kill(
        &mut self,
        key: TaskKey,
        container_id: String,
        handle: ContainerHandle,
        grace: Duration,
    ) {
        let (runtimes, events) = (self.runtimes.clone(), self.events.clone());
        self.spawned.spawn(async move {
            let result = runtimes.kill(&handle, grace).await;
            let _ = events
                .send(Event::KillDone {
                    key,
                    container_id,
                    result,
                })
                .await;
        });
    }

    /// Kills and removes a container no task owns.
    pub(crate) fn kill_orphan(&mut self, handle: ContainerHandle) {
        let runtimes = self.runtimes.clone();
        self.spawned.spawn(async move {
            if let Err(e) = runtimes.kill(&handle, Duration::ZERO).await {
                tracing::warn!(container_id = handle.container_id, error = %e, "killing an orphan failed");
            }
            if let Err(e) = runtimes.cleanup(&handle).await {
                tracing::warn!(container_id = handle.container_id, error = %e, "cleaning up an orphan failed");
            }
        });
    }

    pub(crate) fn on_health(
        &mut self,
        key: &TaskKey,
        container_id: &str,
        result: Result<(), String>,
    ) {
        let now = self.now();
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        if task.record.container_id != container_id
            || task.record.state != TaskState::Running
            || task.goal() != Goal::Run
        {
            return;
        }
        let Some(tracker) = task.health.as_mut() else {
            return;
        };
        if let Err(why) = &result {
            self.metrics.health_check_failures_total.inc();
            tracing::debug!(task = %key.1, why, "health check failed");
        }
        for action in tracker.on_result(result.is_ok(), now) {
            match action {
                HealthAction::Report(healthy) => {
                    let mut o = Outcome::new(
                        TaskState::Running,
                        TaskStatusReason::TaskHealthCheckStatusUpdated,
                        "",
                    );
                    o.healthy = Some(healthy);
                    if let Err(why) = &result {
                        o.message = why.clone();
                    }
                    self.report(key, o);
                }
                HealthAction::Kill => {
                    tracing::info!(task = %key.1, "killing the task after failed health checks");
                    self.start_kill(key, KillCause::Unhealthy, None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{MAX_KILL_GRACE_SECONDS, kill_grace};

    #[test]
    fn kill_grace_takes_sane_values_and_ignores_the_rest() {
        assert_eq!(kill_grace(None), None);
        assert_eq!(kill_grace(Some(0.0)), Some(Duration::ZERO));
        assert_eq!(kill_grace(Some(2.5)), Some(Duration::from_millis(2500)));
        assert_eq!(
            kill_grace(Some(MAX_KILL_GRACE_SECONDS)),
            Some(Duration::from_secs(10_000_000_000))
        );
        for bad in [
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            MAX_KILL_GRACE_SECONDS * 1.5,
            // Past u64::MAX seconds: from_secs_f64 would panic here.
            1.9e19,
            f64::MAX,
        ] {
            assert_eq!(kill_grace(Some(bad)), None, "{bad}");
        }
    }
}
