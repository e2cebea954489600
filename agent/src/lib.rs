//! The Agora agent: registers with a master, runs the tasks it is sent in
//! Docker containers or cgroup-isolated processes (`agora-runtime`), checks
//! their health, reports every state change with at-least-once status
//! updates that survive restarts, checkpoints everything under its work dir
//! so a restarted agent recovers its running tasks, serves `/state`,
//! `/metrics` and task logs over HTTP, and garbage-collects old sandboxes.
//!
//! Masters: the agent registers with the leading master of a replicated
//! group. A standby refuses the registration naming the leader
//! (`LinkError.leader`, see `agora_proto::leader`), and the agent goes
//! there at once, even if it is not in `AgentConfig::masters`; a refusal
//! without a leader, or an unreachable master, moves it on to the next
//! master, with backoff after each failed round or after a few redirects
//! in a row. A master that never redirects works as before.
//!
//! Code map: `event_loop` (the one owner of mutable state, `enum Event`),
//! `master_link` (Register/Attach/ping), `launch`, `kill`, `recovery`,
//! `outcome` (exit → state and reason, pure), `reporting` (checkpoint,
//! queue, send, acknowledge), `status_updates` (sans-IO update queues),
//! `health` (sans-IO tracker + probes), `checkpoint` (on-disk layout,
//! atomic writes; `checkpoint::writer`, the task that does every write
//! while the loop runs), `http`, `metrics`, `gc`, `resources` (host detection),
//! `env` (task environment), `config`, `runtimes` (dispatch to the two
//! runtimes of `agora-runtime`).
//!
//! Architecture invariant: only the event loop mutates agent state; every
//! other task sends it an `Event` over a bounded channel. The loop does no
//! disk IO, and a status update is sent only once the writer reports it on
//! disk.
#![forbid(unsafe_code)]

mod checkpoint;
mod config;
pub mod env;
mod error;
mod event_loop;
mod gc;
pub mod health;
mod http;
mod kill;
mod launch;
mod master_link;
mod metrics;
mod outcome;
mod recovery;
mod reporting;
pub mod resources;
mod runtimes;
pub mod status_updates;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agora_model::AgentId;
use tokio::sync::{mpsc, oneshot, watch};

pub use checkpoint::{AgentRecord, FORMAT_VERSION, KillCause, TaskRecord};
pub use config::{AgentConfig, DockerMode, GcConfig};
pub use error::AgentError;
pub use resources::{detect as detect_resources, detect_hostname};

use crate::event_loop::{Command, EVENT_CAPACITY, Event, Identity, State};

/// Worker threads of the agent's own Tokio runtime. The agent runs on a
/// runtime of its own so that [`AgentHandle::crash`] can drop every agent
/// task at once, the in-process equivalent of `kill -9`; two threads keep
/// the loop responsive while a launch or an fsync is in progress.
const AGENT_WORKER_THREADS: usize = 2;

/// Worker threads of the agent's ops runtime, where every container runtime
/// call runs (see `runtimes`). Their synchronous work (fork/exec, cgroup
/// files) then competes with the loop for CPU in the kernel's scheduler,
/// which favours the briefly-running loop, instead of queueing the loop
/// behind it.
const OPS_WORKER_THREADS: usize = 2;

/// A running agent.
pub struct AgentHandle {
    addr: SocketAddr,
    work_dir: PathBuf,
    agent_id: watch::Receiver<Option<AgentId>>,
    events: mpsc::Sender<Event>,
    /// The loop, writer, link, HTTP server and GC worker; aborted on stop.
    tasks: tokio::task::JoinSet<()>,
    /// The agent's own runtime and its ops runtime; dropped to stop.
    runtimes: Vec<tokio::runtime::Runtime>,
}

impl AgentHandle {
    /// The address of the agent's HTTP endpoints.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The work dir.
    pub fn work_dir(&self) -> &std::path::Path {
        &self.work_dir
    }

