//! What the API handlers need from the replicated layer.
//!
//! The handlers only decode, validate, call a [`Backend`] and encode. A
//! backend decides how a command is ordered and applied: [`crate::LocalBackend`]
//! applies it in-process; [`crate::RaftBackend`] proposes writes to the
//! masters' log and answers reads from local state after a ReadIndex. Lease expiry is the backend's own duty too: it reads
//! its clock, finds expired leases and applies `Command::ExpireLeases`, so
//! no handler ever sees time.

use agora_kv::{
    AlarmMember, Command, LeaseId, LeaseTimeToLive, Millis, RangeRequest, RangeResponse, Response,
    Revision, WatchId, WatchRequest,
};

use crate::ApiError;

/// The identity and position a response header reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// The cluster's id.
    pub cluster_id: u64,
    /// The answering member's id.
    pub member_id: u64,
    /// The keyspace revision the answer reflects.
    pub revision: Revision,
    /// The Raft term (1 for a single in-process member).
    pub raft_term: u64,
}

/// One member of the cluster, as etcd's `Member`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Member id.
    pub id: u64,
    /// Human-readable name.
    pub name: String,
    /// URLs the members use to reach it.
    pub peer_urls: Vec<String>,
    /// URLs clients use to reach it (its etcd API).
    pub client_urls: Vec<String>,
    /// A non-voting member.
    pub is_learner: bool,
}

/// New addresses for a member; `None` keeps the one it has.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberUpdate {
    /// The member.
    pub id: u64,
    /// Where its peers reach it (`host:port`).
    pub peer_address: Option<String>,
    /// Where clients reach its etcd API (`host:port`).
    pub client_address: Option<String>,
}

/// What `Maintenance.Status` reports about the answering member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberStatus {
    /// The member the answering member believes leads (0: none known).
    pub leader: u64,
    /// Index of the last committed log entry.
    pub raft_index: u64,
    /// Index of the last applied log entry.
    pub raft_applied_index: u64,
    /// Current Raft term.
    pub raft_term: u64,
    /// Approximate bytes the keyspace occupies.
    pub db_size: i64,
    /// A non-voting member.
    pub is_learner: bool,
    /// Alarms and health problems, as text.
    pub errors: Vec<String>,
}

/// A member's keyspace against its space quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Space {
    /// Approximate bytes the keyspace holds (etcd's `dbSize`).
    pub held_bytes: u64,
    /// Whether a NOSPACE alarm is raised.
    pub nospace: bool,
}

/// What [`Backend::hash_kv`] answers: the keyspace's own
/// `KvState::hash_kv` result (hash, revision, compact revision).
pub use agora_kv::KeyspaceHash as KvHash;

// The watch stream's message types live in agora-raft, beside the routing
// that the replicated keyspace and `LocalBackend` share.
pub use agora_raft::{WatchMessage, WatchSink};

