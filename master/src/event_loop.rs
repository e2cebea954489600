//! The master's single event loop. It owns `Master` (the sans-IO core), the
//! open streams and the registry writer. Handlers send a `Command`; the loop
//! turns it into a core `Input`, calls `Master::handle` with the time, and
//! performs the returned effects: events onto framework streams, messages
//! onto agent streams, proposals to the writer, answers to callers. A send
//! that fails comes back into the core as an input. Timers are arms of the
//! same `select!`. The loop never touches the disk.
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use agora_model::{AgentId, FrameworkId, FrameworkInfo, OfferId, Role, SessionId, StreamId};
use agora_proto::v1;
use bytes::Bytes;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{MissedTickBehavior, interval, interval_at, sleep_until};
use tonic::Status;
use tracing::info;

use crate::api::wire;
use crate::clock::{Clock, instant_now, unix_now};
use crate::core::{AgentRegistration, FromAgent, Input, SchedulerCall};
use crate::effects::{Effect, FrameworkEvent, Reply, ReplyToken};
use crate::registry::{WriteOutcome, WriterHandle};
use crate::state::Master;

/// Commands queued for the loop. Sized so a burst of status updates from
/// hundreds of agents does not block handlers; a full queue applies
/// back-pressure to callers (they await a slot) rather than dropping work.
pub(crate) const COMMAND_QUEUE: usize = 8192;

/// Events buffered per framework stream. Mesos buffers without limit; this
/// bounds a stuck framework's cost (an event is a few hundred bytes, so
/// about 20 MB) while leaving a framework that reads a 100,000-task burst
/// a little late room to catch up. Past it, events are dropped, never the
/// framework: offers return to the pool and agents resend updates.
pub(crate) const FRAMEWORK_EVENT_BUFFER: usize = 65_536;

/// A framework whose stream holds more than this many unread events gets no
/// new offers until it has read them (offers it cannot read only idle).
const CONGESTED_EVENTS: usize = FRAMEWORK_EVENT_BUFFER / 4;

/// Event-triggered allocations (after a decline, a finished task, a new
/// agent) are coalesced: the next starts no sooner than this, or than four
/// times the last run's duration, after the last ended. During a burst of
/// thousands of updates the allocator then takes at most a fifth of the
/// loop instead of running between every two commands.
const MIN_ALLOCATION_GAP: Duration = Duration::from_millis(5);

/// How often deadlines (framework failover, offer timeout, agent re-register)
/// are checked. Small enough for tests that use sub-second timeouts.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_millis(100);
/// How often the leader samples capacity into the replicated history.
const HISTORY_SAMPLE_PERIOD: Duration = Duration::from_millis(agora_capacity::SAMPLE_PERIOD_MS);
/// /state requests wait until the loop has drained its queue (or this
/// long, or [`STATE_BATCH_MAX`] of them), and then share one document:
/// serializing takes the loop tens of milliseconds at 10,000 agents, so
/// dashboards polling at once must not each pay for it (Mesos 1.7 batches
/// /state the same way).
pub(crate) const STATE_BATCH_WAIT: Duration = Duration::from_millis(100);
/// See [`STATE_BATCH_WAIT`].
const STATE_BATCH_MAX: usize = 256;

pub(crate) type Answer<T> = oneshot::Sender<Result<T, Status>>;
/// Events to a framework's Subscribe stream.
pub(crate) type EventTx = mpsc::Sender<Box<v1::Event>>;
/// Messages down an agent's Attach stream.
pub(crate) type AgentTx = mpsc::Sender<Box<v1::MasterMessage>>;

/// What a successful Subscribe hands back to the gRPC handler.
pub(crate) struct Subscription {
    pub(crate) framework_id: FrameworkId,
    pub(crate) stream_id: StreamId,
}

