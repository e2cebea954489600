//! `/v2/apps`: list, create, update (PUT = update or create, PATCH =
//! partial), delete, restart, tasks, versions and rollback to a version.
//! Paths under `/v2/apps/` end in an app id, optionally followed by
//! `restart`, `tasks[/ID]` or `versions[/V]` (ids ending in those words are
//! invalid, so the split is unambiguous).
use std::sync::Arc;

use agora_marathon_planner::{InstanceId, PathId, Version};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Query, ask, deployed, error, json, read, with_deployment};
use crate::api::convert::{parse_app, render_app};
use crate::api::error::ApiError;
use crate::api::json::{format_version, parse_version};
use crate::api::render::{Embed, app_extras, app_json, task_json, with_extras};
use crate::event_loop::ApiCall;
use crate::leader::Shared;
use crate::state::DeployRequest;
use crate::state::apps::Deployed;

type S = State<Arc<Shared>>;

/// What follows the app id.
enum Tail {
    None,
    Restart,
    Tasks(Option<String>),
    Versions(Option<String>),
}

fn split(rest: &str) -> Result<(PathId, Tail), ApiError> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    // Bound by the patterns, so no index arithmetic can go out of range.
    let (id_segs, tail) = match segs.as_slice() {
        [id @ .., "restart"] => (id, Tail::Restart),
        [id @ .., "tasks"] => (id, Tail::Tasks(None)),
        [id @ .., "tasks", t] => (id, Tail::Tasks(Some(t.to_string()))),
        [id @ .., "versions"] => (id, Tail::Versions(None)),
        [id @ .., "versions", v] => (id, Tail::Versions(Some(v.to_string()))),
        id => (id, Tail::None),
    };
    let id = PathId::parse(&format!("/{}", id_segs.join("/"))).map_err(|e| {
        ApiError::Invalid(vec![agora_marathon_planner::Violation::at(
            "/id",
            e.to_string(),
        )])
    })?;
    Ok((id, tail))
}

/// `GET /v2/apps?embed=..&id=..&label=..`
pub(crate) async fn list(State(shared): S, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let embed = Embed::parse(q.all("embed"));
    let id_filter = q.get("id").map(str::to_string);
    let label = q.get("label").map(str::to_string);
    // Clones and the cheap extras inside the loop; the rendering (most of
    // the cost) out here, so a big listing does not hold the loop up.
    let r = read(&shared, move |state, _| {
        state
            .apps
            .values()
            .filter(|a| !a.removing)
            .filter(|a| {
                id_filter
                    .as_ref()
                    .is_none_or(|f| a.app.id.to_string().contains(f.as_str()))
            })
            .filter(|a| {
                label
                    .as_ref()
                    .is_none_or(|l| label_matches(&a.app.labels, l))
            })
            .map(|a| (a.app.clone(), app_extras(state, a, embed)))
            .collect::<Vec<_>>()
    })
    .await
    .map(|apps| {
        let apps: Vec<Value> = apps
            .into_iter()
            .map(|(app, extras)| with_extras(render_app(&app), extras))
            .collect();
        json!({"apps": apps})
    });
    match r {
        Ok(v) => json(StatusCode::OK, v),
        Err(e) => error(e),
    }
}

/// Marathon's label selector, the common forms: `key`, `key==value`,
/// `key!=value`, comma-separated (all must hold).
fn label_matches(labels: &std::collections::BTreeMap<String, String>, selector: &str) -> bool {
    selector.split(',').map(str::trim).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels.get(k.trim()).is_none_or(|x| x != v.trim())
        } else if let Some((k, v)) = term.split_once("==") {
            labels.get(k.trim()).is_some_and(|x| x == v.trim())
        } else {
            labels.contains_key(term)
        }
    })
}

async fn app_body(shared: &Shared, id: PathId) -> Result<Value, ApiError> {
    read(shared, move |state, _| {
        state
            .apps
            .get(&id)
            .filter(|a| !a.removing)
            .map(|a| app_json(state, a, Embed::all()))
            .ok_or(ApiError::AppNotFound(id))
    })
    .await?
}

async fn deploy(shared: &Shared, req: DeployRequest) -> Result<Deployed, ApiError> {
    ask(shared, |reply| ApiCall::Deploy { req, reply }).await
}

