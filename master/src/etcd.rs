//! The etcd v3 API of this member (agora-etcd) over the group's replicated
//! keyspace: every member serves it; writes on a standby are forwarded to
//! the leader by the backend, reads are linearizable through ReadIndex.
use std::sync::Arc;

use agora_etcd::{AutoCompaction, RaftBackend, RaftBackendConfig, RaftTimings, SystemClock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::replication::Group;

/// Everything the etcd server needs from the group, taken before spawning.
pub(crate) fn serve(
    member_id: u64,
    listener: TcpListener,
    group: &Group,
    auto_compaction: AutoCompaction,
    stop: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let config = RaftBackendConfig {
        cluster_id: crate::replication::CLUSTER_ID,
        member_id,
        directory: group.directory.clone(),
        proposals: group.handles.proposals.clone(),
        access: group.handles.access.clone(),
        status: group.handles.status.clone(),
        revision: group.revision.clone(),
        clock: Arc::new(SystemClock::new()),
        timings: RaftTimings::default(),
        auto_compaction,
    };
    async move {
        let backend: Arc<dyn agora_etcd::Backend> = Arc::new(RaftBackend::start(config));
        let stopped = async move { stop.cancelled().await };
        if let Err(error) = agora_etcd::serve(listener, backend, stopped).await {
            tracing::error!(%error, "etcd API stopped");
        }
    }
}
