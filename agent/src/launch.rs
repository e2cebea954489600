//! Launching tasks, watching their containers, and turning container
//! exits into status updates.
use std::collections::BTreeMap;

use agora_model::{FrameworkInfo, TaskId, TaskSpec, TaskState, TaskStatusReason};
use agora_proto::v1;
use agora_runtime::{ContainerHandle, ExitStatus, LaunchSpec, Limits, RuntimeError, RuntimeKind};

use crate::checkpoint::TaskRecord;
use crate::checkpoint::writer::WriteOp;
use crate::event_loop::{AfterWrite, Event, Goal, Lifecycle, State, Task, TaskKey};
use crate::health::HealthTracker;
use crate::outcome::{Outcome, exit_outcome, launch_failure_reason};

impl State {
    fn remember_framework(&mut self, fw: FrameworkInfo) {
        let Some(id) = fw.id.clone() else { return };
        if self.frameworks.get(&id) == Some(&fw) {
            return;
        }
        let op = WriteOp::Framework(id.clone(), Box::new(fw.clone()));
        self.persist(op, AfterWrite::Nothing);
        self.frameworks.insert(id, fw);
    }

    /// `MasterMessage::Launch`: decode, check that it fits, then checkpoint
    /// the task and create its sandbox; the runtime's launch starts when
    /// the sandbox exists (`on_sandbox_ready`).
    pub(crate) fn on_launch(&mut self, l: v1::master_message::Launch) {
        let Some(agent_id) = self.agent_id.clone() else {
            tracing::warn!("launch before registration; ignored");
            return;
        };
        let Some((framework, key, wire)) = self.decode_launch(l) else {
            return;
        };
        self.remember_framework(framework);
        let spec = match self.check_fits(&key, &wire, &agent_id) {
            Ok(spec) => spec,
            Err(outcome) => return self.report(&key, outcome),
        };
        self.prepare_launch(key, spec, agent_id);
    }

