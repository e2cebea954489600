//! The Maintenance service. Status, listing alarms, HashKV (of the
//! current keyspace) and MoveLeader are served; the rest concern etcd's
//! storage engine (defragment, snapshot, the bolt file's Hash) or its
//! versions (downgrade) and answer `Unimplemented`.

use std::pin::Pin;

use futures_util::Stream;
use tonic::{Request, Response, Status};

use crate::backend::Header;
use crate::context::Context;
use crate::pb::etcdserverpb as pb;
use crate::{ApiError, convert};

/// The etcd API version Agora speaks: etcdctl and clients compare it to
/// decide which RPCs they may use; 3.4's set is what is served here.
pub(crate) const ETCD_API_VERSION: &str = "3.4.0";

pub(crate) struct MaintenanceApi {
    pub(crate) ctx: Context,
}

/// etcd's HashKV answers a 32-bit hash; the keyspace's is 64 bits.
fn fold_to_u32(hash: u64) -> u32 {
    // Both halves count: truncation would drop half the bits.
    ((hash >> 32) ^ hash) as u32
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::maintenance_server::Maintenance for MaintenanceApi {
    async fn alarm(
        &self,
        request: Request<pb::AlarmRequest>,
    ) -> Result<Response<pb::AlarmResponse>, Status> {
        use pb::alarm_request::AlarmAction;
        // No alarms are ever raised (no space quota, no corruption check
        // yet), so listing answers none and nothing can be changed.
        match AlarmAction::try_from(request.into_inner().action) {
            Ok(AlarmAction::Get) => Ok(Response::new(pb::AlarmResponse {
                header: self.ctx.header_now(),
                alarms: Vec::new(),
            })),
            _ => Err(ApiError::Unsupported("changing alarms").into()),
        }
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let status = self.ctx.backend.status().await?;
        Ok(Response::new(pb::StatusResponse {
            header: self.ctx.header_now(),
            version: ETCD_API_VERSION.to_string(),
            db_size: status.db_size,
            leader: status.leader,
            raft_index: status.raft_index,
            raft_term: status.raft_term,
            raft_applied_index: status.raft_applied_index,
            errors: status.errors,
            db_size_in_use: status.db_size,
            is_learner: status.is_learner,
            ..Default::default()
        }))
    }

    async fn defragment(
        &self,
        _request: Request<pb::DefragmentRequest>,
    ) -> Result<Response<pb::DefragmentResponse>, Status> {
        Err(ApiError::Unsupported("Defragment").into())
    }

    async fn hash(
        &self,
        _request: Request<pb::HashRequest>,
    ) -> Result<Response<pb::HashResponse>, Status> {
        Err(ApiError::Unsupported("Hash").into())
    }

    async fn hash_kv(
        &self,
        request: Request<pb::HashKvRequest>,
    ) -> Result<Response<pb::HashKvResponse>, Status> {
        let revision = request.into_inner().revision;
        let hashed = self.ctx.backend.hash_kv().await?;
        // Only the current keyspace is hashed (what `etcdctl endpoint
        // hashkv` asks for); etcd also hashes as of a past revision.
        if revision != 0 && revision != hashed.revision {
            return Err(ApiError::Unsupported("HashKV at a past or future revision").into());
        }
        Ok(Response::new(pb::HashKvResponse {
            header: Some(convert::header(Header {
                revision: hashed.revision,
                ..self.ctx.backend.header()
            })),
            hash: fold_to_u32(hashed.hash),
            compact_revision: hashed.compact_revision,
            hash_revision: hashed.revision,
        }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        Err(ApiError::Unsupported("Snapshot").into())
    }

    async fn move_leader(
        &self,
        request: Request<pb::MoveLeaderRequest>,
    ) -> Result<Response<pb::MoveLeaderResponse>, Status> {
        let target = request.into_inner().target_id;
        self.ctx.backend.move_leader(target).await?;
        Ok(Response::new(pb::MoveLeaderResponse {
            header: self.ctx.header_now(),
        }))
    }

    async fn downgrade(
        &self,
        _request: Request<pb::DowngradeRequest>,
    ) -> Result<Response<pb::DowngradeResponse>, Status> {
        Err(ApiError::Unsupported("Downgrade").into())
    }
}
