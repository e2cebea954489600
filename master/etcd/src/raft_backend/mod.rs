//! [`RaftBackend`]: the etcd API over the masters' Raft group, so every
//! member answers etcd clients.
//!
//! - Writes (and lease commands) go to the leader: on the leader they are
//!   stamped with its clock and proposed to the runner; on a follower they
//!   are forwarded to the leader's etcd port over the internal `Forward`
//!   service (`forward.rs`), with a timeout. `NotLeader`/`Dropped` (known
//!   not committed) are retried within a deadline; an unknown outcome is
//!   etcd's "request timed out", never a success.
//! - Linearizable reads use ReadIndex through the runner's access channel
//!   (followers too); serializable ranges read this member's state.
//! - Watches are registered on this member's own watchers (any member
//!   serves them); events come from its own applied log (`KvMachine`).
//! - The leader's duties (`duties.rs`): `LeasePromote` on each new term,
//!   then expired leases every `expiry_interval`; and progress notices.
//! - Membership changes (`membership.rs`) are routed to the leader as
//!   writes are, and made there by the host's [`MemberChanges`];
//!   Defragment runs the host's [`Defragment`] on a blocking thread.
//!
//! Generic over the state machine ([`KvHost`]): the keyspace may sit inside
//! a bigger machine; the backend reaches it only through `KvHost`. It never
//! sees the log store: the runner owns the replica.

mod compactor;
mod duties;
mod forward;
mod membership;
mod pipe;

pub use compactor::{AutoCompaction, Compactor, REVISION_MODE_INTERVAL};
pub use membership::MemberChanges;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_kv::{
    AlarmMember, Command, KvError, LeaseId, LeaseTimeToLive, LogEntry, RangeRequest, RangeResponse,
    ReadOnlyTxn, Response, Revision, WatchId, WatchRequest,
};
use agora_raft::{Access, KvAnswer, KvHost, KvMachine, Proposal, PublishedKv, RaftError, Status};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, timeout};

use crate::backend::{
    Backend, Header, KvHash, Member, MemberStatus, MemberUpdate, Space, WatchSink, stamp_time,
};
use crate::config::DEFAULT_PROGRESS_INTERVAL;
use crate::error::category_code;
use crate::{ApiError, Clock};

use forward::{ForwardAnswer, Forwarded};

/// The encoded answer refusing a forwarded request with `status` (an item
/// of a Pipe the backend could not take).
pub(crate) fn refusal(status: &tonic::Status) -> Vec<u8> {
    ForwardAnswer::refused(status).encode()
}

/// Who the members are: names and URLs by id. Tests use a static map
/// ([`StaticDirectory`]); the master publishes its members through the log.
pub trait MemberDirectory: Send + Sync + 'static {
    /// Member `id`, if known.
    fn member(&self, id: u64) -> Option<Member>;

    /// What the leader answered about a member just added: known here
    /// before this member's own copy of the log's addresses catches up,
    /// so a MemberList right after a MemberAdd lists it in full.
    fn learn(&self, member: &Member) {
        let _ = member;
    }
}

/// A fixed [`MemberDirectory`].
#[derive(Debug, Clone, Default)]
pub struct StaticDirectory(pub BTreeMap<u64, Member>);

impl MemberDirectory for StaticDirectory {
    fn member(&self, id: u64) -> Option<Member> {
        self.0.get(&id).cloned()
    }
}

/// Rewrites this member's store without the records it deleted (etcd's
/// Defragment). Blocking: the backend runs it on a blocking thread.
pub type Defragment = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Timings of a [`RaftBackend`], with etcd's values where etcd has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTimings {
    /// How often the leader looks for expired leases (etcd: 500 ms).
    pub expiry_interval: Duration,
    /// How often watchers that asked for progress notices get one.
    pub progress_interval: Duration,
    /// Longest wait for a forwarded request's answer from the leader.
    pub forward_timeout: Duration,
    /// Longest a request waits overall: for a leader, its commit and its
    /// retries (etcd: 5 s plus two election timeouts).
    pub request_timeout: Duration,
    /// How long a member may know no leader before it ends the streams
    /// of clients that require one (etcd: three election timeouts, 3 s by
    /// its defaults; the same here, far above Agora's elections).
    pub no_leader_grace: Duration,
}

