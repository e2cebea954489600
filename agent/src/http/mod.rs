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
use serde::Serialize;
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
        Some(v) => ([(header::CONTENT_TYPE, "application/json")], v).into_response(),
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

/// A task in `/state`, borrowed from the loop's state.
#[derive(Serialize)]
struct TaskView<'a> {
    id: &'a agora_model::TaskId,
    framework_id: &'a agora_model::FrameworkId,
    name: &'a str,
    state: agora_model::TaskState,
    healthy: Option<bool>,
    kill: Option<crate::checkpoint::KillCause>,
    lifecycle: String,
    resources: serde_json::Value,
    container: ContainerView<'a>,
    pending_updates: usize,
}

#[derive(Serialize)]
struct ContainerView<'a> {
    id: &'a str,
    runtime: &'static str,
    handle: &'a Option<agora_runtime::ContainerHandle>,
    sandbox: &'a std::path::Path,
}

#[derive(Serialize)]
struct CompletedView<'a> {
    id: &'a agora_model::TaskId,
    framework_id: &'a agora_model::FrameworkId,
    state: agora_model::TaskState,
    sandbox: &'a std::path::Path,
    finished: f64,
}

#[derive(Serialize)]
struct StateView<'a> {
    agent_id: &'a Option<agora_model::AgentId>,
    hostname: &'a str,
    port: u16,
    master: Option<&'a str>,
    registered: bool,
    resources: serde_json::Value,
    attributes: &'a agora_model::Attributes,
    runtimes: Vec<&'static str>,
    frameworks: Vec<&'a agora_model::FrameworkInfo>,
    tasks: Vec<TaskView<'a>>,
    completed_tasks: Vec<CompletedView<'a>>,
}

/// `/state` as JSON bytes, built in the event loop from its own state. It
/// is serialized straight from borrowed views (no intermediate `Value`
/// tree), because the loop answers nothing else while it runs.
pub(crate) fn state_json(s: &State) -> Vec<u8> {
    let tasks = s
        .tasks
        .iter()
        .map(|(key, t)| TaskView {
            id: &key.1,
            framework_id: &key.0,
            name: &t.record.spec.name,
            state: t.record.state,
            healthy: t.record.healthy,
            kill: t.record.kill,
            lifecycle: format!("{:?}", t.lifecycle),
            resources: t.record.spec.resources.summary_json(),
            container: ContainerView {
                id: &t.record.container_id,
                runtime: if t.record.spec.docker.is_some() {
                    "docker"
                } else {
                    "process"
                },
                handle: &t.record.handle,
                sandbox: &t.record.sandbox,
            },
            pending_updates: s.updates.pending_len(key),
        })
        .collect();
    let completed_tasks = s
        .completed
        .iter()
        .rev()
        .take(100)
        .map(|c| CompletedView {
            id: &c.task_id,
            framework_id: &c.framework_id,
            state: c.state,
            sandbox: &c.sandbox,
            finished: c
                .finished
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        })
        .collect();
    let view = StateView {
        agent_id: &s.agent_id,
        hostname: &s.identity.hostname,
        port: s.identity.port,
        master: s.link.as_ref().map(|l| l.master.as_str()),
        registered: s.link.is_some(),
        resources: json!({
            "total": s.identity.resources.summary_json(),
            "used": s.used.summary_json(),
            "text": s.identity.resources.to_string(),
        }),
        attributes: &s.config.attributes,
        runtimes: s.runtimes.available(),
        frameworks: s.frameworks.values().collect(),
        tasks,
        completed_tasks,
    };
    serde_json::to_vec(&view).unwrap_or_else(|e| {
        tracing::error!(error = %e, "encoding /state failed");
        br#"{"message":"encoding /state failed"}"#.to_vec()
    })
}
