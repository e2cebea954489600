//! Operator HTTP endpoints, served on the gRPC port: /health, /state, /metrics.
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{mpsc, oneshot};

use crate::event_loop::Command;

#[derive(Clone)]
pub(crate) struct HttpState {
    pub(crate) tx: mpsc::Sender<Command>,
}

pub(crate) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/state", get(state_handler))
        .route("/metrics", get(metrics))
        .with_state(state)
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

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the master is shutting down\n",
    )
        .into_response()
}

async fn state_handler(State(s): State<HttpState>) -> Response {
    let (reply, rx) = oneshot::channel();
    if s.tx.send(Command::GetState { reply }).await.is_err() {
        return unavailable();
    }
    match rx.await {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(_) => unavailable(),
    }
}

async fn metrics(State(s): State<HttpState>) -> Response {
    let (reply, rx) = oneshot::channel();
    if s.tx.send(Command::GetMetrics { reply }).await.is_err() {
        return unavailable();
    }
    match rx.await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        Err(_) => unavailable(),
    }
}
