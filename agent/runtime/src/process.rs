//! The process runtime: tasks run as host processes, each in its own session
//! and cgroup (`<cgroup_parent>/<agent_id>/<container_id>` in every
//! hierarchy), under the supervisor described in `process_spawn.rs`.
use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agora_model::AgentId;
use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::cgroups::{self, TaskCgroup};
use crate::exit::{self, describe};
use crate::proc;
use crate::process_spawn::{self as spawn, EXIT_STATUS_FILE};
use crate::{
    ContainerHandle, ExitStatus, LaunchSpec, RecoveredExit, RecoveryReport, Runtime, RuntimeError,
    RuntimeKind, STDERR_FILE, STDOUT_FILE,
};

/// How often `wait` checks on a task that is not our child (recovered).
const WAIT_POLL: Duration = Duration::from_millis(100);
/// How often `kill` checks whether the task is gone; short, because health
/// checks and deployments wait on kills.
const KILL_POLL: Duration = Duration::from_millis(20);
/// After SIGKILLing the task, how long the wrapper gets to record the exit
/// code before it is SIGKILLed too (it only has to run `echo`).
const WRAPPER_EXIT_WAIT: Duration = Duration::from_secs(2);

/// Process runtime settings.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Parent cgroup (relative to each hierarchy root) under which task
    /// cgroups are created as `<parent>/<agent_id>/<container_id>`. Must be
    /// used by one agent only: `recover` reports unknown cgroups under
    /// `<parent>/<agent_id>` as orphans.
    pub cgroup_parent: String,
    /// Isolate tasks in cgroups (limits, OOM detection, killing every
    /// descendant). Off only for development machines without cgroup access;
    /// then limits are not enforced.
    pub cgroups: bool,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            cgroup_parent: "agora".to_string(),
            cgroups: true,
        }
    }
}

/// How a wrapper we spawned ourselves ended, as `waitpid` told us.
#[derive(Debug, Clone, Copy)]
struct ChildExit {
    code: Option<i32>,
    signal: Option<i32>,
}

/// Runs tasks as host processes in their own session and cgroup.
pub struct ProcessRuntime {
    config: ProcessConfig,
    /// Wrappers spawned by this runtime, by container id: each reaper task
    /// publishes the wrapper's wait status here. A std mutex: it is only held
    /// to insert, clone or remove a receiver, never across an await.
    children: Arc<Mutex<HashMap<String, watch::Receiver<Option<ChildExit>>>>>,
}

impl ProcessRuntime {
    /// Checks that cgroups are usable (creating `cgroup_parent`) and creates
    /// the runtime.
    pub fn new(config: ProcessConfig) -> Result<Self, RuntimeError> {
        if config.cgroup_parent.is_empty()
            || config
                .cgroup_parent
                .split('/')
                .any(|c| c.is_empty() || c == "..")
        {
            return Err(RuntimeError::InvalidSpec(format!(
                "bad cgroup_parent {:?}",
                config.cgroup_parent
            )));
        }
        if config.cgroups {
            cgroups::probe(&config.cgroup_parent)?;
        }
        info!(cgroup_parent = %config.cgroup_parent, cgroups = config.cgroups, v2 = cgroups::is_v2(), "process runtime ready");
        Ok(ProcessRuntime {
            config,
            children: Arc::default(),
        })
    }

    fn cgroup_rel(&self, agent_id: &AgentId, container_id: &str) -> String {
        format!(
            "{}/{}/{}",
            self.config.cgroup_parent, agent_id, container_id
        )
    }

    /// The task cgroup of a handle, refusing paths outside our parent (a
    /// corrupt checkpoint must not make us kill unrelated processes).
    fn cgroup_of(&self, handle: &ContainerHandle) -> Result<Option<TaskCgroup>, RuntimeError> {
        match &handle.cgroup {
            None => Ok(None),
            Some(rel)
                if rel.starts_with(&format!("{}/", self.config.cgroup_parent))
                    && !rel.contains("..") =>
            {
                Ok(Some(TaskCgroup::open(rel)))
            }
            Some(rel) => Err(invalid(format!(
                "cgroup {rel:?} is outside {:?}",
                self.config.cgroup_parent
            ))),
        }
    }

