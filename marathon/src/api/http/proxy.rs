//! Standbys proxy `/v2/*` to the leader (as Marathon's standbys do), so a
//! client may talk to any Marathon process. Requests are forwarded as they
//! came, streaming the answer back (so `/v2/events` works through a
//! standby); `X-Marathon-Via` marks a proxied request so two processes that
//! disagree about the leader cannot bounce a request between them.
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{error, json};
use crate::api::error::ApiError;
use crate::leader::{Route, Shared};

const VIA: &str = "X-Marathon-Via";
/// Connecting to the leader takes at most this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The client proxied calls go through: one per process (in [`Shared`]),
/// so connections to the leader are pooled and reused, not opened per
/// request.
pub(crate) type Proxy = Client<HttpConnector, Body>;

/// A new proxy client.
pub(crate) fn client() -> Proxy {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    Client::builder(TokioExecutor::new()).build(connector)
}

pub(crate) async fn to_leader(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let target = match &*shared.route.borrow() {
        Route::Leading(_) => None,
        Route::Following(l) => Some(l.clone()),
    };
    let Some(leader) = target else {
        return next.run(req).await;
    };
    let Some(leader) = leader else {
        return error(ApiError::Unavailable(
            "Could not determine the current leader".into(),
        ));
    };
    if req.headers().contains_key(VIA) {
        return error(ApiError::Unavailable(
            "the leader is changing; retry".into(),
        ));
    }
    forward(&shared, &leader, req).await
}

async fn forward(shared: &Shared, leader: &str, mut req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let uri: Uri = match format!("http://{leader}{path}").parse() {
        Ok(u) => u,
        Err(_) => {
            return error(ApiError::Unavailable(format!(
                "bad leader address {leader:?}"
            )));
        }
    };
    *req.uri_mut() = uri;
    if let Ok(v) = shared.me.parse() {
        req.headers_mut().insert(VIA, v);
    }
    req.headers_mut().remove(axum::http::header::HOST);
    match shared.proxy.request(req).await {
        Ok(resp) => resp.map(Body::new).into_response(),
        Err(e) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"message": format!("cannot reach the leader at {leader}: {e}")}),
        ),
    }
}