impl Default for RaftTimings {
    fn default() -> Self {
        RaftTimings {
            expiry_interval: Duration::from_millis(500),
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
            forward_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(7),
            no_leader_grace: Duration::from_secs(3),
        }
    }
}

/// First pause before retrying a request that was known not to commit;
/// doubles up to [`MAX_RETRY_PAUSE`]. Short: the usual cause is an election.
const MIN_RETRY_PAUSE: Duration = Duration::from_millis(10);
/// Longest pause between retries.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Most attempts of one request (besides the deadline): a bound on the
/// work a request can cause while leadership flaps.
const MAX_ATTEMPTS: u32 = 64;
/// How often a `physical` Compact looks whether this member has trimmed.
const TRIM_POLL: Duration = Duration::from_millis(10);

/// Settings and channels of a [`RaftBackend`].
pub struct RaftBackendConfig<S> {
    /// Reported as the cluster id.
    pub cluster_id: u64,
    /// This member's id.
    pub member_id: u64,
    /// Names and client URLs of the members (for forwarding and MemberList).
    pub directory: Arc<dyn MemberDirectory>,
    /// The runner's proposal channel.
    pub proposals: mpsc::Sender<Proposal>,
    /// The runner's access channel.
    pub access: mpsc::Sender<Access<S>>,
    /// The runner's status after every `drive`.
    pub status: watch::Receiver<Status>,
    /// The keyspace's revision ([`KvMachine::published_revision`]).
    pub revision: PublishedKv,
    /// This member's clock: lease times of what it proposes as leader.
    pub clock: Arc<dyn Clock>,
    /// Timings.
    pub timings: RaftTimings,
    /// How much keyspace history the leader keeps before compacting it.
    pub auto_compaction: AutoCompaction,
    /// How the host changes the group's members (MemberAdd, MemberRemove,
    /// MemberUpdate); `None` refuses them as `Unimplemented`.
    pub member_changes: Option<Arc<dyn MemberChanges>>,
    /// Defragments this member's store; `None`: nothing on disk to do.
    pub defragment: Option<Defragment>,
}

