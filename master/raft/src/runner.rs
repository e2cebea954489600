//! An async driver for one [`Replica`] on real sockets (tokio).
//!
//! [`run_replica`] is the one task that owns the replica: it ticks every
//! `tick_interval`, steps messages from peers, accepts proposals and
//! [`Access`] requests (closures run against the state machine, ReadIndex
//! reads, membership changes), calls `drive` after each batch of inputs,
//! sends the output's messages over the transport, answers each proposal
//! once its fate is known and runs each linearizable read once this
//! replica has applied its read index. After every `drive` it calls
//! [`StateMachine::after_drive`], so a state machine can hand applied
//! watch events to watchers on the thread that applied them.
//!
//! [`spawn_replica_thread`] runs it on a dedicated OS thread with its own
//! current-thread runtime: `drive` fsyncs (RocksDB), and a blocking disk
//! write must never stall the process's tokio workers.
//!
//! The replica itself stays sans-IO; this is the only place that adds a clock.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;

use crate::state_machine::StateMachine;
use crate::storage::LogStore;
use crate::transport::Transport;
use crate::transport::grpc::{Inbound, inbound_channel};
use crate::{
    Applied, Completion, Early, EncodedSnapshot, Leadership, MembershipChange, Output, RaftError,
    Replica, Role, Token,
};

/// How often the replica ticks in production (its election timeout and
/// heartbeat are counted in ticks). Half of etcd's 100 ms: heartbeats every
/// 50 ms and elections after 0.5-1 s without a leader, so a master failover
/// takes well under a second (measured: median 0.61 s over 20 kill -9s,
/// against 1.2 s at 100 ms; BENCHMARKS.md). Masters sit on one network,
/// where a round trip is far below 50 ms, and the replica runs on its own
/// thread, so tokio load cannot delay its ticks; `--raft-tick-ms` raises it
/// for slow links or disks.
pub const TICK_INTERVAL: Duration = Duration::from_millis(50);
/// Inputs of one kind (messages, proposals, accesses) taken before one
/// `drive`: a burst of proposals is appended and fsynced once per batch
/// rather than once per entry.
pub const MAX_BATCH: usize = 256;
/// Queued proposals waiting for the replica's task.
pub const PROPOSAL_CAPACITY: usize = 1024;
/// Queued [`Access`] requests waiting for the replica's task. Reads and
/// watch registrations share it; a full queue makes callers wait.
pub const ACCESS_CAPACITY: usize = 1024;

/// The answer to one proposal: the applied entry, or why not (see
/// [`RaftError`]: `NotLeader`, `Dropped`, `Unknown`, `Stopped`, ...).
pub type ProposalResult = Result<Applied, RaftError>;
/// A proposal to replicate: the entry's bytes and where to answer.
pub type Proposal = (Vec<u8>, oneshot::Sender<ProposalResult>);
/// Work on this member's state machine, run right away.
pub type LocalAccess<S> = Box<dyn FnOnce(&mut S) + Send>;
/// Work run once a ReadIndex completes (this member has applied the read
/// index, so reading is linearizable), or with the reason it failed.
pub type ReadAccess<S> = Box<dyn FnOnce(Result<&mut S, RaftError>) + Send>;

/// A request to the replica's task other than a proposal.
pub enum Access<S> {
    /// Runs against this member's state machine as it is now:
    /// serializable reads, watch registration. Must not change replicated
    /// state, and must be quick: it runs on the replica's task, between
    /// ticks and drives.
    Local(LocalAccess<S>),
    /// Issues a ReadIndex and runs the closure when it completes (works on
    /// followers: they ask the leader), or with the error.
    Linearizable(ReadAccess<S>),
    /// Proposes a membership change; answered once it is applied here.
    ChangeMembership(MembershipChange, oneshot::Sender<ProposalResult>),
    /// Leader only: starts handing leadership to a member; answered once
    /// started (watch the status for the new leader).
    TransferLeadership(u64, oneshot::Sender<Result<(), RaftError>>),
}

