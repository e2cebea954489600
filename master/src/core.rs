//! The master's decision core: `Master::handle(input, now, now_unix)` takes
//! one domain input and returns the effects to perform. It is synchronous
//! and does no IO: no channel, no clock, no disk (see `effects.rs`). The
//! event loop (`event_loop.rs`) owns the connections and the registry
//! writer and performs the effects; `harness.rs` drives it in tests.
use std::collections::BTreeSet;
use std::time::Duration;

use agora_model::{
    AgentId, FrameworkId, FrameworkInfo, MonoTime, OfferId, Resources, Role, SessionId, StreamId,
    TaskId, TaskSpec, TaskState, TaskStatus, TaskTemplate,
};
use agora_proto::convert::AgentInfo;
use tracing::{debug, info, warn};

use crate::config::MasterConfig;
use crate::effects::{Effect, FrameworkEvent, Reply, ReplyToken, ToAgent};
use crate::error::CallError;
use crate::metrics::Metrics;
use crate::registry::{LogEntry, Registry, RegistryCommand};
use crate::state::{AfterCommit, AgentConn, AgentEntry, FrameworkConn, FrameworkEntry, Master};

/// A task as a re-registering agent reports it.
#[derive(Debug, Clone)]
pub(crate) struct ReportedTask {
    pub(crate) framework: FrameworkId,
    pub(crate) spec: TaskSpec,
    pub(crate) state: TaskState,
    pub(crate) healthy: Option<bool>,
}

/// A validated Register request.
#[derive(Debug, Clone)]
pub(crate) struct AgentRegistration {
    pub(crate) info: AgentInfo,
    pub(crate) tasks: Vec<ReportedTask>,
    pub(crate) frameworks: Vec<FrameworkInfo>,
    pub(crate) updates: Vec<(FrameworkId, TaskStatus)>,
}

/// A task in an ACCEPT that failed validation at the edge; it is answered
/// with TASK_ERROR naming the problem, as Mesos does, rather than failing
/// the whole call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InvalidTask {
    /// As the framework sent it (it may itself be the problem).
    pub(crate) task_id: String,
    pub(crate) reason: String,
}

/// Scheduler calls in domain form.
#[derive(Debug, Clone)]
pub(crate) enum SchedulerCall {
    Accept {
        offer_ids: Vec<OfferId>,
        tasks: Vec<Result<TaskTemplate, InvalidTask>>,
        refuse_seconds: Option<f64>,
    },
    Decline {
        offer_ids: Vec<OfferId>,
        refuse_seconds: Option<f64>,
    },
    Revive {
        roles: Vec<Role>,
    },
    Suppress {
        roles: Vec<Role>,
    },
    Kill {
        task: TaskId,
        agent: Option<AgentId>,
        grace: Option<Duration>,
    },
    Acknowledge {
        agent: AgentId,
        task: TaskId,
        uuid: uuid::Uuid,
    },
    AcknowledgeMany {
        acks: Vec<(AgentId, TaskId, uuid::Uuid)>,
    },
    Reconcile {
        tasks: Vec<(TaskId, Option<AgentId>)>,
    },
    Teardown,
    UpdateFramework {
        info: FrameworkInfo,
        suppressed: Vec<Role>,
    },
}

impl SchedulerCall {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            SchedulerCall::Accept { .. } => "accept",
            SchedulerCall::Decline { .. } => "decline",
            SchedulerCall::Revive { .. } => "revive",
            SchedulerCall::Suppress { .. } => "suppress",
            SchedulerCall::Kill { .. } => "kill",
            SchedulerCall::Acknowledge { .. } => "acknowledge",
            SchedulerCall::AcknowledgeMany { .. } => "acknowledge_many",
            SchedulerCall::Reconcile { .. } => "reconcile",
            SchedulerCall::Teardown => "teardown",
            SchedulerCall::UpdateFramework { .. } => "update_framework",
        }
    }
}

/// Agent → master messages on the Attach stream, decoded at the edge.
#[derive(Debug, Clone)]
pub(crate) enum FromAgent {
    Pong {
        seq: u64,
    },
    StatusUpdate {
        framework: FrameworkId,
        status: TaskStatus,
    },
    ResourcesChanged(Resources),
}

/// What the operator asks of an agent's maintenance state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaintenanceChange {
    /// Drain it; `deadline`: when they want it empty, from now.
    Drain { deadline: Option<Duration> },
    /// End its drain.
    Undrain,
}

