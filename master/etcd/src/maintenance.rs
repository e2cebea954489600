//! The Maintenance service. Status, Alarm (list, raise and disarm), HashKV (at any
//! revision not compacted), MoveLeader, Snapshot (a backup of the member's
//! replicated state, in Agora's format) and Defragment (of the member's
//! RocksDB files) are served; the rest concern etcd's storage engine (the
//! bolt file's Hash) or its versions (downgrade) and answer
//! `Unimplemented`.

use std::pin::Pin;

use agora_kv::Response as KvResponse;
use futures_util::Stream;
use tonic::{Request, Response, Status};

use crate::backend::Header;
use crate::context::Context;
use crate::pb::etcdserverpb as pb;
use crate::{ApiError, alarm, convert};

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

/// Bytes per Snapshot message (etcd sends 32 KiB; larger chunks mean fewer
/// messages, and 1 MiB stays far below clients' 4 MiB message limit).
const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// `backup` as Snapshot messages, each saying how many bytes follow it.
fn snapshot_chunks(
    backup: Vec<u8>,
    header: Option<pb::ResponseHeader>,
) -> impl Iterator<Item = pb::SnapshotResponse> + Send {
    let total = backup.len();
    // At least one message, even for no bytes, so the client sees an end.
    let count = total.div_ceil(SNAPSHOT_CHUNK_BYTES).max(1);
    (0..count).map(move |i| {
        let start = i * SNAPSHOT_CHUNK_BYTES;
        let end = (start + SNAPSHOT_CHUNK_BYTES).min(total);
        pb::SnapshotResponse {
            header,
            remaining_bytes: (total - end) as u64,
            blob: backup[start..end].to_vec(),
            version: ETCD_API_VERSION.to_string(),
        }
    })
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::maintenance_server::Maintenance for MaintenanceApi {
    async fn alarm(
        &self,
        request: Request<pb::AlarmRequest>,
    ) -> Result<Response<pb::AlarmResponse>, Status> {
        let alarms = match alarm::decode(request.into_inner())? {
            alarm::Decoded::List(kind) => {
                let raised = self.ctx.backend.alarms().await?;
                raised
                    .into_iter()
                    .filter(|raised| kind.is_none_or(|kind| raised.alarm == kind))
                    .collect()
            }
            alarm::Decoded::Change(command) => match self.ctx.backend.apply(command).await? {
                KvResponse::Alarm { changed, .. } => changed,
                _ => return Err(ApiError::WrongResponse("Alarm").into()),
            },
            alarm::Decoded::Nothing => Vec::new(),
        };
        Ok(Response::new(pb::AlarmResponse {
            header: self.ctx.header_now(),
            alarms: alarms.iter().map(alarm::encode).collect(),
        }))
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
        self.ctx.backend.defragment().await?;
        Ok(Response::new(pb::DefragmentResponse {
            header: self.ctx.header_now(),
        }))
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
        let hashed = self.ctx.backend.hash_kv(revision).await?;
        let header = self.ctx.backend.header();
        Ok(Response::new(pb::HashKvResponse {
            // etcd's header has the store's current revision; for a hash
            // of the current keyspace, the one it was taken at (the
            // backend's may have moved on since).
            header: Some(convert::header(Header {
                revision: if revision > 0 {
                    header.revision.max(hashed.revision)
                } else {
                    hashed.revision
                },
                ..header
            })),
            hash: fold_to_u32(hashed.hash),
            compact_revision: hashed.compact_revision,
            hash_revision: hashed.revision,
        }))
    }

    type SnapshotStream = SnapshotStream;

    /// The member's state as a backup, in chunks: etcdctl's `snapshot
    /// save` writes them to a file as they come. The file is Agora's
    /// format (checksummed like etcd's), restored with `agora snapshot
    /// restore`; etcd's `snapshot restore` and `status` cannot read it.
    async fn snapshot(
        &self,
        _request: Request<pb::SnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        let backup = self.ctx.backend.snapshot().await?;
        let header = self.ctx.header_now();
        Ok(Response::new(Box::pin(futures_util::stream::iter(
            snapshot_chunks(backup, header).map(Ok),
        ))))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(len: usize) -> Vec<pb::SnapshotResponse> {
        let backup: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        snapshot_chunks(backup, None).collect()
    }

    #[test]
    fn snapshot_chunks_carry_every_byte_in_order_and_count_down_what_follows() {
        for len in [
            0,
            1,
            SNAPSHOT_CHUNK_BYTES - 1,
            SNAPSHOT_CHUNK_BYTES,
            SNAPSHOT_CHUNK_BYTES + 1,
            3 * SNAPSHOT_CHUNK_BYTES + 17,
        ] {
            let chunks = chunks_of(len);
            assert_eq!(chunks.len(), len.div_ceil(SNAPSHOT_CHUNK_BYTES).max(1));
            let joined: Vec<u8> = chunks.iter().flat_map(|c| c.blob.clone()).collect();
            let expected: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            assert_eq!(joined, expected, "len {len}");
            let mut sent = 0;
            for chunk in &chunks {
                sent += chunk.blob.len();
                assert_eq!(chunk.remaining_bytes, (len - sent) as u64, "len {len}");
            }
        }
    }
}