impl<S> std::fmt::Debug for Access<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Local(_) => f.write_str("Access::Local"),
            Access::Linearizable(_) => f.write_str("Access::Linearizable"),
            Access::ChangeMembership(change, _) => {
                write!(f, "Access::ChangeMembership({change:?})")
            }
            Access::TransferLeadership(to, _) => write!(f, "Access::TransferLeadership({to})"),
        }
    }
}

/// The proposal channel of one runner.
pub fn proposal_channel() -> (mpsc::Sender<Proposal>, mpsc::Receiver<Proposal>) {
    mpsc::channel(PROPOSAL_CAPACITY)
}

/// The access channel of one runner.
pub fn access_channel<S>() -> (mpsc::Sender<Access<S>>, mpsc::Receiver<Access<S>>) {
    mpsc::channel(ACCESS_CAPACITY)
}

/// What [`run_replica`] receives: one bounded channel per kind of input.
#[derive(Debug)]
pub struct RunnerInputs<S> {
    /// Messages from peers (fed by the transport's server).
    pub inbound: mpsc::Receiver<Inbound>,
    /// Proposals of log entries.
    pub proposals: mpsc::Receiver<Proposal>,
    /// Reads, watch work and membership changes.
    pub access: mpsc::Receiver<Access<S>>,
}

/// The sending ends matching a [`RunnerInputs`].
#[derive(Debug)]
pub struct RunnerSenders<S> {
    /// For the peer server ([`crate::serve`]).
    pub inbound: mpsc::Sender<Inbound>,
    /// For proposers.
    pub proposals: mpsc::Sender<Proposal>,
    /// For readers and watch registration.
    pub access: mpsc::Sender<Access<S>>,
}

/// All three channels of one runner, with their named capacities.
pub fn runner_channels<S>() -> (RunnerSenders<S>, RunnerInputs<S>) {
    let (inbound, inbound_rx) = inbound_channel();
    let (proposals, proposals_rx) = proposal_channel();
    let (access, access_rx) = access_channel();
    let senders = RunnerSenders {
        inbound,
        proposals,
        access,
    };
    let inputs = RunnerInputs {
        inbound: inbound_rx,
        proposals: proposals_rx,
        access: access_rx,
    };
    (senders, inputs)
}

/// What a runner publishes after every `drive`. Its waiters are woken only
/// when the leadership or the voters change; the indexes are current for
/// whoever reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Role, term and known leader.
    pub leadership: Leadership,
    /// Last applied index.
    pub applied_index: u64,
    /// Highest index known to be committed.
    pub commit_index: u64,
    /// The voters as of the applied index, ascending.
    pub voters: Vec<u64>,
}

impl Status {
    /// The status of `replica` now.
    pub fn of<L: LogStore, S: StateMachine>(replica: &Replica<L, S>) -> Self {
        Status {
            leadership: replica.leadership(),
            applied_index: replica.applied_index(),
            commit_index: replica.commit_index(),
            voters: replica.voters(),
        }
    }

    /// Whether this member leads.
    pub fn is_leader(&self) -> bool {
        self.leadership.role == Role::Leader
    }
}

/// Requests waiting for their outcome.
struct Waiting<S> {
    proposals: BTreeMap<Token, oneshot::Sender<ProposalResult>>,
    reads: BTreeMap<Token, ReadAccess<S>>,
    next_token: Token,
}

impl<S> Waiting<S> {
    fn token(&mut self) -> Token {
        self.next_token += 1;
        self.next_token
    }
}

