//! The leader's event loop: the sole owner of [`State`]. Commands come from
//! the API handlers, the SDK framework and a timer; each becomes one state
//! transition followed by `State::drive`, and the effects go out in order
//! through the sequencer (`dispatch.rs`): store writes first, then, once
//! durable, the SDK calls, events and the caller's answer. The loop never
//! awaits the store or the master.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agora_marathon_planner::{DeploymentId, InstanceId, PathId};
use agora_model::{AgentId, Drain, FrameworkId, MonoTime, Offer, TaskStatus};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::api::error::ApiError;
use crate::dispatch::{Pending, Reply};
use crate::state::records::FRAMEWORK_ID_KEY;
use crate::state::{DeployRequest, Effects, Now, State, apps::Deployed};

/// Commands the loop queue holds at most (senders wait beyond: backpressure).
pub(crate) const COMMAND_QUEUE: usize = 1024;
/// How often the loop wakes on its own (deadlines, delays, reconciliation).
const TICK: Duration = Duration::from_secs(1);

/// A read of the state, run inside the loop (renders JSON from borrowed
/// views; no copy of the state leaves the loop).
pub(crate) type Read = Box<dyn FnOnce(&State, Now) + Send>;

/// An API call.
pub(crate) enum ApiCall {
    Deploy {
        req: DeployRequest,
        reply: oneshot::Sender<Result<Deployed, ApiError>>,
    },
    Cancel {
        id: DeploymentId,
        force: bool,
        reply: oneshot::Sender<Result<Option<Deployed>, ApiError>>,
    },
    /// Kill tasks; with `scale`, lower the app's instances by as many.
    Kill {
        ids: Vec<InstanceId>,
        scale: bool,
        force: bool,
        reply: oneshot::Sender<Result<Option<Deployed>, ApiError>>,
    },
    ResetDelay {
        app: PathId,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    Read(Read),
}

/// Everything the loop reacts to.
pub(crate) enum Command {
    Api(ApiCall),
    Subscribed(FrameworkId),
    Offers(Vec<Offer>),
    Update(Box<TaskStatus>),
    /// The operator drains an agent (`Some`) or no longer does.
    AgentMaintenance(AgentId, Option<Drain>),
    /// A launch the master refused: these instances wait again.
    LaunchFailed(Vec<InstanceId>),
    /// A readiness check passed.
    Ready(InstanceId),
}

/// Clock readings for the state.
pub(crate) struct Clock {
    start: Instant,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Now {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Now {
            mono: MonoTime(self.start.elapsed().as_millis() as u64),
            wall_ms,
        }
    }
}

fn fresh_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs until the command channel closes or the sequencer goes away (a
/// failed store write: the state can no longer be trusted, so leadership is
/// given up and the next leader loads the store afresh).
pub(crate) async fn run(
    mut state: State,
    mut rx: mpsc::Receiver<Command>,
    out: mpsc::Sender<Pending>,
) {
    let clock = Clock::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let cmd = tokio::select! {
            c = rx.recv() => match c {
                Some(c) => Some(c),
                None => return,
            },
            _ = tick.tick() => None,
        };
        let now = clock.now();
        let (mut fx, reply) = match cmd {
            Some(c) => handle(&mut state, c, now),
            None => (state.tick(now), Reply::None),
        };
        fx.absorb(state.drive(now, &mut fresh_id));
        if out.send(Pending { effects: fx, reply }).await.is_err() {
            return;
        }
    }
}

fn handle(state: &mut State, cmd: Command, now: Now) -> (Effects, Reply) {
    match cmd {
        Command::Api(call) => handle_api(state, call, now),
        Command::Subscribed(id) => {
            let mut fx = Effects::default();
            if state.framework_id.as_ref() != Some(&id) {
                fx.write(FRAMEWORK_ID_KEY.into(), id.to_string().into_bytes());
                state.framework_id = Some(id);
            }
            // Offers were suppressed by the last leader, or filters stand.
            state.suppressed = false;
            // The master re-sends every drain under way right after this.
            state.draining.clear();
            fx.call(crate::state::Call::Revive);
            fx.absorb(state.reconcile_all(now));
            (fx, Reply::None)
        }
        Command::Offers(offers) => (state.offers(offers, now), Reply::None),
        Command::AgentMaintenance(agent, drain) => {
            (state.agent_maintenance(agent, drain), Reply::None)
        }
        Command::Update(status) => (state.status_update(&status, now), Reply::None),
        Command::LaunchFailed(ids) => (state.unplace(&ids), Reply::None),
        Command::Ready(id) => (state.mark_ready(&id), Reply::None),
    }
}

fn handle_api(state: &mut State, call: ApiCall, now: Now) -> (Effects, Reply) {
    match call {
        ApiCall::Deploy { req, reply } => match state.deploy(req, now, DeploymentId(fresh_id())) {
            Ok((d, fx)) => (fx, Reply::deployed(reply, d)),
            Err(e) => {
                let _ = reply.send(Err(e));
                (Effects::default(), Reply::None)
            }
        },
        ApiCall::Cancel { id, force, reply } => {
            match state.cancel_deployment(&id, force, now, DeploymentId(fresh_id())) {
                Ok((d, fx)) => (fx, Reply::maybe_deployed(reply, d)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                    (Effects::default(), Reply::None)
                }
            }
        }
        ApiCall::Kill {
            ids,
            scale,
            force,
            reply,
        } => match state.kill_tasks(&ids, scale, force, now, DeploymentId(fresh_id())) {
            Ok((d, fx)) => (fx, Reply::maybe_deployed(reply, d)),
            Err(e) => {
                let _ = reply.send(Err(e));
                (Effects::default(), Reply::None)
            }
        },
        ApiCall::ResetDelay { app, reply } => match state.reset_delay(&app) {
            Ok(fx) => (fx, Reply::done(reply)),
            Err(e) => {
                let _ = reply.send(Err(e));
                (Effects::default(), Reply::None)
            }
        },
        ApiCall::Read(read) => {
            read(state, now);
            (Effects::default(), Reply::None)
        }
    }
}
