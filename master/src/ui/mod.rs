//! The operators' web pages at `/ui` (issue 9 §3): cluster, agents, what
//! fits, history and apps. Server-rendered HTML (maud) that is complete
//! without JavaScript; a small hand-written module (`assets/app.js`) adds
//! live refresh and answers the calculator in place. Charts are SVG drawn
//! here. Assets are compiled into the binary and nothing is fetched from
//! another origin: every response carries a strict Content-Security-Policy.
//! Standbys send the browser to the leader (307), like every leader-only
//! HTTP endpoint.
//!
//! Handlers copy a [`UiSnapshot`] out of the loop (one command) and render
//! outside it; the pages' functions are pure (snapshot in, markup out).
mod agents;
mod apps;
mod cluster;
mod fit;
mod history;
mod layout;
mod marathon;
mod snapshot;
mod svg;
#[cfg(test)]
mod tests;

use agora_capacity::{HistoryQuery, breakdown, fit as fit_answer, fragmentation, what_if};
use axum::Router;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::Markup;
use tokio::sync::oneshot;

pub(crate) use snapshot::UiSnapshot;

use crate::clock::unix_now;
use crate::event_loop::Command;
use crate::http::HttpState;
use crate::route;

/// The page script, shipped as is (budget: under 30 KB).
pub(crate) const APP_JS: &str = include_str!("assets/app.js");
/// The stylesheet.
pub(crate) const STYLE_CSS: &str = include_str!("assets/style.css");

/// Nothing leaves the origin: scripts, styles, images, fetches and form
/// targets are this master's only (inline SVG is markup, not a resource).
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub(crate) fn router() -> Router<HttpState> {
    Router::new()
        .route("/ui", get(cluster_page))
        .route("/ui/", get(cluster_page))
        .route("/ui/agents", get(agents_page))
        .route("/ui/fit", get(fit_page))
        .route("/ui/history", get(history_page))
        .route("/ui/apps", get(apps_page))
        .route("/ui/apps/deployment", post(deployment_action))
        .route("/ui/assets/{name}", get(asset))
}

