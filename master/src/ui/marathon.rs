//! The Marathon part of the pages: the master asks each framework that
//! names its web address (the `webui_url` label; Agora's Marathon sets it)
//! for its apps, deployments and launch queue, and forwards the page's
//! Stop and Rollback buttons as Marathon's `DELETE /v2/deployments/{id}`.
//! Only `http://host:port` addresses are used, and only these fixed paths.
use std::time::Duration;

use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A framework's answer takes at most this long (the page is rendered
/// without it otherwise, with the error shown).
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Bodies larger than this are refused.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// What one Marathon said.
#[derive(Debug, Clone, Default)]
pub(crate) struct MarathonState {
    pub(crate) apps: Vec<Value>,
    pub(crate) deployments: Vec<Value>,
    pub(crate) queue: Vec<Value>,
}

/// `http://host:port` with nothing else, or None.
pub(crate) fn base_url(webui_url: &str) -> Option<String> {
    let rest = webui_url.strip_prefix("http://")?.trim_end_matches('/');
    let ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then(|| format!("http://{rest}"))
}

async fn call(method: http::Method, url: String) -> Result<(u16, Value), String> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(FETCH_TIMEOUT));
    let client: Client<HttpConnector, Body> =
        Client::builder(TokioExecutor::new()).build(connector);
    let req = http::Request::builder()
        .method(method)
        .uri(&url)
        .header(http::header::ACCEPT, "application/json")
        .body(Body::empty())
        .map_err(|e| e.to_string())?;
    let res = tokio::time::timeout(FETCH_TIMEOUT, client.request(req))
        .await
        .map_err(|_| format!("{url}: no answer within {FETCH_TIMEOUT:?}"))?
        .map_err(|e| format!("{url}: {e}"))?;
    let status = res.status().as_u16();
    let bytes = tokio::time::timeout(
        FETCH_TIMEOUT,
        axum::body::to_bytes(Body::new(res.into_body()), MAX_BODY_BYTES),
    )
    .await
    .map_err(|_| format!("{url}: body not read within {FETCH_TIMEOUT:?}"))?
    .map_err(|e| format!("{url}: {e}"))?;
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|e| format!("{url}: not JSON: {e}"))?
    };
    Ok((status, value))
}

async fn get_list(base: &str, path: &str, key: Option<&str>) -> Result<Vec<Value>, String> {
    let (status, v) = call(http::Method::GET, format!("{base}{path}")).await?;
    if status != 200 {
        return Err(format!("{base}{path}: HTTP {status}"));
    }
    let list = match key {
        Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
        None => v,
    };
    Ok(list.as_array().cloned().unwrap_or_default())
}

/// Apps (with counts and tasks), deployments and the queue of one Marathon.
pub(crate) async fn fetch(base: &str) -> Result<MarathonState, String> {
    let (apps, deployments, queue) = tokio::join!(
        get_list(
            base,
            "/v2/apps?embed=apps.counts&embed=apps.tasks&embed=apps.deployments",
            Some("apps")
        ),
        get_list(base, "/v2/deployments", None),
        get_list(base, "/v2/queue", Some("queue")),
    );
    Ok(MarathonState {
        apps: apps?,
        deployments: deployments?,
        queue: queue?,
    })
}

/// Stops (`force`: Marathon forgets it, no rollback) or rolls back a
/// deployment. Returns Marathon's HTTP status.
pub(crate) async fn deployment_action(base: &str, id: &str, stop: bool) -> Result<u16, String> {
    let id: String = url_segment(id);
    let force = if stop { "?force=true" } else { "" };
    let (status, _) = call(
        http::Method::DELETE,
        format!("{base}/v2/deployments/{id}{force}"),
    )
    .await?;
    Ok(status)
}

/// A path segment with everything but unreserved characters escaped.
fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