pub(crate) enum Command {
    Subscribe {
        info: FrameworkInfo,
        suppressed: Vec<Role>,
        events: EventTx,
        reply: Answer<Subscription>,
    },
    FrameworkStreamClosed {
        framework: FrameworkId,
        stream: StreamId,
    },
    Call {
        framework: FrameworkId,
        stream: StreamId,
        call: SchedulerCall,
        reply: Answer<()>,
    },
    RegisterAgent {
        reg: Box<AgentRegistration>,
        reply: Answer<v1::RegisterResponse>,
    },
    AttachAgent {
        agent: AgentId,
        session: SessionId,
        tx: AgentTx,
        reply: Answer<()>,
    },
    AgentMessage {
        agent: AgentId,
        session: SessionId,
        msg: FromAgent,
    },
    AgentStreamClosed {
        agent: AgentId,
        session: SessionId,
    },
    GetState {
        reply: oneshot::Sender<Bytes>,
    },
    GetMetrics {
        reply: oneshot::Sender<String>,
    },
    /// A copy of what the capacity model needs (`/api/v1/capacity`).
    GetCapacity {
        reply: oneshot::Sender<agora_capacity::Snapshot>,
    },
    /// What the web pages show (`/ui`).
    GetUi {
        reply: oneshot::Sender<crate::ui::UiSnapshot>,
    },
    /// The operator drains or undrains an agent (`/api/v1/agents/{id}/drain`).
    SetMaintenance {
        agent: AgentId,
        change: crate::core::MaintenanceChange,
        reply: Answer<()>,
    },
    /// Points of the utilisation history (`/api/v1/capacity/history`).
    GetHistory {
        query: agora_capacity::HistoryQuery,
        reply: oneshot::Sender<agora_capacity::HistorySeries>,
    },
}

/// A caller waiting for the core's answer.
enum Waiting {
    Subscribe {
        stream: StreamId,
        reply: Answer<Subscription>,
    },
    Done(Answer<()>),
    Register(Answer<v1::RegisterResponse>),
    Attach {
        agent: AgentId,
        session: SessionId,
        tx: AgentTx,
        reply: Answer<()>,
    },
}

struct FrameworkStream {
    /// Learnt from the first event the core sends on it.
    framework: Option<FrameworkId>,
    tx: EventTx,
}

/// Everything the loop owns besides the core.
struct Loop {
    master: Master,
    clock: Clock,
    streams: HashMap<StreamId, FrameworkStream>,
    agents: HashMap<AgentId, (SessionId, AgentTx)>,
    waiting: HashMap<ReplyToken, Waiting>,
    next_token: ReplyToken,
    writer: WriterHandle,
    /// /state requests waiting for the next document, and since when.
    state_waiters: Vec<oneshot::Sender<Bytes>>,
    state_wanted_since: Option<tokio::time::Instant>,
}

/// Runs the loop until every command sender is gone or `shutdown` fires,
/// then lets the writer finish what was queued.
pub(crate) async fn run(
    master: Master,
    writer: WriterHandle,
    mut rx: mpsc::Receiver<Command>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut lp = Loop {
        master,
        clock: Clock::new(),
        streams: HashMap::new(),
        agents: HashMap::new(),
        waiting: HashMap::new(),
        next_token: 0,
        writer,
        state_waiters: Vec::new(),
        state_wanted_since: None,
    };
    let mut next_allocation = instant_now() + lp.master.cfg.allocation_interval;
    let mut earliest_allocation = instant_now();
    let mut pings = interval(lp.master.cfg.agent_ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heartbeats = interval(lp.master.cfg.framework_heartbeat_interval);
    heartbeats.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut housekeeping = interval(HOUSEKEEPING_PERIOD);
    housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first sample one period after taking over, not at once: agents
    // are still re-registering then.
    let mut history = interval_at(instant_now() + HISTORY_SAMPLE_PERIOD, HISTORY_SAMPLE_PERIOD);
    history.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // Samples are computed on a blocking thread (a dry-run fit per shape
    // over every agent) and come back here to be proposed.
    let (sample_tx, mut samples) = mpsc::channel(1);
    let mut sampling: Option<tokio::task::JoinHandle<()>> = None;
    info!(master_id = %lp.master.master_id, "master event loop started");
    loop {
        let alloc_at = if lp.master.allocation_wanted {
            earliest_allocation.min(next_allocation)
        } else {
            next_allocation
        };
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            outcome = lp.writer.outcomes.recv() => match outcome {
                Some(WriteOutcome::Durable { up_to }) => lp.input(Input::Durable { up_to }).await,
                Some(WriteOutcome::Failed { seqs, reason }) => {
                    lp.input(Input::WriteFailed { seqs, reason }).await
                }
                None => break, // the writer died: nothing can be made durable
            },
            cmd = rx.recv() => match cmd {
                Some(cmd) => lp.command(cmd).await,
                None => break,
            },
            _ = sleep_until(alloc_at) => {
                let started = instant_now();
                let congested = lp.congested();
                lp.input(Input::Allocate { congested }).await;
                let took = started.elapsed();
                lp.master.metrics.allocation_seconds.observe(took.as_secs_f64());
                let end = instant_now();
                next_allocation = end + lp.master.cfg.allocation_interval;
                earliest_allocation = end + MIN_ALLOCATION_GAP.max(took * 4);
            }
            _ = pings.tick() => lp.input(Input::PingAgents).await,
            _ = heartbeats.tick() => lp.input(Input::HeartbeatFrameworks).await,
            _ = housekeeping.tick() => lp.input(Input::Housekeeping).await,
            _ = history.tick() => {
                // One computation at a time: a slow one skips ticks.
                if sampling.as_ref().is_none_or(|h| h.is_finished()) {
                    sampling = Some(lp.start_sample(sample_tx.clone()));
                }
            }
            Some(sample) = samples.recv() => {
                lp.input(Input::RecordCapacity(Box::new(sample))).await
            }
        }
        lp.master.metrics.queue_depth.set(rx.len() as i64);
        lp.answer_state_requests(rx.is_empty());
    }
    let Loop { writer, .. } = lp;
    drop(writer.proposals);
    let _ = writer.task.await;
    info!("master event loop stopped");
}

