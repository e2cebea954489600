//! The etcd API over real sockets, driven by real etcd clients: the
//! `etcd-client` crate and etcd's own `etcdctl`. One test binary (one link).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod client;
mod etcdctl;
mod forged_forwards;
mod harness;
mod maintenance_ops;
mod raft_alarms;
mod raft_group;
mod raft_harness;
mod read_only_txn;
mod require_leader;
mod space_quota;