fn secure(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

fn html(status: StatusCode, page: Markup) -> Response {
    secure(
        (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            page.into_string(),
        )
            .into_response(),
    )
}

/// The leader's copy of the state, or the redirect/503 a standby answers.
async fn ui_snapshot(s: &HttpState, path: &str) -> Result<UiSnapshot, Response> {
    let current = route::current(&s.route);
    let Ok(core) = current.core() else {
        return Err(crate::http::redirect(current.leader(), path));
    };
    let (reply, rx) = oneshot::channel();
    if core.tx.send(Command::GetUi { reply }).await.is_err() {
        return Err(crate::http::unavailable());
    }
    rx.await.map_err(|_| crate::http::unavailable())
}

fn path_with(path: &str, q: &Option<String>) -> String {
    match q {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    }
}

/// Query pairs with empty values dropped (an empty form field means "not
/// given", not "the empty string").
fn pairs(q: Option<&str>) -> Result<Vec<(String, String)>, crate::capacity::QueryError> {
    let all = crate::capacity::query_pairs(q)?;
    Ok(all
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect())
}

async fn cluster_page(State(s): State<HttpState>, RawQuery(q): RawQuery) -> Response {
    let snap = match ui_snapshot(&s, &path_with("/ui", &q)).await {
        Ok(snap) => snap,
        Err(r) => return r,
    };
    let pairs = match pairs(q.as_deref()) {
        Ok(p) => p,
        Err(e) => return e.response(),
    };
    let group_by = crate::capacity::first(&pairs, "group_by");
    let cap = breakdown(&snap.capacity);
    let frag = fragmentation(&snap.capacity, &s.shapes);
    let group = crate::http::replication_json(&s);
    let body = cluster::body(&snap, &cap, &frag, group_by, &group);
    html(
        StatusCode::OK,
        layout::page("Cluster", "/ui", snap.at_unix, body),
    )
}

async fn agents_page(State(s): State<HttpState>, RawQuery(q): RawQuery) -> Response {
    let snap = match ui_snapshot(&s, &path_with("/ui/agents", &q)).await {
        Ok(snap) => snap,
        Err(r) => return r,
    };
    let pairs = match pairs(q.as_deref()) {
        Ok(p) => p,
        Err(e) => return e.response(),
    };
    let query = agents::AgentsQuery {
        attrs: pairs
            .iter()
            .filter(|(k, _)| k == "attr")
            .filter_map(|(_, v)| v.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        sort: crate::capacity::first(&pairs, "sort").map(str::to_string),
        descending: pairs.iter().any(|(k, v)| k == "order" && v == "desc"),
    };
    let cap = breakdown(&snap.capacity);
    let frag = fragmentation(&snap.capacity, &s.shapes);
    let body = agents::body(&cap, &frag, &query);
    html(
        StatusCode::OK,
        layout::page("Agents", "/ui/agents", snap.at_unix, body),
    )
}

/// Fields whose presence means "answer the calculator".
const FIT_FIELDS: [&str; 5] = ["cpus", "mem", "disk", "gpus", "ports"];

async fn fit_page(State(s): State<HttpState>, RawQuery(q): RawQuery) -> Response {
    let snap = match ui_snapshot(&s, &path_with("/ui/fit", &q)).await {
        Ok(snap) => snap,
        Err(r) => return r,
    };
    let pairs = match pairs(q.as_deref()) {
        Ok(p) => p,
        Err(e) => return e.response(),
    };
    let asked = pairs.iter().any(|(k, _)| FIT_FIELDS.contains(&k.as_str()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let answer: Option<Result<_, crate::capacity::QueryError>> = asked.then(|| {
        let req = crate::capacity::fit_request(Some(&query))?;
        let changes = crate::capacity::what_ifs(Some(&query))?;
        Ok(fit_answer(&what_if(&snap.capacity, &changes), &req))
    });
    let (status, shown) = match &answer {
        None => (StatusCode::OK, None),
        Some(Ok(a)) => (StatusCode::OK, Some(Ok(a))),
        Some(Err(e)) => (
            StatusCode::BAD_REQUEST,
            Some(Err((e.path.clone(), e.error.clone()))),
        ),
    };
    let body = fit::body(&pairs, shown);
    html(
        status,
        layout::page("What fits", "/ui/fit", snap.at_unix, body),
    )
}

async fn history_page(State(s): State<HttpState>, RawQuery(q): RawQuery) -> Response {
    let pairs = match pairs(q.as_deref()) {
        Ok(p) => p,
        Err(e) => return e.response(),
    };
    let get = |k: &str| crate::capacity::first(&pairs, k).map(str::to_string);
    let range = get("range")
        .filter(|r| history::RANGES.iter().any(|(v, _)| v == r))
        .unwrap_or_else(|| "1h".into());
    let span = crate::capacity::parse_span(&range).unwrap_or(3600);
    let now = unix_now();
    let query = HistoryQuery {
        scope: get("scope").unwrap_or_else(|| agora_capacity::CLUSTER_SCOPE.into()),
        from_ms: Some((now as u64).saturating_sub(span) * 1000),
        to_ms: None,
        step_ms: None,
    };
    let series = match crate::capacity::history(&s, query, &path_with("/ui/history", &q)).await {
        Ok(series) => series,
        Err(r) => return r,
    };
    let body = history::body(&series, &range);
    html(
        StatusCode::OK,
        layout::page("History", "/ui/history", now, body),
    )
}

async fn apps_page(State(s): State<HttpState>) -> Response {
    let snap = match ui_snapshot(&s, "/ui/apps").await {
        Ok(snap) => snap,
        Err(r) => return r,
    };
    let targets: Vec<(String, String, String)> = snap
        .frameworks
        .iter()
        .filter_map(|f| {
            let url = marathon::base_url(f.webui_url.as_deref()?)?;
            Some((f.name.clone(), f.id.clone(), url))
        })
        .collect();
    let states =
        futures_util::future::join_all(targets.iter().map(|(_, _, url)| marathon::fetch(url)))
            .await;
    let views: Vec<apps::MarathonView> = targets
        .into_iter()
        .zip(states)
        .map(|((name, framework_id, url), state)| apps::MarathonView {
            name,
            framework_id,
            url,
            state,
        })
        .collect();
    let body = apps::body(&views, snap.at_unix);
    html(
        StatusCode::OK,
        layout::page("Apps", "/ui/apps", snap.at_unix, body),
    )
}

/// The Stop/Rollback buttons' form.
#[derive(serde::Deserialize)]
struct DeploymentForm {
    framework: String,
    id: String,
    action: String,
}

/// A form posted from another site is refused: the buttons change state.
/// (The pages' `Referrer-Policy: same-origin` is what makes a browser send
/// the real `Origin` on our own forms; `no-referrer` would make it `null`.)
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let origin_host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            origin_host.is_some() && origin_host == host
        }
    }
}

async fn deployment_action(
    State(s): State<HttpState>,
    headers: HeaderMap,
    Form(form): Form<DeploymentForm>,
) -> Response {
    if !same_origin(&headers) {
        return secure((StatusCode::FORBIDDEN, "cross-origin form refused\n").into_response());
    }
    let stop = match form.action.as_str() {
        "stop" => true,
        "rollback" => false,
        other => {
            return secure(
                (
                    StatusCode::BAD_REQUEST,
                    format!("/action: expected stop or rollback, got {other:?}\n"),
                )
                    .into_response(),
            );
        }
    };
    let snap = match ui_snapshot(&s, "/ui/apps").await {
        Ok(snap) => snap,
        Err(r) => return r,
    };
    let Some(url) = snap
        .frameworks
        .iter()
        .find(|f| f.id == form.framework)
        .and_then(|f| marathon::base_url(f.webui_url.as_deref()?))
    else {
        return secure(
            (
                StatusCode::NOT_FOUND,
                format!(
                    "/framework: no framework {:?} with a web address\n",
                    form.framework
                ),
            )
                .into_response(),
        );
    };
    match marathon::deployment_action(&url, &form.id, stop).await {
        Ok(code) if code < 300 => secure(
            (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, "/ui/apps")],
                String::new(),
            )
                .into_response(),
        ),
        Ok(code) => secure(
            (
                StatusCode::BAD_GATEWAY,
                format!(
                    "Marathon answered HTTP {code} to {} deployment {}\n",
                    form.action, form.id
                ),
            )
                .into_response(),
        ),
        Err(e) => secure((StatusCode::BAD_GATEWAY, format!("{e}\n")).into_response()),
    }
}

async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        _ => return secure((StatusCode::NOT_FOUND, "no such asset\n").into_response()),
    };
    secure(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "max-age=300"),
            ],
            body,
        )
            .into_response(),
    )
}
