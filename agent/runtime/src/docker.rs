//! The Docker runtime: one container per task through the Engine API
//! (bollard), named `agora-<container_id>` and labelled with the agent,
//! task, framework and container ids so that a restarted agent finds its
//! containers (and the ones its checkpoint missed).
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agora_model::AgentId;
use bollard::errors::Error as DockerError;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use tracing::{debug, info, warn};

use crate::docker_create::{container_body, container_name};
use crate::docker_logs::{self, LogFollower};
use crate::docker_ops::{self, is_not_found, status_code};
use crate::exit::{self, describe};
use crate::{
    ContainerHandle, ExitStatus, LABEL_AGENT_ID, LABEL_CONTAINER_ID, LABEL_SANDBOX, LaunchSpec,
    RecoveredExit, RecoveryReport, Runtime, RuntimeError, RuntimeKind,
};

/// Default bound on an image pull. Pulls of big images take minutes; there
/// is no registry in some environments, where a pull can only fail.
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(300);
/// Default bound on one Docker API call (until the response headers; long
/// streams such as wait and logs are not cut off by it).
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `wait` lets the log copy catch up after the exit, so the
/// sandbox's stdout is complete when the agent reports the task finished.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// After SIGKILL, how long we wait for Docker to report the exit.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// Exit code of a SIGKILLed container (128 + 9): an OOM kill looks like this.
const SIGKILL_EXIT_CODE: i64 = 137;
/// How often `wait` re-reads State.OOMKilled of a SIGKILLed container, and
/// how long it pauses in between (see `wait`): about half a second in all,
/// a delay only containers that died by SIGKILL pay.
const OOM_RECHECKS: u32 = 5;
const OOM_RECHECK_PAUSE: Duration = Duration::from_millis(100);
/// `wait` retries the wait call this many times on transient errors (e.g. a
/// daemon restart) before giving up.
const WAIT_RETRIES: u32 = 30;
/// Pause between those retries.
const WAIT_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Docker runtime settings.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Docker host, e.g. `unix:///var/run/docker.sock`; `None` means
    /// `DOCKER_HOST` or the default socket.
    pub host: Option<String>,
    /// Keep exited containers in `cleanup` (for debugging).
    pub keep_exited: bool,
    /// Upper bound on an image pull; a pull that fails or times out is
    /// [`RuntimeError::ImageNotFound`] (unless the image is present locally).
    pub pull_timeout: Duration,
    /// Upper bound on one API call (see [`DEFAULT_API_TIMEOUT`]).
    pub api_timeout: Duration,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            host: None,
            keep_exited: false,
            pull_timeout: DEFAULT_PULL_TIMEOUT,
            api_timeout: DEFAULT_API_TIMEOUT,
        }
    }
}

/// Runs tasks as Docker containers.
pub struct DockerRuntime {
    docker: bollard::Docker,
    config: DockerConfig,
    /// Log copies by container id. A std mutex: held only to insert, look up
    /// or remove, never across an await.
    logs: Arc<Mutex<HashMap<String, Arc<LogFollower>>>>,
}

fn check_kind(handle: &ContainerHandle) -> Result<(), RuntimeError> {
    match handle.kind {
        RuntimeKind::Docker => Ok(()),
        RuntimeKind::Process => Err(RuntimeError::InvalidHandle {
            runtime: "docker",
            reason: format!("{} is a process task", handle.container_id),
        }),
    }
}

/// The name to address a handle's container by: the Docker id when known.
fn target(handle: &ContainerHandle) -> String {
    handle
        .docker_id
        .clone()
        .unwrap_or_else(|| container_name(&handle.container_id))
}

/// Docker's errors for a missing executable at start (runc's wording).
fn is_missing_executable(message: &str) -> bool {
    message.contains("executable file not found") || message.contains("no such file or directory")
}

impl DockerRuntime {
    /// Connects to the daemon and negotiates the API version (the client
    /// speaks a newer one than e.g. Docker 20.10's 1.41, which rejects it).
    pub async fn connect(config: DockerConfig) -> Result<Self, RuntimeError> {
        let unavailable = |e: DockerError| RuntimeError::DockerUnavailable(e.to_string());
        let docker = match &config.host {
            Some(host) => bollard::Docker::connect_with_host(host),
            None => bollard::Docker::connect_with_local_defaults(),
        }
        .map_err(unavailable)?
        .with_timeout(config.api_timeout);
        let docker = tokio::time::timeout(config.api_timeout, docker.negotiate_version())
            .await
            .map_err(|_| RuntimeError::DockerUnavailable("version negotiation timed out".into()))?
            .map_err(unavailable)?;
        let version = docker.version().await.map_err(unavailable)?;
        info!(server = ?version.version, api = ?version.api_version, "connected to docker");
        Ok(DockerRuntime {
            docker,
            config,
            logs: Arc::default(),
        })
    }

    /// The underlying client (tests, image preparation).
    pub fn client(&self) -> &bollard::Docker {
        &self.docker
    }