/// Drives `replica` until `shutdown` resolves, the replica stops (storage
/// error) or it is removed; returns it (its store survives a restart).
/// `status` receives the role and indexes after every `drive` (waking its
/// waiters only for a new leadership or voter set). Proposals
/// outstanding at the end are answered `Unknown`, reads `Stopped`; a
/// snapshot job still running is waited for (it holds the store open).
pub async fn run_replica<L, S, T>(
    mut replica: Replica<L, S>,
    mut transport: T,
    mut inputs: RunnerInputs<S>,
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
    let mut waiting = Waiting {
        proposals: BTreeMap::new(),
        reads: BTreeMap::new(),
        next_token: 0,
    };
    publish(&status, Status::of(&replica));
    // The periodic snapshot being encoded on a blocking thread, if any.
    let mut encoding: Option<tokio::task::JoinHandle<EncodedSnapshot>> = None;
    loop {
        let input = tokio::select! {
            () = &mut shutdown => break,
            done = async {
                match encoding.as_mut() {
                    Some(job) => job.await,
                    None => std::future::pending().await,
                }
            }, if encoding.is_some() => {
                encoding = None;
                finish_snapshot(&mut replica, done)
            }
            _ = ticker.tick() => replica.tick(),
            Some(first) = inputs.inbound.recv() => step_batch(&mut replica, first, &mut inputs.inbound),
            Some(first) = inputs.proposals.recv() => {
                propose_batch(&mut replica, first, &mut inputs.proposals, &mut waiting);
                Ok(())
            }
            Some(first) = inputs.access.recv() => {
                access_batch(&mut replica, first, &mut inputs.access, &mut waiting);
                Ok(())
            }
            // Ready after one yield, so inputs that are ready too get their
            // turn between steps; nothing to drive after it.
            () = tokio::task::yield_now(), if replica.state_machine().has_background_work() => {
                replica.state_machine_mut().background_work();
                continue;
            }
        };
        if input.is_err() {
            // Stopped or removed: `drive` below reports which.
            tracing::debug!(member = replica.id(), "replica refused input");
        }
        let driving = std::time::Instant::now();
        // A leader's appends leave before its own fsync (see `drive_sending_early`).
        let mut early = |item: Early| match item {
            Early::Message(message) => transport.send(message),
            Early::Completion(completion) => answer(&mut waiting, completion),
        };
        let mut output = match replica.drive_sending_early(&mut early) {
            Ok(output) => output,
            Err(error) => {
                tracing::error!(member = replica.id(), %error, "replica stopped");
                break;
            }
        };
        let removed = output.removed;
        if let Some(job) = output.snapshot_job.take() {
            tracing::debug!(index = job.index(), drive = ?driving.elapsed(), "state copied for a snapshot");
            // Encoding a copy (CPU) and staging its data in the store (IO):
            // never on this thread.
            encoding = Some(tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let encoded = job.run();
                tracing::debug!(elapsed = ?started.elapsed(), "snapshot encoded and staged");
                encoded
            }));
        }
        deliver(output, &mut replica, &mut transport, &mut waiting);
        replica.state_machine_mut().after_drive();
        for peer in transport.take_unreachable() {
            replica.report_unreachable(peer);
        }
        publish(&status, Status::of(&replica));
        if removed || replica.is_removed() || replica.is_stopped() {
            break;
        }
    }
    wind_down(waiting, encoding).await;
    replica
}

/// The end of a run: outstanding proposals are answered `Unknown`, reads
/// `Stopped`, and a snapshot job still encoding is waited for: it holds
/// the store's database open (its stager writes there), and whoever
/// reopens the directory next must find it free. Its snapshot is not
/// recorded; the next one removes its staged data.
async fn wind_down<S>(
    waiting: Waiting<S>,
    encoding: Option<tokio::task::JoinHandle<EncodedSnapshot>>,
) {
    for (_, reply) in waiting.proposals {
        let _ = reply.send(Err(RaftError::Unknown));
    }
    for (_, read) in waiting.reads {
        read(Err(RaftError::Stopped));
    }
    if let Some(job) = encoding {
        let _ = job.await;
    }
}

