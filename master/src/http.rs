//! Operator HTTP endpoints, served on the gRPC port: /health, /state,
//! /metrics, /members, /api/v1/capacity[/fit|/history], /api/v1/agents/{id}/drain|undrain
//! (`operator.rs`) and the /ui pages. A standby answers /state with a 307 to the
//! leader (503 while none is known); /health, /metrics and /members are
//! answered by every member.
use std::sync::Arc;

use agora_raft::runner::Status as RaftStatus;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{oneshot, watch};

use crate::event_loop::Command;
use crate::replication::Directory;
use crate::route::{self, Route, RouteRx};

#[derive(Clone)]
pub(crate) struct HttpState {
    pub(crate) route: RouteRx,
    pub(crate) status: watch::Receiver<RaftStatus>,
    pub(crate) directory: Arc<Directory>,
    /// Membership changes (`/members`).
    pub(crate) membership: crate::membership::Membership,
    /// The replica's access queue, for reads of its state (None in unit tests).
    pub(crate) access: Option<
        tokio::sync::mpsc::Sender<agora_raft::runner::Access<crate::replication::MasterMachine>>,
    >,
    /// The configured reference shapes (`MasterConfig::reference_shapes`).
    pub(crate) shapes: Arc<Vec<agora_capacity::ReferenceShape>>,
    /// The etcd keyspace's size as the replica publishes it, and its quota.
    pub(crate) keyspace: crate::metrics::KeyspaceGauges,
}

pub(crate) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/state", get(state_handler))
        .route("/metrics", get(metrics))
        .route("/api/v1/capacity", get(crate::capacity::capacity))
        .route("/api/v1/capacity/fit", get(crate::capacity::capacity_fit))
        .route(
            "/api/v1/capacity/history",
            get(crate::capacity::capacity_history),
        )
        .merge(crate::members::router())
        .merge(crate::operator::router())
        .merge(crate::ui::router())
        .with_state(state)
}

/// The group as this member sees it, for /state and /members.
pub(crate) fn replication_json(s: &HttpState) -> serde_json::Value {
    let status = s.status.borrow().clone();
    let members: Vec<serde_json::Value> = status
        .voters
        .iter()
        .map(|id| {
            let info = s.directory.member(*id);
            serde_json::json!({
                "id": id,
                "address": info.as_ref().map(|m| m.api_addr.clone()),
                "etcd_address": info.as_ref().map(|m| m.etcd_addr.clone()),
                "leader": status.leadership.leader == Some(*id),
            })
        })
        .collect();
    let leader = status.leadership.leader;
    serde_json::json!({
        "member_id": s.directory.own_id(),
        "role": format!("{:?}", status.leadership.role).to_lowercase(),
        "term": status.leadership.term,
        "leader_id": leader,
        "leader": leader.and_then(|id| s.directory.api_addr(id)),
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
        "members": members,
        "etcd": s.keyspace.json(),
    })
}

/// A standby's answer to a call only the leader serves: 307 to the same
/// path on the leader, or 503 while no leader is known.
pub(crate) fn redirect(leader: Option<&str>, path_and_query: &str) -> Response {
    match leader {
        Some(addr) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, format!("http://{addr}{path_and_query}"))],
            format!("not the leading master; leader is at {addr}\n"),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not the leading master; no leader is known yet\n",
        )
            .into_response(),
    }
}

/// Any path nobody serves. A gRPC client calling an unknown method gets
/// gRPC's UNIMPLEMENTED; anyone else a JSON 404 naming the path.
pub(crate) async fn not_found(req: axum::extract::Request) -> Response {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    if grpc {
        return tonic::Status::unimplemented(format!("no method {}", req.uri().path()))
            .into_http::<axum::body::Body>();
    }
    let uri = req.uri().clone();
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "error": "not found",
            "path": uri.path(),
        })),
    )
        .into_response()
}

async fn health() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}",
    )
        .into_response()
}

pub(crate) fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the master is shutting down\n",
    )
        .into_response()
}

async fn state_handler(State(s): State<HttpState>, uri: axum::http::Uri) -> Response {
    let current = route::current(&s.route);
    let Ok(core) = current.core() else {
        let path = uri.path_and_query().map_or("/state", |p| p.as_str());
        return redirect(current.leader(), path);
    };
    let (reply, rx) = oneshot::channel();
    if core.tx.send(Command::GetState { reply }).await.is_err() {
        return unavailable();
    }
    match rx.await {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            with_replication(&body, &replication_json(&s)),
        )
            .into_response(),
        Err(_) => unavailable(),
    }
}

/// The core's document with the group's view added as `replication`. The
/// core knows nothing of Raft; splicing one member into the serialized
/// object costs a copy, not a second serialization of every agent.
fn with_replication(doc: &[u8], replication: &serde_json::Value) -> Vec<u8> {
    let Some(end) = doc.iter().rposition(|b| *b == b'}') else {
        return doc.to_vec();
    };
    let extra = serde_json::to_vec(replication).unwrap_or_default();
    let mut out = Vec::with_capacity(doc.len() + extra.len() + 16);
    out.extend_from_slice(&doc[..end]);
    let empty = doc[..end].iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    out.extend_from_slice(if empty {
        b"\"replication\":"
    } else {
        b",\"replication\":"
    });
    out.extend_from_slice(&extra);
    out.extend_from_slice(&doc[end..]);
    out
}

async fn metrics(State(s): State<HttpState>) -> Response {
    let mut text = String::new();
    if let Route::Active(core) = route::current(&s.route) {
        let (reply, rx) = oneshot::channel();
        if core.tx.send(Command::GetMetrics { reply }).await.is_err() {
            return unavailable();
        }
        match rx.await {
            Ok(core_text) => text = core_text,
            Err(_) => return unavailable(),
        }
        // Capacity, computed here from a copy, not in the loop.
        let (reply, rx) = oneshot::channel();
        if core.tx.send(Command::GetCapacity { reply }).await.is_ok()
            && let Ok(snap) = rx.await
        {
            text.push_str(&crate::capacity::metrics_text(&snap, &s.shapes));
        }
    }
    text.push_str(&crate::metrics::replication_text(
        &s.status.borrow(),
        s.directory.own_id(),
    ));
    text.push_str(&s.keyspace.text());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}