/// Everything the core reacts to.
#[derive(Debug)]
pub(crate) enum Input {
    Subscribe {
        info: FrameworkInfo,
        suppressed: Vec<Role>,
        stream: StreamId,
        /// The id a new framework gets (chosen outside so the core stays
        /// deterministic).
        new_id: FrameworkId,
        reply: ReplyToken,
    },
    FrameworkStreamClosed {
        framework: FrameworkId,
        stream: StreamId,
    },
    /// The framework's stream was full: these events were not delivered.
    /// Offers among them return to the pool; updates come again from the
    /// agents, which retry until acknowledged.
    FrameworkEventsDropped {
        framework: FrameworkId,
        stream: StreamId,
        offers: Vec<OfferId>,
    },
    Call {
        framework: FrameworkId,
        stream: StreamId,
        call: SchedulerCall,
        reply: ReplyToken,
    },
    RegisterAgent {
        reg: Box<AgentRegistration>,
        session: SessionId,
        new_id: AgentId,
        reply: ReplyToken,
    },
    AttachAgent {
        agent: AgentId,
        session: SessionId,
        reply: ReplyToken,
    },
    FromAgent {
        agent: AgentId,
        session: SessionId,
        msg: FromAgent,
    },
    AgentStreamClosed {
        agent: AgentId,
        session: SessionId,
    },
    /// Run the allocator. `congested`: frameworks whose event stream is
    /// backed up; they get no new offers until it drains.
    Allocate {
        congested: BTreeSet<FrameworkId>,
    },
    PingAgents,
    HeartbeatFrameworks,
    Housekeeping,
    /// Replicate a capacity sample (computed off the loop) into the history.
    RecordCapacity(Box<agora_capacity::HistorySample>),
    /// The operator drains or undrains an agent.
    SetMaintenance {
        agent: AgentId,
        change: MaintenanceChange,
        reply: ReplyToken,
    },
    /// Proposals up to this sequence number are durable.
    Durable {
        up_to: u64,
    },
    /// These proposals could not be made durable.
    WriteFailed {
        seqs: Vec<u64>,
        reason: String,
    },
}

impl Master {
    pub(crate) fn new(
        cfg: MasterConfig,
        registry: Registry,
        master_id: String,
        leader: String,
        start_unix: f64,
        allocation_seed: u64,
    ) -> Master {
        let mut m = Master {
            cfg,
            master_id,
            leader,
            start_unix,
            now_unix: start_unix,
            agents: Default::default(),
            frameworks: Default::default(),
            tasks: Default::default(),
            offers: Default::default(),
            task_counts: Default::default(),
            registry,
            proposals: Default::default(),
            metrics: Metrics::new(),
            out: Default::default(),
            allocation_wanted: false,
            allocation_seed,
        };
        m.recover_from_registry();
        m
    }

    /// Agents in the registry come back as `Recovered` (or `Unreachable`) and
    /// must re-register within the re-register timeout; frameworks come back
    /// disconnected, with at least that long to re-subscribe.
    fn recover_from_registry(&mut self) {
        let deadline = MonoTime(0).after(self.cfg.agent_reregister_timeout);
        for (id, rec) in &self.registry.agents {
            let conn = match self.registry.unreachable.get(id) {
                Some(ms) => AgentConn::Unreachable {
                    since_unix: *ms as f64 / 1000.0,
                },
                None => AgentConn::Recovered { deadline },
            };
            let mut a = AgentEntry::new(id.clone(), self.start_unix, conn);
            a.hostname = rec.hostname.clone();
            a.port = rec.port;
            a.total = rec.resources.clone();
            a.attributes = rec.attributes.clone();
            self.agents.insert(id.clone(), a);
        }
        for (id, rec) in &self.registry.frameworks {
            let wait = rec
                .info
                .failover_timeout
                .max(self.cfg.agent_reregister_timeout);
            let f = FrameworkEntry::new(
                rec.info.clone(),
                id.clone(),
                FrameworkConn::Failover {
                    deadline: MonoTime(0).after(wait),
                },
                rec.registered_unix_ms as f64 / 1000.0,
            );
            self.frameworks.insert(id.clone(), f);
        }
    }