/// Stores a snapshot encoded on a blocking thread (see
/// `ReplicaConfig::background_snapshots`).
fn finish_snapshot<L: LogStore, S: StateMachine>(
    replica: &mut Replica<L, S>,
    done: Result<EncodedSnapshot, tokio::task::JoinError>,
) -> Result<(), RaftError> {
    match done {
        Ok(encoded) => {
            let started = std::time::Instant::now();
            let result = replica.finish_snapshot(encoded);
            tracing::debug!(elapsed = ?started.elapsed(), "snapshot stored");
            result
        }
        Err(error) => {
            tracing::error!(member = replica.id(), %error, "encoding a snapshot failed");
            replica.abandon_snapshot();
            Ok(())
        }
    }
}

/// Stores `now` in `status`. The indexes move after nearly every drive,
/// thousands of times a second under load; waking every task that waits on
/// the status (the master's leadership loop, the lease duties) for each of
/// them cost every member two thread wake-ups per drive. So waiters are
/// woken only when the role, term, leader or voters change; whoever reads
/// the status still sees the current indexes.
fn publish(status: &watch::Sender<Status>, now: Status) {
    status.send_if_modified(|held| {
        let wake = held.leadership != now.leadership || held.voters != now.voters;
        *held = now;
        wake
    });
}

