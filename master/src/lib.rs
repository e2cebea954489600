//! The Agora master: admits agents, keeps frameworks, tasks and offers,
//! runs the DRF allocator (crate `agora-allocator`) every allocation interval
//! and on events, validates ACCEPTs, forwards status updates at least once,
//! and serves the Scheduler gRPC API, the agents' links and HTTP /health,
//! /state and /metrics on one port (`serve.rs` tells them apart).
//!
//! Architecture invariant: one event loop (`event_loop::run`) owns all
//! mutable state; handlers in `api/` and `http.rs` only decode, validate and
//! send it a `Command`. The decision core (`core.rs` and the area files
//! `agents`, `frameworks`, `offers`, `tasks`) is sans-IO: it returns effects
//! (`effects.rs`) that the loop performs. The registry changes only through
//! `Registry::apply`, after the change is durable.
#![forbid(unsafe_code)]

mod agents;
mod api;
mod clock;
mod config;
mod core;
mod effects;
mod error;
mod event_loop;
mod frameworks;
#[cfg(test)]
mod harness;
mod http;
mod metrics;
mod offers;
pub mod registry;
mod serve;
mod snapshot;
mod state;
mod state_json;
mod tasks;

use std::net::SocketAddr;
use std::time::Duration;

use agora_proto::v1;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::info;

pub use config::MasterConfig;
pub use error::{CallError, MasterError};

use crate::registry::{RegistryStore, spawn_writer};
use crate::state::Master;

/// How long shutdown waits for connections to drain before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running master.
pub struct MasterHandle {
    addr: SocketAddr,
    /// The agents' links; stopped and awaited on shutdown.
    forwarders: tokio_util::task::TaskTracker,
    stop_forwarders: tokio_util::sync::CancellationToken,
    shutdown_loop: Option<oneshot::Sender<()>>,
    shutdown_server: Option<oneshot::Sender<()>>,
    loop_task: JoinHandle<()>,
    server_task: JoinHandle<()>,
}

impl MasterHandle {
    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and stops the loop; open streams end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown_loop.take() {
            let _ = tx.send(());
        }
        if let Some(tx) = self.shutdown_server.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.loop_task).await;
        self.stop_forwarders.cancel();
        self.forwarders.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.server_task)
            .await
            .is_err()
        {
            self.server_task.abort();
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.forwarders.wait()).await;
    }

    /// Stops everything at once, like kill -9: no goodbyes, no flushing.
    pub fn crash(self) {
        self.loop_task.abort();
        self.server_task.abort();
        self.stop_forwarders.cancel();
    }
}

/// Starts a master serving on `listener` (gRPC and HTTP on the same port).
pub async fn start(cfg: MasterConfig, listener: TcpListener) -> Result<MasterHandle, MasterError> {
    cfg.validate()?;
    let addr = listener.local_addr()?;
    let store = RegistryStore::new(cfg.data_dir.as_deref())?;
    let registry = store.load()?;
    let master_id = uuid::Uuid::new_v4().to_string();
    let writer = spawn_writer(store, registry.clone());
    let master = Master::new(
        cfg,
        registry,
        master_id.clone(),
        addr.to_string(),
        clock::unix_now(),
        rand::random(),
    );
    let (tx, rx) = mpsc::channel(event_loop::COMMAND_QUEUE);
    let (loop_stop, loop_stop_rx) = oneshot::channel();
    let loop_task = tokio::spawn(event_loop::run(master, writer, rx, loop_stop_rx));

    let forwarders = tokio_util::task::TaskTracker::new();
    let stop_forwarders = tokio_util::sync::CancellationToken::new();
    let agents = api::agent::AgentApi {
        tx: tx.clone(),
        forwarders: forwarders.clone(),
        stop: stop_forwarders.clone(),
    };
    let app = tonic::service::Routes::new(v1::scheduler_server::SchedulerServer::new(
        api::scheduler::SchedulerApi { tx: tx.clone() },
    ))
    .into_axum_router()
    .merge(http::router(http::HttpState { tx }))
    .fallback(http::not_found);
    let (server_stop, server_stop_rx) = oneshot::channel::<()>();
    let server_task = tokio::spawn(serve::serve(listener, app, agents, server_stop_rx));
    info!(%addr, %master_id, "master started");
    Ok(MasterHandle {
        addr,
        forwarders,
        stop_forwarders,
        shutdown_loop: Some(loop_stop),
        shutdown_server: Some(server_stop),
        loop_task,
        server_task,
    })
}