impl Loop {
    /// Copies what a history sample needs and computes it off the loop.
    fn start_sample(
        &self,
        tx: mpsc::Sender<agora_capacity::HistorySample>,
    ) -> tokio::task::JoinHandle<()> {
        let snap = self.master.capacity_snapshot();
        let role_held = self.master.role_held();
        let shapes = self.master.cfg.reference_shapes.clone();
        let at_unix_ms = (unix_now().max(0.0) * 1000.0) as u64;
        tokio::task::spawn_blocking(move || {
            let sample = crate::capacity::compute_sample(&snap, &shapes, &role_held, at_unix_ms);
            let _ = tx.try_send(sample);
        })
    }

    /// Serializes one /state document for every waiting request once the
    /// queue is drained, or the oldest has waited [`STATE_BATCH_WAIT`], or
    /// [`STATE_BATCH_MAX`] wait.
    fn answer_state_requests(&mut self, queue_drained: bool) {
        let Some(since) = self.state_wanted_since else {
            return;
        };
        let due = queue_drained
            || self.state_waiters.len() >= STATE_BATCH_MAX
            || instant_now().saturating_duration_since(since) >= STATE_BATCH_WAIT;
        if !due {
            return;
        }
        self.state_wanted_since = None;
        let doc = Bytes::from(self.master.state_json());
        self.master.metrics.state_documents.inc();
        for reply in self.state_waiters.drain(..) {
            let _ = reply.send(doc.clone());
        }
    }

    fn token(&mut self) -> ReplyToken {
        self.next_token += 1;
        self.next_token
    }

    async fn command(&mut self, cmd: Command) {
        let input = match cmd {
            Command::Subscribe {
                info,
                suppressed,
                events,
                reply,
            } => self.subscribe_input(info, suppressed, events, reply),
            Command::FrameworkStreamClosed { framework, stream } => {
                self.streams.remove(&stream);
                Input::FrameworkStreamClosed { framework, stream }
            }
            Command::Call {
                framework,
                stream,
                call,
                reply,
            } => {
                let token = self.token();
                self.waiting.insert(token, Waiting::Done(reply));
                Input::Call {
                    framework,
                    stream,
                    call,
                    reply: token,
                }
            }
            Command::RegisterAgent { reg, reply } => {
                let token = self.token();
                self.waiting.insert(token, Waiting::Register(reply));
                Input::RegisterAgent {
                    reg,
                    session: SessionId::random(),
                    new_id: AgentId::random(),
                    reply: token,
                }
            }
            Command::AttachAgent {
                agent,
                session,
                tx,
                reply,
            } => self.attach_input(agent, session, tx, reply),
            Command::AgentMessage {
                agent,
                session,
                msg,
            } => Input::FromAgent {
                agent,
                session,
                msg,
            },
            Command::AgentStreamClosed { agent, session } => {
                if self.agents.get(&agent).is_some_and(|(s, _)| s == &session) {
                    self.agents.remove(&agent);
                }
                Input::AgentStreamClosed { agent, session }
            }
            Command::GetState { reply } => {
                self.master.metrics.state_requests.inc();
                if self.state_waiters.is_empty() {
                    self.state_wanted_since = Some(instant_now());
                }
                self.state_waiters.push(reply);
                return;
            }
            Command::GetMetrics { reply } => {
                let _ = reply.send(self.master.metrics_text(unix_now()));
                return;
            }
            Command::GetCapacity { reply } => {
                let _ = reply.send(self.master.capacity_snapshot());
                return;
            }
            Command::GetUi { reply } => {
                let mut snap = self.master.ui_snapshot();
                snap.at_unix = unix_now();
                let _ = reply.send(snap);
                return;
            }
            Command::SetMaintenance {
                agent,
                change,
                reply,
            } => {
                let token = self.token();
                self.waiting.insert(token, Waiting::Done(reply));
                Input::SetMaintenance {
                    agent,
                    change,
                    reply: token,
                }
            }
            Command::GetHistory { query, reply } => {
                let _ = reply.send(self.master.registry.history.query(&query));
                return;
            }
        };
        self.input(input).await;
    }