/// Steps `first` and up to [`MAX_BATCH`] - 1 more queued messages.
fn step_batch<L: LogStore, S: StateMachine>(
    replica: &mut Replica<L, S>,
    first: Inbound,
    inbound: &mut mpsc::Receiver<Inbound>,
) -> Result<(), RaftError> {
    let mut result = replica.step(first.1);
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

/// Proposes `first` and up to [`MAX_BATCH`] - 1 more queued proposals, so
/// the next `drive` appends (and fsyncs) them together.
fn propose_batch<L: LogStore, S: StateMachine>(
    replica: &mut Replica<L, S>,
    first: Proposal,
    proposals: &mut mpsc::Receiver<Proposal>,
    waiting: &mut Waiting<S>,
) {
    let mut next = Some(first);
    let mut taken = 0;
    while let Some((data, reply)) = next.take() {
        let token = waiting.token();
        match replica.propose(data, token) {
            Ok(()) => {
                waiting.proposals.insert(token, reply);
            }
            Err(error) => {
                // The proposer gave up if its receiver is gone: nothing to tell.
                let _ = reply.send(Err(error));
            }
        }
        taken += 1;
        if taken < MAX_BATCH {
            next = proposals.try_recv().ok();
        }
    }
}

/// Handles `first` and up to [`MAX_BATCH`] - 1 more queued accesses.
fn access_batch<L: LogStore, S: StateMachine>(
    replica: &mut Replica<L, S>,
    first: Access<S>,
    access: &mut mpsc::Receiver<Access<S>>,
    waiting: &mut Waiting<S>,
) {
    let mut next = Some(first);
    let mut taken = 0;
    while let Some(request) = next.take() {
        match request {
            Access::Local(work) => work(replica.state_machine_mut()),
            Access::Linearizable(read) => {
                let token = waiting.token();
                match replica.read_index(token) {
                    Ok(()) => {
                        waiting.reads.insert(token, read);
                    }
                    Err(error) => read(Err(error)),
                }
            }
            Access::ChangeMembership(change, reply) => {
                let token = waiting.token();
                match replica.propose_conf_change(change, token) {
                    Ok(()) => {
                        waiting.proposals.insert(token, reply);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            Access::TransferLeadership(to, reply) => {
                let _ = reply.send(replica.transfer_leadership(to));
            }
        }
        taken += 1;
        if taken < MAX_BATCH {
            next = access.try_recv().ok();
        }
    }
}

/// Sends the output's messages, answers its completions and runs the
/// reads it completed.
fn deliver<L: LogStore, S: StateMachine, T: Transport>(
    output: Output,
    replica: &mut Replica<L, S>,
    transport: &mut T,
    waiting: &mut Waiting<S>,
) {
    for message in output.messages {
        transport.send(message);
    }
    for completion in output.completions {
        answer(waiting, completion);
    }
    for read in output.reads {
        if let Some(work) = waiting.reads.remove(&read.token) {
            match read.result {
                Ok(_index) => work(Ok(replica.state_machine_mut())),
                Err(error) => work(Err(error)),
            }
        }
    }
}

/// Answers the proposer waiting for `completion`, if it still waits.
fn answer<S>(waiting: &mut Waiting<S>, completion: Completion) {
    if let Some(reply) = waiting.proposals.remove(&completion.token) {
        // The proposer gave up if its receiver is gone: nothing to tell.
        let _ = reply.send(completion.result);
    }
}

/// Runs [`run_replica`] on a new OS thread named `raft-<id>` with its own
/// current-thread tokio runtime, so `drive`'s fsyncs never block the
/// caller's runtime. `make_transport` runs on that runtime (the gRPC
/// transport spawns its peer tasks there); if it fails, the thread logs
/// the error and hands the replica back untouched. Join the handle to get
/// the replica back after `shutdown`.
pub fn spawn_replica_thread<L, S, T, M, F>(
    replica: Replica<L, S>,
    make_transport: M,
    inputs: RunnerInputs<S>,
    tick_interval: Duration,
    status: watch::Sender<Status>,
    shutdown: F,
) -> std::io::Result<std::thread::JoinHandle<Replica<L, S>>>
where
    L: LogStore + Send + 'static,
    S: StateMachine + Send + 'static,
    T: Transport,
    M: FnOnce() -> Result<T, String> + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let id = replica.id();
    std::thread::Builder::new()
        .name(format!("raft-{id}"))
        .spawn(move || {
            runtime.block_on(async move {
                match make_transport() {
                    Ok(transport) => {
                        run_replica(replica, transport, inputs, tick_interval, status, shutdown)
                            .await
                    }
                    Err(error) => {
                        tracing::error!(member = id, %error, "raft transport failed");
                        replica
                    }
                }
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follower_status(term: u64, applied: u64) -> Status {
        Status {
            leadership: Leadership {
                role: Role::Follower,
                term,
                leader: Some(1),
            },
            applied_index: applied,
            commit_index: applied,
            voters: vec![1, 2, 3],
        }
    }

    #[test]
    fn moving_indexes_update_the_status_without_waking_its_waiters() {
        let (sender, mut waiter) = watch::channel(follower_status(2, 10));
        waiter.borrow_and_update();
        publish(&sender, follower_status(2, 11));
        assert_eq!(waiter.has_changed().ok(), Some(false));
        assert_eq!(waiter.borrow().applied_index, 11);
        assert_eq!(waiter.borrow().commit_index, 11);
    }

    /// Publishes `now`; what a waiter wakes to, or `None` if it is not woken.
    fn woken_by(
        sender: &watch::Sender<Status>,
        waiter: &mut watch::Receiver<Status>,
        now: Status,
    ) -> Option<Status> {
        publish(sender, now);
        let woken = waiter.has_changed().ok()?;
        woken.then(|| waiter.borrow_and_update().clone())
    }

    #[test]
    fn a_new_term_leader_or_voter_set_wakes_the_waiters() {
        let (sender, mut waiter) = watch::channel(follower_status(2, 10));
        waiter.borrow_and_update();
        let new_term = woken_by(&sender, &mut waiter, follower_status(3, 10));
        assert_eq!(new_term.map(|s| s.leadership.term), Some(3));

        let mut elected = follower_status(3, 12);
        elected.leadership.role = Role::Leader;
        elected.leadership.leader = Some(2);
        let elected = woken_by(&sender, &mut waiter, elected);
        assert_eq!(elected.map(|s| s.leadership.role), Some(Role::Leader));

        let mut shrunk = follower_status(3, 12);
        shrunk.voters = vec![1, 2];
        let shrunk = woken_by(&sender, &mut waiter, shrunk);
        assert_eq!(shrunk.map(|s| s.voters), Some(vec![1, 2]));
    }
}