    fn child(&self, container_id: &str) -> Option<watch::Receiver<Option<ChildExit>>> {
        self.children
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(container_id)
            .cloned()
    }

    async fn spawn_task(&self, spec: &LaunchSpec) -> Result<ContainerHandle, RuntimeError> {
        let cmd = spec
            .command
            .as_ref()
            .ok_or_else(|| RuntimeError::InvalidSpec("process task without command".into()))?;
        let argv = spawn::task_argv(cmd)?;
        if !cmd.shell {
            let path = spec
                .env
                .get("PATH")
                .map_or(spawn::DEFAULT_PATH, String::as_str);
            spawn::resolve_program(&cmd.value, &spec.sandbox, path)?;
        }
        let user = match cmd.user.as_deref() {
            Some(u) => Some(spawn::lookup_user(u)?),
            None => None,
        };
        let (stdout, stderr) = prepare_sandbox(spec, user)?;
        let cgroup = if self.config.cgroups {
            Some(TaskCgroup::create(
                &self.cgroup_rel(&spec.agent_id, &spec.container_id),
                &spec.limits,
            )?)
        } else {
            None
        };
        let mut command = spawn::wrapper_command(
            &spec.container_id,
            &spec.sandbox,
            &argv,
            &spec.env,
            user,
            stdout,
            stderr,
        );
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => {
                remove_cgroup(cgroup.as_ref()).await;
                return Err(RuntimeError::Launch(format!("spawn /bin/sh: {e}")));
            }
        };
        let pid = child.id().unwrap_or(0);
        // Open the gate only once the wrapper is inside the cgroup. Dropping
        // stdin without a newline makes the wrapper exit 125 without running
        // the task.
        let gate = child.stdin.take();
        let added = match &cgroup {
            Some(cg) => cg.add_pid(pid),
            None => Ok(()),
        };
        let opened = match (added, gate) {
            (Ok(()), Some(mut gate)) => gate
                .write_all(b"go\n")
                .await
                .map_err(|e| RuntimeError::io("open launch gate", e)),
            (Ok(()), None) => Err(RuntimeError::Launch("wrapper has no stdin".into())),
            (Err(e), _) => Err(e),
        };
        if let Err(e) = opened {
            let _ = child.start_kill();
            let _ = child.wait().await;
            remove_cgroup(cgroup.as_ref()).await;
            return Err(e);
        }
        let pid_start_time = proc::start_time(pid);
        self.watch_exit(spec.container_id.clone(), child);
        info!(container_id = %spec.container_id, task_id = %spec.task_id, pid, "launched process task");
        Ok(ContainerHandle {
            kind: RuntimeKind::Process,
            container_id: spec.container_id.clone(),
            docker_id: None,
            pid: Some(pid),
            pid_start_time,
            cgroup: cgroup.map(|c| c.rel().to_string()),
            sandbox: spec.sandbox.clone(),
        })
    }

    /// Records the wrapper's exit for `wait`, from a task of its own.
    fn watch_exit(&self, container_id: String, mut child: tokio::process::Child) {
        let (tx, rx) = watch::channel(None);
        self.children
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(container_id.clone(), rx);
        tokio::spawn(async move {
            let exit = match child.wait().await {
                Ok(s) => ChildExit {
                    code: s.code(),
                    signal: s.signal(),
                },
                Err(e) => {
                    warn!(%container_id, error = %e, "waiting for task wrapper failed");
                    ChildExit {
                        code: None,
                        signal: None,
                    }
                }
            };
            debug!(%container_id, ?exit, "task wrapper exited");
            let _ = tx.send(Some(exit));
        });
    }

    /// Is the container still running: its wrapper alive, or (for orphans
    /// without a pid) any process left in its cgroup?
    fn running(handle: &ContainerHandle, cg: Option<&TaskCgroup>) -> bool {
        match handle.pid {
            Some(pid) => proc::is_alive(pid, handle.pid_start_time),
            None => cg.is_some_and(|c| !c.pids().is_empty()),
        }
    }

    /// The final status from the wrapper's file (or, failing that, from our
    /// own wait), the OOM counter and the end of stderr.
    fn final_status(
        handle: &ContainerHandle,
        cg: Option<&TaskCgroup>,
        child: Option<ChildExit>,
    ) -> Option<ExitStatus> {
        let from_file = std::fs::read_to_string(handle.sandbox.join(EXIT_STATUS_FILE))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        let oom = cg.is_some_and(|c| c.oom_kills() > 0);
        let (code, signal) = match (from_file, child) {
            (Some(c), _) => (Some(c), None),
            (None, Some(ChildExit { code, signal })) if code.is_some() || signal.is_some() => {
                (code, signal)
            }
            _ if oom => (None, Some(Signal::SIGKILL as i32)),
            _ => return None,
        };
        Some(describe(
            code,
            signal,
            oom,
            exit::stderr_tail(&handle.sandbox),
        ))
    }
}