/// `POST /v2/apps`: 201 with the app, `Location` and the deployment header.
pub(crate) async fn create(State(shared): S, RawQuery(_q): RawQuery, body: Bytes) -> Response {
    let app = match parse_app(&body, &PathId::root()) {
        Ok(a) => a,
        Err(e) => return error(e),
    };
    let id = app.id.clone();
    let req = DeployRequest {
        apps: vec![app],
        create_only: true,
        ..DeployRequest::default()
    };
    let d = match deploy(&shared, req).await {
        Ok(d) => d,
        Err(e) => return error(e),
    };
    match app_body(&shared, id.clone()).await {
        Ok(v) => {
            let mut r = with_deployment(json(StatusCode::CREATED, v), &d.deployment.0);
            if let Ok(loc) = format!("/v2/apps{id}").parse() {
                r.headers_mut().insert(axum::http::header::LOCATION, loc);
            }
            r
        }
        Err(e) => error(e),
    }
}

/// Parses a body for app `id`: the id in the path wins; a body naming a
/// different id is a 422, as Marathon's.
fn parse_for(id: &PathId, body: &[u8]) -> Result<agora_marathon_planner::App, ApiError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson {
        path: "/".into(),
        message: e.to_string(),
    })?;
    if let Value::Object(m) = &mut v {
        if let Some(given) = m.get("id").and_then(Value::as_str) {
            let given = PathId::parse(given).map(|p| p.canonical(&id.parent()));
            if given.as_ref().is_ok_and(|g| g != id) {
                return Err(ApiError::Invalid(vec![
                    agora_marathon_planner::Violation::at(
                        "/id",
                        "The path parameter and the body's id do not match",
                    ),
                ]));
            }
        }
        m.insert("id".into(), Value::String(id.to_string()));
    }
    let bytes = serde_json::to_vec(&v).unwrap_or_default();
    parse_app(&bytes, &PathId::root())
}

/// `{"version": "..."}` alone: a rollback to that stored version.
fn rollback_version(body: &[u8]) -> Option<Result<Version, ApiError>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let m = v.as_object()?;
    if m.len() != 1 {
        return None;
    }
    let text = m.get("version")?.as_str()?;
    Some(parse_version(text).ok_or_else(|| {
        ApiError::Invalid(vec![agora_marathon_planner::Violation::at(
            "/version",
            "not an ISO-8601 version",
        )])
    }))
}

async fn put_app(shared: &Shared, id: PathId, body: &[u8], q: &Query, patch: bool) -> Response {
    let force = q.flag("force");
    if let Some(v) = rollback_version(body) {
        let v = match v {
            Ok(v) => v,
            Err(e) => return error(e),
        };
        let id2 = id.clone();
        let old = read(shared, move |state, _| {
            state
                .apps
                .get(&id2)
                .and_then(|a| a.versions.get(&v).cloned())
        })
        .await;
        let app = match old {
            Ok(Some(app)) => app,
            Ok(None) => return error(ApiError::VersionNotFound(id, format_version(v))),
            Err(e) => return error(e),
        };
        let req = DeployRequest {
            apps: vec![app],
            force,
            keep_version_info: true,
            ..DeployRequest::default()
        };
        return match deploy(shared, req).await {
            Ok(d) => deployed(StatusCode::OK, &d),
            Err(e) => error(e),
        };
    }
    let id2 = id.clone();
    let existed = read(shared, move |state, _| {
        state.apps.get(&id2).is_some_and(|a| !a.removing)
    })
    .await;
    // Marathon 1.x: PUT on an existing app merges the body into it unless
    // `partialUpdate=false`; PATCH always merges.
    let merge = patch || q.flag_or_true("partialUpdate");
    let app = match (&existed, merge) {
        (Ok(true), true) => merged(shared, &id, body).await,
        _ => parse_for(&id, body),
    };
    let app = match app {
        Ok(a) => a,
        Err(e) => return error(e),
    };
    let req = DeployRequest {
        apps: vec![app],
        force,
        ..DeployRequest::default()
    };
    match (existed, deploy(shared, req).await) {
        (_, Err(e)) | (Err(e), _) => error(e),
        (Ok(true), Ok(d)) => deployed(StatusCode::OK, &d),
        (Ok(false), Ok(d)) => match app_body(shared, id).await {
            Ok(v) => with_deployment(json(StatusCode::CREATED, v), &d.deployment.0),
            Err(e) => error(e),
        },
    }
}