/// The etcd API's backend over a Raft group; cheap to clone. Its duty task
/// ends when the last clone is dropped.
pub struct RaftBackend<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for RaftBackend<S> {
    fn clone(&self) -> Self {
        RaftBackend {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> std::fmt::Debug for RaftBackend<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftBackend")
            .field("cluster_id", &self.inner.cluster_id)
            .field("member_id", &self.inner.member_id)
            .finish_non_exhaustive()
    }
}

struct Inner<S> {
    cluster_id: u64,
    member_id: u64,
    directory: Arc<dyn MemberDirectory>,
    /// To the runner: log entries to propose.
    proposals: mpsc::Sender<Proposal>,
    /// To the runner: reads and watch work.
    access: mpsc::Sender<Access<S>>,
    /// From the runner: role, term, leader, indexes.
    status: watch::Receiver<Status>,
    revision: PublishedKv,
    clock: Arc<dyn Clock>,
    timings: RaftTimings,
    auto_compaction: AutoCompaction,
    member_changes: Option<Arc<dyn MemberChanges>>,
    defragment: Option<Defragment>,
    /// Pipes to other members' Forward services, by member id.
    /// Locked only to look up or swap an entry, never across an await.
    pipes: Mutex<BTreeMap<u64, pipe::Pipe>>,
}

/// What one attempt at a request gave: an answer, or "not committed, try
/// again" (possibly on another leader).
type Attempt<T> = Result<Result<T, ApiError>, Retry>;

/// The request is known not to have taken effect; retrying is safe.
#[derive(Debug)]
struct Retry;

impl<S: KvHost> RaftBackend<S> {
    /// A backend over the runner's channels; starts its duty task (lease
    /// expiry and promotion as leader, progress notices) on the current
    /// tokio runtime (call it inside one, as `LocalBackend::start`). The
    /// runner may live on another runtime or thread
    /// (`agora_raft::spawn_replica_thread`): only channels connect them.
    pub fn start(config: RaftBackendConfig<S>) -> RaftBackend<S> {
        let inner = Arc::new(Inner {
            cluster_id: config.cluster_id,
            member_id: config.member_id,
            directory: config.directory,
            proposals: config.proposals,
            access: config.access,
            status: config.status,
            revision: config.revision,
            clock: config.clock,
            timings: config.timings,
            auto_compaction: config.auto_compaction,
            member_changes: config.member_changes,
            defragment: config.defragment,
            pipes: Mutex::new(BTreeMap::new()),
        });
        tokio::spawn(duties::run(Arc::downgrade(&inner)));
        RaftBackend { inner }
    }
}

impl<S: KvHost> Inner<S> {
    fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Runs `request` on the leader: here if this member leads, else
    /// forwarded; retried while it is known not to have taken effect.
    async fn route(&self, request: Forwarded) -> Result<forward::Answer, ApiError> {
        let deadline = Instant::now() + self.timings.request_timeout;
        let mut pause = MIN_RETRY_PAUSE;
        for _ in 0..MAX_ATTEMPTS {
            let leader = self.leader(deadline).await?;
            let attempt = if leader == self.member_id {
                self.serve_here(request.clone()).await
            } else {
                self.forward(leader, &request).await
            };
            match attempt {
                Ok(result) => return result.map_err(typed),
                Err(Retry) if Instant::now() + pause < deadline => {
                    sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                Err(Retry) => break,
            }
        }
        Err(ApiError::NoLeader)
    }

    /// The leader this member knows of, waiting for one until `deadline`.
    async fn leader(&self, deadline: Instant) -> Result<u64, ApiError> {
        let mut status = self.status.clone();
        loop {
            // A member whose replica has stopped (removed from the group, or
            // failed) must not serve, not even by forwarding to the leader.
            if status.has_changed().is_err() {
                return Err(ApiError::Stopped);
            }
            let (member, leader) = {
                let now = status.borrow_and_update();
                let member = now.voters.is_empty() || now.voters.contains(&self.member_id);
                (member, now.leadership.leader)
            };
            if !member {
                return Err(ApiError::Stopped);
            }
            if let Some(leader) = leader {
                return Ok(leader);
            }
            match tokio::time::timeout_at(deadline, status.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(ApiError::Stopped),
                Err(_) => return Err(ApiError::NoLeader),
            }
        }
    }

    /// Serves `request` as the leader (it may have just lost leadership:
    /// then the runner answers `NotLeader` and the caller retries).
    async fn serve_here(&self, request: Forwarded) -> Attempt<forward::Answer> {
        match request {
            Forwarded::Apply(command) => {
                let answer = self.propose(command).await?;
                Ok(answer.map(forward::Answer::Response))
            }
            Forwarded::TimeToLive { id, keys } => {
                let clock = Arc::clone(&self.clock);
                let read =
                    move |kv: &KvMachine| kv.state().lease_time_to_live(id, clock.now_ms(), keys);
                let answer = self.read_index(read).await?;
                Ok(answer.map(forward::Answer::TimeToLive))
            }
            Forwarded::Members(request) => self.change_members(request).await,
        }
    }

    /// Stamps `command` with this member's clock and proposes it.
    async fn propose(&self, mut command: Command) -> Attempt<Response> {
        stamp_time(&mut command, self.clock.now_ms());
        let entry = S::encode_kv_entry(&LogEntry::V1(command));
        let (reply, answer) = oneshot::channel();
        if self.proposals.send((entry, reply)).await.is_err() {
            return Ok(Err(ApiError::Stopped));
        }
        let applied = match timeout(self.timings.request_timeout, answer).await {
            Err(_) => return Ok(Err(ApiError::Timeout)),
            Ok(Err(_)) => return Ok(Err(ApiError::Stopped)),
            Ok(Ok(Err(error))) => return raft_error(error),
            Ok(Ok(Ok(applied))) => applied,
        };
        Ok(match KvMachine::decode_answer(&applied.response) {
            Some(KvAnswer::Done(response)) => Ok(response),
            Some(KvAnswer::Failed {
                category,
                message,
                compact_revision,
            }) => Err(match compact_revision {
                Some(compact_revision) => ApiError::Kv(KvError::Compacted { compact_revision }),
                None => typed(ApiError::Remote {
                    code: category_code(category),
                    message,
                }),
            }),
            None => Err(ApiError::WrongResponse("a keyspace command")),
        })
    }

    /// One ReadIndex read of the keyspace on this member.
    async fn read_index<T, F>(&self, read: F) -> Attempt<T>
    where
        T: Send + 'static,
        F: FnOnce(&KvMachine) -> Result<T, KvError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let access = Access::Linearizable(Box::new(move |state: Result<&mut S, RaftError>| {
            let _ = reply.send(state.map(|s| read(s.kv())));
        }));
        if self.access.send(access).await.is_err() {
            return Ok(Err(ApiError::Stopped));
        }
        match timeout(self.timings.request_timeout, answer).await {
            Err(_) => Ok(Err(ApiError::Timeout)),
            Ok(Err(_)) => Ok(Err(ApiError::Stopped)),
            Ok(Ok(Err(error))) => raft_error(error),
            Ok(Ok(Ok(result))) => Ok(result.map_err(ApiError::from)),
        }
    }

