//! `/v2/tasks` (JSON or Marathon's text/plain listing), `POST
//! /v2/tasks/delete`, and the launch queue (`/v2/queue`, `DELETE
//! /v2/queue/{id}/delay`).
use std::sync::Arc;

use agora_marathon_planner::{Condition, InstanceId, PathId};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Query, ask, deployed, error, json, read};
use crate::api::error::ApiError;
use crate::api::render::{queue_json, task_json};
use crate::event_loop::ApiCall;
use crate::leader::Shared;

/// Does the client ask for Marathon's text/plain task listing?
pub(crate) fn wants_text(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/plain") && !a.contains("application/json"))
}

/// Marathon's text listing: per task, `appId servicePort host:port ...`.
pub(crate) fn text(tasks: &[Value]) -> Response {
    let mut out = String::new();
    for t in tasks {
        let app = t["appId"].as_str().unwrap_or("");
        let host = t["host"].as_str().unwrap_or("");
        let ports: Vec<String> = t["ports"]
            .as_array()
            .map(|a| a.iter().map(|p| format!("{host}:{p}")).collect())
            .unwrap_or_default();
        out.push_str(&format!("{app}\t{}\n", ports.join("\t")));
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response()
}

/// `GET /v2/tasks?status=running|staging`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = Query::parse(q.as_deref());
    let status: Vec<String> = q.all("status").map(str::to_string).collect();
    let r = read(&shared, move |state, _| {
        state
            .instances
            .values()
            .filter(|i| i.placed.is_some() && !i.condition.is_terminal())
            .filter(|i| {
                status.is_empty()
                    || status.iter().any(|s| match s.as_str() {
                        "running" => i.condition == Condition::Running,
                        "staging" => i.condition == Condition::Staging,
                        _ => false,
                    })
            })
            .map(|i| task_json(i, state.apps.get(&i.app), state.on_draining_agent(i)))
            .collect::<Vec<Value>>()
    })
    .await;
    match r {
        Ok(tasks) if wants_text(&headers) => text(&tasks),
        Ok(tasks) => json(StatusCode::OK, json!({"tasks": tasks})),
        Err(e) => error(e),
    }
}

/// `POST /v2/tasks/delete?scale=&force=` with `{"ids": [...]}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let q = Query::parse(q.as_deref());
    #[derive(serde::Deserialize)]
    struct Ids {
        ids: Vec<String>,
    }
    let ids = match serde_json::from_slice::<Ids>(&body) {
        Ok(i) => i
            .ids
            .into_iter()
            .map(InstanceId::from_string)
            .collect::<Vec<_>>(),
        Err(e) => {
            return error(ApiError::MalformedJson {
                path: "/ids".into(),
                message: e.to_string(),
            });
        }
    };
    let (scale, force) = (q.flag("scale"), q.flag("force"));
    match ask(&shared, |reply| ApiCall::Kill {
        ids,
        scale,
        force,
        reply,
    })
    .await
    {
        Ok(Some(d)) => deployed(StatusCode::OK, &d),
        Ok(None) => json(StatusCode::OK, json!({"tasks": []})),
        Err(e) => error(e),
    }
}

/// `GET /v2/queue`.
pub(crate) async fn queue(State(shared): State<Arc<Shared>>) -> Response {
    match read(&shared, queue_json).await {
        Ok(v) => json(StatusCode::OK, v),
        Err(e) => error(e),
    }
}

/// `DELETE /v2/queue/{app id}/delay`.
pub(crate) async fn reset_delay(
    State(shared): State<Arc<Shared>>,
    Path(rest): Path<String>,
) -> Response {
    let Some(app) = rest.strip_suffix("/delay") else {
        return error(ApiError::AppNotFound(PathId::root()));
    };
    let app = match PathId::parse(&format!("/{}", app.trim_start_matches('/'))) {
        Ok(a) => a,
        Err(_) => return error(ApiError::AppNotFound(PathId::root())),
    };
    match ask(&shared, |reply| ApiCall::ResetDelay { app, reply }).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(e),
    }
}
