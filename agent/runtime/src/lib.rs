//! The agent's container runtimes behind one trait, [`Runtime`]: Docker
//! containers through the Docker Engine API ([`DockerRuntime`], bollard) and
//! plain processes isolated in their own cgroup ([`ProcessRuntime`],
//! cgroups-rs, v1 and v2). Both write the task's stdout/stderr to files in its
//! sandbox, enforce cpu/mem/pids limits, report OOM kills, kill with a grace
//! period, run health-check commands in the task's context, and recover
//! containers after an agent restart from the [`ContainerHandle`]s the agent
//! checkpointed.
//!
//! Architecture invariant: this crate knows nothing of task states, status
//! updates or checkpoint files; it reports facts ([`ExitStatus`],
//! [`RecoveryReport`]) and the agent decides what they mean.
//!
//! Layout: `docker.rs` the Docker runtime, with `docker_create.rs` (spec ->
//! create body, pure), `docker_ops.rs` (pull, exec) and `docker_logs.rs`
//! (logs -> sandbox files); `process.rs` the process runtime, with
//! `process_spawn.rs` (the supervising wrapper, health-check exec),
//! `cgroups.rs` (v1/v2 task cgroups) and `proc.rs` (/proc, signals);
//! `exit.rs` exit-status decoding; `testing.rs` the shared test image.
//!
//! Recovery: Docker containers are found by name/id and by the
//! `agora.agent_id` label; a process task by its wrapper pid + start time
//! and its cgroup, and its exit code by `<sandbox>/.agora_exit_status`,
//! written by the wrapper, so it survives the agent.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use agora_model::{AgentId, CommandSpec, DockerSpec, FrameworkId, Scalar, TaskId};
use serde::{Deserialize, Serialize};

mod cgroups;
mod docker;
mod docker_create;
mod docker_logs;
mod docker_ops;
mod error;
mod exit;
mod proc;
mod process;
mod process_spawn;
pub mod testing;

pub use docker::{DEFAULT_API_TIMEOUT, DEFAULT_PULL_TIMEOUT, DockerConfig, DockerRuntime};
pub use error::RuntimeError;
pub use process::{ProcessConfig, ProcessRuntime};

/// Docker label holding the launching agent's id (used to find orphans).
pub const LABEL_AGENT_ID: &str = "agora.agent_id";
/// Docker label holding the task id.
pub const LABEL_TASK_ID: &str = "agora.task_id";
/// Docker label holding the framework id.
pub const LABEL_FRAMEWORK_ID: &str = "agora.framework_id";
/// Docker label holding [`LaunchSpec::container_id`].
pub const LABEL_CONTAINER_ID: &str = "agora.container_id";
/// Docker label holding the sandbox path (so orphans can be cleaned up).
pub const LABEL_SANDBOX: &str = "agora.sandbox";
/// Prefix of every Agora Docker container name: `agora-<container_id>`.
pub const DOCKER_NAME_PREFIX: &str = "agora-";
/// File in the sandbox that receives the task's stdout (both runtimes).
pub const STDOUT_FILE: &str = "stdout";
/// File in the sandbox that receives the task's stderr (both runtimes).
pub const STDERR_FILE: &str = "stderr";
/// Process runtime: file in the sandbox where the supervising wrapper
/// records the task's exit code (how it survives an agent restart).
pub const EXIT_STATUS_FILE: &str = ".agora_exit_status";

/// Everything a runtime needs to start one container. Built by the agent.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// Unique per launch, chosen by the agent (e.g. `"<task_id>.<uuid8>"`);
    /// used as a cgroup directory and in the Docker container name, so it must
    /// not contain `/` or whitespace.
    pub container_id: String,
    /// The task being run.
    pub task_id: TaskId,
    /// This agent.
    pub agent_id: AgentId,
    /// The task's framework.
    pub framework_id: FrameworkId,
    /// Existing directory; `stdout`/`stderr` are written here by both runtimes.
    pub sandbox: PathBuf,
    /// What to run. Docker: optional (image default); process: required.
    pub command: Option<CommandSpec>,
    /// `Some` selects the Docker runtime.
    pub docker: Option<DockerSpec>,
    /// The complete environment (HOST, PORT0.., task env). The process
    /// runtime clears the agent's environment and sets exactly this.
    pub env: BTreeMap<String, String>,
    /// Resource limits enforced by the runtime.
    pub limits: Limits,
}

/// Resource limits of one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// CPU shares (`cpus * 1024`) and CFS quota (`cpus` per period). Zero
    /// means unlimited.
    pub cpus: Scalar,
    /// Memory limit in MB (MiB); swap is disabled. Zero means unlimited.
    pub mem_mb: Scalar,
    /// Maximum number of processes/threads, if limited.
    pub pids: Option<u64>,
}

/// Which runtime a handle belongs to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// [`DockerRuntime`].
    Docker,
    /// [`ProcessRuntime`].
    Process,
}

