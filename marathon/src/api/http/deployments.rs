//! `/v2/deployments`: list; DELETE rolls back (a new deployment to the
//! original definitions), or with `force=true` only forgets it (202).
use std::sync::Arc;

use agora_marathon_planner::DeploymentId;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Query, ask, deployed, error, json, read};
use crate::api::render::deployment_json;
use crate::event_loop::ApiCall;
use crate::leader::Shared;

pub(crate) async fn list(State(shared): State<Arc<Shared>>) -> Response {
    match read(&shared, |state, _| {
        state
            .deployments
            .values()
            .map(|d| deployment_json(state, d))
            .collect::<Vec<Value>>()
    })
    .await
    {
        Ok(list) => json(StatusCode::OK, Value::Array(list)),
        Err(e) => error(e),
    }
}

pub(crate) async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let force = Query::parse(q.as_deref()).flag("force");
    let id = DeploymentId(id);
    match ask(&shared, |reply| ApiCall::Cancel { id, force, reply }).await {
        Ok(Some(d)) => deployed(StatusCode::OK, &d),
        Ok(None) => StatusCode::ACCEPTED.into_response(),
        Err(e) => error(e),
    }
}
