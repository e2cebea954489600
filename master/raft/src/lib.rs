//! Agora's replication engine: one member of the masters' Raft group
//! (tikv raft-rs) as a sans-IO core, over a pluggable log store and
//! state machine, with a deterministic simulated network for tests.
//!
//! # Layout
//! - `node.rs`: [`Replica`], the inputs (tick, step, propose, read_index,
//!   membership changes); `node/ready.rs`: `drive`, raft-rs's Ready
//!   protocol step by step; `node/apply.rs`: applying entries, snapshots
//!   and membership changes, taking snapshots and compacting.
//! - `output.rs`: [`Output`], what `drive` hands back (messages,
//!   completions by token, reads, leadership changes).
//! - `storage/`: [`LogStore`] (raft-rs's `Storage` plus the writes),
//!   [`MemLogStore`] for simulations, and `RocksLogStore` (feature
//!   `rocksdb`, on by default): the durable store, one fsynced RocksDB
//!   write batch per call.
//! - `state_machine.rs`: [`StateMachine`] and the [`Register`] test machine;
//!   `kv_machine.rs`: [`KvMachine`], agora-kv's keyspace as a state machine.
//! - `transport/`: wire encoding, [`Transport`], and `sim`: a seeded
//!   network (loss, delay, reorder, duplication, partitions) and
//!   [`SimCluster`] (crash, restart, join).
//! - `transport/grpc.rs`: [`GrpcTransport`] and the peer service (tonic),
//!   the real network between members; `runner.rs`: [`run_replica`], the
//!   tokio task that owns a replica on real sockets (ticks, steps, batched
//!   proposals, [`Access`]: local and ReadIndex reads, membership changes),
//!   and [`spawn_replica_thread`], the same on its own OS thread and runtime
//!   so fsyncs never block the caller's tokio workers.
//! - `kv_machine.rs`: also [`KvHost`], how the etcd API's Raft backend
//!   reaches a keyspace embedded in a bigger state machine;
//!   `kv_machine/watchers.rs`: [`Watchers`], one member's watch streams,
//!   fed after every `drive`.
//! - `backup.rs`: a state machine snapshot as a checksummed backup file.
//! - `config.rs`: [`ReplicaConfig`] and the named limits; `error.rs`: [`RaftError`].
//!
//! Architecture invariant: the core (`node*`, `storage`, `state_machine`,
//! `output`) does no IO, reads no clock, spawns nothing and uses no
//! channel; time is `tick()`, randomness a configured seed. The
//! keyspace's watch side (`kv_machine/watchers.rs`) is not core: it holds
//! the watch streams' channels, is not replicated and is fed only after
//! `drive` (`StateMachine::after_drive`). The same
//! seed and calls replay the same run. Only this crate names raft-rs,
//! protobuf or RocksDB, and only `storage/rocks.rs` names RocksDB.
//!
//! API boundary: raft messages leave and enter as `eraftpb::Message` or
//! bytes; proposals are opaque bytes with a caller token; answers are the
//! state machine's bytes.
#![forbid(unsafe_code)]

pub mod backup;
mod config;
mod error;
mod kv_machine;
mod logger;
mod node;
mod output;
pub mod runner;
mod state_machine;
pub mod storage;
pub mod transport;

#[cfg(test)]
mod tests;

pub use backup::{BackupError, decode_backup, encode_backup};
pub use config::{
    ELECTION_TICKS, HEARTBEAT_TICKS, LOG_TAIL_KEPT, MAX_APPEND_BYTES, MAX_INFLIGHT_APPENDS,
    READ_TIMEOUT_TICKS, ReplicaConfig, SNAPSHOT_INTERVAL, SNAPSHOT_RETRY_TICKS,
};
pub use error::RaftError;
pub use kv_machine::{
    KvAnswer, KvHost, KvMachine, PublishedKv, TRIM_BATCH, WatchMessage, WatchSink, Watchers,
};
pub use node::{MembershipChange, Replica};
pub use output::{
    Applied, Completion, Early, EncodedSnapshot, Leadership, Output, ReadCompletion, Role,
    SnapshotJob, Token,
};
pub use raft::eraftpb;
pub use runner::{
    ACCESS_CAPACITY, Access, LocalAccess, MAX_BATCH, PROPOSAL_CAPACITY, Proposal, ProposalResult,
    ReadAccess, RunnerInputs, RunnerSenders, Status, TICK_INTERVAL, access_channel,
    proposal_channel, run_replica, runner_channels, spawn_replica_thread,
};
pub use state_machine::{
    FNV_OFFSET, Register, RegisterSnapshotError, SnapshotTask, StateMachine, fnv1a,
};
#[cfg(feature = "rocksdb")]
pub use storage::{Defragmented, Defragmenter, RocksLogStore, StorageError};
pub use storage::{LogStore, MemLogStore, SnapshotStager};
pub use transport::grpc::{GrpcTransport, serve};
pub use transport::sim::{Faults, NetStats, SimCluster, SimNetwork, SimNode, SimRng};
pub use transport::{Transport, decode_message, encode_message};
