//! The agent's one event loop: [`State`] owns every piece of mutable state
//! (tasks, frameworks, update queues, the master session) and changes only
//! in response to an [`Event`]. The master link, runtime waiters, health
//! probes, the GC worker and HTTP handlers talk to it over one bounded
//! channel and get answers on `oneshot`s. Handlers never block on IO other
//! than the checkpoint's small fsync'd writes, which must happen before an
//! update is sent anyway.
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use agora_model::{AgentId, FrameworkId, FrameworkInfo, MonoTime, Resources, TaskId, TaskState};
use agora_proto::v1;
use agora_runtime::{ContainerHandle, ExitStatus, RuntimeError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::checkpoint::{Checkpoint, TaskRecord};
use crate::config::AgentConfig;
use crate::health::HealthTracker;
use crate::metrics::Metrics;
use crate::runtimes::Runtimes;
use crate::status_updates::StatusUpdates;

/// Capacity of the event channel. Producers are few (one link, one waiter
/// and at most one prober per task, HTTP handlers) and the loop handles an
/// event in microseconds, so 1024 only fills if the loop is stuck.
pub(crate) const EVENT_CAPACITY: usize = 1024;

/// Terminated tasks remembered for `/state` and GC after their checkpoint
/// is gone; older ones are only found by the GC's directory scan.
pub(crate) const MAX_COMPLETED: usize = 1000;

/// A task is identified by its framework and its id (ids are unique only
/// within a framework).
pub(crate) type TaskKey = (FrameworkId, TaskId);

/// Everything the event loop reacts to.
pub(crate) enum Event {
    /// The link registered with a master and opened `outbound` (the Attach
    /// stream). `delivered` are the uuids sent inside the RegisterRequest.
    Registered {
        agent_id: AgentId,
        master: String,
        outbound: mpsc::Sender<v1::AgentMessage>,
        delivered: Vec<uuid::Uuid>,
    },
    /// The session ended; updates wait for the next one.
    Disconnected,
    /// Launch, Kill or Acknowledge from the master.
    FromMaster(Box<v1::master_message::Message>),
    /// The master refused this agent: kill everything, forget the id.
    MasterShutdown {
        reason: String,
        done: oneshot::Sender<()>,
    },
    /// The link needs what goes into a RegisterRequest.
    RegisterSnapshot(oneshot::Sender<v1::RegisterRequest>),
    /// A launch finished.
    Launched {
        key: TaskKey,
        container_id: String,
        result: Result<ContainerHandle, RuntimeError>,
    },
    /// A container exited (or could not be waited for).
    Exited {
        key: TaskKey,
        container_id: String,
        result: Result<ExitStatus, RuntimeError>,
    },
    /// A kill finished.
    KillDone {
        key: TaskKey,
        container_id: String,
        result: Result<(), RuntimeError>,
    },
    /// One health probe result.
    HealthResult {
        key: TaskKey,
        container_id: String,
        result: Result<(), String>,
    },
    /// A request from the handle, HTTP or GC.
    Command(Command),
}

/// Requests answered on a oneshot.
pub(crate) enum Command {
    /// `/state` as JSON.
    State(oneshot::Sender<serde_json::Value>),
    /// The sandbox of the newest container of a task (by task id only).
    Sandbox {
        task_id: String,
        reply: oneshot::Sender<Option<PathBuf>>,
    },
    /// What GC may not touch and what it may clean.
    GcView(oneshot::Sender<crate::gc::GcView>),
    /// GC removed these completed containers' sandboxes.
    GcForget(Vec<String>),
    /// Stop the loop, leaving tasks running.
    Shutdown(oneshot::Sender<()>),
}

/// The current master session.
pub(crate) struct Link {
    pub(crate) master: String,
    /// Feeds the Attach stream; bounded (see `master_link::OUTBOUND_CAPACITY`).
    pub(crate) outbound: mpsc::Sender<v1::AgentMessage>,
}

/// One task the agent holds.
pub(crate) struct Task {
    pub(crate) record: TaskRecord,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) health: Option<HealthTracker>,
    /// The probe task, aborted when the task ends.
    pub(crate) prober: Option<AbortHandle>,
    /// The runtime waiter, aborted on agent shutdown by the runtime drop.
    pub(crate) waiter: Option<AbortHandle>,
    /// When the master's LAUNCH arrived (None for recovered tasks), for the
    /// launch-latency histogram.
    pub(crate) received_at: Option<MonoTime>,
    pub(crate) launched_at: Option<MonoTime>,
}

/// A task that ended and whose checkpoint is gone.
#[derive(Debug, Clone)]
pub(crate) struct Completed {
    pub(crate) framework_id: FrameworkId,
    pub(crate) task_id: TaskId,
    pub(crate) state: TaskState,
    pub(crate) container_id: String,
    pub(crate) handle: Option<ContainerHandle>,
    pub(crate) sandbox: PathBuf,
    /// When the task was forgotten (shown in `/state`).
    pub(crate) finished: SystemTime,
}

