//! Recovery after an agent restart: rebuild the state from the checkpoint,
//! ask the runtimes which containers survived, watch those again, report the
//! ones that ended while the agent was down, and kill orphans.
use agora_model::{TaskState, TaskStatusReason};
use agora_runtime::{ContainerHandle, RuntimeError};

use crate::checkpoint::Recovered;
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
        let report = self.runtimes.recover(&agent_id, &known).await;
        tracing::info!(
            alive = report.alive.len(),
            exited = report.exited.len(),
            orphans = report.orphans.len(),
            "recovered containers"
        );
        for orphan in report.orphans {
            tracing::warn!(
                container_id = orphan.container_id,
                "killing an orphan container"
            );
            self.kill_orphan(orphan);
        }
        for t in rec.tasks {
            let key = (t.record.framework_id.clone(), t.record.spec.id.clone());
            let env = recovered_env(&t.record.spec, &self.identity.hostname, &t.record.sandbox);
            let state = t.record.state;
            let handle = t.record.handle.clone();
            let kill = t.record.kill;
            let container_id = t.record.container_id.clone();
            let lifecycle = if state.is_terminal() {
                Lifecycle::Exited
            } else {
                Lifecycle::Launching
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
            if state.is_terminal() {
                if !self.updates.has_pending(&key) {
                    self.forget_task(&key);
                }
                continue;
            }
            let Some(handle) = handle else {
                let msg = "the agent restarted while launching the task";
                self.report(
                    &key,
                    Outcome::new(TaskState::Failed, TaskStatusReason::AgentRestarted, msg),
                );
                continue;
            };
            if report.alive.iter().any(|h| h.container_id == container_id) {
                let was_running = matches!(state, TaskState::Running | TaskState::Killing);
                if let Some(task) = self.tasks.get_mut(&key) {
                    task.lifecycle = match kill {
                        Some(cause) => Lifecycle::Killing { cause, was_running },
                        None => Lifecycle::Running,
                    };
                }
                self.spawn_waiter(&key);
                match kill {
                    // The agent died mid-kill: kill again.
                    Some(cause) => self.start_kill(&key, cause, None),
                    None if state == TaskState::Starting => {
                        // Launched but TASK_RUNNING was never reported.
                        self.report(
                            &key,
                            Outcome::new(TaskState::Running, TaskStatusReason::Unspecified, ""),
                        );
                        self.start_health_checks(&key);
                    }
                    None => self.start_health_checks(&key),
                }
                continue;
            }
            let status = report
                .exited
                .iter()
                .find(|e| e.handle.container_id == handle.container_id);
            let result = match status.and_then(|e| e.status.clone()) {
                Some(s) => Ok(s),
                None => Err(RuntimeError::NotFound(format!(
                    "container {} vanished while the agent was down",
                    handle.container_id
                ))),
            };
            let was_running = matches!(state, TaskState::Running | TaskState::Killing);
            let mut outcome = exit_outcome(kill, was_running, &result);
            if result.is_ok() {
                outcome.message = format!("exited while the agent was down: {}", outcome.message);
            }
            self.report(&key, outcome);
        }
    }
}