    /// The agent id, once a master assigned one and it is checkpointed
    /// (`None` before the first registration and after the master refused
    /// the agent): a restart on the same work dir recovers as this id.
    pub fn agent_id(&self) -> Option<AgentId> {
        self.agent_id.borrow().clone()
    }

    /// A receiver that sees every change of the agent id.
    pub fn watch_agent_id(&self) -> watch::Receiver<Option<AgentId>> {
        self.agent_id.clone()
    }

    /// Waits until the agent has an id (or `timeout` passes).
    pub async fn wait_registered(&self, timeout: Duration) -> Option<AgentId> {
        let mut rx = self.agent_id.clone();
        let wait = rx.wait_for(Option::is_some);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(id)) => id.clone(),
            _ => None,
        }
    }

    /// `/state` as JSON, straight from the event loop.
    pub async fn state(&self) -> Result<serde_json::Value, AgentError> {
        let (tx, rx) = oneshot::channel();
        self.events
            .send(Event::Command(Command::State(tx)))
            .await
            .map_err(|_| AgentError::Stopped)?;
        let bytes = rx.await.map_err(|_| AgentError::Stopped)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| AgentError::io("decoding /state", std::io::Error::other(e)))
    }

    /// Graceful stop, like an agent restart: the event loop finishes the
    /// event at hand and the checkpoint writes asked for so far, then
    /// everything stops. Tasks keep running and are recovered by the next
    /// agent on this work dir.
    pub async fn shutdown(mut self) {
        let (tx, rx) = oneshot::channel();
        if self
            .events
            .send(Event::Command(Command::Shutdown(tx)))
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
        self.tasks.abort_all();
        self.stop_runtimes();
    }

    /// Stops every agent task immediately, mid-whatever, with no cleanup:
    /// the stand-in for `kill -9`. Tasks are real processes or containers
    /// and survive.
    pub fn crash(mut self) {
        self.stop_runtimes();
    }

    fn stop_runtimes(&mut self) {
        // Dropping a runtime inside async code panics; this does not.
        for rt in self.runtimes.drain(..) {
            rt.shutdown_background();
        }
    }
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        self.stop_runtimes();
    }
}

/// Starts an agent serving HTTP on `listener`: recovers the checkpoint in
/// `config.work_dir` (failing on a damaged or foreign one, deleting
/// nothing), then registers with the masters in the background.
pub async fn start(
    config: AgentConfig,
    listener: tokio::net::TcpListener,
) -> Result<AgentHandle, AgentError> {
    config.validate()?;
    let addr = listener
        .local_addr()
        .map_err(|e| AgentError::io("reading the listener's address", e))?;
    let std_listener = listener
        .into_std()
        .map_err(|e| AgentError::io("detaching the listener", e))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(AGENT_WORKER_THREADS)
        .thread_name("agora-agent")
        .enable_all()
        .build()
        .map_err(AgentError::Tokio)?;
    let ops = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(OPS_WORKER_THREADS)
        .thread_name("agora-agent-ops")
        .enable_all()
        .build()
        .map_err(AgentError::Tokio)?;
    let work_dir = config.work_dir.clone();
    let booted = runtime
        .spawn(boot(config, std_listener, addr, ops.handle().clone()))
        .await;
    match booted {
        Ok(Ok(Booted {
            events,
            agent_id,
            tasks,
        })) => Ok(AgentHandle {
            addr,
            work_dir,
            agent_id,
            events,
            tasks,
            runtimes: vec![runtime, ops],
        }),
        Ok(Err(e)) => {
            runtime.shutdown_background();
            ops.shutdown_background();
            Err(e)
        }
        Err(e) => {
            runtime.shutdown_background();
            ops.shutdown_background();
            Err(AgentError::io("agent start", std::io::Error::other(e)))
        }
    }
}

/// What `boot` hands to the handle.
struct Booted {
    events: mpsc::Sender<Event>,
    agent_id: watch::Receiver<Option<AgentId>>,
    tasks: tokio::task::JoinSet<()>,
}

