//! Recovery after an agent restart: rebuild the state from the checkpoint,
//! ask the runtimes which containers survived, watch those again, report the
//! ones that ended while the agent was down, and kill orphans.
use agora_model::{TaskState, TaskStatusReason};
use agora_runtime::{ContainerHandle, ExitStatus, RecoveryReport, RuntimeError};

use crate::checkpoint::{KillCause, Recovered, TaskRecord};
use crate::event_loop::{Lifecycle, State, Task};
use crate::launch::recovered_env;
use crate::outcome::{Outcome, exit_outcome};

impl State {
    /// Applies a loaded checkpoint. Runs before the event loop starts.
    pub(crate) async fn recover(&mut self, rec: Recovered) {
        self.agent_id = rec.agent.agent_id.clone();
        let _ = self.agent_id_tx.send(self.agent_id.clone());
        self.frameworks = rec.frameworks;
        let now = self.now();
        for t in &rec.tasks {
            let key = (t.record.framework_id.clone(), t.record.spec.id.clone());
            for u in &t.updates {
                self.updates.push(key.clone(), u.clone(), now);
            }
        }
        let Some(agent_id) = self.agent_id.clone() else {
            // Never registered: there can be no tasks.
            return;
        };
        let known: Vec<ContainerHandle> = rec
            .tasks
            .iter()
            .filter(|t| !t.record.state.is_terminal())
            .filter_map(|t| t.record.handle.clone())
            .collect();
        let mut report = self.runtimes.recover(&agent_id, &known).await;
        tracing::info!(
            alive = report.alive.len(),
            exited = report.exited.len(),
            orphans = report.orphans.len(),
            "recovered containers"
        );
        for orphan in std::mem::take(&mut report.orphans) {
            tracing::warn!(
                container_id = orphan.container_id,
                "killing an orphan container"
            );
            self.kill_orphan(orphan);
        }
        for t in rec.tasks {
            let key = (t.record.framework_id.clone(), t.record.spec.id.clone());
            let env = recovered_env(&t.record.spec, &self.identity.hostname, &t.record.sandbox);
            let facts = facts_of(&t.record, self.updates.has_pending(&key), &report);
            let plan = plan_recovery(facts);
            let lifecycle = match plan {
                Plan::Resume | Plan::ReportRunning => Lifecycle::Running,
                Plan::KillAgain { cause, was_running } => Lifecycle::Killing { cause, was_running },
                Plan::Forget | Plan::AwaitAcks => Lifecycle::Exited,
                Plan::Report(_) => Lifecycle::Launching,
            };
            self.insert_task(
                key.clone(),
                Task {
                    record: t.record,
                    lifecycle,
                    env,
                    health: None,
                    prober: None,
                    waiter: None,
                    received_at: None,
                },
            );
            self.apply_recovery_plan(&key, plan);
        }
    }

    /// Carries out one task's recovery plan (the task is in `tasks`).
    fn apply_recovery_plan(&mut self, key: &crate::event_loop::TaskKey, plan: Plan) {
        match plan {
            Plan::Forget => self.forget_task(key),
            Plan::AwaitAcks => {}
            Plan::Report(outcome) => self.report(key, outcome),
            Plan::KillAgain { cause, .. } => {
                self.spawn_waiter(key);
                self.start_kill(key, cause, None);
            }
            Plan::ReportRunning => {
                self.spawn_waiter(key);
                self.report(
                    key,
                    Outcome::new(TaskState::Running, TaskStatusReason::Unspecified, ""),
                );
                self.start_health_checks(key);
            }
            Plan::Resume => {
                self.spawn_waiter(key);
                self.start_health_checks(key);
            }
        }
    }
}

/// What recovery knows about a checkpointed task, from its record, its
/// update queue and the runtimes' report.
fn facts_of(record: &TaskRecord, has_pending: bool, report: &RecoveryReport) -> Facts {
    let container = record.handle.as_ref().map(|h| {
        if report
            .alive
            .iter()
            .any(|a| a.container_id == h.container_id)
        {
            return Fate::Alive;
        }
        let status = report
            .exited
            .iter()
            .find(|e| e.handle.container_id == h.container_id)
            .and_then(|e| e.status.clone());
        Fate::Exited {
            container_id: h.container_id.clone(),
            status,
        }
    });
    Facts {
        state: record.state,
        kill: record.kill,
        has_pending,
        container,
    }
}

/// What became of a checkpointed container while the agent was down.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fate {
    /// Still running.
    Alive,
    /// Gone; `status` is its exit if the runtime could tell.
    Exited {
        container_id: String,
        status: Option<ExitStatus>,
    },
}

/// What recovery knows about one checkpointed task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Facts {
    /// The last state the agent reported.
    pub(crate) state: TaskState,
    /// The kill request, if one was made.
    pub(crate) kill: Option<KillCause>,
    /// Unacknowledged updates wait in its queue.
    pub(crate) has_pending: bool,
    /// `None`: no container handle was checkpointed (the agent died
    /// mid-launch).
    pub(crate) container: Option<Fate>,
}

