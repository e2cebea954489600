//! One port for everything. Agents open a plain TCP link that starts with
//! `agora_proto::link::LINK_MAGIC`; anything else is HTTP (HTTP/1.1 for
//! operators, HTTP/2 for the Scheduler gRPC API), served by hyper with the
//! axum router. The first bytes tell the two apart, so operators, agents
//! and frameworks keep one address.
use std::time::Duration;

use agora_proto::link::LINK_MAGIC;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tracing::debug;

use crate::api::agent::AgentApi;

/// A connection that sends nothing for this long is closed: both agents
/// and HTTP clients speak first.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection's first bytes may trickle in, a piece at a time.
const PARTIAL_MAGIC_WAIT: Duration = Duration::from_millis(5);

/// Accepts until `stop` fires, then lets HTTP connections finish (agent
/// links are ended by the master's shutdown through `AgentApi::stop`).
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    agents: AgentApi,
    mut stop: oneshot::Receiver<()>,
) {
    let http = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small frames (updates, acks, pings) must not wait for the peer's
        // delayed ACK: without TCP_NODELAY each hop can stall ~40 ms.
        let _ = stream.set_nodelay(true);
        // Sniffing waits for the peer's first bytes, so it runs in the
        // connection's own task: the accept loop never waits on a client.
        let (agents, app, http, watcher) = (
            agents.clone(),
            app.clone(),
            http.clone(),
            graceful.watcher(),
        );
        tokio::spawn(async move {
            match tokio::time::timeout(FIRST_BYTES_TIMEOUT, starts_with_magic(&stream)).await {
                Ok(Ok(true)) => {
                    // Tracked, so that shutdown stops and awaits agent links.
                    let links = agents.forwarders.clone();
                    links.track_future(agents.serve_link(stream)).await;
                }
                Ok(Ok(false)) => {
                    let service = TowerToHyperService::new(app);
                    let conn = http
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        debug!(%peer, error = %e, "http connection ended with an error");
                    }
                }
                Ok(Err(e)) => debug!(%peer, error = %e, "connection failed before its first bytes"),
                Err(_) => debug!(%peer, "connection sent nothing; closed"),
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Whether the connection's first bytes are the agent link's magic; false
/// as soon as they differ (or the peer closed). Nothing is consumed.
async fn starts_with_magic(stream: &TcpStream) -> std::io::Result<bool> {
    let mut first = [0u8; LINK_MAGIC.len()];
    loop {
        let n = stream.peek(&mut first).await?;
        if n == 0 || first[..n] != LINK_MAGIC[..n] {
            return Ok(false);
        }
        if n == LINK_MAGIC.len() {
            return Ok(true);
        }
        // A prefix of the magic so far: wait for the rest (peek returns at
        // once while any byte is buffered).
        tokio::time::sleep(PARTIAL_MAGIC_WAIT).await;
    }
}