    fn start_log_copy(&self, handle: &ContainerHandle, since: i32) {
        let follower = docker_logs::follow(
            self.docker.clone(),
            target(handle),
            handle.sandbox.clone(),
            since,
        );
        let old = self
            .logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(handle.container_id.clone(), Arc::new(follower));
        if let Some(old) = old {
            old.abort();
        }
    }

    async fn drain_logs(&self, container_id: &str) {
        let follower = self
            .logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(container_id)
            .cloned();
        if let Some(f) = follower
            && !f.finished(LOG_DRAIN_TIMEOUT).await
        {
            debug!(container_id, "log copy still running after exit");
        }
    }

    async fn inspect(
        &self,
        handle: &ContainerHandle,
    ) -> Result<ContainerInspectResponse, RuntimeError> {
        self.docker
            .inspect_container(&target(handle), None)
            .await
            .map_err(|e| {
                if is_not_found(&e) {
                    RuntimeError::NotFound(handle.container_id.clone())
                } else {
                    e.into()
                }
            })
    }

    /// Resolves when the container is not running (one wait call).
    async fn wait_not_running(&self, name: &str) -> Result<(), DockerError> {
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let mut stream = self.docker.wait_container(name, Some(options));
        match stream.next().await {
            // A non-zero exit code arrives as this error variant; it is an exit.
            None | Some(Ok(_)) | Some(Err(DockerError::DockerContainerWaitError { .. })) => Ok(()),
            Some(Err(e)) => Err(e),
        }
    }

    fn exit_status(
        state: &ContainerInspectResponse,
        sandbox: &std::path::Path,
    ) -> Option<ExitStatus> {
        let st = state.state.as_ref()?;
        if st.running == Some(true) {
            return None;
        }
        let code = st.exit_code.and_then(|c| i32::try_from(c).ok());
        let oom = st.oom_killed.unwrap_or(false);
        let mut status = describe(code, None, oom, exit::stderr_tail(sandbox));
        if let Some(err) = st.error.as_deref().filter(|e| !e.is_empty()) {
            status.command_not_found |= is_missing_executable(err);
            status.message = format!("{}: {err}", status.message);
        }
        Some(status)
    }

    async fn send_signal(&self, name: &str, signal: &str) -> Result<(), RuntimeError> {
        let options = KillContainerOptionsBuilder::new().signal(signal).build();
        match self.docker.kill_container(name, Some(options)).await {
            // 404: gone; 409: not running any more. Both mean done.
            Err(e) if !matches!(status_code(&e), Some(404 | 409)) => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn handle_from_labels(
        id: Option<String>,
        labels: &HashMap<String, String>,
    ) -> Option<ContainerHandle> {
        Some(ContainerHandle {
            kind: RuntimeKind::Docker,
            container_id: labels.get(LABEL_CONTAINER_ID)?.clone(),
            docker_id: id,
            pid: None,
            pid_start_time: None,
            cgroup: None,
            sandbox: labels
                .get(LABEL_SANDBOX)
                .map(Into::into)
                .unwrap_or_default(),
        })
    }
}

impl Drop for DockerRuntime {
    /// Stops the log copies: dropping the runtime stands for the agent going
    /// away, and a new runtime's `recover` resumes them (without the old
    /// ones, lines would be copied twice).
    fn drop(&mut self) {
        let logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        for follower in logs.values() {
            follower.abort();
        }
    }
}

impl Runtime for DockerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<ContainerHandle, RuntimeError> {
        crate::validate_container_id(&spec.container_id)?;
        let docker = spec
            .docker
            .as_ref()
            .ok_or_else(|| RuntimeError::InvalidSpec("no docker spec".into()))?;
        docker_ops::ensure_image(
            &self.docker,
            &docker.image,
            docker.force_pull,
            self.config.pull_timeout,
        )
        .await?;
        let name = container_name(&spec.container_id);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self
            .docker
            .create_container(Some(options), container_body(spec, docker)?)
            .await?;
        for w in &created.warnings {
            warn!(container = %name, warning = %w, "docker create warning");
        }
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            let remove = RemoveContainerOptionsBuilder::new().force(true).build();
            if !self.config.keep_exited
                && let Err(re) = self
                    .docker
                    .remove_container(&created.id, Some(remove))
                    .await
            {
                warn!(container = %name, error = %re, "removing container that failed to start");
            }
            let message = e.to_string();
            return Err(if is_missing_executable(&message) {
                RuntimeError::CommandNotFound(message)
            } else {
                e.into()
            });
        }
        let handle = ContainerHandle {
            kind: RuntimeKind::Docker,
            container_id: spec.container_id.clone(),
            docker_id: Some(created.id),
            pid: None,
            pid_start_time: None,
            cgroup: None,
            sandbox: spec.sandbox.clone(),
        };
        self.start_log_copy(&handle, 0);
        info!(container = %name, task_id = %spec.task_id, image = %docker.image, "launched docker task");
        Ok(handle)
    }