    /// Handles one input at `now` (monotonic) and `now_unix` (wall clock, for
    /// timestamps and registry ages) and returns what must happen.
    pub(crate) fn handle(&mut self, input: Input, now: MonoTime, now_unix: f64) -> Vec<Effect> {
        self.now_unix = now_unix;
        match input {
            Input::Subscribe {
                info,
                suppressed,
                stream,
                new_id,
                reply,
            } => {
                self.metrics.message("subscribe");
                self.subscribe(info, suppressed, stream, new_id, reply, now);
            }
            Input::FrameworkStreamClosed { framework, stream } => {
                self.framework_stream_closed(&framework, &stream, now)
            }
            Input::FrameworkEventsDropped {
                framework,
                stream,
                offers,
            } => self.framework_events_dropped(&framework, &stream, &offers),
            Input::Call {
                framework,
                stream,
                call,
                reply,
            } => {
                self.metrics.message(call.name());
                match self.check_subscribed(&framework, &stream) {
                    Ok(()) => self.call(&framework, call, reply, now),
                    Err(e) => self.reply(reply, Reply::Done(Err(e))),
                }
            }
            Input::RegisterAgent {
                reg,
                session,
                new_id,
                reply,
            } => {
                self.metrics.message("register_agent");
                self.register_agent(*reg, session, new_id, reply, now);
            }
            Input::AttachAgent {
                agent,
                session,
                reply,
            } => {
                let res = self.attach_agent(&agent, &session);
                self.reply(reply, Reply::Done(res));
            }
            Input::FromAgent {
                agent,
                session,
                msg,
            } => self.on_agent_message(&agent, &session, msg),
            Input::AgentStreamClosed { agent, session } => {
                self.agent_stream_closed(&agent, &session)
            }
            Input::Allocate { congested } => self.allocate(now, &congested),
            Input::PingAgents => {
                self.ping_agents();
                self.gc_unreachable_agents();
            }
            Input::HeartbeatFrameworks => self.heartbeat_frameworks(),
            Input::Housekeeping => self.housekeeping(now),
            Input::RecordCapacity(sample) => self.record_capacity(sample),
            Input::SetMaintenance {
                agent,
                change,
                reply,
            } => self.set_maintenance(&agent, change, reply),
            Input::Durable { up_to } => self.on_durable(up_to, now),
            Input::WriteFailed { seqs, reason } => self.on_write_failed(&seqs, &reason),
        }
        self.out.take()
    }

    fn call(&mut self, fw: &FrameworkId, call: SchedulerCall, reply: ReplyToken, now: MonoTime) {
        let res = match call {
            SchedulerCall::Accept {
                offer_ids,
                tasks,
                refuse_seconds,
            } => {
                self.accept(fw, offer_ids, tasks, refuse_seconds, now);
                Ok(())
            }
            SchedulerCall::Decline {
                offer_ids,
                refuse_seconds,
            } => {
                self.decline(fw, &offer_ids, refuse_seconds, now);
                Ok(())
            }
            SchedulerCall::Revive { roles } => {
                self.revive(fw, &roles);
                Ok(())
            }
            SchedulerCall::Suppress { roles } => {
                self.suppress(fw, &roles);
                Ok(())
            }
            SchedulerCall::Kill { task, agent, grace } => {
                self.kill_task(fw, &task, agent.as_ref(), grace);
                Ok(())
            }
            SchedulerCall::Acknowledge { agent, task, uuid } => {
                self.acknowledge(fw, &agent, &task, uuid)
            }
            SchedulerCall::AcknowledgeMany { acks } => self.acknowledge_many(fw, acks),
            SchedulerCall::Reconcile { tasks } => {
                self.reconcile(fw, &tasks);
                Ok(())
            }
            SchedulerCall::Teardown => {
                info!(framework = %fw, "teardown requested");
                // Answered once the removal is durable.
                self.remove_framework(fw, "teardown", Some(reply), now);
                return;
            }
            SchedulerCall::UpdateFramework { info, suppressed } => {
                match self.update_framework(fw, info, suppressed, reply) {
                    Ok(()) => return, // answered once durable
                    Err(e) => Err(e),
                }
            }
        };
        self.reply(reply, Reply::Done(res));
    }

    fn check_subscribed(&self, fw: &FrameworkId, stream: &StreamId) -> Result<(), CallError> {
        match self.frameworks.get(fw).map(|f| f.stream()) {
            Some(Some(s)) if s == stream => Ok(()),
            Some(Some(_)) => Err(CallError::FailedPrecondition(format!(
                "framework {fw}: stream id {stream} is not the current subscription"
            ))),
            _ if self.framework_removed(fw) => Err(CallError::PermissionDenied(format!(
                "framework {fw} has been removed"
            ))),
            _ => {
                debug!(framework = %fw, "call before SUBSCRIBED");
                Err(CallError::FailedPrecondition(format!(
                    "framework {fw} is not subscribed"
                )))
            }
        }
    }

    // ---- effects ----

    pub(crate) fn reply(&mut self, token: ReplyToken, reply: Reply) {
        self.out.push(Effect::Reply { token, reply });
    }

    /// Queues an event for the framework's current stream; false if it has none.
    pub(crate) fn send_event(&mut self, fw: &FrameworkId, event: FrameworkEvent) -> bool {
        let Some(stream) = self.frameworks.get(fw).and_then(|f| f.stream()).cloned() else {
            return false;
        };
        self.out.push(Effect::ToFramework {
            framework: fw.clone(),
            stream,
            event,
        });
        true
    }

