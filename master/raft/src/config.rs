//! The replica's tunables, with the reasoning behind each default.

/// Ticks without hearing from a leader before a follower campaigns. At the
/// master's 50 ms tick this is 0.5 s (etcd's default is 1 s at 100 ms).
pub const ELECTION_TICKS: usize = 10;

/// Ticks between a leader's heartbeats: 50 ms at the master's tick.
pub const HEARTBEAT_TICKS: usize = 1;

/// Entries applied between two state-machine snapshots (then the log is
/// compacted up to the snapshot). etcd's `--snapshot-count` default: a
/// snapshot copies the whole keyspace with its history, so taking one
/// every 10,000 entries cost a busy leader a large share of its CPU
/// (profiled under 64 etcd clients); 100,000 entries of a few hundred
/// bytes are tens of MB of log.
pub const SNAPSHOT_INTERVAL: u64 = 100_000;

/// Entries kept in the log behind a snapshot, so that a follower slightly
/// behind catches up from the log instead of receiving a whole snapshot.
pub const LOG_TAIL_KEPT: u64 = 1_000;

/// Ticks a leader waits for a follower to acknowledge a snapshot before it
/// assumes the message was lost and sends it again (raft-rs waits forever
/// unless told the send failed).
pub const SNAPSHOT_RETRY_TICKS: u32 = 30;

/// Ticks a ReadIndex request may wait for the leader's confirmation before
/// it fails with `Dropped` (the request or its answer was lost).
pub const READ_TIMEOUT_TICKS: u64 = 30;

/// Largest append message, so one lagging follower cannot make the leader
/// build a huge message (raft-rs `max_size_per_msg`).
pub const MAX_APPEND_BYTES: u64 = 1024 * 1024;

/// Appends in flight per follower before the leader waits for acknowledgements.
pub const MAX_INFLIGHT_APPENDS: usize = 256;

/// How a [`Replica`](crate::Replica) behaves; [`ReplicaConfig::default`]
/// holds the production values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// See [`ELECTION_TICKS`]. The actual timeout is drawn from
    /// `[election_ticks, 2 * election_ticks)` after every role change.
    pub election_ticks: usize,
    /// See [`HEARTBEAT_TICKS`]; must be below `election_ticks`.
    pub heartbeat_ticks: usize,
    /// See [`SNAPSHOT_INTERVAL`]; 0 turns periodic snapshots off.
    pub snapshot_interval: u64,
    /// See [`LOG_TAIL_KEPT`].
    pub log_tail_kept: u64,
    /// See [`SNAPSHOT_RETRY_TICKS`].
    pub snapshot_retry_ticks: u32,
    /// Periodic snapshots are handed to the owner as an
    /// [`Output::snapshot_job`](crate::Output) to encode off the replica's
    /// thread, instead of being encoded and stored inside `drive`. With a
    /// large keyspace the inline way blocks ticks, heartbeats and appends
    /// for hundreds of ms (measured: a 0.4-0.7 s stall every 100,000 puts,
    /// BENCHMARKS.md). The runner ([`crate::runner`]) does this; the
    /// deterministic simulations keep the inline way (false, the default).
    pub background_snapshots: bool,
    /// See [`READ_TIMEOUT_TICKS`].
    pub read_timeout_ticks: u64,
    /// See [`MAX_APPEND_BYTES`].
    pub max_append_bytes: u64,
    /// See [`MAX_INFLIGHT_APPENDS`].
    pub max_inflight_appends: usize,
    /// Seed for the randomized election timeouts. raft-rs draws them from
    /// the thread RNG; the replica overrides every draw with one derived
    /// from this seed so that simulations replay exactly. Production passes
    /// a random value.
    pub seed: u64,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            election_ticks: ELECTION_TICKS,
            heartbeat_ticks: HEARTBEAT_TICKS,
            snapshot_interval: SNAPSHOT_INTERVAL,
            log_tail_kept: LOG_TAIL_KEPT,
            snapshot_retry_ticks: SNAPSHOT_RETRY_TICKS,
            background_snapshots: false,
            read_timeout_ticks: READ_TIMEOUT_TICKS,
            max_append_bytes: MAX_APPEND_BYTES,
            max_inflight_appends: MAX_INFLIGHT_APPENDS,
            seed: 0,
        }
    }
}

impl ReplicaConfig {
    /// raft-rs's configuration for member `id`, resuming after `applied`.
    pub(crate) fn raft_config(&self, id: u64, applied: u64) -> raft::Config {
        raft::Config {
            id,
            election_tick: self.election_ticks,
            heartbeat_tick: self.heartbeat_ticks,
            applied,
            max_size_per_msg: self.max_append_bytes,
            max_inflight_msgs: self.max_inflight_appends,
            // A leader that cannot reach a majority for an election timeout
            // steps down, so a partitioned leader stops accepting proposals.
            check_quorum: true,
            // A member coming back from a partition asks before it raises
            // its term, so it cannot depose a healthy leader.
            pre_vote: true,
            ..raft::Config::default()
        }
    }
}
