//! An async driver for one [`Replica`] on real sockets (tokio).
//!
//! [`run_replica`] is the one task that owns the replica: it ticks every
//! `tick_interval`, steps messages from peers, accepts proposals, calls
//! `drive` after each batch of inputs, sends the output's messages over
//! the transport and answers each proposal once its fate is known. The
//! replica itself stays sans-IO; this is the only place that adds a clock.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;

use crate::state_machine::StateMachine;
use crate::storage::LogStore;
use crate::transport::Transport;
use crate::transport::grpc::Inbound;
use crate::{Applied, Leadership, Output, RaftError, Replica, Role, Token};

/// How often the replica ticks in production (its election timeout and
/// heartbeat are counted in ticks).
pub const TICK_INTERVAL: Duration = Duration::from_millis(100);
/// Inbound messages stepped before one `drive`.
pub const MAX_BATCH: usize = 256;
/// Queued proposals waiting for the replica's task.
pub const PROPOSAL_CAPACITY: usize = 1024;

/// The answer to one proposal: the applied entry, or why not (see
/// [`RaftError`]: `NotLeader`, `Dropped`, `Unknown`, `Stopped`, ...).
pub type ProposalResult = Result<Applied, RaftError>;
/// A proposal to replicate: the entry's bytes and where to answer.
pub type Proposal = (Vec<u8>, oneshot::Sender<ProposalResult>);

/// The proposal channel of one runner.
pub fn proposal_channel() -> (mpsc::Sender<Proposal>, mpsc::Receiver<Proposal>) {
    mpsc::channel(PROPOSAL_CAPACITY)
}

/// What a runner publishes after every `drive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Role, term and known leader.
    pub leadership: Leadership,
    /// Last applied index.
    pub applied_index: u64,
}

impl Status {
    /// The status of `replica` now.
    pub fn of<L: LogStore, S: StateMachine>(replica: &Replica<L, S>) -> Self {
        Status {
            leadership: replica.leadership(),
            applied_index: replica.applied_index(),
        }
    }

    /// Whether this member leads.
    pub fn is_leader(&self) -> bool {
        self.leadership.role == Role::Leader
    }
}

/// Drives `replica` until `shutdown` resolves, the replica stops (storage
/// error) or it is removed; returns it (its store survives a restart).
/// `status` receives the role and applied index after every `drive`.
/// Proposals outstanding at the end are answered `Unknown`.
pub async fn run_replica<L, S, T>(
    mut replica: Replica<L, S>,
    mut transport: T,
    mut inbound: mpsc::Receiver<Inbound>,
    mut proposals: mpsc::Receiver<Proposal>,
    tick_interval: Duration,
    status: watch::Sender<Status>,
    shutdown: impl Future<Output = ()>,
) -> Replica<L, S>
where
    L: LogStore,
    S: StateMachine,
    T: Transport,
{
    let mut ticker = tokio::time::interval(tick_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut waiting: BTreeMap<Token, oneshot::Sender<ProposalResult>> = BTreeMap::new();
    let mut next_token: Token = 0;
    status.send_replace(Status::of(&replica));
    loop {
        let input = tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => replica.tick(),
            Some((_from, message)) = inbound.recv() => {
                let mut result = replica.step(message);
                let mut stepped = 1;
                while result.is_ok() && stepped < MAX_BATCH {
                    let Ok((_from, message)) = inbound.try_recv() else {
                        break;
                    };
                    result = replica.step(message);
                    stepped += 1;
                }
                result
            }
            Some((data, reply)) = proposals.recv() => {
                next_token += 1;
                match replica.propose(data, next_token) {
                    Ok(()) => {
                        waiting.insert(next_token, reply);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
                Ok(())
            }
        };
        if input.is_err() {
            // Stopped or removed: `drive` below reports which.
            tracing::debug!(member = replica.id(), "replica refused input");
        }
        let output = match replica.drive() {
            Ok(output) => output,
            Err(error) => {
                tracing::error!(member = replica.id(), %error, "replica stopped");
                break;
            }
        };
        let removed = output.removed;
        deliver(output, &mut transport, &mut waiting);
        for peer in transport.take_unreachable() {
            replica.report_unreachable(peer);
        }
        status.send_replace(Status::of(&replica));
        if removed || replica.is_removed() || replica.is_stopped() {
            break;
        }
    }
    for (_, reply) in waiting {
        let _ = reply.send(Err(RaftError::Unknown));
    }
    replica
}

/// Sends the output's messages and answers its completions.
fn deliver<T: Transport>(
    output: Output,
    transport: &mut T,
    waiting: &mut BTreeMap<Token, oneshot::Sender<ProposalResult>>,
) {
    for message in output.messages {
        transport.send(message);
    }
    for completion in output.completions {
        if let Some(reply) = waiting.remove(&completion.token) {
            let _ = reply.send(completion.result);
        }
    }
}
