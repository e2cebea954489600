//! The agent's one event loop: [`State`] owns every piece of mutable state
//! (tasks, frameworks, update queues, the master session) and changes only
//! in response to an [`Event`]. The master link, runtime waiters, health
//! probes, the GC worker and HTTP handlers talk to it over one bounded
//! channel and get answers on `oneshot`s. Handlers never do disk IO: writes
//! go to the checkpoint writer (`checkpoint::writer`) through the loop's
//! outbox, and what must wait for a write (sending an update, starting a
//! launch or a kill) happens when its `Persisted` answer comes back.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use agora_model::{AgentId, FrameworkId, FrameworkInfo, MonoTime, Resources, TaskId, TaskState};
use agora_proto::v1;
use agora_runtime::{ContainerHandle, ExitStatus, RuntimeError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::checkpoint::writer::{Persisted, WriteOp, WriteRequest};
use crate::checkpoint::{Checkpoint, KillCause, TaskRecord};
use crate::config::AgentConfig;
use crate::health::HealthTracker;
use crate::metrics::Metrics;
use crate::runtimes::Runtimes;
use crate::status_updates::StatusUpdates;

/// Capacity of the event channel. Producers are few (one link, one waiter
/// and at most one prober per task, HTTP handlers) and the loop handles an
/// event in microseconds, so 1024 only fills if the loop is stuck.
pub(crate) const EVENT_CAPACITY: usize = 1024;

/// Writes the loop may hold that the writer has not taken yet. Past this
/// the loop stops taking new events (but still hands writes over and takes
/// their answers), so a disk slower than the events coming in slows the
/// producers down instead of growing memory. A burst of 500 kills queues
/// about 1,500 writes.
pub(crate) const MAX_UNWRITTEN: usize = 8192;

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
    /// `/state` as JSON bytes.
    State(oneshot::Sender<Vec<u8>>),
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

/// What the agent wants for a task (desired state), kept apart from what
/// it observed (`Lifecycle`, `TaskRecord::state`). Checkpointed as
/// `TaskRecord::kill`, so a restarted agent finishes a kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    /// Keep it running.
    Run,
    /// Kill it, for this cause.
    Kill(KillCause),
}

/// The agent's side of a task's container, as the agent observed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Sandbox being created, or the runtime is launching; no handle yet.
    Launching,
    /// Launched, and TASK_RUNNING reported.
    Running,
    /// A kill was sent to the container. `was_running`: TASK_RUNNING had
    /// been reported (decides TASK_KILLED's reason).
    Killing { cause: KillCause, was_running: bool },
    /// The container is gone and the terminal update reported (or the task
    /// never got a container).
    Exited,
}

/// One task the agent holds.
pub(crate) struct Task {
    pub(crate) record: TaskRecord,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) health: Option<HealthTracker>,
    /// The probe task, aborted when the task ends.
    pub(crate) prober: Option<AbortHandle>,
    /// The runtime waiter, aborted when the loop stops.
    pub(crate) waiter: Option<AbortHandle>,
    /// When the master's LAUNCH arrived (None for recovered tasks), for the
    /// launch-latency histogram.
    pub(crate) received_at: Option<MonoTime>,
}

impl Task {
    /// The desired state (the checkpointed kill request).
    pub(crate) fn goal(&self) -> Goal {
        match self.record.kill {
            Some(cause) => Goal::Kill(cause),
            None => Goal::Run,
        }
    }

    /// Was TASK_RUNNING reported for this container?
    pub(crate) fn was_running(&self) -> bool {
        match self.lifecycle {
            Lifecycle::Running => true,
            Lifecycle::Killing { was_running, .. } => was_running,
            Lifecycle::Launching | Lifecycle::Exited => false,
        }
    }
}

/// What to do once a write is on disk.
#[derive(Debug)]
pub(crate) enum AfterWrite {
    /// Nothing waits for it.
    Nothing,
    /// These updates of the task may be sent now.
    UpdatesOnDisk {
        key: TaskKey,
        uuids: Vec<uuid::Uuid>,
    },
    /// The sandbox exists (and the task record is on disk): launch.
    SandboxReady {
        key: TaskKey,
        container_id: String,
        launch: Box<agora_runtime::LaunchSpec>,
    },
    /// The task's checkpoint is gone: forget the task.
    TaskRemoved { key: TaskKey },
    /// The agent's record holds this id on disk: publish it. Watchers of
    /// the id (`AgentHandle::wait_registered`) may then rely on a restart
    /// recovering as this agent and finding its containers.
    AgentRecorded { agent_id: AgentId },
    /// The kill request is on disk: kill the container.
    KillRecorded {
        key: TaskKey,
        container_id: String,
        handle: ContainerHandle,
        grace: Duration,
    },
}