    /// Queues a message for the agent's open stream; false if it has none.
    pub(crate) fn send_to_agent(&mut self, agent: &AgentId, msg: ToAgent) -> bool {
        let Some(session) = self
            .agents
            .get(agent)
            .and_then(|a| a.conn.open_session())
            .cloned()
        else {
            return false;
        };
        self.out.push(Effect::ToAgent {
            agent: agent.clone(),
            session,
            msg,
        });
        true
    }

    // ---- registry: propose → durable → applied → continue ----

    /// Proposes the commands that change the registry; `after` runs once the
    /// last of them is durable and applied. Returns `after` at once if none
    /// would change anything (nothing is written).
    pub(crate) fn propose(
        &mut self,
        cmds: Vec<RegistryCommand>,
        after: AfterCommit,
    ) -> Option<AfterCommit> {
        let cmds: Vec<RegistryCommand> = cmds
            .into_iter()
            .filter(|c| self.registry.changes(c) || self.pending_touches(c))
            .collect();
        let n = cmds.len();
        if n == 0 {
            return Some(after);
        }
        let mut after = Some(after);
        for (i, cmd) in cmds.into_iter().enumerate() {
            self.proposals.next_seq += 1;
            let seq = self.proposals.next_seq;
            let entry = LogEntry::V1(cmd);
            let then = if i + 1 == n {
                after.take().unwrap_or(AfterCommit::Nothing)
            } else {
                AfterCommit::Nothing
            };
            self.out.push(Effect::Propose {
                seq,
                entry: Box::new(entry.clone()),
            });
            let LogEntry::V1(cmd) = &entry;
            *self.proposals.touching.entry(cmd.key()).or_default() += 1;
            if let RegistryCommand::RemoveFramework { id, .. } = cmd {
                self.proposals.removing.insert(id.clone());
            }
            self.proposals.pending.insert(seq, (entry, then));
        }
        None
    }

    /// A command that looks like a no-op against the applied registry may
    /// not be one against what is still in flight (e.g. re-admitting an
    /// agent whose removal is pending), so it is proposed anyway.
    fn pending_touches(&self, cmd: &RegistryCommand) -> bool {
        self.proposals.touching.contains_key(&cmd.key())
    }

    /// Whether the framework is removed, durably or by a proposal in flight.
    pub(crate) fn framework_removed(&self, fw: &FrameworkId) -> bool {
        self.registry.removed_frameworks.contains_key(fw) || self.proposals.removing.contains(fw)
    }

    /// Takes a proposal out of the in-flight set and its indexes.
    fn settle(&mut self, seq: u64) -> Option<(LogEntry, AfterCommit)> {
        let (entry, after) = self.proposals.pending.remove(&seq)?;
        let LogEntry::V1(cmd) = &entry;
        let key = cmd.key();
        if let Some(n) = self.proposals.touching.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.proposals.touching.remove(&key);
            }
        }
        if let RegistryCommand::RemoveFramework { id, .. } = cmd {
            self.proposals.removing.remove(id);
        }
        Some((entry, after))
    }

    fn on_durable(&mut self, up_to: u64, now: MonoTime) {
        while let Some(seq) = self.proposals.pending.keys().next().copied() {
            if seq > up_to {
                break;
            }
            let Some((log_entry, after)) = self.settle(seq) else {
                break;
            };
            if let Err(e) = self.registry.apply(&log_entry) {
                warn!(error = %e, "registry entry rejected on apply");
            }
            self.continue_after(after, now);
        }
    }

    fn on_write_failed(&mut self, seqs: &[u64], reason: &str) {
        for seq in seqs {
            let Some((_, after)) = self.settle(*seq) else {
                continue;
            };
            let err =
                CallError::Unavailable(format!("the registry could not be written: {reason}"));
            match after {
                AfterCommit::Nothing | AfterCommit::Unreachable(_) => {}
                AfterCommit::Reply(token) | AfterCommit::Maintenance { reply: token, .. } => {
                    self.reply(token, Reply::Done(Err(err)))
                }
                AfterCommit::Register(p) => self.reply(p.reply, Reply::Registered(Err(err))),
                AfterCommit::Subscribe(p) => {
                    self.out.push(Effect::CloseFramework { stream: p.stream });
                    self.reply(p.reply, Reply::Subscribed(Err(err)))
                }
            }
        }
    }

    pub(crate) fn continue_after(&mut self, after: AfterCommit, now: MonoTime) {
        match after {
            AfterCommit::Nothing => {}
            AfterCommit::Reply(token) => self.reply(token, Reply::Done(Ok(()))),
            AfterCommit::Register(p) => self.finish_registration(*p, now),
            AfterCommit::Subscribe(p) => self.finish_subscription(*p),
            AfterCommit::Unreachable(agent) => self.report_unreachable_tasks(&agent),
            AfterCommit::Maintenance { agent, reply } => self.maintenance_applied(&agent, reply),
        }
    }
}
