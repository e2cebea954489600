//! The Election service, with etcd's `v3election` semantics: a campaign
//! queues the key `name/<lease in hex>` holding the candidate's value; the
//! key with the lowest create revision leads. Proclaim and Resign act only
//! while the named key is still that generation (same create revision).

use std::pin::Pin;

use agora_kv::{
    DeleteRangeRequest, EventType, KeyValue, PutRequest, RangeRequest, RequestOp, Revision,
    TxnRequest, TxnResponse, WatchRequest, prefix_range_end,
};
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::ApiError;
use crate::context::Context;
use crate::convert;
use crate::pb::v3electionpb as pb;
use crate::recipes::{self, QueuedKey, Subscription};

pub(crate) struct ElectionApi {
    pub(crate) ctx: Context,
}

type ObserveStream = Pin<Box<dyn Stream<Item = Result<pb::LeaderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::election_server::Election for ElectionApi {
    async fn campaign(
        &self,
        request: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignResponse>, Status> {
        // A server shutting down must not wait for the current leader.
        tokio::select! {
            won = campaign(&self.ctx, request.into_inner()) => Ok(Response::new(won?)),
            () = self.ctx.stopped() => Err(ApiError::Stopped.into()),
        }
    }

    async fn proclaim(
        &self,
        request: Request<pb::ProclaimRequest>,
    ) -> Result<Response<pb::ProclaimResponse>, Status> {
        let wire = request.into_inner();
        let leader = wire.leader.ok_or(ApiError::MissingLeaderKey)?;
        let response =
            proclaim(&self.ctx, &leader.key, leader.rev, leader.lease, wire.value).await?;
        Ok(Response::new(pb::ProclaimResponse {
            header: self.ctx.headers().at(response.revision),
        }))
    }

    async fn leader(
        &self,
        request: Request<pb::LeaderRequest>,
    ) -> Result<Response<pb::LeaderResponse>, Status> {
        let prefix = recipes::prefix_of(&request.into_inner().name);
        let found = self.ctx.range(recipes::first_created(&prefix)).await?;
        let kv = found
            .kvs
            .into_iter()
            .next()
            .ok_or(ApiError::ElectionNoLeader)?;
        Ok(Response::new(pb::LeaderResponse {
            header: self.ctx.headers().at(found.revision),
            kv: Some(convert::key_value(kv)),
        }))
    }

    type ObserveStream = ObserveStream;

    async fn observe(
        &self,
        request: Request<pb::LeaderRequest>,
    ) -> Result<Response<ObserveStream>, Status> {
        let prefix = recipes::prefix_of(&request.into_inner().name);
        let (out, responses) = mpsc::channel(self.ctx.config.stream_buffer.max(1));
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            let outcome = tokio::select! {
                outcome = observe(&ctx, &prefix, &out) => outcome,
                () = ctx.stopped() => Ok(()),
            };
            if let Err(e) = outcome {
                // The client may be gone already; then nobody is told.
                let _ = out.send(Err(e.into())).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(responses))))
    }

    async fn resign(
        &self,
        request: Request<pb::ResignRequest>,
    ) -> Result<Response<pb::ResignResponse>, Status> {
        let leader = request
            .into_inner()
            .leader
            .ok_or(ApiError::MissingLeaderKey)?;
        let delete = RequestOp::DeleteRange(DeleteRangeRequest {
            key: leader.key.clone(),
            ..DeleteRangeRequest::default()
        });
        let txn = TxnRequest {
            compare: vec![recipes::created_at(&leader.key, leader.rev)],
            success: vec![delete],
            failure: Vec::new(),
        };
        let response = self.ctx.txn(txn).await?;
        Ok(Response::new(pb::ResignResponse {
            header: self.ctx.headers().at(response.revision),
        }))
    }
}

/// Queues the candidate and waits until it leads (etcd's `Election.Campaign`).
async fn campaign(
    ctx: &Context,
    wire: pb::CampaignRequest,
) -> Result<pb::CampaignResponse, ApiError> {
    let lease = recipes::lease_or_grant(ctx, wire.lease).await?;
    let prefix = recipes::prefix_of(&wire.name);
    let key = recipes::key_of(&prefix, lease);
    // Dropped (the client gave up) before winning: leave the queue.
    let mut queued = QueuedKey::new(ctx, key.clone());
    let (response, rev) = enter(ctx, &key, lease, &wire.value).await?;
    queued.created(rev);
    recipes::wait_deletes(ctx, &prefix, rev - 1).await?;
    queued.disarm();
    Ok(pb::CampaignResponse {
        header: ctx.headers().at(response.revision),
        leader: Some(pb::LeaderKey {
            name: wire.name,
            key,
            rev,
            lease,
        }),
    })
}

