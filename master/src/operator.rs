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
use serde_json::Value;
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

fn error(status: StatusCode, message: impl Into<String>, path: &str) -> Response {
    let body = serde_json::json!({"error": message.into(), "path": path});
    (status, axum::Json(body)).into_response()
}

/// A bad request body: the field's path and what is wrong (a 400).
#[derive(Debug, PartialEq)]
struct BadBody {
    path: String,
    message: String,
}

fn bad(path: impl Into<String>, message: impl Into<String>) -> BadBody {
    BadBody {
        path: path.into(),
        message: message.into(),
    }
}

/// The drain a request asks for (an empty body is a drain without a
/// deadline), or what is wrong with the body, naming the field.
fn parse_drain(body: &[u8]) -> Result<MaintenanceChange, BadBody> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(MaintenanceChange::Drain { deadline: None });
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad("/", format!("invalid JSON: {e}")))?;
    let Some(fields) = v.as_object() else {
        return Err(bad("/", "must be a JSON object"));
    };
    if let Some(k) = fields.keys().find(|k| *k != "deadline_seconds") {
        return Err(bad(format!("/{k}"), "unknown field"));
    }
    let deadline = match fields.get("deadline_seconds") {
        None | Some(Value::Null) => None,
        Some(x) => match x.as_f64() {
            Some(s) if s.is_finite() && (0.0..=MAX_DEADLINE_SECONDS).contains(&s) => {
                Some(Duration::from_secs_f64(s))
            }
            _ => {
                let msg =
                    format!("must be a number of seconds between 0 and {MAX_DEADLINE_SECONDS}");
                return Err(bad("/deadline_seconds", msg));
            }
        },
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
        Err(bad) => error(StatusCode::BAD_REQUEST, bad.message, &bad.path),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_bodies_are_parsed_or_refused_with_the_field() {
        let drain = |d: Option<u64>| {
            Ok(MaintenanceChange::Drain {
                deadline: d.map(Duration::from_secs),
            })
        };
        assert_eq!(parse_drain(b""), drain(None));
        assert_eq!(parse_drain(b"{}"), drain(None));
        assert_eq!(parse_drain(br#"{"deadline_seconds": 90}"#), drain(Some(90)));
        let path = |body: &[u8]| parse_drain(body).err().map(|e| e.path);
        assert_eq!(
            path(br#"{"deadline_seconds": -1}"#).as_deref(),
            Some("/deadline_seconds")
        );
        assert_eq!(
            path(br#"{"deadline_seconds": "soon"}"#).as_deref(),
            Some("/deadline_seconds")
        );
        assert_eq!(path(br#"{"deadline": 5}"#).as_deref(), Some("/deadline"));
        assert_eq!(path(b"[1]").as_deref(), Some("/"));
        assert_eq!(path(b"{nope").as_deref(), Some("/"));
    }
}