    /// A new stream is registered before the core sees the subscription, so
    /// that the SUBSCRIBED event has somewhere to go.
    fn subscribe_input(
        &mut self,
        info: FrameworkInfo,
        suppressed: Vec<Role>,
        events: EventTx,
        reply: Answer<Subscription>,
    ) -> Input {
        let stream = StreamId::random();
        self.streams.insert(
            stream.clone(),
            FrameworkStream {
                framework: None,
                tx: events,
            },
        );
        let token = self.token();
        self.waiting.insert(
            token,
            Waiting::Subscribe {
                stream: stream.clone(),
                reply,
            },
        );
        Input::Subscribe {
            info,
            suppressed,
            stream,
            new_id: FrameworkId::random(),
            reply: token,
        }
    }

    /// The agent's stream is kept aside until the core accepts the Attach
    /// (see `perform`), so a stale Attach cannot displace a live one.
    fn attach_input(
        &mut self,
        agent: AgentId,
        session: SessionId,
        tx: AgentTx,
        reply: Answer<()>,
    ) -> Input {
        let token = self.token();
        self.waiting.insert(
            token,
            Waiting::Attach {
                agent: agent.clone(),
                session: session.clone(),
                tx,
                reply,
            },
        );
        Input::AttachAgent {
            agent,
            session,
            reply: token,
        }
    }

    /// Hands one input to the core and performs its effects, and those of
    /// any inputs the effects cause (failed sends), until none remain.
    async fn input(&mut self, first: Input) {
        let mut inputs = VecDeque::from([first]);
        while let Some(input) = inputs.pop_front() {
            let effects = self.master.handle(input, self.clock.now(), unix_now());
            self.perform(effects, &mut inputs).await;
        }
    }

    async fn perform(&mut self, effects: Vec<Effect>, feedback: &mut VecDeque<Input>) {
        // An accepted Attach opens the agent's stream before anything is sent
        // on it (the core may send kills in the same breath).
        for e in &effects {
            if let Effect::Reply {
                token,
                reply: Reply::Done(Ok(())),
            } = e
                && matches!(self.waiting.get(token), Some(Waiting::Attach { .. }))
                && let Some(Waiting::Attach {
                    agent,
                    session,
                    tx,
                    reply,
                }) = self.waiting.remove(token)
            {
                // Dropping an older session's sender ends its stream.
                self.agents.insert(agent, (session, tx));
                let _ = reply.send(Ok(()));
            }
        }
        let mut proposals = Vec::new();
        for e in effects {
            match e {
                Effect::ToFramework {
                    framework,
                    stream,
                    event,
                } => self.send_event(framework, stream, event, feedback),
                Effect::CloseFramework { stream } => {
                    self.streams.remove(&stream);
                }
                Effect::ToAgent {
                    agent,
                    session,
                    msg,
                } => {
                    let Some((s, tx)) = self.agents.get(&agent) else {
                        continue;
                    };
                    if s != &session {
                        continue; // for an older session; the agent re-registered
                    }
                    if tx.try_send(Box::new(wire::to_agent_wire(msg))).is_err() {
                        tracing::warn!(agent = %agent, "agent stream full or closed; marking it disconnected");
                        self.agents.remove(&agent);
                        feedback.push_back(Input::AgentStreamClosed { agent, session });
                    }
                }
                Effect::Propose { seq, entry } => proposals.push((seq, *entry)),
                Effect::Reply { token, reply } => self.answer(token, reply),
            }
        }
        if !proposals.is_empty() && self.writer.proposals.send(proposals).await.is_err() {
            tracing::error!("the registry writer has stopped");
        }
    }

