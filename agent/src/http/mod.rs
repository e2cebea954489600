//! The agent's HTTP endpoints (axum): `/health`, `/state`, `/metrics` and
//! `/tasks/{task_id}/logs`. Handlers ask the event loop over the event
//! channel and never touch its state directly.
mod logs;

use std::sync::Arc;

use axum::Router;
use axum::extract::State as AxState;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::event_loop::{Command, Event, State};
use crate::metrics::Metrics;

/// What handlers share.
#[derive(Clone)]
pub(crate) struct Http {
    /// The event loop's channel.
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) metrics: Arc<Metrics>,
}

impl Http {
    /// Sends a command and waits for its answer; `None` if the loop is gone.
    pub(crate) async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.events.send(Event::Command(make(tx))).await.ok()?;
        rx.await.ok()
    }
}

/// The router.
pub(crate) fn router(http: Http) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/state", get(state))
        .route("/metrics", get(metrics))
        .route("/tasks/{task_id}/logs", get(logs::logs))
        .fallback(not_found)
        .with_state(http)
}

/// Any other path: 404 with a JSON body, never an empty 200.
async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no such path: {}", uri.path()),
    )
}

/// A JSON error body `{"message": ...}` with a status.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "message": message.into() }))).into_response()
}

async fn state(AxState(http): AxState<Http>) -> Response {
    match http.ask(Command::State).await {
        Some(v) => axum::Json(v).into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping"),
    }
}

async fn metrics(AxState(http): AxState<Http>) -> Response {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        http.metrics.render(),
    )
        .into_response()
}

/// `/state` as JSON, built in the event loop from its own state.
pub(crate) fn state_json(s: &State) -> serde_json::Value {
    let used = &s.used;
    let tasks: Vec<serde_json::Value> = s
        .tasks
        .iter()
        .map(|((fw, id), t)| {
            json!({
                "id": id,
                "framework_id": fw,
                "name": t.record.spec.name,
                "state": t.record.state,
                "healthy": t.record.healthy,
                "kill": t.record.kill,
                "lifecycle": format!("{:?}", t.lifecycle),
                "resources": t.record.spec.resources.summary_json(),
                "container": {
                    "id": t.record.container_id,
                    "runtime": if t.record.spec.docker.is_some() { "docker" } else { "process" },
                    "handle": t.record.handle,
                    "sandbox": t.record.sandbox,
                },
                "pending_updates": s.updates.pending(&(fw.clone(), id.clone())).len(),
            })
        })
        .collect();
    let completed: Vec<serde_json::Value> = s
        .completed
        .iter()
        .rev()
        .take(100)
        .map(|c| {
            let finished = c
                .finished
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            json!({
                "id": c.task_id,
                "framework_id": c.framework_id,
                "state": c.state,
                "sandbox": c.sandbox,
                "finished": finished,
            })
        })
        .collect();
    json!({
        "agent_id": s.agent_id,
        "hostname": s.identity.hostname,
        "port": s.identity.port,
        "master": s.link.as_ref().map(|l| l.master.clone()),
        "registered": s.link.is_some(),
        "resources": {
            "total": s.identity.resources.summary_json(),
            "used": used.summary_json(),
            "text": s.identity.resources.to_string(),
        },
        "attributes": s.config.attributes,
        "runtimes": s.runtimes.available(),
        "frameworks": s.frameworks.values().collect::<Vec<_>>(),
        "tasks": tasks,
        "completed_tasks": completed,
    })
}
