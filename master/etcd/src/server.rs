//! Serves every etcd service on one listener.

use std::future::Future;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::service::InterceptorLayer;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::authority::FixAuthority;
use crate::cluster::ClusterApi;
use crate::context::Context;
use crate::election::ElectionApi;
use crate::kv::KvApi;
use crate::lease::LeaseApi;
use crate::lock::LockApi;
use crate::maintenance::MaintenanceApi;
use crate::pb::forward::forward_server::{Forward, ForwardServer};
use crate::pb::forward::{ForwardBatch, ForwardReply, ForwardRequest};
use crate::pb::{etcdserverpb, v3electionpb, v3lockpb};
use crate::pipe_server;
use crate::require_leader::RequireLeader;
use crate::watch::WatchApi;
use crate::{Backend, ServerConfig};

/// Why serving stopped other than by shutdown.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The gRPC transport failed.
    #[error("etcd API server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves the etcd API with default limits until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_with(ServerConfig::default(), listener, backend, shutdown).await
}

/// Serves the etcd API until `shutdown` resolves; then open streams
/// (watch, keep-alive, observe) end and in-flight calls finish.
pub async fn serve_with(
    config: ServerConfig,
    listener: TcpListener,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (stop_tx, stop) = watch::channel(false);
    let max = config.limits.max_message_bytes();
    let require_leader = RequireLeader {
        backend: Arc::clone(&backend),
    };
    let ctx = Context {
        backend,
        config,
        stop,
    };
    // Small frames (keep-alives, watch events) must not wait for delayed ACKs.
    // Each connection is read through the `:authority` fix (authority.rs).
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map(|connection| connection.map(FixAuthority::new));
    let signal = async move {
        shutdown.await;
        // Receivers live in the handlers; none left is fine.
        let _ = stop_tx.send(true);
    };
    tracing::info!("etcd API serving");
    Server::builder()
        .layer(InterceptorLayer::new(require_leader))
        .add_service(
            etcdserverpb::kv_server::KvServer::new(KvApi { ctx: ctx.clone() })
                .max_decoding_message_size(max),
        )
        .add_service(
            etcdserverpb::watch_server::WatchServer::new(WatchApi { ctx: ctx.clone() })
                .max_decoding_message_size(max),
        )
        .add_service(
            etcdserverpb::lease_server::LeaseServer::new(LeaseApi { ctx: ctx.clone() })
                .max_decoding_message_size(max),
        )
        .add_service(
            etcdserverpb::cluster_server::ClusterServer::new(ClusterApi { ctx: ctx.clone() })
                .max_decoding_message_size(max),
        )
        .add_service(
            etcdserverpb::maintenance_server::MaintenanceServer::new(MaintenanceApi {
                ctx: ctx.clone(),
            })
            .max_decoding_message_size(max),
        )
        .add_service(
            v3lockpb::lock_server::LockServer::new(LockApi { ctx: ctx.clone() })
                .max_decoding_message_size(max),
        )
        .add_service(
            v3electionpb::election_server::ElectionServer::new(ElectionApi { ctx: ctx.clone() })
                .max_decoding_message_size(max),
        )
        .add_service(ForwardServer::new(ForwardApi { ctx }).max_decoding_message_size(max))
        .serve_with_incoming_shutdown(incoming, signal)
        .await?;
    tracing::info!("etcd API stopped");
    Ok(())
}

/// The internal `Forward` service: hands the bytes to the backend, which
/// decodes them (a member forwarding to the leader; see `raft_backend`).
struct ForwardApi {
    ctx: Context,
}

#[tonic::async_trait]
impl Forward for ForwardApi {
    async fn apply(
        &self,
        request: tonic::Request<ForwardRequest>,
    ) -> Result<tonic::Response<ForwardReply>, tonic::Status> {
        let command = request.into_inner().command;
        let answer = self.ctx.backend.forwarded(command).await?;
        Ok(tonic::Response::new(ForwardReply { answer }))
    }

    type PipeStream = pipe_server::AnswerStream;

    async fn pipe(
        &self,
        request: tonic::Request<tonic::Streaming<ForwardBatch>>,
    ) -> Result<tonic::Response<Self::PipeStream>, tonic::Status> {
        let answers = pipe_server::serve(self.ctx.clone(), request.into_inner());
        Ok(tonic::Response::new(answers))
    }
}