/// How to find a launched container again, also after an agent restart.
/// The agent checkpoints it (JSON) right after `launch` returns.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ContainerHandle {
    /// Which runtime owns it.
    pub kind: RuntimeKind,
    /// [`LaunchSpec::container_id`].
    pub container_id: String,
    /// Docker's container id (Docker runtime only).
    pub docker_id: Option<String>,
    /// Process runtime: pid of the supervising wrapper (also the process
    /// group and session id of the task).
    pub pid: Option<u32>,
    /// Start time of `pid` (field 22 of `/proc/<pid>/stat`, clock ticks since
    /// boot); a pid with another start time is a reused pid, not our task.
    pub pid_start_time: Option<u64>,
    /// Process runtime: cgroup path relative to each hierarchy root, e.g.
    /// `agora/<agent_id>/<container_id>`.
    pub cgroup: Option<String>,
    /// The task's sandbox (logs and, for processes, the exit-status file).
    pub sandbox: PathBuf,
}

/// How a container ended.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ExitStatus {
    /// Exit code, when known. By the shell/Docker convention a task killed by
    /// signal N shows code `128 + N` (and `signal` is set as well).
    pub code: Option<i32>,
    /// Terminating signal, when known or inferred from `code > 128`.
    pub signal: Option<i32>,
    /// The kernel OOM killer fired in the container (memory limit hit).
    pub oom_killed: bool,
    /// The executable could not be found (shell/Docker exit code 127, or
    /// Docker's "executable file not found").
    pub command_not_found: bool,
    /// Human-readable summary for the status update (includes the last line
    /// of stderr on failure when available).
    pub message: String,
}

impl ExitStatus {
    /// Exited normally with code 0 and no OOM kill.
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.signal.is_none() && !self.oom_killed
    }
}

/// One checkpointed container that is no longer running.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveredExit {
    /// The handle as checkpointed.
    pub handle: ContainerHandle,
    /// How it ended, if that could still be found out (`None`: it vanished
    /// without a trace, e.g. the Docker container was removed).
    pub status: Option<ExitStatus>,
}

/// The result of [`Runtime::recover`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecoveryReport {
    /// Still running; `wait`/`kill`/`exec` work on these handles.
    pub alive: Vec<ContainerHandle>,
    /// Gone while the agent was down.
    pub exited: Vec<RecoveredExit>,
    /// Running or stopped containers of this agent that the checkpoint does
    /// not know (e.g. the agent died between launch and checkpoint). The
    /// agent should `kill` and `cleanup` them.
    pub orphans: Vec<ContainerHandle>,
}

/// Longest container id we accept: it becomes a cgroup directory name and
/// part of a Docker container name (Docker allows 253 bytes and more).
pub const MAX_CONTAINER_ID_LEN: usize = 200;

/// Checks that a container id is safe as a cgroup directory and Docker name
/// component: `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub fn validate_container_id(id: &str) -> Result<(), RuntimeError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CONTAINER_ID_LEN
        && !id.starts_with(['.', '-'])
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidSpec(format!(
            "container id {id:?} must be 1-{MAX_CONTAINER_ID_LEN} characters of [A-Za-z0-9_.-], not starting with '.' or '-'"
        )))
    }
}

/// Builds a valid container id `<task_id>.<suffix>` from any task id:
/// characters outside `[A-Za-z0-9_.-]` become `_`, a leading `.`/`-` is
/// replaced, and the task part is shortened to fit. `suffix` (e.g. 8 hex
/// digits of a uuid) makes it unique per launch.
pub fn container_id_for(task_id: &TaskId, suffix: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let suffix = clean(suffix);
    let mut task = clean(task_id.as_str());
    if task.starts_with(['.', '-']) {
        task.replace_range(0..1, "_");
    }
    task.truncate(MAX_CONTAINER_ID_LEN.saturating_sub(suffix.len() + 1));
    format!("{task}.{suffix}")
}

/// A container runtime. All methods may be called concurrently for
/// different containers; `wait` may be called more than once for the same one.
pub trait Runtime: Send + Sync {
    /// Which kind of handles this runtime produces.
    fn kind(&self) -> RuntimeKind;

    /// Starts the container; returns once it runs (or failed to start).
    fn launch(
        &self,
        spec: &LaunchSpec,
    ) -> impl Future<Output = Result<ContainerHandle, RuntimeError>> + Send;

    /// Resolves when the container has exited (works for containers found by
    /// recover(), i.e. not our children).
    fn wait(
        &self,
        handle: &ContainerHandle,
    ) -> impl Future<Output = Result<ExitStatus, RuntimeError>> + Send;

    /// SIGTERM to everything in the container, SIGKILL after `grace`.
    /// Returns when the container is dead (or was already).
    fn kill(
        &self,
        handle: &ContainerHandle,
        grace: Duration,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Runs `cmd` with `/bin/sh -c` in the task's context (COMMAND health
    /// checks): inside the container for Docker; in the task's cgroup, sandbox
    /// and environment for processes. Returns the exit code; a timeout is
    /// [`RuntimeError::Timeout`] (and the command is killed where possible).
    fn exec(
        &self,
        handle: &ContainerHandle,
        cmd: &str,
        env: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> impl Future<Output = Result<i32, RuntimeError>> + Send;

    /// After an agent restart: which of these checkpointed handles are still
    /// alive, which exited (with status if knowable), and which containers of
    /// this agent the checkpoint does not know (orphans).
    fn recover(
        &self,
        agent_id: &AgentId,
        known: &[ContainerHandle],
    ) -> impl Future<Output = Result<RecoveryReport, RuntimeError>> + Send;

    /// Removes what is left after exit: the Docker container (unless
    /// configured to keep it), or the cgroup (killing stragglers first).
    /// Idempotent.
    fn cleanup(
        &self,
        handle: &ContainerHandle,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
}
