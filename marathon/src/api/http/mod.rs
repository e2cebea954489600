//! The HTTP server: Marathon's v2 REST API on axum. Handlers decode and
//! validate, then send one command to the leader's loop and await its
//! answer (`ask`, `read`); a standby proxies `/v2/*` to the leader
//! (`proxy.rs`), or answers 503 while no leader is known.
//!
//! Files: `apps.rs` (`/v2/apps`, its tasks, versions, restart),
//! `deployments.rs`, `tasks.rs` (`/v2/tasks`, `/v2/queue`), `misc.rs`
//! (`/v2/info`, `/v2/leader`, `/ping`, `/metrics`, `GET /v2/groups`),
//! `groups.rs` (POST/PUT/DELETE of groups),
//! `events.rs` (`/v2/events`, Server-Sent Events).
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::api::error::ApiError;
use crate::event_loop::{ApiCall, Command};
use crate::leader::{Route, Shared};
use crate::state::{Now, State};

mod apps;
mod deployments;
mod events;
mod groups;
mod misc;
pub(crate) mod proxy;
mod tasks;

/// The longest an API call waits for the loop (and its store write).
const ASK_TIMEOUT: Duration = Duration::from_secs(30);
/// Marathon's header naming the deployment a change started.
pub(crate) const DEPLOYMENT_HEADER: &str = "Marathon-Deployment-Id";

/// The router.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let v2 = Router::new()
        .route(
            "/v2/apps",
            get(apps::list)
                .post(apps::create)
                .put(apps::put_many)
                .patch(apps::patch_many),
        )
        .route(
            "/v2/apps/{*rest}",
            get(apps::get_under)
                .put(apps::put_under)
                .patch(apps::patch_under)
                .delete(apps::delete_under)
                .post(apps::post_under),
        )
        .route("/v2/deployments", get(deployments::list))
        .route(
            "/v2/deployments/{id}",
            axum::routing::delete(deployments::cancel),
        )
        .route("/v2/tasks", get(tasks::list))
        .route("/v2/tasks/delete", post(tasks::delete))
        .route("/v2/queue", get(tasks::queue))
        .route(
            "/v2/queue/{*rest}",
            axum::routing::delete(tasks::reset_delay),
        )
        .route("/v2/groups", get(misc::groups).post(groups::create))
        .route(
            "/v2/groups/{*rest}",
            get(misc::group).put(groups::update).delete(groups::delete),
        )
        .route("/v2/events", get(events::stream))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            proxy::to_leader,
        ));
    Router::new()
        .merge(v2)
        .route("/v2/info", get(misc::info))
        .route("/v2/leader", get(misc::leader).delete(misc::abdicate))
        .route("/ping", get(misc::ping))
        .route("/metrics", get(misc::metrics))
        .with_state(shared)
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// An error in Marathon's shape.
pub(crate) fn error(e: ApiError) -> Response {
    let (status, body) = e.to_response();
    json(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}

/// Marathon's answer to a change that started a deployment:
/// `{"version", "deploymentId"}` and the `Marathon-Deployment-Id` header.
pub(crate) fn deployed(status: StatusCode, d: &crate::state::apps::Deployed) -> Response {
    let body = serde_json::json!({
        "version": crate::api::json::format_version(d.version),
        "deploymentId": d.deployment.0,
    });
    with_deployment(json(status, body), &d.deployment.0)
}

/// Adds `Marathon-Deployment-Id`.
pub(crate) fn with_deployment(mut r: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert(DEPLOYMENT_HEADER, v);
    }
    r
}

fn no_leader() -> ApiError {
    ApiError::Unavailable("Could not determine the current leader".into())
}

fn loop_tx(shared: &Shared) -> Result<tokio::sync::mpsc::Sender<Command>, ApiError> {
    match &*shared.route.borrow() {
        Route::Leading(tx) => Ok(tx.clone()),
        Route::Following(_) => Err(no_leader()),
    }
}

/// Sends an API call to the loop and waits for its answer.
pub(crate) async fn ask<T>(
    shared: &Shared,
    make: impl FnOnce(oneshot::Sender<Result<T, ApiError>>) -> ApiCall,
) -> Result<T, ApiError> {
    let tx = loop_tx(shared)?;
    let (reply, rx) = oneshot::channel();
    tx.send(Command::Api(make(reply)))
        .await
        .map_err(|_| no_leader())?;
    match tokio::time::timeout(ASK_TIMEOUT, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(no_leader()),
        Err(_) => Err(ApiError::Unavailable(
            "timed out waiting for the leader".into(),
        )),
    }
}

/// Runs `f` on the state inside the loop and returns what it computed.
pub(crate) async fn read<T: Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&State, Now) -> T + Send + 'static,
) -> Result<T, ApiError> {
    ask(shared, |reply| {
        ApiCall::Read(Box::new(move |state: &State, now: Now| {
            let _ = reply.send(Ok(f(state, now)));
        }))
    })
    .await
}

/// Query parameters, repeated ones kept (`embed=a&embed=b`).
#[derive(Debug, Default)]
pub(crate) struct Query(pub(crate) Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Query {
        Query(
            raw.and_then(|q| serde_urlencoded::from_str(q).ok())
                .unwrap_or_default(),
        )
    }

    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn get<'a>(&'a self, key: &'a str) -> Option<&'a str> {
        self.all(key).next()
    }

    /// `force=true` and friends, in any case (clients send Python's
    /// `True`; Marathon's JAX-RS booleans ignore case).
    pub(crate) fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A flag that defaults to true unless given as `false` (any case).
    pub(crate) fn flag_or_true(&self, key: &str) -> bool {
        !self
            .get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
    }
}

/// The per-subscriber event buffer of `/v2/events`.
pub(crate) fn events_buffer() -> usize {
    events::EVENT_BUFFER
}
