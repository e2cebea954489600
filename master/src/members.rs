//! Membership over HTTP: `GET /members` (any member), `POST /members` to
//! add a voter and `DELETE /members/{id}` to remove one (the leader; a
//! standby redirects). `agora members` is the CLI over these.
//!
//! Adding is two log entries (`membership.rs`): first the new member's
//! addresses (so every member can reach and list it), then the Raft
//! membership change. The new member may be started with `--join` before
//! or after: the leader keeps trying to reach it.
use agora_raft::RaftError;
use agora_raft::StateMachine;
use agora_raft::runner::Access;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::http::{HttpState, redirect, replication_json};
use crate::replication::{GroupConfig, MasterMachine, MemberInfo};
use crate::route;

pub(crate) fn router() -> Router<HttpState> {
    Router::new()
        .route("/members", get(list).post(add))
        .route("/members/{id}", delete(remove))
}

/// The body of `POST /members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMember {
    id: u64,
    /// `host:port` of its master API (and Raft traffic).
    address: String,
    /// `host:port` of its etcd API; default: the address's host, port 2379.
    #[serde(default)]
    etcd_address: Option<String>,
}

/// `GET /members?hash=true` adds this member's state hash and the index
/// it was taken at (members at the same index must agree; computing it
/// walks the whole state, so it is only on request).
#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    hash: bool,
}

async fn list(State(s): State<HttpState>, Query(query): Query<ListQuery>) -> Response {
    let mut body = replication_json(&s);
    if query.hash
        && let Some(access) = s.access.clone()
    {
        let (reply, answer) = oneshot::channel();
        let read = Access::Local(Box::new(move |machine: &mut MasterMachine| {
            let _ = reply.send((machine.applied_index(), machine.hash()));
        }));
        if access.send(read).await.is_ok()
            && let Ok((index, hash)) = answer.await
        {
            body["state_hash"] = serde_json::json!(hash);
            body["state_hash_index"] = serde_json::json!(index);
        }
    }
    Json(body).into_response()
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "message": message.into() })),
    )
        .into_response()
}

async fn add(State(s): State<HttpState>, uri: Uri, body: axum::body::Bytes) -> Response {
    let request: AddMember = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let spec = match &request.etcd_address {
        Some(etcd) => format!("{}={}/{}", request.id, request.address, port_of(etcd)),
        None => format!("{}={}", request.id, request.address),
    };
    let peer = match GroupConfig::parse_peers(&spec) {
        Ok(mut peers) => peers.remove(&request.id),
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    let Some(peer) = peer else {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "id: missing");
    };
    let current = route::current(&s.route);
    if current.core().is_err() {
        return redirect(current.leader(), uri.path());
    }
    if s.status.borrow().voters.contains(&request.id) {
        return problem(
            StatusCode::CONFLICT,
            format!("member {} is already a member", request.id),
        );
    }
    let info = MemberInfo {
        id: request.id,
        name: format!("master-{}", request.id),
        api_addr: peer.api_addr,
        etcd_addr: peer.etcd_addr,
    };
    match s.membership.add_voter(info).await {
        Ok(()) => Json(replication_json(&s)).into_response(),
        Err(e) => change_failed(e),
    }
}

/// The port of `host:port`, or the text as given (the parser names it).
fn port_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(_, port)| port)
}

async fn remove(State(s): State<HttpState>, uri: Uri, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("id: {id:?} is not a member id"),
        );
    };
    let current = route::current(&s.route);
    if current.core().is_err() {
        return redirect(current.leader(), uri.path());
    }
    if !s.status.borrow().voters.contains(&id) {
        return problem(
            StatusCode::NOT_FOUND,
            format!("member {id} is not a member"),
        );
    }
    match s.membership.remove_voter(id).await {
        Ok(()) => Json(replication_json(&s)).into_response(),
        Err(e) => change_failed(e),
    }
}

fn change_failed(error: RaftError) -> Response {
    match error {
        RaftError::ConfChange(reason) => problem(StatusCode::CONFLICT, reason),
        RaftError::NotLeader { .. } | RaftError::Dropped => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{error}; retry against the leader"),
        ),
        other => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{other}; the change may or may not have been made, check GET /members"),
        ),
    }
}