/// Creates the candidate's key unless its lease already campaigns; then
/// makes sure the key holds `value` (etcd's `Election.Campaign`). Answers
/// the txn and the key's create revision.
async fn enter(
    ctx: &Context,
    key: &[u8],
    lease: i64,
    value: &[u8],
) -> Result<(TxnResponse, Revision), ApiError> {
    let put = PutRequest {
        key: key.to_vec(),
        value: value.to_vec(),
        lease,
        ..PutRequest::default()
    };
    let existing = RangeRequest {
        key: key.to_vec(),
        ..RangeRequest::default()
    };
    let txn = TxnRequest {
        compare: vec![recipes::created_at(key, 0)],
        success: vec![RequestOp::Put(put)],
        failure: vec![RequestOp::Range(existing)],
    };
    let response = ctx.txn(txn).await?;
    if response.succeeded {
        let rev = response.revision;
        return Ok((response, rev));
    }
    let kv = recipes::first_kv(&response, 0).ok_or(ApiError::WrongResponse("Txn"))?;
    let rev = kv.create_revision;
    if kv.value != value {
        proclaim(ctx, key, rev, lease, value.to_vec()).await?;
    }
    Ok((response, rev))
}

/// Puts `value` on the leader key if it is still generation `rev`.
async fn proclaim(
    ctx: &Context,
    key: &[u8],
    rev: Revision,
    lease: i64,
    value: Vec<u8>,
) -> Result<TxnResponse, ApiError> {
    let put = PutRequest {
        key: key.to_vec(),
        value,
        lease,
        ..PutRequest::default()
    };
    let txn = TxnRequest {
        compare: vec![recipes::created_at(key, rev)],
        success: vec![RequestOp::Put(put)],
        failure: Vec::new(),
    };
    let response = ctx.txn(txn).await?;
    if !response.succeeded {
        return Err(ApiError::ElectionNotLeader);
    }
    Ok(response)
}

type Out = mpsc::Sender<Result<pb::LeaderResponse, Status>>;

/// Streams each leader's key-value and every value it proclaims, in order,
/// until the client goes away (etcd's `Election.Observe`).
async fn observe(ctx: &Context, prefix: &[u8], out: &Out) -> Result<(), ApiError> {
    loop {
        let found = ctx.range(recipes::first_created(prefix)).await?;
        let (leader, revision) = match found.kvs.into_iter().next() {
            Some(kv) => (kv, found.revision),
            None => match first_put(ctx, prefix, found.revision).await? {
                Some(first) => first,
                None => continue,
            },
        };
        let key = leader.key.clone();
        if !send(ctx, out, leader, revision).await {
            return Ok(());
        }
        if !follow(ctx, out, key, revision).await? {
            return Ok(());
        }
    }
}

/// Waits for the first key put under `prefix` after `seen`; `None` if the
/// watch was cancelled (compaction, too slow), so the caller reads again.
async fn first_put(
    ctx: &Context,
    prefix: &[u8],
    seen: Revision,
) -> Result<Option<(KeyValue, Revision)>, ApiError> {
    let request = WatchRequest {
        key: prefix.to_vec(),
        range_end: prefix_range_end(prefix),
        start_revision: seen.saturating_add(1),
        no_delete: true,
        ..WatchRequest::default()
    };
    let mut subscription = Subscription::open(ctx.backend.clone(), request).await?;
    while let Some(events) = subscription.next_events().await? {
        if let Some(put) = events.into_iter().find(|e| e.kind == EventType::Put) {
            let revision = put.revision();
            return Ok(Some((put.kv, revision)));
        }
    }
    Ok(None)
}

/// Sends the leader's updates until its key is deleted (true) or the
/// client is gone (false).
async fn follow(ctx: &Context, out: &Out, key: Vec<u8>, seen: Revision) -> Result<bool, ApiError> {
    let request = WatchRequest {
        key,
        start_revision: seen.saturating_add(1),
        ..WatchRequest::default()
    };
    let mut subscription = Subscription::open(ctx.backend.clone(), request).await?;
    // A cancelled watch (None) ends the follow; the caller reads the leader again.
    while let Some(events) = subscription.next_events().await? {
        for event in events {
            if event.kind == EventType::Delete {
                return Ok(true);
            }
            let revision = event.revision();
            if !send(ctx, out, event.kv, revision).await {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

async fn send(ctx: &Context, out: &Out, kv: KeyValue, revision: Revision) -> bool {
    let response = pb::LeaderResponse {
        header: ctx.headers().at(revision),
        kv: Some(convert::key_value(kv)),
    };
    out.send(Ok(response)).await.is_ok()
}
