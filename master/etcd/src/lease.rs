//! The Lease service. Grants, revokes and keep-alives are commands (the
//! backend stamps them with its clock); time-to-live and the lease list
//! are reads.

use std::pin::{Pin, pin};
use std::sync::Arc;

use agora_kv::{Command, KvError, Response as KvResponse};
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::ApiError;
use crate::context::Context;
use crate::pb::etcdserverpb as pb;
use crate::require_leader::{no_leader, requires_leader, stream_must_end};

pub(crate) struct LeaseApi {
    pub(crate) ctx: Context,
}

type KeepAliveStream =
    Pin<Box<dyn Stream<Item = Result<pb::LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::lease_server::Lease for LeaseApi {
    async fn lease_grant(
        &self,
        request: Request<pb::LeaseGrantRequest>,
    ) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        let wire = request.into_inner();
        let granted = self.ctx.lease_grant(wire.id, wire.ttl).await?;
        Ok(Response::new(pb::LeaseGrantResponse {
            header: self.ctx.headers().at(granted.revision),
            id: granted.id,
            ttl: granted.ttl,
            error: String::new(),
        }))
    }

    async fn lease_revoke(
        &self,
        request: Request<pb::LeaseRevokeRequest>,
    ) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        let command = Command::LeaseRevoke {
            id: request.into_inner().id,
        };
        match self.ctx.backend.apply(command).await? {
            KvResponse::LeaseRevoke(revoked) => Ok(Response::new(pb::LeaseRevokeResponse {
                header: self.ctx.headers().at(revoked.revision),
            })),
            _ => Err(ApiError::WrongResponse("LeaseRevoke").into()),
        }
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<Response<KeepAliveStream>, Status> {
        let required = requires_leader(request.metadata());
        let inbound = request.into_inner();
        let (out, responses) = mpsc::channel(self.ctx.config.stream_buffer.max(1));
        tokio::spawn(keep_alive_loop(self.ctx.clone(), inbound, out, required));
        Ok(Response::new(Box::pin(ReceiverStream::new(responses))))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        let wire = request.into_inner();
        let header = self.ctx.header_now();
        let response = match self
            .ctx
            .backend
            .lease_time_to_live(wire.id, wire.keys)
            .await
        {
            Ok(ttl) => pb::LeaseTimeToLiveResponse {
                header,
                id: ttl.id,
                ttl: ttl.ttl,
                granted_ttl: ttl.granted_ttl,
                keys: ttl.keys,
            },
            // etcd answers an unknown lease with TTL -1, not an error.
            Err(ApiError::Kv(KvError::LeaseNotFound)) => pb::LeaseTimeToLiveResponse {
                header,
                id: wire.id,
                ttl: -1,
                ..Default::default()
            },
            Err(e) => return Err(e.into()),
        };
        Ok(Response::new(response))
    }

    async fn lease_leases(
        &self,
        _request: Request<pb::LeaseLeasesRequest>,
    ) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        let leases = self.ctx.backend.leases().await?;
        Ok(Response::new(pb::LeaseLeasesResponse {
            header: self.ctx.header_now(),
            leases: leases
                .into_iter()
                .map(|id| pb::LeaseStatus { id })
                .collect(),
        }))
    }
}

/// Answers each keep-alive in order until the client or the server stops,
/// or (for a stream that `required` one) this member lost its leader.
async fn keep_alive_loop(
    ctx: Context,
    mut inbound: Streaming<pb::LeaseKeepAliveRequest>,
    out: mpsc::Sender<Result<pb::LeaseKeepAliveResponse, Status>>,
    required: bool,
) {
    let backend = Arc::clone(&ctx.backend);
    let mut leader_lost = pin!(stream_must_end(&*backend, required));
    loop {
        let request = tokio::select! {
            message = inbound.message() => message,
            () = ctx.stopped() => return,
            () = &mut leader_lost => {
                let _ = out.send(Err(no_leader())).await;
                return;
            }
        };
        let id = match request {
            Ok(Some(request)) => request.id,
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(%status, "lease keep-alive stream broke");
                return;
            }
        };
        let answer = keep_alive(&ctx, id).await;
        let failed = answer.is_err();
        if out.send(answer).await.is_err() || failed {
            return;
        }
    }
}

async fn keep_alive(ctx: &Context, id: i64) -> Result<pb::LeaseKeepAliveResponse, Status> {
    let command = Command::LeaseKeepAlive { id, now_ms: 0 };
    match ctx.backend.apply(command).await {
        Ok(KvResponse::LeaseKeepAlive(renewed)) => Ok(pb::LeaseKeepAliveResponse {
            header: ctx.headers().at(renewed.revision),
            id,
            ttl: renewed.ttl,
        }),
        Ok(_) => Err(ApiError::WrongResponse("LeaseKeepAlive").into()),
        // etcd: a keep-alive of a lease that is gone answers TTL 0.
        Err(ApiError::Kv(KvError::LeaseNotFound)) => Ok(pb::LeaseKeepAliveResponse {
            header: ctx.header_now(),
            id,
            ttl: 0,
        }),
        Err(e) => Err(e.into()),
    }
}
