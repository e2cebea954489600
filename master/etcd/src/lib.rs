//! etcd v3's gRPC API served over Agora's coordination keyspace
//! ([`agora_kv`]), so that etcdctl and etcd client libraries work against
//! the masters unchanged.
//!
//! # Layout
//! - `pb`: the wire types, generated from `proto/` (etcd's own package,
//!   service, message names and field numbers).
//! - [`backend`]: the [`Backend`] trait, what the handlers need from the
//!   replicated layer; [`LocalBackend`] (`local.rs`) is its single-member,
//!   in-process implementation; [`RaftBackend`] (`raft_backend/`) serves
//!   it on every member of a Raft group (agora-raft's runner and
//!   `KvMachine`): writes go to the leader (forwarded from followers over
//!   the internal `Forward` service, `raft_backend/forward.rs`), reads use
//!   ReadIndex, watches are served by each member from its own applied
//!   log, the leader expires and promotes leases (`raft_backend/duties.rs`).
//! - `convert.rs`: wire <-> [`agora_kv`] types, decoded once at the edge.
//! - `context.rs`: what every handler holds (backend, [`ServerConfig`],
//!   the stop signal that ends long-lived streams on shutdown).
//! - `kv.rs`, `watch.rs`, `lease.rs`, `cluster.rs`, `maintenance.rs`,
//!   `lock.rs`, `election.rs`: one thin handler per etcd service.
//! - `recipes.rs`: what the lock and election services share (etcd's
//!   client-side "wait for the keys created before mine to go" recipe).
//! - [`server`]: [`serve`], every service on one listener, plus the
//!   internal `agora.etcd.internal.v1.Forward` service between members;
//!   connections are read through `authority.rs`, which takes the scheme
//!   off an HTTP/2 `:authority` that etcdctl 3.4 sends as a URL (h2
//!   refuses it; etcd accepts it).
//! - [`error`]: [`ApiError`] and its mapping to etcd's gRPC statuses.
//!
//! Architecture invariant: handlers never touch [`agora_kv::KvState`]; they
//! go through [`Backend`], so [`RaftBackend`] replaces [`LocalBackend`]
//! without changing a handler. agora-etcd depends on agora-raft, never the
//! reverse: the watch stream types ([`WatchMessage`], [`WatchSink`]) live
//! in agora-raft and are re-exported here.
#![forbid(unsafe_code)]

mod alarm;
mod authority;
pub mod backend;
mod cluster;
pub mod config;
mod context;
mod convert;
mod election;
pub mod error;
mod kv;
mod lease;
pub mod local;
mod lock;
mod maintenance;
mod pipe_server;
mod quota;
pub mod raft_backend;
mod recipes;
mod require_leader;
pub mod server;
mod watch;

pub use backend::{
    Backend, Header, KvHash, Member, MemberStatus, MemberUpdate, Space, WatchMessage, WatchSink,
};
pub use config::{Limits, ServerConfig};
pub use error::ApiError;
pub use local::{Clock, LocalBackend, LocalConfig, SystemClock};
pub use quota::DEFAULT_QUOTA_BACKEND_BYTES;
pub use raft_backend::{
    AutoCompaction, Defragment, MemberChanges, MemberDirectory, RaftBackend, RaftBackendConfig,
    RaftTimings, StaticDirectory,
};
pub use server::{ServeError, serve, serve_with};

/// The generated wire types, under etcd's package names (generated code
/// refers to sibling packages as `super::mvccpb` etc.).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    /// `mvccpb`: key-values and watch events.
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    /// `etcdserverpb`: the KV, Watch, Lease, Cluster and Maintenance services.
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
    /// `v3lockpb`: the Lock service.
    pub mod v3lockpb {
        tonic::include_proto!("v3lockpb");
    }
    /// `v3electionpb`: the Election service.
    pub mod v3electionpb {
        tonic::include_proto!("v3electionpb");
    }
    /// `agora.etcd.internal.v1`: the Forward service between members.
    pub mod forward {
        tonic::include_proto!("agora.etcd.internal.v1");
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    /// The architecture invariant above, checked: outside `local.rs` no code
    /// (comments and tests aside) names the state machine or the watch hub
    /// (the Raft backend reaches them only through agora-raft's `KvHost`).
    #[test]
    fn only_the_local_backend_touches_the_state_machine() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        sources(&dir, &mut paths);
        let mut checked = 0;
        for path in paths {
            if path.file_name().is_some_and(|n| n == "local.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text
                .lines()
                .take_while(|l| !l.starts_with("#[cfg(test)]"))
                .filter(|l| !l.trim_start().starts_with("//"));
            for line in code {
                for name in ["KvState", "WatchHub"] {
                    assert!(!line.contains(name), "{}: {line}", path.display());
                }
            }
            checked += 1;
        }
        assert!(checked > 10, "found only {checked} source files");
    }
}
