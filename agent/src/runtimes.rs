//! The agent's set of runtimes. `agora_runtime::Runtime` uses `async fn`
//! in a trait, which is not object safe, so each runtime is a [`Backend`]
//! variant and one macro forwards every call; tests plug in the
//! [`fake::FakeRuntime`] the same way. Every call runs as a task on the
//! agent's ops runtime (its own worker threads): launches, kills and
//! cleanups do synchronous work (fork/exec, cgroup files, rmdir), and on
//! the threads of the event loop and the HTTP server a burst of them would
//! queue the loop behind hundreds of such tasks.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agora_model::AgentId;
use agora_runtime::{
    ContainerHandle, DockerConfig, DockerRuntime, ExitStatus, LaunchSpec, ProcessConfig,
    ProcessRuntime, RecoveryReport, Runtime, RuntimeError, RuntimeKind,
};

use tokio::sync::Semaphore;

use crate::AgentError;
use crate::config::{AgentConfig, DockerMode};

#[cfg(test)]
pub(crate) mod fake;

/// One runtime implementation.
#[derive(Clone)]
pub(crate) enum Backend {
    Process(Arc<ProcessRuntime>),
    Docker(Arc<DockerRuntime>),
    #[cfg(test)]
    Fake(Arc<fake::FakeRuntime>),
}

/// Calls the same `Runtime` method on whichever runtime `$backend` holds.
macro_rules! dispatch {
    ($backend:expr, $rt:ident => $call:expr) => {
        match $backend {
            Backend::Process($rt) => $call,
            Backend::Docker($rt) => $call,
            #[cfg(test)]
            Backend::Fake($rt) => $call,
        }
    };
}

/// Process launches in flight at once. A process launch is mostly
/// synchronous work (fork/exec, one cgroup per controller) on the ops
/// runtime's two threads: a few in flight keep both busy, more only
/// lengthen the queue.
const PROCESS_LAUNCHES: usize = 4;

/// Docker launches in flight at once: mostly waiting on the daemon, which
/// does the work; 16 keeps it busy without flooding it.
const DOCKER_LAUNCHES: usize = 16;

/// Kills in flight at once. A process kill polls `/proc` and the task's
/// cgroup every 20 ms until everything is gone; with 500 kills in flight
/// that polling alone would keep the ops threads busy.
const KILLS: usize = 32;

/// Cleanups (container removal, cgroup rmdir with retries) in flight at once.
const CLEANUPS: usize = 8;

/// The runtimes this agent has; cheap to clone (shared by probes, waiters).
#[derive(Clone)]
pub(crate) struct Runtimes {
    process: Result<Backend, String>,
    docker: Result<Backend, String>,
    process_launches: Arc<Semaphore>,
    docker_launches: Arc<Semaphore>,
    kills: Arc<Semaphore>,
    cleanups: Arc<Semaphore>,
    /// Where runtime calls run (see the module doc).
    ops: tokio::runtime::Handle,
}

impl Runtimes {
    /// Sets up the runtimes the configuration asks for. Docker is probed
    /// once here: `Auto` records why it is missing, `Required` fails.
    pub(crate) async fn new(
        config: &AgentConfig,
        ops: tokio::runtime::Handle,
    ) -> Result<Runtimes, AgentError> {
        let process = ProcessRuntime::new(ProcessConfig {
            cgroup_parent: config.cgroup_parent.clone(),
            ..ProcessConfig::default()
        })
        .map(|p| Backend::Process(Arc::new(p)))
        .map_err(|e| e.to_string());
        if let Err(e) = &process {
            tracing::warn!(error = %e, "process runtime unavailable; command tasks will fail");
        }
        let docker = match config.docker {
            DockerMode::Disabled => Err("Docker is disabled on this agent".to_string()),
            mode => {
                let cfg = DockerConfig {
                    keep_exited: config.docker_keep_exited,
                    ..DockerConfig::default()
                };
                match DockerRuntime::connect(cfg).await {
                    Ok(d) => Ok(Backend::Docker(Arc::new(d))),
                    Err(e) if mode == DockerMode::Required => return Err(AgentError::Runtime(e)),
                    Err(e) => {
                        tracing::warn!(error = %e, "Docker unavailable; Docker tasks will fail");
                        Err(format!("Docker is not available on this agent: {e}"))
                    }
                }
            }
        };
        Ok(Runtimes::with(process, docker, ops))
    }

    /// Runtimes whose process side is `fake` (Docker unavailable).
    #[cfg(test)]
    pub(crate) fn fake(fake: Arc<fake::FakeRuntime>) -> Runtimes {
        Runtimes::with(
            Ok(Backend::Fake(fake)),
            Err("no Docker in this test".to_string()),
            tokio::runtime::Handle::current(),
        )
    }

    fn with(
        process: Result<Backend, String>,
        docker: Result<Backend, String>,
        ops: tokio::runtime::Handle,
    ) -> Runtimes {
        Runtimes {
            process,
            docker,
            process_launches: Arc::new(Semaphore::new(PROCESS_LAUNCHES)),
            docker_launches: Arc::new(Semaphore::new(DOCKER_LAUNCHES)),
            kills: Arc::new(Semaphore::new(KILLS)),
            cleanups: Arc::new(Semaphore::new(CLEANUPS)),
            ops,
        }
    }

