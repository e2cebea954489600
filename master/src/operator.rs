//! Operator endpoints that change the cluster: `POST
//! /api/v1/agents/{id}/drain` (optional JSON body `{"deadline_seconds":
//! N}`: when the operator wants the agent empty, from now) and `POST
//! /api/v1/agents/{id}/undrain`. Leader only (a standby answers 307 to the
//! leader); answered once the change is durable in the registry. Errors are
//! JSON `{"error", "path"}` (the field path for a bad body or id): 400 for a
//! malformed id or body, 404 for an unknown agent.
use std::time::Duration;

use agora_model::AgentId;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::core::MaintenanceChange;
use crate::event_loop::Command;
use crate::http::{HttpState, redirect, unavailable};
use crate::route;

/// Longest deadline accepted (a year), so the arithmetic cannot overflow.
const MAX_DEADLINE_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

pub(crate) fn router() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/agents/{id}/drain", post(drain))
        .route("/api/v1/agents/{id}/undrain", post(undrain))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainBody {
    deadline_seconds: Option<f64>,
}

fn error(status: StatusCode, message: impl Into<String>, path: &str) -> Response {
    let body = serde_json::json!({"error": message.into(), "path": path});
    (status, axum::Json(body)).into_response()
}

/// A bad request body: the field's path and what is wrong (a 400).
struct BadBody {
    path: &'static str,
    message: String,
}

/// The drain a request asks for, or what is wrong with the body.
fn parse_drain(body: &[u8]) -> Result<MaintenanceChange, BadBody> {
    let body: DrainBody = if body.iter().all(u8::is_ascii_whitespace) {
        DrainBody::default()
    } else {
        serde_json::from_slice(body).map_err(|e| BadBody {
            path: "/",
            message: format!("invalid JSON: {e}"),
        })?
    };
    let deadline = match body.deadline_seconds {
        None => None,
        Some(s) if s.is_finite() && (0.0..=MAX_DEADLINE_SECONDS).contains(&s) => {
            Some(Duration::from_secs_f64(s))
        }
        Some(_) => {
            return Err(BadBody {
                path: "/deadline_seconds",
                message: format!("must be between 0 and {MAX_DEADLINE_SECONDS} seconds"),
            });
        }
    };
    Ok(MaintenanceChange::Drain { deadline })
}

async fn drain(
    State(s): State<HttpState>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    match parse_drain(&body) {
        Ok(change) => set(&s, &id, change, &uri).await,
        Err(bad) => error(StatusCode::BAD_REQUEST, bad.message, bad.path),
    }
}

async fn undrain(
    State(s): State<HttpState>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    set(&s, &id, MaintenanceChange::Undrain, &uri).await
}

/// Hands the change to the leader's loop and maps its answer.
async fn set(
    s: &HttpState,
    id: &str,
    change: MaintenanceChange,
    uri: &axum::http::Uri,
) -> Response {
    let current = route::current(&s.route);
    let Ok(core) = current.core() else {
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        return redirect(current.leader(), path);
    };
    let agent = match AgentId::parse(id) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string(), "/agent_id"),
    };
    let draining = matches!(change, MaintenanceChange::Drain { .. });
    let (reply, rx) = oneshot::channel();
    let cmd = Command::SetMaintenance {
        agent: agent.clone(),
        change,
        reply,
    };
    if core.tx.send(cmd).await.is_err() {
        return unavailable();
    }
    match rx.await {
        Ok(Ok(())) => {
            let body = serde_json::json!({"agent_id": agent.to_string(), "draining": draining});
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Ok(Err(status)) => {
            let code = match status.code() {
                tonic::Code::NotFound => StatusCode::NOT_FOUND,
                tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            error(code, status.message(), "/agent_id")
        }
        Err(_) => unavailable(),
    }
}