/// Static facts about this agent.
pub(crate) struct Identity {
    pub(crate) hostname: String,
    pub(crate) port: u16,
    pub(crate) resources: Resources,
}

/// The state owned by the loop.
pub(crate) struct State {
    pub(crate) config: AgentConfig,
    pub(crate) identity: Identity,
    pub(crate) agent_id: Option<AgentId>,
    /// Publishes `agent_id` to the handle.
    pub(crate) agent_id_tx: watch::Sender<Option<AgentId>>,
    pub(crate) checkpoint: Checkpoint,
    pub(crate) runtimes: Runtimes,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) frameworks: BTreeMap<FrameworkId, FrameworkInfo>,
    pub(crate) tasks: BTreeMap<TaskKey, Task>,
    pub(crate) completed: VecDeque<Completed>,
    pub(crate) updates: StatusUpdates<TaskKey>,
    pub(crate) link: Option<Link>,
    /// Clone handed to spawned waiters, launchers and probes.
    pub(crate) events: mpsc::Sender<Event>,
    origin: Instant,
}

impl State {
    /// A state with no tasks.
    pub(crate) fn new(
        config: AgentConfig,
        identity: Identity,
        checkpoint: Checkpoint,
        runtimes: Runtimes,
        metrics: Arc<Metrics>,
        events: mpsc::Sender<Event>,
        agent_id_tx: watch::Sender<Option<AgentId>>,
    ) -> State {
        let updates = StatusUpdates::new(
            config.status_update_backoff_min,
            config.status_update_backoff_max,
        );
        State {
            config,
            identity,
            agent_id: None,
            agent_id_tx,
            checkpoint,
            runtimes,
            metrics,
            frameworks: BTreeMap::new(),
            tasks: BTreeMap::new(),
            completed: VecDeque::new(),
            updates,
            link: None,
            events,
            origin: Instant::now(),
        }
    }

    /// Monotonic now, as data for the sans-IO cores.
    pub(crate) fn now(&self) -> MonoTime {
        MonoTime(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn instant(&self, t: MonoTime) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.origin + Duration::from_millis(t.0))
    }

