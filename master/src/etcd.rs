//! The etcd v3 API of this member (agora-etcd) over the group's replicated
//! keyspace: every member serves it; writes on a standby are forwarded to
//! the leader by the backend, reads are linearizable through ReadIndex.
use std::sync::Arc;

use agora_etcd::{
    AutoCompaction, Limits, RaftBackend, RaftBackendConfig, RaftTimings, ServerConfig, SystemClock,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::membership::{Membership, publish_own_addresses};
use crate::replication::{Group, MemberInfo};

/// This member, as its etcd API needs it.
pub(crate) struct EtcdMember {
    pub(crate) id: u64,
    /// Its configured addresses, published through the log once it is a
    /// voter (`None`: a group of one with no peers configured).
    pub(crate) own_addresses: Option<MemberInfo>,
    /// Membership changes made through the etcd API (on the leader).
    pub(crate) membership: Membership,
    pub(crate) auto_compaction: AutoCompaction,
    /// The keyspace's space quota (etcd's `--quota-backend-bytes`).
    pub(crate) quota_backend_bytes: u64,
}

/// Everything the etcd server needs from the group, taken before spawning.
pub(crate) fn serve(
    member: EtcdMember,
    listener: TcpListener,
    group: &Group,
    stop: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let config = RaftBackendConfig {
        cluster_id: crate::replication::CLUSTER_ID,
        member_id: member.id,
        directory: group.directory.clone(),
        proposals: group.handles.proposals.clone(),
        access: group.handles.access.clone(),
        status: group.handles.status.clone(),
        revision: group.revision.clone(),
        clock: Arc::new(SystemClock::new()),
        timings: RaftTimings::default(),
        auto_compaction: member.auto_compaction,
        member_changes: Some(Arc::new(member.membership)),
        defragment: group.defragment.clone(),
    };
    let access = group.handles.access.clone();
    let status = group.handles.status.clone();
    let server = ServerConfig {
        limits: Limits {
            quota_backend_bytes: member.quota_backend_bytes,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    async move {
        let backend: Arc<dyn agora_etcd::Backend> = Arc::new(RaftBackend::start(config));
        if let Some(own) = member.own_addresses {
            let publishing =
                publish_own_addresses(own, backend.clone(), access, status, stop.clone());
            tokio::spawn(publishing);
        }
        let stopped = async move { stop.cancelled().await };
        if let Err(error) = agora_etcd::serve_with(server, listener, backend, stopped).await {
            tracing::error!(%error, "etcd API stopped");
        }
    }
}