/// PATCH: the body's fields over the current definition's.
async fn merged(
    shared: &Shared,
    id: &PathId,
    body: &[u8],
) -> Result<agora_marathon_planner::App, ApiError> {
    let patch: Value = serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson {
        path: "/".into(),
        message: e.to_string(),
    })?;
    let id2 = id.clone();
    let current = read(shared, move |state, _| {
        state
            .apps
            .get(&id2)
            .filter(|a| !a.removing)
            .map(|a| render_app(&a.app))
    })
    .await?;
    let mut base = current.ok_or_else(|| ApiError::AppNotFound(id.clone()))?;
    if let (Value::Object(b), Value::Object(p)) = (&mut base, patch) {
        for (k, v) in p {
            b.insert(k, v);
        }
    }
    let bytes = serde_json::to_vec(&base).unwrap_or_default();
    parse_for(id, &bytes)
}

/// `PUT /v2/apps` and `PATCH /v2/apps`: many apps in one deployment.
async fn put_many_inner(shared: &Shared, body: &[u8], q: &Query, patch: bool) -> Response {
    let list: Vec<Value> = match serde_json::from_slice(body) {
        Ok(l) => l,
        Err(e) => {
            return error(ApiError::MalformedJson {
                path: "/".into(),
                message: e.to_string(),
            });
        }
    };
    let mut apps = Vec::new();
    for item in list {
        let bytes = serde_json::to_vec(&item).unwrap_or_default();
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| PathId::parse(s).ok());
        let app = match (patch, id) {
            (true, Some(id)) => merged(shared, &id.canonical(&PathId::root()), &bytes).await,
            _ => parse_app(&bytes, &PathId::root()),
        };
        match app {
            Ok(a) => apps.push(a),
            Err(e) => return error(e),
        }
    }
    let req = DeployRequest {
        apps,
        force: q.flag("force"),
        ..DeployRequest::default()
    };
    match deploy(shared, req).await {
        Ok(d) => deployed(StatusCode::OK, &d),
        Err(e) => error(e),
    }
}

pub(crate) async fn put_many(State(shared): S, RawQuery(q): RawQuery, body: Bytes) -> Response {
    put_many_inner(&shared, &body, &Query::parse(q.as_deref()), false).await
}

pub(crate) async fn patch_many(State(shared): S, RawQuery(q): RawQuery, body: Bytes) -> Response {
    put_many_inner(&shared, &body, &Query::parse(q.as_deref()), true).await
}

/// `GET /v2/apps/{id}`, `.../tasks`, `.../versions[/v]`.
pub(crate) async fn get_under(
    State(shared): S,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (id, tail) = match split(&rest) {
        Ok(x) => x,
        Err(e) => return error(e),
    };
    match tail {
        Tail::None => match app_body(&shared, id).await {
            Ok(v) => json(StatusCode::OK, json!({"app": v})),
            Err(e) => error(e),
        },
        Tail::Tasks(None) => app_tasks(&shared, id, &headers).await,
        Tail::Versions(v) => versions(&shared, id, v).await,
        Tail::Restart | Tail::Tasks(Some(_)) => error(ApiError::AppNotFound(id)),
    }
}

async fn app_tasks(shared: &Shared, id: PathId, headers: &HeaderMap) -> Response {
    let id2 = id.clone();
    let r = read(shared, move |state, _| {
        let a = state.apps.get(&id2).filter(|a| !a.removing)?;
        Some(
            state
                .instances_of(&id2)
                .filter(|i| i.placed.is_some())
                .map(|i| task_json(i, Some(a), state.on_draining_agent(i)))
                .collect::<Vec<Value>>(),
        )
    })
    .await;
    match r {
        Ok(Some(tasks)) if super::tasks::wants_text(headers) => super::tasks::text(&tasks),
        Ok(Some(tasks)) => json(StatusCode::OK, json!({"tasks": tasks})),
        Ok(None) => error(ApiError::AppNotFound(id)),
        Err(e) => error(e),
    }
}

async fn versions(shared: &Shared, id: PathId, which: Option<String>) -> Response {
    let id2 = id.clone();
    let r = read(shared, move |state, _| {
        let a = state.apps.get(&id2).filter(|a| !a.removing)?;
        Some(
            a.versions
                .iter()
                .map(|(v, app)| (*v, render_app(app)))
                .collect::<Vec<_>>(),
        )
    })
    .await;
    let all = match r {
        Ok(Some(all)) => all,
        Ok(None) => return error(ApiError::AppNotFound(id)),
        Err(e) => return error(e),
    };
    match which {
        None => {
            let list: Vec<String> = all.iter().rev().map(|(v, _)| format_version(*v)).collect();
            json(StatusCode::OK, json!({"versions": list}))
        }
        Some(text) => {
            let found = parse_version(&text).and_then(|v| all.into_iter().find(|(x, _)| *x == v));
            match found {
                Some((_, app)) => json(StatusCode::OK, app),
                None => error(ApiError::VersionNotFound(id, text)),
            }
        }
    }
}