    fn send_event(
        &mut self,
        framework: FrameworkId,
        stream: StreamId,
        event: FrameworkEvent,
        feedback: &mut VecDeque<Input>,
    ) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        s.framework.get_or_insert_with(|| framework.clone());
        let offers: Vec<OfferId> = match &event {
            FrameworkEvent::Offers(o) => o.iter().map(|o| o.id.clone()).collect(),
            _ => Vec::new(),
        };
        match s
            .tx
            .try_send(Box::new(wire::event_to_wire(event, &self.master.master_id)))
        {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => feedback.push_back(Input::FrameworkEventsDropped {
                framework,
                stream,
                offers,
            }),
            Err(TrySendError::Closed(_)) => {
                self.streams.remove(&stream);
                feedback.push_back(Input::FrameworkStreamClosed { framework, stream });
            }
        }
    }

    fn answer(&mut self, token: ReplyToken, reply: Reply) {
        let Some(w) = self.waiting.remove(&token) else {
            return; // an Attach answered above
        };
        match (w, reply) {
            (Waiting::Subscribe { stream, reply }, Reply::Subscribed(res)) => {
                let _ = reply.send(
                    res.map(|framework_id| Subscription {
                        framework_id,
                        stream_id: stream,
                    })
                    .map_err(Status::from),
                );
            }
            (Waiting::Done(reply), Reply::Done(res)) => {
                let _ = reply.send(res.map_err(Status::from));
            }
            (Waiting::Attach { reply, .. }, Reply::Done(res)) => {
                let _ = reply.send(res.map_err(Status::from));
            }
            (Waiting::Register(reply), Reply::Registered(res)) => {
                let _ = reply.send(res.map_err(Status::from).map(|r| v1::RegisterResponse {
                    agent_id: r.agent_id.to_string(),
                    session_id: r.session.to_string(),
                    ping_interval_seconds: self.master.cfg.agent_ping_interval.as_secs_f64(),
                    master_id: self.master.master_id.clone(),
                }));
            }
            (_, other) => tracing::error!(?other, "a reply of the wrong kind; dropped"),
        }
    }

    /// Frameworks whose stream holds many unread events.
    fn congested(&self) -> BTreeSet<FrameworkId> {
        self.streams
            .values()
            .filter(|s| FRAMEWORK_EVENT_BUFFER - s.tx.capacity() > CONGESTED_EVENTS)
            .filter_map(|s| s.framework.clone())
            .collect()
    }
}

#[cfg(test)]
mod state_batch_tests {
    use super::*;
    use crate::config::MasterConfig;
    use crate::registry::{Registry, spawn_memory_writer};

    /// Requests queued together share one document; a later one gets a
    /// fresh document.
    #[tokio::test]
    async fn concurrent_state_requests_share_one_document() {
        let registry = Registry::default();
        let writer = spawn_memory_writer();
        let master = Master::new(
            MasterConfig::default(),
            registry,
            "m".into(),
            "leader".into(),
            1000.0,
            7,
        );
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let mut answers = Vec::new();
        // Queued before the loop runs: it finds them all at once.
        for _ in 0..10 {
            let (reply, answer) = oneshot::channel();
            assert!(tx.try_send(Command::GetState { reply }).is_ok());
            answers.push(answer);
        }
        let (stop, stop_rx) = oneshot::channel();
        let looping = tokio::spawn(run(master, writer, rx, stop_rx));
        let mut docs = Vec::new();
        for a in answers {
            docs.push(a.await.expect("an answer"));
        }
        assert!(docs.iter().all(|d| d == &docs[0]), "one document for all");
        let (reply, answer) = oneshot::channel();
        assert!(tx.send(Command::GetState { reply }).await.is_ok());
        assert!(answer.await.is_ok_and(|d| !d.is_empty()));
        let (reply, metrics) = oneshot::channel();
        assert!(tx.send(Command::GetMetrics { reply }).await.is_ok());
        let metrics = metrics.await.expect("metrics");
        assert!(
            metrics.contains("agora_master_state_requests_total 11"),
            "{metrics}"
        );
        assert!(
            metrics.contains("agora_master_state_documents_total 2"),
            "{metrics}"
        );
        let _ = stop.send(());
        let _ = looping.await;
    }
}
