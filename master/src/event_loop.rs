//! The master's single event loop. It owns `Master` and is the only code that
//! mutates it. gRPC and HTTP handlers decode and validate requests, then send
//! a `Command` with a oneshot reply; timers are arms of the same `select!`.
use std::time::Duration;

use agora_model::{
    AgentId, FrameworkId, FrameworkInfo, OfferId, Role, TaskId, TaskSpec, TaskState, TaskStatus,
};
use agora_proto::convert::AgentInfo;
use agora_proto::v1;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};
use tonic::Status;
use tracing::{debug, info};

use crate::clock::Clock;
use crate::state::{AgentTx, Master};

/// Commands queued for the loop. Sized so a burst of status updates from
/// hundreds of agents does not block handlers; a full queue applies
/// back-pressure to callers (they await a slot) rather than dropping work.
pub(crate) const COMMAND_QUEUE: usize = 8192;

/// How often deadlines (framework failover, offer timeout, agent re-register)
/// are checked. Small enough for tests that use sub-second timeouts.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_millis(100);

pub(crate) type Reply<T> = oneshot::Sender<Result<T, Status>>;

/// A task as reported by a re-registering agent.
pub(crate) struct ReportedTask {
    pub(crate) framework: FrameworkId,
    pub(crate) spec: TaskSpec,
    pub(crate) state: TaskState,
    pub(crate) healthy: Option<bool>,
}

/// A validated Register request.
pub(crate) struct AgentRegistration {
    pub(crate) info: AgentInfo,
    pub(crate) tasks: Vec<ReportedTask>,
    pub(crate) frameworks: Vec<FrameworkInfo>,
    pub(crate) updates: Vec<(FrameworkId, TaskStatus)>,
}

/// Scheduler calls after decoding (task descriptions stay in wire form until
/// the offers tell which agent they go to).
pub(crate) enum SchedulerCall {
    Accept {
        offer_ids: Vec<OfferId>,
        tasks: Vec<v1::TaskInfo>,
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
            SchedulerCall::Reconcile { .. } => "reconcile",
            SchedulerCall::Teardown => "teardown",
            SchedulerCall::UpdateFramework { .. } => "update_framework",
        }
    }
}

/// What a successful Subscribe hands back to the gRPC handler.
pub(crate) struct Subscription {
    pub(crate) framework_id: FrameworkId,
    pub(crate) stream_id: String,
    pub(crate) events: mpsc::Receiver<Result<v1::Event, Status>>,
}

pub(crate) enum Command {
    Subscribe {
        info: FrameworkInfo,
        suppressed: Vec<Role>,
        reply: Reply<Subscription>,
    },
    FrameworkStreamClosed {
        framework: FrameworkId,
        stream_id: String,
    },
    Call {
        framework: FrameworkId,
        stream_id: String,
        call: SchedulerCall,
        reply: Reply<()>,
    },
    RegisterAgent {
        reg: Box<AgentRegistration>,
        reply: Reply<v1::RegisterResponse>,
    },
    AttachAgent {
        agent: AgentId,
        session: String,
        tx: AgentTx,
        reply: Reply<()>,
    },
    AgentMessage {
        agent: AgentId,
        session: String,
        msg: v1::agent_message::Message,
    },
    AgentStreamClosed {
        agent: AgentId,
        session: String,
    },
    GetState {
        reply: oneshot::Sender<serde_json::Value>,
    },
    GetMetrics {
        reply: oneshot::Sender<String>,
    },
}

/// Runs the loop until every command sender is gone or `shutdown` fires.
pub(crate) async fn run(
    mut master: Master,
    mut rx: mpsc::Receiver<Command>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let clock = Clock::new();
    let mut next_allocation = Instant::now() + master.cfg.allocation_interval;
    let mut pings = interval(master.cfg.agent_ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heartbeats = interval(master.cfg.framework_heartbeat_interval);
    heartbeats.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut housekeeping = interval(HOUSEKEEPING_PERIOD);
    housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    info!(master_id = %master.master_id, "master event loop started");
    loop {
        let alloc_at = if master.allocation_wanted {
            Instant::now()
        } else {
            next_allocation
        };
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            cmd = rx.recv() => match cmd {
                Some(cmd) => master.handle(cmd, clock.now()),
                None => break,
            },
            _ = sleep_until(alloc_at) => {
                master.allocate(clock.now());
                master.allocation_wanted = false;
                next_allocation = Instant::now() + master.cfg.allocation_interval;
            }
            _ = pings.tick() => {
                master.ping_agents();
                master.gc_unreachable_agents();
            }
            _ = heartbeats.tick() => master.heartbeat_frameworks(),
            _ = housekeeping.tick() => master.housekeeping(clock.now()),
        }
        master.metrics.queue_depth.set(rx.len() as i64);
    }
    info!("master event loop stopped");
}

impl Master {
    fn handle(&mut self, cmd: Command, now: agora_model::MonoTime) {
        match cmd {
            Command::Subscribe {
                info,
                suppressed,
                reply,
            } => {
                self.metrics.message("subscribe");
                let _ = reply.send(self.subscribe(info, suppressed));
            }
            Command::FrameworkStreamClosed {
                framework,
                stream_id,
            } => {
                self.framework_stream_closed(&framework, &stream_id, now);
            }
            Command::Call {
                framework,
                stream_id,
                call,
                reply,
            } => {
                self.metrics.message(call.name());
                let res = self
                    .check_subscribed(&framework, &stream_id)
                    .and_then(|()| self.call(&framework, call, now));
                let _ = reply.send(res);
            }
            Command::RegisterAgent { reg, reply } => {
                self.metrics.message("register_agent");
                let _ = reply.send(self.register_agent(*reg, now));
            }
            Command::AttachAgent {
                agent,
                session,
                tx,
                reply,
            } => {
                let _ = reply.send(self.attach_agent(&agent, &session, tx));
            }
            Command::AgentMessage {
                agent,
                session,
                msg,
            } => self.agent_message(&agent, &session, msg),
            Command::AgentStreamClosed { agent, session } => {
                self.agent_stream_closed(&agent, &session)
            }
            Command::GetState { reply } => {
                let _ = reply.send(self.state_json(now));
            }
            Command::GetMetrics { reply } => {
                let _ = reply.send(self.metrics_text());
            }
        }
    }

    fn call(
        &mut self,
        fw: &FrameworkId,
        call: SchedulerCall,
        now: agora_model::MonoTime,
    ) -> Result<(), Status> {
        match call {
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
            SchedulerCall::Reconcile { tasks } => {
                self.reconcile(fw, &tasks);
                Ok(())
            }
            SchedulerCall::Teardown => {
                info!(framework = %fw, "teardown requested");
                self.remove_framework(fw, "teardown");
                Ok(())
            }
            SchedulerCall::UpdateFramework { info, suppressed } => {
                self.update_framework(fw, info, suppressed)
            }
        }
    }

    fn check_subscribed(&self, fw: &FrameworkId, stream_id: &str) -> Result<(), Status> {
        match self.frameworks.get(fw) {
            Some(f) if f.connected() && f.stream_id.as_deref() == Some(stream_id) => Ok(()),
            Some(f) if f.connected() => Err(Status::failed_precondition(format!(
                "framework {fw}: stream id {stream_id:?} is not the current subscription"
            ))),
            _ => {
                debug!(framework = %fw, "call before SUBSCRIBED");
                Err(Status::failed_precondition(format!(
                    "framework {fw} is not subscribed"
                )))
            }
        }
    }
}