/// The replicated (or local) layer behind the etcd API.
#[tonic::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Identity and latest applied revision, for response headers.
    fn header(&self) -> Header;

    /// What the space quota is checked against, as of this member's last
    /// apply or trim, without a round trip to the state machine's thread.
    fn space(&self) -> Space;

    /// The raised alarms, as this member has applied them.
    async fn alarms(&self) -> Result<Vec<AlarmMember>, ApiError>;

    /// Whether this member knows who leads (etcd's require-leader check).
    fn has_leader(&self) -> bool {
        true
    }

    /// Resolves once this member has known no leader for long enough that
    /// etcd ends the streams of clients that require one. Never, for a
    /// backend that is always its own leader.
    async fn leader_lost(&self) {
        std::future::pending::<()>().await;
    }

    /// Orders and applies one command: every write, and a read that must be
    /// linearizable. The backend stamps the `now_ms` of lease commands with
    /// its own clock (the leader's, for Raft), so callers pass 0.
    async fn apply(&self, command: Command) -> Result<Response, ApiError>;

    /// A serializable read: this member's state, possibly stale, no log.
    async fn read(&self, request: RangeRequest) -> Result<RangeResponse, ApiError>;

    /// A lease's remaining TTL (on the backend's clock) and its keys.
    async fn lease_time_to_live(
        &self,
        id: LeaseId,
        keys: bool,
    ) -> Result<LeaseTimeToLive, ApiError>;

    /// Every lease id, ascending.
    async fn leases(&self) -> Result<Vec<LeaseId>, ApiError>;

    /// Registers a watcher whose updates go to `sink`; answers its id and
    /// the store's revision at registration. Fails with `Compacted` if the
    /// start revision is gone.
    async fn watch(
        &self,
        request: WatchRequest,
        sink: WatchSink,
    ) -> Result<(WatchId, Revision), ApiError>;

    /// Removes a watcher; no update for it is sent afterwards.
    fn cancel_watch(&self, id: WatchId);

    /// The stream has passed `count` events of watcher `id` on to its
    /// client, so they no longer count against the watcher's buffer.
    fn acknowledge(&self, id: WatchId, count: usize);

    /// Sends [`WatchMessage::Progress`] to `sink` once every watcher in
    /// `ids` (that still exists) has been handed everything up to the
    /// store's revision, after the events handed out before it.
    fn request_progress(&self, ids: Vec<WatchId>, sink: WatchSink);

    /// Waits until this member has compacted at `revision` or later and
    /// holds none of the compacted versions any more: what a Compact with
    /// `physical` set answers after. Backends that remove them as they
    /// apply the compaction have nothing to wait for.
    async fn compacted_physically(&self, revision: Revision) -> Result<(), ApiError> {
        let _ = revision;
        Ok(())
    }

    /// The cluster's members.
    async fn members(&self) -> Result<Vec<Member>, ApiError>;

    /// This member's status.
    async fn status(&self) -> Result<MemberStatus, ApiError>;

    /// A hash of this member's keyspace as of `revision` (0: its current
    /// one): every version at or below it not compacted, and the compact
    /// revision (`KvState::hash_kv`), equal on members that applied the
    /// same log that far (etcd's HashKV). `Compacted` at or below the
    /// compaction, `FutureRevision` past the current revision.
    async fn hash_kv(&self, revision: Revision) -> Result<KvHash, ApiError>;

    /// This member's whole replicated state as a backup file's bytes
    /// (`agora_raft::encode_backup`): etcd's Snapshot, which `etcdctl
    /// snapshot save` writes to a file and `agora snapshot restore` founds
    /// a new group from. Backends without a replicated state refuse.
    async fn snapshot(&self) -> Result<Vec<u8>, ApiError> {
        Err(ApiError::Unsupported("Snapshot"))
    }

    /// Adds a voting member whose peer traffic goes to `peer_address`
    /// (`host:port`) under an id no member has had, and answers it once
    /// this member has applied the change (etcd's MemberAdd). Its client
    /// URL is published when it starts.
    async fn add_member(&self, peer_address: String) -> Result<Member, ApiError> {
        drop(peer_address);
        Err(ApiError::Unsupported("MemberAdd"))
    }

    /// Removes member `id` and answers once this member has applied the
    /// change (etcd's MemberRemove). A leader that is removed hands its
    /// leadership to another member first.
    async fn remove_member(&self, id: u64) -> Result<(), ApiError> {
        let _ = id;
        Err(ApiError::Unsupported("MemberRemove"))
    }

    /// Changes the addresses member `id` is reached at: its peer address,
    /// its client address, or both (etcd's MemberUpdate, and a member
    /// publishing its own client URL).
    async fn update_member(&self, update: MemberUpdate) -> Result<(), ApiError> {
        drop(update);
        Err(ApiError::Unsupported("MemberUpdate"))
    }

    /// Rewrites this member's store files without the records it deleted
    /// (etcd's Defragment). A backend that keeps nothing on disk has
    /// nothing to do.
    async fn defragment(&self) -> Result<(), ApiError> {
        Ok(())
    }

    /// Hands leadership to member `target` and waits until it leads (on
    /// the leader only; etcd's MoveLeader).
    async fn move_leader(&self, _target: u64) -> Result<(), ApiError> {
        Err(ApiError::Unsupported("MoveLeader"))
    }

    /// Serves a request another member's backend forwarded over the
    /// internal `Forward` service (a write arriving at a follower goes to
    /// the leader this way). The bytes are that backend's own encoding;
    /// garbage is `InvalidArgument`. Backends without peers refuse.
    async fn forwarded(&self, request: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
        drop(request);
        Err(tonic::Status::unimplemented(
            "agora: this member does not take forwarded requests",
        ))
    }
}

/// Sets the clock reading of a lease command to `now_ms`: the proposer's
/// clock travels inside the command so every member computes the same
/// expiries. Other commands carry no time and are left alone.
pub fn stamp_time(command: &mut Command, now: Millis) {
    match command {
        Command::LeaseGrant { now_ms, .. }
        | Command::LeaseKeepAlive { now_ms, .. }
        | Command::ExpireLeases { now_ms, .. }
        | Command::LeasePromote { now_ms } => *now_ms = now,
        Command::Range(_)
        | Command::Put(_)
        | Command::DeleteRange(_)
        | Command::Txn(_)
        | Command::Compact(_)
        | Command::LeaseRevoke { .. }
        | Command::Alarm { .. } => {}
    }
}