fn invalid(reason: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidHandle {
        runtime: "process",
        reason: reason.into(),
    }
}

fn check_kind(handle: &ContainerHandle) -> Result<(), RuntimeError> {
    match handle.kind {
        RuntimeKind::Process => Ok(()),
        RuntimeKind::Docker => Err(invalid(format!(
            "{} is a docker container",
            handle.container_id
        ))),
    }
}

async fn remove_cgroup(cg: Option<&TaskCgroup>) {
    if let Some(cg) = cg
        && let Err(e) = cg.remove().await
    {
        warn!(error = %e, "removing task cgroup failed");
    }
}

impl Runtime for ProcessRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Process
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<ContainerHandle, RuntimeError> {
        crate::validate_container_id(&spec.container_id)?;
        self.spawn_task(spec).await
    }

    async fn wait(&self, handle: &ContainerHandle) -> Result<ExitStatus, RuntimeError> {
        check_kind(handle)?;
        let cg = self.cgroup_of(handle)?;
        let mut child_exit = None;
        if let Some(mut rx) = self.child(&handle.container_id) {
            let exit = rx
                .wait_for(Option::is_some)
                .await
                .map(|v| *v)
                .ok()
                .flatten();
            child_exit = exit;
        } else {
            if handle.pid.is_none() && cg.is_none() {
                return Err(invalid("neither pid nor cgroup"));
            }
            while Self::running(handle, cg.as_ref()) {
                tokio::time::sleep(WAIT_POLL).await;
            }
        }
        Ok(
            Self::final_status(handle, cg.as_ref(), child_exit).unwrap_or_else(|| {
                let mut s = describe(None, None, false, None);
                s.message =
                    "Task exited but its exit status was lost (its supervisor was killed)".into();
                s
            }),
        )
    }

    async fn kill(&self, handle: &ContainerHandle, grace: Duration) -> Result<(), RuntimeError> {
        check_kind(handle)?;
        let cg = self.cgroup_of(handle)?;
        let wrapper = handle
            .pid
            .filter(|p| proc::is_alive(*p, handle.pid_start_time));
        let everything_gone = || {
            wrapper.is_none_or(|p| !proc::is_alive(p, handle.pid_start_time))
                && cg
                    .as_ref()
                    .is_none_or(|c| c.pids().iter().all(|p| Some(*p) == wrapper))
        };
        if !everything_gone() {
            debug!(container_id = %handle.container_id, ?grace, "sending SIGTERM");
            if let Some(pid) = wrapper {
                proc::signal_group(pid, Signal::SIGTERM)?;
            }
            for p in cg.as_ref().map(TaskCgroup::pids).unwrap_or_default() {
                proc::signal_pid(p, Signal::SIGTERM)?;
            }
            let deadline = tokio::time::Instant::now() + grace;
            while !everything_gone() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(KILL_POLL).await;
            }
        }
        // Whatever is left gets SIGKILL; the wrapper last, so that it can
        // record the task's exit (137) first.
        match &cg {
            Some(cg) => cg.kill_all(wrapper).await,
            None => {
                if let Some(pid) = wrapper
                    && proc::is_alive(pid, handle.pid_start_time)
                {
                    // Without a cgroup the process group is all we can reach;
                    // it includes the wrapper, whose status is then lost.
                    proc::signal_group(pid, Signal::SIGKILL)?;
                }
            }
        }
        if let Some(pid) = wrapper {
            let deadline = tokio::time::Instant::now() + WRAPPER_EXIT_WAIT;
            while proc::is_alive(pid, handle.pid_start_time) {
                if tokio::time::Instant::now() >= deadline {
                    proc::signal_pid(pid, Signal::SIGKILL)?;
                }
                tokio::time::sleep(KILL_POLL).await;
            }
        }
        if let Some(cg) = &cg {
            cg.kill_all(None).await;
        }
        Ok(())
    }

    async fn exec(
        &self,
        handle: &ContainerHandle,
        cmd: &str,
        env: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<i32, RuntimeError> {
        check_kind(handle)?;
        let cg = self.cgroup_of(handle)?;
        spawn::exec_in_task(handle, cg.as_ref(), cmd, env, timeout).await
    }

    async fn recover(
        &self,
        agent_id: &AgentId,
        known: &[ContainerHandle],
    ) -> Result<RecoveryReport, RuntimeError> {
        let mut report = RecoveryReport::default();
        for handle in known.iter().filter(|h| h.kind == RuntimeKind::Process) {
            // One bad handle (e.g. cgroup_parent changed since the launch)
            // must not stop the recovery of the others: use its pid alone.
            let cg = self.cgroup_of(handle).unwrap_or_else(|e| {
                warn!(container_id = %handle.container_id, error = %e, "ignoring the cgroup of a recovered task");
                None
            });
            if Self::running(handle, cg.as_ref()) {
                report.alive.push(handle.clone());
            } else {
                let status = Self::final_status(handle, cg.as_ref(), None);
                report.exited.push(RecoveredExit {
                    handle: handle.clone(),
                    status,
                });
            }
        }
        if self.config.cgroups {
            let parent = format!("{}/{}", self.config.cgroup_parent, agent_id);
            for name in cgroups::children(&parent) {
                let rel = format!("{parent}/{name}");
                if known
                    .iter()
                    .any(|h| h.cgroup.as_deref() == Some(rel.as_str()))
                {
                    continue;
                }
                report.orphans.push(ContainerHandle {
                    kind: RuntimeKind::Process,
                    container_id: name,
                    docker_id: None,
                    pid: None,
                    pid_start_time: None,
                    cgroup: Some(rel),
                    sandbox: Default::default(),
                });
            }
        }
        info!(
            alive = report.alive.len(),
            exited = report.exited.len(),
            orphans = report.orphans.len(),
            "recovered process tasks"
        );
        Ok(report)
    }

    async fn cleanup(&self, handle: &ContainerHandle) -> Result<(), RuntimeError> {
        check_kind(handle)?;
        self.children
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&handle.container_id);
        if let Some(cg) = self.cgroup_of(handle)? {
            cg.kill_all(None).await;
            cg.remove().await?;
        }
        Ok(())
    }
}

/// The task's log files, owned by its user, and no leftover exit status
/// from an earlier run in the same sandbox.
fn prepare_sandbox(
    spec: &LaunchSpec,
    user: Option<(u32, u32)>,
) -> Result<(std::fs::File, std::fs::File), RuntimeError> {
    let stdout = spawn::log_file(&spec.sandbox, STDOUT_FILE)?;
    let stderr = spawn::log_file(&spec.sandbox, STDERR_FILE)?;
    if let Some((uid, gid)) = user {
        for p in [
            spec.sandbox.clone(),
            spec.sandbox.join(STDOUT_FILE),
            spec.sandbox.join(STDERR_FILE),
        ] {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                .map_err(|e| RuntimeError::io(format!("chown {}", p.display()), e))?;
        }
    }
    // A leftover status file (a relaunch in the same sandbox) would be
    // mistaken for this run's result.
    match std::fs::remove_file(spec.sandbox.join(EXIT_STATUS_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(RuntimeError::io("remove old exit status", e));
        }
        _ => {}
    }
    Ok((stdout, stderr))
}
