//! The Lock service, with etcd's `v3lock` semantics: Lock queues a key
//! `name/<lease in hex>` bound to the caller's lease and answers once that
//! key has the lowest create revision under `name/`; Unlock deletes it.
//! Locking twice with the same lease is the same hold.

use agora_kv::{PutRequest, RangeRequest, RequestOp, Revision, TxnRequest};
use tonic::{Request, Response, Status};

use crate::ApiError;
use crate::context::Context;
use crate::pb::v3lockpb as pb;
use crate::recipes::{self, QueuedKey};

pub(crate) struct LockApi {
    pub(crate) ctx: Context,
}

#[tonic::async_trait]
impl pb::lock_server::Lock for LockApi {
    async fn lock(
        &self,
        request: Request<pb::LockRequest>,
    ) -> Result<Response<pb::LockResponse>, Status> {
        // A server shutting down must not wait for a lock holder.
        tokio::select! {
            held = acquire(&self.ctx, request.into_inner()) => Ok(Response::new(held?)),
            () = self.ctx.stopped() => Err(ApiError::Stopped.into()),
        }
    }

    async fn unlock(
        &self,
        request: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::UnlockResponse>, Status> {
        let delete = agora_kv::DeleteRangeRequest {
            key: request.into_inner().key,
            ..Default::default()
        };
        let deleted = self.ctx.delete(delete).await?;
        Ok(Response::new(pb::UnlockResponse {
            header: self.ctx.headers().at(deleted.revision),
        }))
    }
}

/// Queues the caller and waits until it holds the lock (etcd's `Mutex.Lock`).
async fn acquire(ctx: &Context, wire: pb::LockRequest) -> Result<pb::LockResponse, ApiError> {
    let lease = recipes::lease_or_grant(ctx, wire.lease).await?;
    let prefix = recipes::prefix_of(&wire.name);
    let key = recipes::key_of(&prefix, lease);
    // Dropped (the client gave up) before the lock is held: leave the queue.
    let mut queued = QueuedKey::new(ctx, key.clone());
    let queue = enqueue(ctx, &prefix, &key, lease).await?;
    queued.created(queue.mine);
    let mut revision = queue.revision;
    if queue.owner.is_some_and(|owner| owner != queue.mine) {
        revision = recipes::wait_deletes(ctx, &prefix, queue.mine - 1).await?;
        // The key goes with the lease: if it expired meanwhile, the lock
        // was never ours (etcd 3.5's check).
        let mine = RangeRequest {
            key: key.clone(),
            ..RangeRequest::default()
        };
        if ctx.range(mine).await?.kvs.is_empty() {
            return Err(ApiError::SessionExpired);
        }
    }
    queued.disarm();
    Ok(pb::LockResponse {
        header: ctx.headers().at(revision),
        key,
    })
}

/// Where a caller stands in a lock's queue.
struct Queue {
    /// Create revision of the caller's key.
    mine: Revision,
    /// Create revision of the owner's key (None: nobody, the key vanished).
    owner: Option<Revision>,
    /// The revision the txn ran at.
    revision: Revision,
}

/// Creates the caller's key unless it exists, and reads the owner, in one
/// txn (etcd's `Mutex.tryAcquire`).
async fn enqueue(ctx: &Context, prefix: &[u8], key: &[u8], lease: i64) -> Result<Queue, ApiError> {
    let put = PutRequest {
        key: key.to_vec(),
        lease,
        ..PutRequest::default()
    };
    let mine = RangeRequest {
        key: key.to_vec(),
        ..RangeRequest::default()
    };
    let owner = RequestOp::Range(recipes::first_created(prefix));
    let txn = TxnRequest {
        compare: vec![recipes::created_at(key, 0)],
        success: vec![RequestOp::Put(put), owner.clone()],
        failure: vec![RequestOp::Range(mine), owner],
    };
    let response = ctx.txn(txn).await?;
    let mine = if response.succeeded {
        response.revision
    } else {
        recipes::first_kv(&response, 0)
            .map(|kv| kv.create_revision)
            .ok_or(ApiError::WrongResponse("Txn"))?
    };
    let owner = recipes::first_kv(&response, 1).map(|kv| kv.create_revision);
    Ok(Queue {
        mine,
        owner,
        revision: response.revision,
    })
}