    async fn wait(&self, handle: &ContainerHandle) -> Result<ExitStatus, RuntimeError> {
        check_kind(handle)?;
        let name = target(handle);
        let mut failures = 0;
        loop {
            match self.wait_not_running(&name).await {
                Ok(()) => break,
                Err(e) if is_not_found(&e) => {
                    return Err(RuntimeError::NotFound(handle.container_id.clone()));
                }
                Err(e) => {
                    failures += 1;
                    if failures >= WAIT_RETRIES {
                        return Err(e.into());
                    }
                    warn!(container = %name, error = %e, "waiting for container failed; retrying");
                    tokio::time::sleep(WAIT_RETRY_PAUSE).await;
                }
            }
        }
        self.drain_logs(&handle.container_id).await;
        let mut state = self.inspect(handle).await?;
        // Docker learns of an OOM kill from a separate containerd event that
        // can arrive after the exit: a SIGKILLed container may show
        // OOMKilled=false for a moment. Look again before believing it.
        for _ in 0..OOM_RECHECKS {
            let st = state.state.as_ref();
            let sigkilled = st.and_then(|s| s.exit_code) == Some(SIGKILL_EXIT_CODE);
            if !sigkilled || st.and_then(|s| s.oom_killed) == Some(true) {
                break;
            }
            tokio::time::sleep(OOM_RECHECK_PAUSE).await;
            state = self.inspect(handle).await?;
        }
        Self::exit_status(&state, &handle.sandbox).ok_or_else(|| {
            RuntimeError::Launch(format!("{name} still running after wait returned"))
        })
    }

    async fn kill(&self, handle: &ContainerHandle, grace: Duration) -> Result<(), RuntimeError> {
        check_kind(handle)?;
        let name = target(handle);
        let state = match self.inspect(handle).await {
            Ok(s) => s,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if state.state.as_ref().and_then(|s| s.running) != Some(true) {
            return Ok(());
        }
        let stop_signal = state
            .config
            .and_then(|c| c.stop_signal)
            .unwrap_or_else(|| "SIGTERM".into());
        debug!(container = %name, %stop_signal, ?grace, "stopping container");
        self.send_signal(&name, &stop_signal).await?;
        if tokio::time::timeout(grace, self.wait_not_running(&name))
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.send_signal(&name, Signal::SIGKILL.as_str()).await?;
        match tokio::time::timeout(KILL_WAIT, self.wait_not_running(&name)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if is_not_found(&e) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(RuntimeError::Timeout(
                KILL_WAIT,
                format!("{name} did not die after SIGKILL"),
            )),
        }
    }

    async fn exec(
        &self,
        handle: &ContainerHandle,
        cmd: &str,
        env: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<i32, RuntimeError> {
        check_kind(handle)?;
        docker_ops::exec(
            &self.docker,
            &target(handle),
            &handle.container_id,
            cmd,
            env,
            timeout,
        )
        .await
    }

    async fn recover(
        &self,
        agent_id: &AgentId,
        known: &[ContainerHandle],
    ) -> Result<RecoveryReport, RuntimeError> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_AGENT_ID}={agent_id}")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let listed = self.docker.list_containers(Some(options)).await?;
        let mut report = RecoveryReport::default();
        for handle in known.iter().filter(|h| h.kind == RuntimeKind::Docker) {
            let state = match self.inspect(handle).await {
                Ok(s) => s,
                Err(RuntimeError::NotFound(_)) => {
                    report.exited.push(RecoveredExit {
                        handle: handle.clone(),
                        status: None,
                    });
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut handle = handle.clone();
            handle.docker_id = handle.docker_id.or(state.id.clone());
            self.start_log_copy(&handle, docker_logs::resume_since(&handle.sandbox));
            if state.state.as_ref().and_then(|s| s.running) == Some(true) {
                report.alive.push(handle);
            } else {
                self.drain_logs(&handle.container_id).await;
                let status = Self::exit_status(&state, &handle.sandbox);
                report.exited.push(RecoveredExit { handle, status });
            }
        }
        for summary in listed {
            let labels = summary.labels.unwrap_or_default();
            let Some(orphan) = Self::handle_from_labels(summary.id, &labels) else {
                continue;
            };
            let is_known = known.iter().any(|h| {
                h.container_id == orphan.container_id
                    || (h.docker_id.is_some() && h.docker_id == orphan.docker_id)
            });
            if !is_known {
                report.orphans.push(orphan);
            }
        }
        info!(
            alive = report.alive.len(),
            exited = report.exited.len(),
            orphans = report.orphans.len(),
            "recovered docker tasks"
        );
        Ok(report)
    }

    async fn cleanup(&self, handle: &ContainerHandle) -> Result<(), RuntimeError> {
        check_kind(handle)?;
        let follower = self
            .logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&handle.container_id);
        if let Some(f) = follower {
            f.finished(LOG_DRAIN_TIMEOUT).await;
            f.abort();
        }
        if self.config.keep_exited {
            return Ok(());
        }
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self
            .docker
            .remove_container(&target(handle), Some(options))
            .await
        {
            Err(e) if !is_not_found(&e) => Err(e.into()),
            _ => Ok(()),
        }
    }
}