/// The loop's ends of the checkpoint writer's channels.
pub(crate) struct WriterLink {
    /// Requests (bounded: `writer::WRITE_QUEUE`).
    pub(crate) requests: mpsc::Sender<WriteRequest>,
    /// Answers, in request order.
    pub(crate) answers: mpsc::Receiver<Persisted>,
    /// The writer task, awaited when the loop stops.
    pub(crate) task: tokio::task::JoinHandle<()>,
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
    /// Resources held by non-terminal tasks, kept as tasks change state.
    pub(crate) used: Resources,
    /// Writes not handed to the writer yet, oldest first.
    outbox: VecDeque<WriteRequest>,
    next_ticket: u64,
    /// What waits for each write in flight, by ticket.
    after_write: HashMap<u64, AfterWrite>,
    /// Every task the loop spawns (launches, waiters, kills, cleanups,
    /// probes); reaped as they finish, aborted when the loop stops.
    pub(crate) spawned: JoinSet<()>,
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
            used: Resources::new(),
            outbox: VecDeque::new(),
            next_ticket: 0,
            after_write: HashMap::new(),
            spawned: JoinSet::new(),
            origin: Instant::now(),
        }
    }

    /// Queues a write for the checkpoint writer; `then` runs when it is on
    /// disk (or failed: see `on_persisted`).
    pub(crate) fn persist(&mut self, op: WriteOp, then: AfterWrite) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        if !matches!(then, AfterWrite::Nothing) {
            self.after_write.insert(ticket, then);
        }
        self.outbox.push_back(WriteRequest { ticket, op });
    }

    /// Queues the write of a task's record.
    pub(crate) fn persist_task(&mut self, key: &TaskKey) {
        if let Some(t) = self.tasks.get(key) {
            let op = WriteOp::Task(Box::new(t.record.clone()));
            self.persist(op, AfterWrite::Nothing);
        }
    }

    /// Queues the write of a task's update queue; its updates become
    /// sendable once it is done.
    pub(crate) fn persist_updates(&mut self, key: &TaskKey) {
        let updates = self.updates.pending(key);
        let uuids = updates.iter().filter_map(|u| u.uuid).collect();
        let op = WriteOp::Updates {
            framework: key.0.clone(),
            task: key.1.clone(),
            updates,
        };
        let then = AfterWrite::UpdatesOnDisk {
            key: key.clone(),
            uuids,
        };
        self.persist(op, then);
    }

    fn on_persisted(&mut self, p: Persisted) {
        let then = self
            .after_write
            .remove(&p.ticket)
            .unwrap_or(AfterWrite::Nothing);
        if let Err(e) = &p.result {
            tracing::error!(error = %e, "checkpoint write failed");
        }
        match then {
            AfterWrite::Nothing => {}
            AfterWrite::UpdatesOnDisk { key, uuids } => match p.result {
                Ok(()) => {
                    let now = self.now();
                    self.updates.mark_persisted(&key, &uuids, now);
                }
                // Never send what is not on disk: write the queue again
                // (the writer pauses after a failed batch).
                Err(_) if self.updates.has_pending(&key) => self.persist_updates(&key),
                Err(_) => {}
            },
            AfterWrite::SandboxReady {
                key,
                container_id,
                launch,
            } => self.on_sandbox_ready(key, container_id, *launch, p.result),
            AfterWrite::TaskRemoved { key } => {
                // Forgotten even if the removal failed: the task is over,
                // and a leftover record is recovered as terminal again.
                self.on_task_removed(&key);
            }
            AfterWrite::AgentRecorded { agent_id } => self.on_agent_recorded(agent_id, p.result),
            AfterWrite::KillRecorded {
                key,
                container_id,
                handle,
                grace,
            } => {
                // A kill goes ahead even if its record could not be
                // written: stopping the task matters more than reporting
                // the right reason after a crash.
                self.spawn_kill(key, container_id, handle, grace);
            }
        }
    }

    /// Adds a task, counting it in the tallies.
    pub(crate) fn insert_task(&mut self, key: TaskKey, task: Task) {
        self.count(task.record.state, &task.record.spec.resources, 1);
        self.tasks.insert(key, task);
    }

    /// Removes a task, taking it out of the tallies.
    pub(crate) fn remove_task(&mut self, key: &TaskKey) -> Option<Task> {
        let task = self.tasks.remove(key)?;
        self.count(task.record.state, &task.record.spec.resources, -1);
        Some(task)
    }

    /// Changes a task's reported state, keeping the tallies.
    pub(crate) fn set_task_state(&mut self, key: &TaskKey, state: TaskState) {
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        let old = std::mem::replace(&mut task.record.state, state);
        if old == state {
            return;
        }
        let resources = task.record.spec.resources.clone();
        self.count(old, &resources, -1);
        self.count(state, &resources, 1);
    }

    /// Moves one task of `state` holding `resources` in (`+1`) or out
    /// (`-1`) of the tallies and their gauges.
    fn count(&mut self, state: TaskState, resources: &Resources, delta: i64) {
        self.metrics
            .tasks
            .with_label_values(&[state.as_str()])
            .add(delta);
        if state.is_terminal() {
            return;
        }
        if delta > 0 {
            self.used.add(resources);
        } else {
            self.used.subtract(resources);
        }
        self.metrics
            .set_resources(&self.identity.resources, &self.used);
    }

    /// Monotonic now, as data for the sans-IO cores.
    pub(crate) fn now(&self) -> MonoTime {
        MonoTime(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn instant(&self, t: MonoTime) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.origin + Duration::from_millis(t.0))
    }

    /// Runs until a Shutdown command or until every sender is gone.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Event>, mut writer: WriterLink) {
        self.metrics
            .set_resources(&self.identity.resources, &self.used);
        let mut stopped_by = None;
        loop {
            self.hand_over(&writer.requests);
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
                // Answers first: they release updates and launches.
                biased;
                Some(p) = writer.answers.recv() => self.on_persisted(p),
                permit = writer.requests.reserve(), if !self.outbox.is_empty() => {
                    let Ok(permit) = permit else {
                        tracing::error!("the checkpoint writer stopped; stopping the agent loop");
                        break;
                    };
                    if let Some(r) = self.outbox.pop_front() {
                        permit.send(r);
                    }
                }
                ev = rx.recv(), if self.outbox.len() < MAX_UNWRITTEN => {
                    let Some(ev) = ev else { break };
                    if let Some(done) = self.handle(ev) {
                        stopped_by = Some(done);
                        break;
                    }
                }
                () = sleep => {}
            }
            while self.spawned.try_join_next().is_some() {}
            self.flush_updates();
        }
        self.finish_writes(writer).await;
        // Tasks keep running; their waiters, probes and pending launches
        // stop with the loop (the next agent recovers the containers).
        self.spawned.shutdown().await;
        if let Some(done) = stopped_by {
            let _ = done.send(());
        }
        tracing::info!("agent event loop stopped");
    }

    /// Hands queued writes to the writer while its channel has room.
    fn hand_over(&mut self, requests: &mpsc::Sender<WriteRequest>) {
        while let Some(r) = self.outbox.pop_front() {
            match requests.try_send(r) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r)) => {
                    self.outbox.push_front(r);
                    return;
                }
            }
        }
    }

    /// On a graceful stop: the writes asked for so far are done before the
    /// loop reports it stopped (bounded, so a hung disk cannot hang it).
    async fn finish_writes(&mut self, writer: WriterLink) {
        let outbox = std::mem::take(&mut self.outbox);
        let WriterLink {
            requests,
            mut answers,
            task,
        } = writer;
        let abort = task.abort_handle();
        let drain = async move {
            for r in outbox {
                // The writer may wait for room for its answers: drain them
                // while sending.
                let mut send = std::pin::pin!(requests.send(r));
                loop {
                    tokio::select! {
                        sent = &mut send => {
                            if sent.is_err() { return; }
                            break;
                        }
                        a = answers.recv() => if a.is_none() { return; },
                    }
                }
            }
            drop(requests);
            while answers.recv().await.is_some() {}
            let _ = task.await;
        };
        if tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            tracing::warn!("checkpoint writes still pending after 5 s; stopping anyway");
        }
        abort.abort();
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
                self.metrics.registered.set(0);
                if self.link.take().is_some() {
                    tracing::info!(
                        "disconnected from the master; updates wait for the next registration"
                    );
                }
            }
            Event::FromMaster(msg) => self.on_master_message(*msg),
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
            // Pings are answered by the link.
            M::Ping(_) => {}
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
            self.persist_agent_record(agent_id.clone());
        }
        tracing::info!(%agent_id, master, "registered");
        self.metrics.registered.set(1);
        self.link = Some(Link { master, outbound });
        let now = self.now();
        self.updates.mark_sent(delivered, now);
    }

    /// Queues the write of the agent's record; the id is published once it
    /// is on disk, so that nothing outside learns an id a crash could lose.
    fn persist_agent_record(&mut self, agent_id: AgentId) {
        let then = AfterWrite::AgentRecorded { agent_id };
        self.persist(WriteOp::Agent(self.agent_record()), then);
    }

    fn on_agent_recorded(&mut self, agent_id: AgentId, result: Result<(), Arc<crate::AgentError>>) {
        if self.agent_id.as_ref() != Some(&agent_id) {
            // A later registration changed the id; its own write publishes it.
            return;
        }
        match result {
            Ok(()) => {
                let _ = self.agent_id_tx.send(Some(agent_id));
            }
            // Write it again (the writer pauses after a failed batch).
            Err(_) => self.persist_agent_record(agent_id),
        }
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
}

#[cfg(test)]
mod tests;
