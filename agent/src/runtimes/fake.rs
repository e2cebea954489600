//! A runtime without containers, for agent-loop tests: `launch` succeeds at
//! once (unless told to fail), a container "runs" until the test ends it
//! with [`FakeRuntime::exit`] or the agent kills it.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use agora_model::AgentId;
use agora_runtime::{
    ContainerHandle, ExitStatus, LaunchSpec, RecoveryReport, Runtime, RuntimeError, RuntimeKind,
};
use tokio::sync::watch;

/// Containers by id, each with its exit (None while running).
#[derive(Default)]
pub(crate) struct FakeRuntime {
    containers: Mutex<HashMap<String, watch::Sender<Option<ExitStatus>>>>,
    /// Launches of these task ids fail.
    pub(crate) fail_launch_of: Mutex<Vec<String>>,
}

impl FakeRuntime {
    /// Ends a container with `code`.
    pub(crate) fn exit(&self, container_id: &str, code: i32) {
        self.end(
            container_id,
            ExitStatus {
                code: Some(code),
                signal: None,
                oom_killed: false,
                command_not_found: false,
                message: format!("exited with {code}"),
            },
        );
    }

    /// Ids of the containers launched so far.
    pub(crate) fn container_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn end(&self, container_id: &str, status: ExitStatus) {
        if let Some(tx) = self.lock().get(container_id) {
            tx.send_if_modified(|s| {
                let first = s.is_none();
                if first {
                    *s = Some(status);
                }
                first
            });
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Option<ExitStatus>>>> {
        self.containers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Runtime for FakeRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Process
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<ContainerHandle, RuntimeError> {
        let fail = self
            .fail_launch_of
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&spec.task_id.to_string());
        if fail {
            return Err(RuntimeError::Launch("told to fail".into()));
        }
        let (tx, _) = watch::channel(None);
        self.lock().insert(spec.container_id.clone(), tx);
        Ok(ContainerHandle {
            kind: RuntimeKind::Process,
            container_id: spec.container_id.clone(),
            docker_id: None,
            pid: None,
            pid_start_time: None,
            cgroup: None,
            sandbox: spec.sandbox.clone(),
        })
    }

    async fn wait(&self, handle: &ContainerHandle) -> Result<ExitStatus, RuntimeError> {
        let rx = self
            .lock()
            .get(&handle.container_id)
            .map(watch::Sender::subscribe);
        let Some(mut rx) = rx else {
            return Err(RuntimeError::NotFound(handle.container_id.clone()));
        };
        let status = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| RuntimeError::NotFound(handle.container_id.clone()))?;
        (*status)
            .clone()
            .ok_or_else(|| RuntimeError::NotFound(handle.container_id.clone()))
    }

    async fn kill(&self, handle: &ContainerHandle, _grace: Duration) -> Result<(), RuntimeError> {
        self.end(
            &handle.container_id,
            ExitStatus {
                code: Some(137),
                signal: Some(9),
                oom_killed: false,
                command_not_found: false,
                message: "killed".into(),
            },
        );
        Ok(())
    }

    async fn exec(
        &self,
        _handle: &ContainerHandle,
        _cmd: &str,
        _env: &BTreeMap<String, String>,
        _timeout: Duration,
    ) -> Result<i32, RuntimeError> {
        Ok(0)
    }

    async fn recover(
        &self,
        _agent_id: &AgentId,
        known: &[ContainerHandle],
    ) -> Result<RecoveryReport, RuntimeError> {
        let containers = self.lock();
        let mut report = RecoveryReport::default();
        for h in known {
            match containers.get(&h.container_id) {
                Some(tx) if tx.borrow().is_none() => report.alive.push(h.clone()),
                other => report.exited.push(agora_runtime::RecoveredExit {
                    handle: h.clone(),
                    status: other.and_then(|tx| tx.borrow().clone()),
                }),
            }
        }
        Ok(report)
    }

    async fn cleanup(&self, _handle: &ContainerHandle) -> Result<(), RuntimeError> {
        Ok(())
    }
}
