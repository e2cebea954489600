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
mod capacity;
mod clock;
mod config;
mod core;
mod effects;
mod error;
mod etcd;
mod event_loop;
mod frameworks;
#[cfg(test)]
mod harness;
mod http;
mod maintenance;
mod members;
mod membership;
mod metrics;
mod offers;
mod operator;
pub mod registry;
pub mod replication;
mod route;
mod serve;
mod snapshot;
mod state;
mod state_json;
mod tasks;
mod ui;

use std::net::SocketAddr;
use std::time::Duration;

use agora_proto::v1;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

pub use config::MasterConfig;
pub use error::{CallError, MasterError};

/// How long shutdown waits for connections to drain before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running master: one member of the masters' group.
pub struct MasterHandle {
    /// This member's id in the masters' group.
    member_id: u64,
    addr: SocketAddr,
    etcd_addr: Option<SocketAddr>,
    /// The agents' links; stopped and awaited on shutdown.
    forwarders: tokio_util::task::TaskTracker,
    /// Stops the leadership task (and with it this member's core).
    stop_member: tokio_util::sync::CancellationToken,
    shutdown_server: Option<oneshot::Sender<()>>,
    member_task: JoinHandle<()>,
    server_task: JoinHandle<()>,
    etcd_task: Option<JoinHandle<()>>,
    group: replication::Group,
    route: route::RouteRx,
}

impl MasterHandle {
    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it serves the etcd v3 API, if it does.
    pub fn etcd_addr(&self) -> Option<SocketAddr> {
        self.etcd_addr
    }

    /// Whether this member leads the group and its core is running.
    pub fn is_active(&self) -> bool {
        matches!(*self.route.borrow(), route::Route::Active(_))
    }

    /// Waits until this member's core runs (it leads), up to `timeout`.
    pub async fn wait_active(&self, timeout: Duration) -> bool {
        let mut route = self.route.clone();
        tokio::time::timeout(
            timeout,
            route.wait_for(|r| matches!(r, route::Route::Active(_))),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// Stops serving, stops the core and the replica; open streams end.
    /// A leader first hands leadership to a follower (waiting at most
    /// `replication::HANDOFF_TIMEOUT`), so the group never waits out an
    /// election for a member that stops on purpose.
    pub async fn shutdown(mut self) {
        self.group.handles.hand_off_leadership(self.member_id).await;
        self.stop_member.cancel();
        if let Some(tx) = self.shutdown_server.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.member_task).await;
        self.forwarders.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.server_task)
            .await
            .is_err()
        {
            self.server_task.abort();
        }
        if let Some(etcd) = self.etcd_task.take() {
            etcd.abort();
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.forwarders.wait()).await;
        let mut group = self.group;
        let _ = tokio::task::spawn_blocking(move || group.stop_and_join()).await;
    }

    /// Stops everything at once, like kill -9: no goodbyes, no flushing.
    /// The replica's thread is joined so its store can be opened again.
    pub fn crash(mut self) {
        self.member_task.abort();
        self.server_task.abort();
        if let Some(etcd) = self.etcd_task.take() {
            etcd.abort();
        }
        if let route::Route::Active(core) = &*self.route.borrow() {
            core.abort.abort();
            core.stopped.cancel();
        }
        self.group.stop_and_join();
    }
}

/// Starts a master serving on `listener` (gRPC, HTTP, agent links and the
/// masters' Raft traffic on the same port) and, when configured, the etcd
/// v3 API on its own port. It joins or founds its group and runs its core
/// while it leads.
pub async fn start(cfg: MasterConfig, listener: TcpListener) -> Result<MasterHandle, MasterError> {
    cfg.validate()?;
    let addr = listener.local_addr()?;
    let etcd_listener = match cfg.group.etcd_listen {
        Some(at) => Some(TcpListener::bind(at).await?),
        None => None,
    };
    let etcd_addr = match &etcd_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let own_etcd = etcd_addr.map(|a| a.to_string()).unwrap_or_default();
    let group = replication::start_group(&cfg, addr.to_string(), own_etcd)?;
    // This member's configured addresses, before anything published through
    // the log is merged in: what it publishes about itself (a group of one
    // without peers has nobody to tell).
    let own_addresses = (!cfg.group.peers.is_empty())
        .then(|| group.directory.member(cfg.group.member_id))
        .flatten();
    let membership = membership::Membership::new(
        cfg.group.member_id,
        group.handles.status.clone(),
        group.directory.clone(),
        group.handles.proposals.clone(),
        group.handles.access.clone(),
    );
    let (route_tx, route_rx) = tokio::sync::watch::channel(route::Route::Standby { leader: None });
    let stop_member = tokio_util::sync::CancellationToken::new();
    let member_task = tokio::spawn(replication::lead_while_elected(
        cfg.clone(),
        group.handles.clone(),
        group.directory.clone(),
        route_tx,
        stop_member.clone(),
    ));
    tokio::spawn(replication::refresh_directory(
        group.handles.access.clone(),
        group.directory.clone(),
        stop_member.clone(),
    ));
    let etcd_task = etcd_listener.map(|l| {
        tokio::spawn(etcd::serve(
            etcd::EtcdMember {
                id: cfg.group.member_id,
                own_addresses: own_addresses.clone(),
                membership: membership.clone(),
                auto_compaction: cfg.group.etcd_auto_compaction,
                quota_backend_bytes: cfg.group.etcd_quota_backend_bytes,
            },
            l,
            &group,
            stop_member.clone(),
        ))
    });

    let forwarders = tokio_util::task::TaskTracker::new();
    let agents = api::agent::AgentApi {
        route: route_rx.clone(),
        forwarders: forwarders.clone(),
    };
    let app = tonic::service::Routes::new(v1::scheduler_server::SchedulerServer::new(
        api::scheduler::SchedulerApi {
            route: route_rx.clone(),
        },
    ))
    .add_service(agora_raft::transport::grpc::service(
        cfg.group.member_id,
        group.inbound.clone(),
    ))
    .into_axum_router()
    .merge(http::router(http::HttpState {
        route: route_rx.clone(),
        status: group.handles.status.clone(),
        directory: group.directory.clone(),
        membership,
        access: Some(group.handles.access.clone()),
        shapes: std::sync::Arc::new(cfg.reference_shapes.clone()),
        keyspace: metrics::KeyspaceGauges {
            published: group.revision.clone(),
            quota_bytes: cfg.group.etcd_quota_backend_bytes,
        },
    }))
    .fallback(http::not_found);
    let (server_stop, server_stop_rx) = oneshot::channel::<()>();
    let server_task = tokio::spawn(serve::serve(listener, app, agents, server_stop_rx));
    info!(%addr, member = cfg.group.member_id, etcd = ?etcd_addr, "master started");
    Ok(MasterHandle {
        member_id: cfg.group.member_id,
        addr,
        etcd_addr,
        forwarders,
        stop_member,
        shutdown_server: Some(server_stop),
        member_task,
        server_task,
        etcd_task,
        group,
        route: route_rx,
    })
}
