//! etcd's "require leader": clientv3's `WithRequireLeader` (etcdctl watch
//! sets it, as do Kubernetes-style clients) sends `hasleader: true`. Such a
//! call fails with "etcdserver: no leader" while this member knows no
//! leader, and such a stream (watch, lease keep-alive) is ended with it
//! once the member has been without one for the backend's grace
//! ([`crate::Backend::leader_lost`]; etcd: three election timeouts). A
//! client on a member cut off from the majority then moves to another
//! member instead of waiting in silence.

use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::{ApiError, Backend};

/// The metadata key clientv3 sets, and the value that asks for a leader.
const KEY: &str = "hasleader";
const REQUIRED: &str = "true";

/// Whether the caller asked for a member that knows a leader.
pub(crate) fn requires_leader(metadata: &MetadataMap) -> bool {
    metadata.get(KEY).is_some_and(|value| value == REQUIRED)
}

/// What a require-leader call or stream gets without a leader.
pub(crate) fn no_leader() -> Status {
    ApiError::NoLeader.into()
}

/// Refuses require-leader calls while this member knows no leader; the
/// same check etcd's interceptors make before any handler runs.
#[derive(Clone)]
pub(crate) struct RequireLeader {
    pub(crate) backend: Arc<dyn Backend>,
}

impl Interceptor for RequireLeader {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if requires_leader(request.metadata()) && !self.backend.has_leader() {
            return Err(no_leader());
        }
        Ok(request)
    }
}

/// Resolves when a stream that `required` a leader must end for want of
/// one; never for a stream that did not ask.
pub(crate) async fn stream_must_end(backend: &dyn Backend, required: bool) {
    if required {
        backend.leader_lost().await;
    } else {
        std::future::pending::<()>().await;
    }
}