/// Runs inside the agent's runtime: recovery, then the loop, checkpoint
/// writer, link, HTTP server and GC worker.
async fn boot(
    config: AgentConfig,
    std_listener: std::net::TcpListener,
    addr: SocketAddr,
    ops: tokio::runtime::Handle,
) -> Result<Booted, AgentError> {
    let hostname = config
        .hostname
        .clone()
        .unwrap_or_else(resources::detect_hostname);
    let cp = checkpoint::Checkpoint::new(&config.work_dir);
    // Read before anything is created, so a foreign or damaged work dir is
    // left exactly as it was.
    let recovered = cp.load(&hostname)?;
    std::fs::create_dir_all(cp.sandboxes_dir())
        .map_err(|e| AgentError::io(format!("creating {}", cp.sandboxes_dir().display()), e))?;
    let runtimes = runtimes::Runtimes::new(&config, ops).await?;
    let total = config
        .resources
        .clone()
        .unwrap_or_else(|| resources::detect(&config.work_dir));
    let metrics =
        Arc::new(metrics::Metrics::new().map_err(|e| AgentError::Config(format!("metrics: {e}")))?);
    let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
    let (id_tx, id_rx) = watch::channel(None);
    let identity = Identity {
        hostname: hostname.clone(),
        port: addr.port(),
        resources: total,
    };
    let mut state = State::new(
        config.clone(),
        identity,
        cp.clone(),
        runtimes.clone(),
        metrics.clone(),
        events_tx.clone(),
        id_tx,
    );
    match recovered {
        Some(rec) => state.recover(rec).await,
        None => cp.write_agent(&state.agent_record())?,
    }
    let listener = tokio::net::TcpListener::from_std(std_listener)
        .map_err(|e| AgentError::io("attaching the listener", e))?;
    tracing::info!(%addr, hostname, work_dir = %config.work_dir.display(), "agent starting");
    let tasks = spawn_services(
        &config, state, events_rx, &events_tx, listener, metrics, cp, runtimes,
    );
    Ok(Booted {
        events: events_tx,
        agent_id: id_rx,
        tasks,
    })
}

/// Spawns the loop (with its checkpoint writer), the master link, the HTTP
/// server and the GC worker; returns them as one set.
#[allow(clippy::too_many_arguments)] // each is one service's input
fn spawn_services(
    config: &AgentConfig,
    state: State,
    events_rx: mpsc::Receiver<Event>,
    events_tx: &mpsc::Sender<Event>,
    listener: tokio::net::TcpListener,
    metrics: Arc<metrics::Metrics>,
    cp: checkpoint::Checkpoint,
    runtimes: runtimes::Runtimes,
) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let (write_tx, write_rx) = mpsc::channel(checkpoint::writer::WRITE_QUEUE);
    let (persisted_tx, persisted_rx) = mpsc::channel(checkpoint::writer::WRITE_QUEUE);
    // Not in `tasks`: the loop awaits the writer when it stops, so the
    // writes asked for before a graceful stop are done.
    let writer = tokio::spawn(checkpoint::writer::run(cp, write_rx, persisted_tx));
    let writer = event_loop::WriterLink {
        requests: write_tx,
        answers: persisted_rx,
        task: writer,
    };
    tasks.spawn(state.run(events_rx, writer));
    let link = master_link::LinkConfig {
        masters: config.masters.clone(),
        backoff_min: config.register_backoff_min,
        backoff_max: config.register_backoff_max,
        connect_timeout: config.connect_timeout,
        max_missed_pings: config.max_missed_pings,
    };
    tasks.spawn(master_link::run(link, events_tx.clone()));
    let router = http::router(http::Http {
        events: events_tx.clone(),
        metrics,
    });
    tasks.spawn(async move {
        // Answer small HTTP requests without waiting for delayed ACKs.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "agent HTTP server failed");
        }
    });
    tasks.spawn(gc::run(
        config.gc.clone(),
        config.work_dir.clone(),
        events_tx.clone(),
        runtimes,
    ));
    tasks
}
