//! Agora's Marathon: long-running apps over a Marathon 1.x-compatible v2
//! REST API, as a framework on the scheduler SDK (issue 8). Decisions
//! (validation rules, placement, deployment plans) are taken by the pure
//! `agora-marathon-planner` crate; this crate owns the edges and the state.
//!
//! # Code map
//! - `lib.rs`: [`start`] → [`MarathonHandle`]; `config.rs`: [`MarathonConfig`].
//! - `leader.rs`: campaign on the coordination service, lead (load, subscribe,
//!   run the loop), step down; standbys track the leader.
//! - `event_loop.rs`: the loop that owns the state; `dispatch.rs`: the
//!   sequencer (writes durable before calls, events and answers) and the
//!   SDK calls task; `framework.rs`: SDK callbacks → loop commands;
//!   `readiness.rs`: readiness-check probes, results back to the loop.
//! - `state/`: the sans-IO state (apps, instances, deployments, launch
//!   queue) and its records.
//! - `store/`: persistence on an etcd v3 keyspace; `election.rs`: the
//!   lease-backed leader election.
//! - `api/`: JSON wire types and conversion (`json/`, `convert.rs`), errors
//!   (`error.rs`), response bodies (`render.rs`) and the axum server
//!   (`http/`).
//!
//! API boundary: Marathon's v2 REST API over HTTP; [`start`] for embedding
//! (the `agora marathon` and `agora dev` commands).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;

pub mod api;
mod config;
mod dispatch;
pub mod election;
mod event_loop;
mod framework;
mod leader;
mod readiness;
mod state;
pub mod store;

pub use config::{FAILOVER_TIMEOUT, MarathonConfig};

/// Why Marathon could not start.
#[derive(Debug, thiserror::Error)]
pub enum MarathonError {
    /// The coordination service cannot be reached.
    #[error("the coordination service: {0}")]
    Store(#[from] store::StoreError),
    /// The listener's address.
    #[error("the listener: {0}")]
    Listener(#[from] std::io::Error),
}

/// A running Marathon process.
pub struct MarathonHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    leadership: JoinHandle<()>,
    server: JoinHandle<()>,
}

impl MarathonHandle {
    /// Where the API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Steps down (if leading) and stops serving.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.leadership).await;
        self.server.abort();
    }
}

/// Connects to the coordination service, serves the API on `listener`, and
/// campaigns for leadership in the background.
pub async fn start(
    config: MarathonConfig,
    listener: TcpListener,
) -> Result<MarathonHandle, MarathonError> {
    let addr = listener.local_addr()?;
    let store = store::Store::connect(store::StoreConfig {
        endpoints: config.etcd.clone(),
        prefix: config.prefix.clone(),
        connect_timeout: std::time::Duration::from_secs(5),
        request_timeout: std::time::Duration::from_secs(10),
    })
    .await?;
    let me = config.advertise.clone().unwrap_or_else(|| addr.to_string());
    let (events, _) = broadcast::channel(api::http_event_buffer());
    let (route, _) = watch::channel(leader::Route::Following(None));
    let (framework_id, _) = watch::channel(None);
    let shared = Arc::new(leader::Shared {
        route,
        events,
        abdicate: Notify::new(),
        me,
        config,
        framework_id,
        proxy: api::http::proxy::client(),
    });
    let (stop, stop_rx) = watch::channel(false);
    let app = api::http::router(shared.clone());
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = server_stop.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "the Marathon API server stopped");
        }
    });
    let leadership = tokio::spawn(leader::lead_forever(store, shared, stop_rx));
    tracing::info!(%addr, "Marathon API listening");
    Ok(MarathonHandle {
        addr,
        stop,
        leadership,
        server,
    })
}