    /// Runs until a Shutdown command or until every sender is gone.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Event>) {
        loop {
            self.refresh_metrics();
            let deadline = if self.link.is_some() {
                self.updates.next_deadline()
            } else {
                None
            };
            let sleep = match deadline {
                Some(t) => tokio::time::sleep_until(self.instant(t)),
                None => tokio::time::sleep(Duration::from_secs(3600)),
            };
            tokio::select! {
                ev = rx.recv() => {
                    let Some(ev) = ev else { break };
                    if let Some(done) = self.handle(ev) {
                        let _ = done.send(());
                        break;
                    }
                }
                () = sleep => {}
            }
            self.flush_updates();
        }
        tracing::info!("agent event loop stopped");
    }

    /// Handles one event; returns the reply channel of a Shutdown.
    fn handle(&mut self, ev: Event) -> Option<oneshot::Sender<()>> {
        match ev {
            Event::Registered {
                agent_id,
                master,
                outbound,
                delivered,
            } => {
                self.on_registered(agent_id, master, outbound, &delivered);
            }
            Event::Disconnected => {
                if self.link.take().is_some() {
                    tracing::info!(
                        "disconnected from the master; updates wait for the next registration"
                    );
                }
            }
            Event::FromMaster(msg) => self.on_master_message(*msg),
            Event::MasterShutdown { reason, done } => {
                self.on_master_shutdown(&reason);
                let _ = done.send(());
            }
            Event::RegisterSnapshot(reply) => {
                let _ = reply.send(self.register_request());
            }
            Event::Launched {
                key,
                container_id,
                result,
            } => self.on_launched(key, &container_id, result),
            Event::Exited {
                key,
                container_id,
                result,
            } => self.on_exited(&key, &container_id, result),
            Event::KillDone {
                key,
                container_id,
                result,
            } => {
                if let Err(e) = result {
                    tracing::warn!(task = %key.1, container_id, error = %e, "kill failed; waiting for the exit anyway");
                }
            }
            Event::HealthResult {
                key,
                container_id,
                result,
            } => self.on_health(&key, &container_id, result),
            Event::Command(Command::Shutdown(done)) => return Some(done),
            Event::Command(cmd) => self.on_command(cmd),
        }
        None
    }

    fn on_master_message(&mut self, msg: v1::master_message::Message) {
        use v1::master_message::Message as M;
        match msg {
            M::Launch(l) => self.on_launch(l),
            M::Kill(k) => self.on_kill(k),
            M::Acknowledge(a) => self.on_acknowledge(a),
            // Ping and Shutdown are handled by the link.
            M::Ping(_) | M::Shutdown(_) => {}
        }
    }

    fn on_registered(
        &mut self,
        agent_id: AgentId,
        master: String,
        outbound: mpsc::Sender<v1::AgentMessage>,
        delivered: &[uuid::Uuid],
    ) {
        if self.agent_id.as_ref() != Some(&agent_id) {
            if let Some(old) = &self.agent_id {
                tracing::warn!(%old, new = %agent_id, "the master gave this agent a new id");
            }
            self.agent_id = Some(agent_id.clone());
            if let Err(e) = self.checkpoint.write_agent(&self.agent_record()) {
                tracing::error!(error = %e, "could not checkpoint the agent id");
            }
            let _ = self.agent_id_tx.send(Some(agent_id.clone()));
        }
        tracing::info!(%agent_id, master, "registered");
        self.link = Some(Link { master, outbound });
        let now = self.now();
        self.updates.mark_sent(delivered, now);
    }

    pub(crate) fn agent_record(&self) -> crate::checkpoint::AgentRecord {
        crate::checkpoint::AgentRecord {
            format_version: crate::checkpoint::FORMAT_VERSION,
            hostname: self.identity.hostname.clone(),
            agent_id: self.agent_id.clone(),
        }
    }

    /// The RegisterRequest for the current state: identity, held tasks,
    /// their frameworks and every unacknowledged update.
    fn register_request(&self) -> v1::RegisterRequest {
        let info = agora_proto::convert::AgentInfo {
            id: self.agent_id.clone(),
            hostname: self.identity.hostname.clone(),
            port: self.identity.port,
            resources: self.identity.resources.clone(),
            attributes: self.config.attributes.clone(),
        };
        // Every task the agent holds, terminal ones awaiting acknowledgement
        // included: a master that believes in a task the agent does not
        // report declares it lost before it looks at the pending updates.
        let tasks = self
            .tasks
            .values()
            .map(|t| v1::RunningTask {
                framework_id: t.record.framework_id.to_string(),
                task: Some(agora_proto::convert::task_to_wire(&t.record.spec)),
                state: agora_proto::convert::state_to_wire(t.record.state),
                healthy: t.record.healthy,
            })
            .collect();
        let frameworks = self
            .frameworks
            .iter()
            .filter(|(id, _)| self.tasks.keys().any(|(f, _)| f == *id))
            .map(|(_, f)| agora_proto::convert::framework_to_wire(f))
            .collect();
        let unacknowledged_updates = self
            .updates
            .all_pending()
            .map(|((fw, _), s)| v1::StatusUpdate {
                framework_id: fw.to_string(),
                status: Some(agora_proto::convert::status_to_wire(s)),
            })
            .collect();
        v1::RegisterRequest {
            agent_info: Some(agora_proto::convert::agent_info_to_wire(&info)),
            tasks,
            frameworks,
            unacknowledged_updates,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::State(reply) => {
                let _ = reply.send(crate::http::state_json(self));
            }
            Command::Sandbox { task_id, reply } => {
                let live = self
                    .tasks
                    .iter()
                    .find(|((_, t), _)| t.as_str() == task_id)
                    .map(|(_, t)| t.record.sandbox.clone());
                let done = || {
                    self.completed
                        .iter()
                        .rev()
                        .find(|c| c.task_id.as_str() == task_id)
                        .map(|c| c.sandbox.clone())
                };
                let _ = reply.send(live.or_else(done));
            }
            Command::GcView(reply) => {
                let _ = reply.send(crate::gc::GcView {
                    live_sandboxes: self
                        .tasks
                        .values()
                        .map(|t| t.record.sandbox.clone())
                        .collect(),
                    completed: self.completed.iter().cloned().collect(),
                });
            }
            Command::GcForget(container_ids) => {
                self.completed
                    .retain(|c| !container_ids.contains(&c.container_id));
            }
            Command::Shutdown(_) => {}
        }
    }

    /// Recomputes the gauges derived from state.
    fn refresh_metrics(&self) {
        let used = self.used_resources();
        self.metrics.set_resources(&self.identity.resources, &used);
        let mut by_state: BTreeMap<TaskState, i64> = BTreeMap::new();
        for t in self.tasks.values() {
            *by_state.entry(t.record.state).or_default() += 1;
        }
        for s in TaskState::ALL {
            self.metrics
                .tasks
                .with_label_values(&[s.as_str()])
                .set(by_state.get(&s).copied().unwrap_or(0));
        }
        self.metrics.registered.set(i64::from(self.link.is_some()));
    }

    /// Resources held by tasks that have not reached a terminal state.
    pub(crate) fn used_resources(&self) -> Resources {
        let mut used = Resources::new();
        for t in self
            .tasks
            .values()
            .filter(|t| !t.record.state.is_terminal())
        {
            used.add(&t.record.spec.resources);
        }
        used
    }
}