    /// A linearizable read, retried while there is no leader to confirm it.
    async fn linearizable<T, F>(&self, read: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: Fn(&KvMachine) -> Result<T, KvError> + Clone + Send + 'static,
    {
        let deadline = Instant::now() + self.timings.request_timeout;
        let mut pause = MIN_RETRY_PAUSE;
        for _ in 0..MAX_ATTEMPTS {
            match self.read_index(read.clone()).await {
                Ok(result) => return result,
                Err(Retry) if Instant::now() + pause < deadline => {
                    sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                Err(Retry) => break,
            }
        }
        Err(ApiError::NoLeader)
    }

    /// Runs `work` on this member's state machine now.
    async fn local<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let access = Access::Local(Box::new(move |state: &mut S| {
            let _ = reply.send(work(state));
        }));
        self.access
            .send(access)
            .await
            .map_err(|_| ApiError::Stopped)?;
        answer.await.map_err(|_| ApiError::Stopped)
    }

    /// Fire-and-forget watch work (cancel, acknowledge, progress): called
    /// from `Drop` and sync code, so it must not wait for a busy runner.
    fn note(&self, work: impl FnOnce(&mut S) + Send + 'static) {
        let access = Access::Local(Box::new(work));
        match self.access.try_send(access) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(access)) => {
                // A lost acknowledgement would stall its watcher: queue it.
                let sender = self.access.clone();
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        let _ = sender.send(access).await;
                    });
                }
            }
        }
    }
}

/// `error` as the keyspace's own error if it is one that arrived as code
/// and text (the state machine's answer bytes, or the leader's answer to a
/// forwarded request): handlers answer some of them as etcd does rather
/// than fail (a keep-alive of a lost lease is TTL 0, TimeToLive is -1),
/// and must do so on every member alike.
fn typed(error: ApiError) -> ApiError {
    match error {
        ApiError::Remote { code, message } => {
            match KvError::from_text(&message).filter(|kv| category_code(kv.category()) == code) {
                Some(kv) => ApiError::Kv(kv),
                None => ApiError::Remote { code, message },
            }
        }
        other => other,
    }
}

/// Maps the engine's error for a request: retry only what is known not to
/// have taken effect.
fn raft_error<T>(error: RaftError) -> Attempt<T> {
    match error {
        RaftError::NotLeader { .. } | RaftError::Dropped => Err(Retry),
        RaftError::Unknown => Ok(Err(ApiError::Timeout)),
        RaftError::ConfChange(_)
        | RaftError::Stopped
        | RaftError::Removed
        | RaftError::Storage(_)
        | RaftError::Corrupt { .. } => Ok(Err(ApiError::Stopped)),
    }
}

impl<S: KvHost> RaftBackend<S> {
    /// Proposes `command` on the leader, from whichever member this is.
    async fn propose_anywhere(&self, command: Command) -> Result<Response, ApiError> {
        match self.inner.route(Forwarded::Apply(command)).await? {
            forward::Answer::Response(response) => Ok(response),
            forward::Answer::TimeToLive(_) | forward::Answer::Member(_) => {
                Err(ApiError::WrongResponse("a command"))
            }
        }
    }
}

#[tonic::async_trait]
impl<S: KvHost> Backend for RaftBackend<S> {
    fn header(&self) -> Header {
        Header {
            cluster_id: self.inner.cluster_id,
            member_id: self.inner.member_id,
            revision: self.inner.revision.get(),
            raft_term: self.inner.status.borrow().leadership.term,
        }
    }