    /// Runs `call` on the ops runtime and waits for it.
    async fn on_ops<T: Send + 'static>(
        &self,
        call: impl Future<Output = Result<T, RuntimeError>> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        match self.ops.spawn(call).await {
            Ok(r) => r,
            Err(e) => Err(RuntimeError::Io {
                context: "runtime call".into(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    /// Names of the usable runtimes, for `/state`.
    pub(crate) fn available(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.process.is_ok() {
            v.push("process");
        }
        if self.docker.is_ok() {
            v.push("docker");
        }
        v
    }

    /// Why a runtime kind cannot be used, if it cannot.
    pub(crate) fn unavailable(&self, kind: RuntimeKind) -> Option<String> {
        match kind {
            RuntimeKind::Docker => self.docker.as_ref().err().cloned(),
            RuntimeKind::Process => self
                .process
                .as_ref()
                .err()
                .map(|e| format!("process runtime unavailable: {e}")),
        }
    }

    /// The runtime of `kind`, or why there is none.
    fn backend(&self, kind: RuntimeKind) -> Result<&Backend, RuntimeError> {
        match kind {
            RuntimeKind::Docker => self
                .docker
                .as_ref()
                .map_err(|e| RuntimeError::DockerUnavailable(e.clone())),
            RuntimeKind::Process => self
                .process
                .as_ref()
                .map_err(|e| RuntimeError::Launch(format!("process runtime unavailable: {e}"))),
        }
    }

    pub(crate) async fn launch(&self, spec: &LaunchSpec) -> Result<ContainerHandle, RuntimeError> {
        let (kind, slots) = if spec.docker.is_some() {
            (RuntimeKind::Docker, self.docker_launches.clone())
        } else {
            (RuntimeKind::Process, self.process_launches.clone())
        };
        let backend = self.backend(kind)?.clone();
        let spec = spec.clone();
        self.on_ops(async move {
            // Never closed, so acquiring only waits.
            let _slot = slots.acquire().await;
            dispatch!(&backend, r => r.launch(&spec).await)
        })
        .await
    }

    pub(crate) async fn wait(&self, h: &ContainerHandle) -> Result<ExitStatus, RuntimeError> {
        let (backend, h) = (self.backend(h.kind)?.clone(), h.clone());
        self.on_ops(async move { dispatch!(&backend, r => r.wait(&h).await) })
            .await
    }

    pub(crate) async fn kill(
        &self,
        h: &ContainerHandle,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        let (backend, h) = (self.backend(h.kind)?.clone(), h.clone());
        let slots = self.kills.clone();
        self.on_ops(async move {
            let _slot = slots.acquire().await;
            dispatch!(&backend, r => r.kill(&h, grace).await)
        })
        .await
    }

    pub(crate) async fn exec(
        &self,
        h: &ContainerHandle,
        cmd: &str,
        env: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<i32, RuntimeError> {
        let (backend, h) = (self.backend(h.kind)?.clone(), h.clone());
        let (cmd, env) = (cmd.to_string(), env.clone());
        self.on_ops(async move { dispatch!(&backend, r => r.exec(&h, &cmd, &env, timeout).await) })
            .await
    }

    pub(crate) async fn cleanup(&self, h: &ContainerHandle) -> Result<(), RuntimeError> {
        let (backend, h) = (self.backend(h.kind)?.clone(), h.clone());
        let slots = self.cleanups.clone();
        self.on_ops(async move {
            let _slot = slots.acquire().await;
            dispatch!(&backend, r => r.cleanup(&h).await)
        })
        .await
    }

    /// Recovers the known handles of both kinds; a runtime that is not
    /// available reports its handles as vanished (status unknown).
    pub(crate) async fn recover(
        &self,
        agent_id: &AgentId,
        known: &[ContainerHandle],
    ) -> RecoveryReport {
        let mut report = RecoveryReport::default();
        for kind in [RuntimeKind::Process, RuntimeKind::Docker] {
            let mine: Vec<ContainerHandle> =
                known.iter().filter(|h| h.kind == kind).cloned().collect();
            let r = match self.backend(kind) {
                Ok(b) => {
                    let (b, id, known) = (b.clone(), agent_id.clone(), mine.clone());
                    self.on_ops(async move { dispatch!(&b, r => r.recover(&id, &known).await) })
                        .await
                }
                Err(e) => Err(e),
            };
            match r {
                Ok(r) => {
                    report.alive.extend(r.alive);
                    report.exited.extend(r.exited);
                    report.orphans.extend(r.orphans);
                }
                // A runtime that is unavailable and had no containers has nothing to recover
                // (Docker orphans cannot be listed without a daemon either).
                Err(_) if mine.is_empty() => {}
                Err(e) => {
                    tracing::warn!(?kind, error = %e, "recovery failed; treating its containers as gone");
                    report.exited.extend(mine.into_iter().map(|handle| {
                        agora_runtime::RecoveredExit {
                            handle,
                            status: None,
                        }
                    }));
                }
            }
        }
        report
    }
}