/// `PUT /v2/apps/{id}`.
pub(crate) async fn put_under(
    State(shared): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    match split(&rest) {
        Ok((id, Tail::None)) => {
            put_app(&shared, id, &body, &Query::parse(q.as_deref()), false).await
        }
        Ok((id, _)) => error(ApiError::AppNotFound(id)),
        Err(e) => error(e),
    }
}

/// `PATCH /v2/apps/{id}`.
pub(crate) async fn patch_under(
    State(shared): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    match split(&rest) {
        Ok((id, Tail::None)) => {
            put_app(&shared, id, &body, &Query::parse(q.as_deref()), true).await
        }
        Ok((id, _)) => error(ApiError::AppNotFound(id)),
        Err(e) => error(e),
    }
}

/// `POST /v2/apps/{id}/restart`.
pub(crate) async fn post_under(
    State(shared): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let (id, tail) = match split(&rest) {
        Ok(x) => x,
        Err(e) => return error(e),
    };
    if !matches!(tail, Tail::Restart) {
        return error(ApiError::AppNotFound(id));
    }
    let id2 = id.clone();
    let app = match read(&shared, move |state, _| {
        state
            .apps
            .get(&id2)
            .filter(|a| !a.removing)
            .map(|a| a.app.clone())
    })
    .await
    {
        Ok(Some(a)) => a,
        Ok(None) => return error(ApiError::AppNotFound(id)),
        Err(e) => return error(e),
    };
    let req = DeployRequest {
        apps: vec![app],
        restart: vec![id],
        force: q.flag("force"),
        ..DeployRequest::default()
    };
    match deploy(&shared, req).await {
        Ok(d) => deployed(StatusCode::OK, &d),
        Err(e) => error(e),
    }
}

/// `DELETE /v2/apps/{id}`, `.../tasks?host=&scale=`, `.../tasks/{taskId}`.
pub(crate) async fn delete_under(
    State(shared): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let (id, tail) = match split(&rest) {
        Ok(x) => x,
        Err(e) => return error(e),
    };
    match tail {
        Tail::None => {
            let req = DeployRequest {
                remove: vec![id],
                force: q.flag("force"),
                ..DeployRequest::default()
            };
            match deploy(&shared, req).await {
                Ok(d) => deployed(StatusCode::OK, &d),
                Err(e) => error(e),
            }
        }
        Tail::Tasks(task) => kill_app_tasks(&shared, id, task, &q).await,
        _ => error(ApiError::AppNotFound(id)),
    }
}

async fn kill_app_tasks(shared: &Shared, id: PathId, task: Option<String>, q: &Query) -> Response {
    let host = q.get("host").map(str::to_string);
    let id2 = id.clone();
    let one = task.clone();
    let chosen = read(shared, move |state, _| {
        let a = state.apps.get(&id2).filter(|a| !a.removing)?;
        Some(
            state
                .instances_of(&id2)
                .filter(|i| i.placed.is_some() && !i.condition.is_terminal())
                .filter(|i| one.as_ref().is_none_or(|t| i.id.as_str() == t))
                .filter(|i| {
                    host.as_ref()
                        .is_none_or(|h| i.placed.as_ref().is_some_and(|p| &p.facts.hostname == h))
                })
                .map(|i| {
                    (
                        i.id.clone(),
                        task_json(i, Some(a), state.on_draining_agent(i)),
                    )
                })
                .collect::<Vec<_>>(),
        )
    })
    .await;
    let chosen = match chosen {
        Ok(Some(c)) => c,
        Ok(None) => return error(ApiError::AppNotFound(id)),
        Err(e) => return error(e),
    };
    if let (Some(t), true) = (&task, chosen.is_empty()) {
        return error(ApiError::TaskNotFound(t.clone()));
    }
    let ids: Vec<InstanceId> = chosen.iter().map(|(i, _)| i.clone()).collect();
    let scale = q.flag("scale");
    let force = q.flag("force");
    let r = ask(shared, |reply| ApiCall::Kill {
        ids,
        scale,
        force,
        reply,
    })
    .await;
    match r {
        Ok(Some(d)) => deployed(StatusCode::OK, &d),
        Ok(None) => {
            let mut tasks: Vec<Value> = chosen.into_iter().map(|(_, t)| t).collect();
            if task.is_some() {
                json(StatusCode::OK, json!({"task": tasks.pop()}))
            } else {
                json(StatusCode::OK, json!({"tasks": tasks}))
            }
        }
        Err(e) => error(e),
    }
}