    /// The framework and task of a LAUNCH; `None` (logged) for a launch
    /// that cannot even be answered (no valid framework or task id) or of
    /// a task this agent already has.
    fn decode_launch(
        &self,
        l: v1::master_message::Launch,
    ) -> Option<(FrameworkInfo, TaskKey, v1::TaskInfo)> {
        let framework =
            match agora_proto::convert::framework_from_wire(&l.framework.unwrap_or_default()) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "launch with an invalid framework; ignored");
                    return None;
                }
            };
        let Some(fw_id) = framework.id.clone() else {
            tracing::warn!("launch without a framework id; ignored");
            return None;
        };
        let wire = l.task.unwrap_or_default();
        let Ok(task_id) = TaskId::parse(wire.task_id.clone()) else {
            tracing::warn!(
                task_id = wire.task_id,
                "launch with an invalid task id; ignored"
            );
            return None;
        };
        let key = (fw_id, task_id);
        if self.tasks.contains_key(&key) {
            tracing::warn!(task = %key.1, "duplicate launch of a known task; ignored");
            return None;
        }
        Some((framework, key, wire))
    }

    /// The validated spec, if the task is valid, fits what is free and its
    /// runtime is available; otherwise the update to report.
    fn check_fits(
        &self,
        key: &TaskKey,
        wire: &v1::TaskInfo,
        agent_id: &agora_model::AgentId,
    ) -> Result<TaskSpec, Outcome> {
        let spec = agora_proto::convert::task_from_wire(wire, agent_id).map_err(|e| {
            Outcome::new(
                TaskState::Error,
                TaskStatusReason::TaskInvalid,
                e.to_string(),
            )
        })?;
        if !self.identity.resources.contains(&spec.resources) {
            let msg = format!(
                "task needs {} but this agent has {} in total",
                spec.resources, self.identity.resources
            );
            return Err(Outcome::new(
                TaskState::Error,
                TaskStatusReason::TaskInvalid,
                msg,
            ));
        }
        let free = self.identity.resources.minus(&self.used);
        if !free.contains(&spec.resources) {
            // Never over-commit: the master's view was stale.
            let msg = format!("task needs {} but only {free} is free", spec.resources);
            return Err(Outcome::new(
                TaskState::Dropped,
                TaskStatusReason::ResourcesUnknown,
                msg,
            ));
        }
        let kind = if spec.docker.is_some() {
            RuntimeKind::Docker
        } else {
            RuntimeKind::Process
        };
        if let Some(why) = self.runtimes.unavailable(kind) {
            self.metrics.container_launch_errors_total.inc();
            tracing::debug!(task = %key.1, why, "runtime unavailable");
            return Err(Outcome::new(
                TaskState::Failed,
                TaskStatusReason::ContainerLaunchFailed,
                why,
            ));
        }
        Ok(spec)
    }

    /// Adds the task (STAGING), queues its record and sandbox for the
    /// writer, and reports TASK_STARTING.
    fn prepare_launch(&mut self, key: TaskKey, spec: TaskSpec, agent_id: agora_model::AgentId) {
        let container_id = uuid::Uuid::new_v4().simple().to_string();
        let sandbox = self.checkpoint.sandbox(&key.0, &key.1, &container_id);
        let env = crate::env::task_env(&spec, &self.identity.hostname, &sandbox.to_string_lossy());
        let launch = LaunchSpec {
            container_id: container_id.clone(),
            task_id: key.1.clone(),
            agent_id,
            framework_id: key.0.clone(),
            sandbox: sandbox.clone(),
            command: spec.command.clone(),
            docker: spec.docker.clone(),
            env: env.clone(),
            limits: Limits {
                cpus: spec.resources.cpus(),
                mem_mb: spec.resources.mem(),
                pids: self.config.task_pids_limit,
            },
        };
        let record = TaskRecord {
            framework_id: key.0.clone(),
            spec,
            container_id: container_id.clone(),
            sandbox: sandbox.clone(),
            state: TaskState::Staging,
            handle: None,
            healthy: None,
            kill: None,
        };
        let received_at = Some(self.now());
        self.insert_task(
            key.clone(),
            Task {
                record,
                lifecycle: Lifecycle::Launching,
                env,
                health: None,
                prober: None,
                waiter: None,
                received_at,
            },
        );
        // The task record, then the sandbox, in one writer batch; the
        // runtime's launch starts when the sandbox exists (the record is on
        // disk by then too, so a restarted agent knows the container).
        self.persist_task(&key);
        let then = AfterWrite::SandboxReady {
            key: key.clone(),
            container_id,
            launch: Box::new(launch),
        };
        self.persist(WriteOp::CreateDir(sandbox), then);
        self.report(
            &key,
            Outcome::new(TaskState::Starting, TaskStatusReason::Unspecified, ""),
        );
    }

    /// The sandbox of a launch exists (or could not be created).
    pub(crate) fn on_sandbox_ready(
        &mut self,
        key: TaskKey,
        container_id: String,
        launch: LaunchSpec,
        created: Result<(), std::sync::Arc<crate::AgentError>>,
    ) {
        let current = self.tasks.get(&key).is_some_and(|t| {
            t.record.container_id == container_id && t.lifecycle == Lifecycle::Launching
        });
        if !current {
            return;
        }
        if let Err(e) = created {
            self.metrics.container_launch_errors_total.inc();
            let msg = format!("creating sandbox {}: {e}", launch.sandbox.display());
            return self.report(
                &key,
                Outcome::new(
                    TaskState::Failed,
                    TaskStatusReason::ContainerLaunchFailed,
                    msg,
                ),
            );
        }
        let (runtimes, events) = (self.runtimes.clone(), self.events.clone());
        self.spawned.spawn(async move {
            let result = runtimes.launch(&launch).await;
            let _ = events
                .send(Event::Launched {
                    key,
                    container_id,
                    result,
                })
                .await;
        });
    }

    pub(crate) fn on_launched(
        &mut self,
        key: TaskKey,
        container_id: &str,
        result: Result<ContainerHandle, RuntimeError>,
    ) {
        let known = self
            .tasks
            .get(&key)
            .is_some_and(|t| t.record.container_id == container_id);
        if !known {
            if let Ok(h) = result {
                tracing::warn!(task = %key.1, container_id, "launched a container nobody wants; killing it");
                self.kill_orphan(h);
            }
            return;
        }
        let handle = match result {
            Ok(h) => h,
            Err(e) => {
                self.metrics.container_launch_errors_total.inc();
                let outcome =
                    Outcome::new(TaskState::Failed, launch_failure_reason(&e), e.to_string());
                return self.report(&key, outcome);
            }
        };
        let now = self.now();
        let Some(task) = self.tasks.get_mut(&key) else {
            return;
        };
        task.record.handle = Some(handle);
        let goal = task.goal();
        self.persist_task(&key);
        self.spawn_waiter(&key);
        if let Goal::Kill(cause) = goal {
            // Killed while launching: finish the kill now that there is a container.
            return self.start_kill(&key, cause, None);
        }
        if let Some(task) = self.tasks.get_mut(&key) {
            task.lifecycle = Lifecycle::Running;
            if let Some(received) = task.received_at {
                let runtime = if task.record.spec.docker.is_some() {
                    "docker"
                } else {
                    "process"
                };
                self.metrics
                    .task_launch_seconds
                    .with_label_values(&[runtime])
                    .observe(now.since(received).as_secs_f64());
            }
        }
        self.report(
            &key,
            Outcome::new(TaskState::Running, TaskStatusReason::Unspecified, ""),
        );
        self.start_health_checks(&key);
    }

    pub(crate) fn spawn_waiter(&mut self, key: &TaskKey) {
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        let Some(handle) = task.record.handle.clone() else {
            return;
        };
        let (runtimes, events, key2) = (self.runtimes.clone(), self.events.clone(), key.clone());
        let container_id = task.record.container_id.clone();
        let waiter = self.spawned.spawn(async move {
            let result = runtimes.wait(&handle).await;
            let _ = events
                .send(Event::Exited {
                    key: key2,
                    container_id,
                    result,
                })
                .await;
        });
        task.waiter = Some(waiter);
    }

    pub(crate) fn start_health_checks(&mut self, key: &TaskKey) {
        let now = self.now();
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        let (Some(check), Some(handle)) = (
            task.record.spec.health_check.clone(),
            task.record.handle.clone(),
        ) else {
            return;
        };
        task.health = Some(HealthTracker::new(&check, now));
        let fut = crate::health::probe::run(
            key.clone(),
            task.record.container_id.clone(),
            check,
            handle,
            task.env.clone(),
            self.runtimes.clone(),
            self.events.clone(),
        );
        task.prober = Some(self.spawned.spawn(fut));
    }

    pub(crate) fn on_exited(
        &mut self,
        key: &TaskKey,
        container_id: &str,
        result: Result<ExitStatus, RuntimeError>,
    ) {
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        if task.record.container_id != container_id || task.record.state.is_terminal() {
            return;
        }
        let outcome = exit_outcome(task.record.kill, task.was_running(), &result);
        let handle = task.record.handle.clone();
        self.report(key, outcome);
        // The exit status is recorded and the output is in the sandbox (kept
        // until GC), so the exited container or empty cgroup has no further
        // use: remove it now (the Docker runtime keeps it when configured to
        // keep exited containers). GC's later cleanup of it is a no-op.
        if let Some(handle) = handle {
            let runtimes = self.runtimes.clone();
            self.spawned.spawn(async move {
                if let Err(e) = runtimes.cleanup(&handle).await {
                    tracing::warn!(container_id = handle.container_id, error = %e, "cleanup after exit failed");
                }
            });
        }
    }
}

/// The environment a recovered task had (recomputed: it is a pure function
/// of the spec, hostname and sandbox).
pub(crate) fn recovered_env(
    spec: &TaskSpec,
    host: &str,
    sandbox: &std::path::Path,
) -> BTreeMap<String, String> {
    crate::env::task_env(spec, host, &sandbox.to_string_lossy())
}