/// What to do with one recovered task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Terminal and acknowledged: drop its checkpoint.
    Forget,
    /// Terminal; its updates wait for acknowledgements.
    AwaitAcks,
    /// Report this (terminal) outcome.
    Report(Outcome),
    /// Alive, and a kill was asked for: the agent died mid-kill, kill again.
    KillAgain { cause: KillCause, was_running: bool },
    /// Alive, launched, but TASK_RUNNING was never reported: report it.
    ReportRunning,
    /// Alive and running: watch it again.
    Resume,
}

/// The recovery decision for one task, a pure function of what the
/// checkpoint and the runtimes say.
pub(crate) fn plan_recovery(f: Facts) -> Plan {
    if f.state.is_terminal() {
        return if f.has_pending {
            Plan::AwaitAcks
        } else {
            Plan::Forget
        };
    }
    let was_running = matches!(f.state, TaskState::Running | TaskState::Killing);
    match (f.container, f.kill) {
        (None, _) => Plan::Report(Outcome::new(
            TaskState::Failed,
            TaskStatusReason::AgentRestarted,
            "the agent restarted while launching the task",
        )),
        (Some(Fate::Alive), Some(cause)) => Plan::KillAgain { cause, was_running },
        (Some(Fate::Alive), None) if f.state == TaskState::Starting => Plan::ReportRunning,
        (Some(Fate::Alive), None) => Plan::Resume,
        (
            Some(Fate::Exited {
                container_id,
                status,
            }),
            kill,
        ) => {
            let result = status.ok_or_else(|| {
                RuntimeError::NotFound(format!(
                    "container {container_id} vanished while the agent was down"
                ))
            });
            let mut outcome = exit_outcome(kill, was_running, &result);
            if result.is_ok() {
                outcome.message = format!("exited while the agent was down: {}", outcome.message);
            }
            Plan::Report(outcome)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: Option<i32>) -> Option<Fate> {
        Some(Fate::Exited {
            container_id: "c1".into(),
            status: code.map(|c| ExitStatus {
                code: Some(c),
                signal: None,
                oom_killed: false,
                command_not_found: false,
                message: format!("exit {c}"),
            }),
        })
    }

    fn facts(state: TaskState, kill: Option<KillCause>, container: Option<Fate>) -> Facts {
        Facts {
            state,
            kill,
            has_pending: false,
            container,
        }
    }

    /// The expected plan, or for a report its state and reason.
    type Want = Result<Plan, (TaskState, TaskStatusReason)>;

    /// (state, kill, has_pending, container) → the plan's shape and, for
    /// reports, the state and reason.
    #[test]
    fn plan_recovery_table() {
        use KillCause::*;
        use TaskState as S;
        use TaskStatusReason as R;
        let alive = || Some(Fate::Alive);
        let cases: Vec<(Facts, Want)> = vec![
            // Terminal: forget, or wait for the acknowledgements.
            (facts(S::Finished, None, exited(Some(0))), Ok(Plan::Forget)),
            (
                Facts {
                    has_pending: true,
                    ..facts(S::Killed, Some(Requested), None)
                },
                Ok(Plan::AwaitAcks),
            ),
            // Restarted mid-launch: no handle was checkpointed.
            (
                facts(S::Staging, None, None),
                Err((S::Failed, R::AgentRestarted)),
            ),
            (
                facts(S::Starting, Some(Requested), None),
                Err((S::Failed, R::AgentRestarted)),
            ),
            // Restarted mid-kill: kill again; the reason depends on RUNNING.
            (
                facts(S::Killing, Some(Requested), alive()),
                Ok(Plan::KillAgain {
                    cause: Requested,
                    was_running: true,
                }),
            ),
            (
                facts(S::Starting, Some(Unhealthy), alive()),
                Ok(Plan::KillAgain {
                    cause: Unhealthy,
                    was_running: false,
                }),
            ),
            // Alive without a kill.
            (facts(S::Starting, None, alive()), Ok(Plan::ReportRunning)),
            (facts(S::Running, None, alive()), Ok(Plan::Resume)),
            // Exited while the agent was down.
            (
                facts(S::Running, None, exited(Some(0))),
                Err((S::Finished, R::Unspecified)),
            ),
            (
                facts(S::Running, None, exited(Some(3))),
                Err((S::Failed, R::Unspecified)),
            ),
            (
                facts(S::Running, None, exited(None)),
                Err((S::Failed, R::ExecutorTerminated)),
            ),
            (
                facts(S::Killing, Some(Requested), exited(Some(137))),
                Err((S::Killed, R::Unspecified)),
            ),
            (
                facts(S::Starting, Some(Requested), exited(Some(137))),
                Err((S::Killed, R::TaskKilledDuringLaunch)),
            ),
        ];
        for (f, want) in cases {
            let got = plan_recovery(f.clone());
            match (&got, want) {
                (Plan::Report(o), Err((state, reason))) => {
                    assert_eq!((o.state, o.reason), (state, reason), "{f:?}");
                }
                (got, Ok(plan)) => assert_eq!(*got, plan, "{f:?}"),
                (got, Err(want)) => panic!("{f:?}: got {got:?}, want a report of {want:?}"),
            }
        }
    }
}