    fn has_leader(&self) -> bool {
        self.inner.status.borrow().leadership.leader.is_some()
    }

    async fn leader_lost(&self) {
        let mut status = self.inner.status.clone();
        loop {
            let no_leader = |status: &Status| status.leadership.leader.is_none();
            if status.wait_for(no_leader).await.is_err() {
                // The runner is gone: no leader will come back here.
                return;
            }
            let back = status.wait_for(|status| !no_leader(status));
            match tokio::time::timeout(self.inner.timings.no_leader_grace, back).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return,
            }
        }
    }

    async fn apply(&self, command: Command) -> Result<Response, ApiError> {
        match command {
            Command::Range(request) => self
                .inner
                .linearizable(move |kv| kv.state().range(&request))
                .await
                .map(Response::Range),
            // A txn that only reads is a read, as in etcd: ReadIndex on
            // this member, no log entry (confd polls with such txns).
            Command::Txn(request) => match ReadOnlyTxn::new(request) {
                Ok(read_only) => self
                    .inner
                    .linearizable(move |kv| kv.state().read_txn(&read_only))
                    .await
                    .map(Response::Txn),
                Err(request) => self.propose_anywhere(Command::Txn(request)).await,
            },
            command => self.propose_anywhere(command).await,
        }
    }

    async fn read(&self, request: RangeRequest) -> Result<RangeResponse, ApiError> {
        let range = self
            .inner
            .local(move |s: &mut S| s.kv().state().range(&request))
            .await?;
        range.map_err(ApiError::from)
    }

    /// Polls this member's keyspace: the compaction may be committed and
    /// not yet applied here (a follower answering for the leader), and its
    /// versions are trimmed `agora_raft::TRIM_BATCH` at a time between the
    /// runner's inputs.
    async fn compacted_physically(&self, revision: Revision) -> Result<(), ApiError> {
        let deadline = Instant::now() + self.inner.timings.request_timeout;
        loop {
            let done = (self.inner)
                .local(move |s: &mut S| {
                    let state = s.kv().state();
                    state.compact_revision() >= revision && !state.is_trimming()
                })
                .await?;
            if done {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ApiError::Timeout);
            }
            sleep(TRIM_POLL).await;
        }
    }

    async fn lease_time_to_live(
        &self,
        id: LeaseId,
        keys: bool,
    ) -> Result<LeaseTimeToLive, ApiError> {
        // The leader's clock is the one leases expire by.
        match self.inner.route(Forwarded::TimeToLive { id, keys }).await? {
            forward::Answer::TimeToLive(ttl) => Ok(ttl),
            forward::Answer::Response(_) | forward::Answer::Member(_) => {
                Err(ApiError::WrongResponse("LeaseTimeToLive"))
            }
        }
    }

    async fn leases(&self) -> Result<Vec<LeaseId>, ApiError> {
        self.inner.linearizable(|kv| Ok(kv.state().leases())).await
    }

    async fn watch(
        &self,
        request: WatchRequest,
        sink: WatchSink,
    ) -> Result<(WatchId, Revision), ApiError> {
        let registered = self
            .inner
            .local(move |s: &mut S| s.kv_mut().watch(request, sink))
            .await?;
        registered.map_err(ApiError::from)
    }

    fn cancel_watch(&self, id: WatchId) {
        self.inner
            .note(move |s: &mut S| s.kv_mut().cancel_watch(id));
    }

    fn acknowledge(&self, id: WatchId, count: usize) {
        self.inner
            .note(move |s: &mut S| s.kv_mut().acknowledge(id, count));
    }

    fn request_progress(&self, ids: Vec<WatchId>, sink: WatchSink) {
        self.inner
            .note(move |s: &mut S| s.kv_mut().request_progress(ids, sink));
    }

    async fn members(&self) -> Result<Vec<Member>, ApiError> {
        let voters = self.inner.status().voters;
        let members = voters
            .into_iter()
            .map(|id| {
                self.inner.directory.member(id).unwrap_or(Member {
                    id,
                    ..Member::default()
                })
            })
            .collect();
        Ok(members)
    }

    async fn hash_kv(&self, revision: Revision) -> Result<KvHash, ApiError> {
        (self.inner)
            .local(move |s: &mut S| s.kv().state().hash_kv(revision))
            .await?
            .map_err(ApiError::from)
    }

    async fn snapshot(&self) -> Result<Vec<u8>, ApiError> {
        // The runner's thread only copies the state; encoding walks all of
        // it, so it runs on a blocking thread (as periodic snapshots do).
        let encode = (self.inner).local(|s: &mut S| s.snapshot_task()).await?;
        let snapshot = tokio::task::spawn_blocking(encode)
            .await
            .map_err(|_| ApiError::Stopped)?;
        Ok(agora_raft::encode_backup(&snapshot))
    }

    async fn move_leader(&self, target: u64) -> Result<(), ApiError> {
        let status = self.inner.status();
        if status.leadership.leader != Some(self.inner.member_id) {
            return Err(ApiError::NotLeader);
        }
        if !status.voters.contains(&target) {
            return Err(ApiError::BadLeaderTransferee);
        }
        if target == self.inner.member_id {
            return Ok(());
        }
        self.inner.transfer_leadership(target).await
    }

    async fn add_member(&self, peer_address: String) -> Result<Member, ApiError> {
        self.add(peer_address).await
    }

    async fn defragment(&self) -> Result<(), ApiError> {
        let Some(defragment) = self.inner.defragment.clone() else {
            return Ok(());
        };
        let done = tokio::task::spawn_blocking(move || defragment()).await;
        let failed = |message: String| ApiError::Remote {
            code: tonic::Code::Internal,
            message: format!("agora: defragment: {message}"),
        };
        match done {
            Ok(result) => result.map_err(failed),
            Err(_) => Err(failed("the defragmenting thread panicked".to_string())),
        }
    }

    async fn remove_member(&self, id: u64) -> Result<(), ApiError> {
        self.remove(id).await
    }

    async fn update_member(&self, update: MemberUpdate) -> Result<(), ApiError> {
        self.update(update).await
    }

    fn space(&self) -> Space {
        Space {
            held_bytes: self.inner.revision.held_bytes(),
            nospace: self.inner.revision.nospace(),
        }
    }

    async fn alarms(&self) -> Result<Vec<AlarmMember>, ApiError> {
        self.inner.linearizable(|kv| Ok(kv.state().alarms())).await
    }

    async fn status(&self) -> Result<MemberStatus, ApiError> {
        let (held, alarms) = (self.inner)
            .local(|s: &mut S| (s.kv().state().stored_bytes(), s.kv().state().alarms()))
            .await?;
        let status = self.inner.status();
        Ok(MemberStatus {
            leader: status.leadership.leader.unwrap_or(0),
            raft_index: status.commit_index,
            raft_applied_index: status.applied_index,
            raft_term: status.leadership.term,
            db_size: i64::try_from(held).unwrap_or(i64::MAX),
            is_learner: false,
            errors: alarms.iter().map(crate::alarm::text).collect(),
        })
    }

    async fn forwarded(&self, request: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
        let request = Forwarded::decode(&request)?;
        let answer = if self.inner.status().is_leader() {
            match self.inner.serve_here(request).await {
                Ok(Ok(answer)) => ForwardAnswer::Done(answer),
                Ok(Err(error)) => ForwardAnswer::failed(&error),
                Err(Retry) => ForwardAnswer::Retry,
            }
        } else {
            // Leadership moved since the sender looked: it will look again.
            ForwardAnswer::Retry
        };
        Ok(answer.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn the_keyspaces_errors_come_back_typed() {
        let lost = KvError::LeaseNotFound.to_string();
        let remote = |code, message: &str| ApiError::Remote {
            code,
            message: message.to_string(),
        };
        assert_eq!(
            typed(remote(Code::NotFound, &lost)),
            ApiError::Kv(KvError::LeaseNotFound)
        );
        // Same text under another code did not come from the keyspace.
        assert_eq!(
            typed(remote(Code::Internal, &lost)),
            remote(Code::Internal, &lost)
        );
        let garbage = "agora: bad forwarded request: eof";
        assert_eq!(
            typed(remote(Code::InvalidArgument, garbage)),
            remote(Code::InvalidArgument, garbage)
        );
        assert_eq!(typed(ApiError::NoLeader), ApiError::NoLeader);
    }
}
