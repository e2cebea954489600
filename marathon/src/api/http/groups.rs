//! `/v2/groups`: the app tree (GET), and changes to whole groups in one
//! deployment: POST creates a group's apps (409 if the group exists), PUT
//! makes the group exactly what the body says (apps it no longer names
//! are removed; `{"scaleBy": f}` scales every app in it), DELETE removes
//! every app under it. Ids of apps and subgroups may be relative to their
//! group, as in Marathon.
use std::sync::Arc;

use agora_marathon_planner::{App, PathId, Violation};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::{Query, ask, deployed, error, read};
use crate::api::convert::{MAX_INSTANCES_PER_APP, parse_app};
use crate::api::error::ApiError;
use crate::event_loop::ApiCall;
use crate::leader::Shared;
use crate::state::DeployRequest;

type S = State<Arc<Shared>>;

fn group_id(rest: &str) -> Result<PathId, ApiError> {
    PathId::parse(&format!("/{}", rest.trim_matches('/')))
        .map_err(|e| ApiError::Invalid(vec![Violation::at("/id", e.to_string())]))
}

/// Every app of a group body, ids resolved against their groups; errors
/// name the app's place in the body.
fn apps_of(body: &Value, base: &PathId, out: &mut Vec<App>, path: &str) -> Result<(), ApiError> {
    let here = match body.get("id").and_then(Value::as_str) {
        Some(id) => PathId::parse(id)
            .map_err(|e| {
                ApiError::Invalid(vec![Violation::at(format!("{path}/id"), e.to_string())])
            })?
            .canonical(base),
        None => base.clone(),
    };
    for app in body
        .get("apps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let bytes = serde_json::to_vec(app).unwrap_or_default();
        out.push(parse_app(&bytes, &here)?);
    }
    for (i, g) in body
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        apps_of(g, &here, out, &format!("{path}/groups({i})"))?;
    }
    Ok(())
}

async fn apps_under(shared: &Shared, group: PathId) -> Result<Vec<App>, ApiError> {
    read(shared, move |state, _| {
        state
            .apps
            .values()
            .filter(|a| !a.removing && a.app.id.is_within(&group))
            .map(|a| a.app.clone())
            .collect()
    })
    .await
}

async fn deploy(shared: &Shared, req: DeployRequest) -> Response {
    match ask(shared, |reply| ApiCall::Deploy { req, reply }).await {
        Ok(d) => deployed(StatusCode::OK, &d),
        Err(e) => error(e),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson {
        path: "/".into(),
        message: e.to_string(),
    })
}

/// `scaleBy`'s factor; a body whose `scaleBy` is not a number is refused
/// (read as a group without apps, it would remove every app in it).
fn scale_factor(v: &Value) -> Result<f64, ApiError> {
    v.as_f64().ok_or_else(|| ApiError::MalformedJson {
        path: "/scaleBy".into(),
        message: format!("expected a number, got {v}"),
    })
}

/// Every app at `ceil(instances × factor)` (Marathon's rounding; a negative
/// factor scales to 0), refused with a 422 when an app would need more than
/// [`MAX_INSTANCES_PER_APP`] (an unchecked cast would saturate at
/// `u32::MAX` instances).
fn scaled(apps: Vec<App>, factor: f64) -> Result<Vec<App>, ApiError> {
    let max = f64::from(MAX_INSTANCES_PER_APP);
    // JSON's short form (`1e300`), not every digit of the float.
    let shown = serde_json::Number::from_f64(factor).map_or_else(|| "?".into(), |n| n.to_string());
    apps.into_iter()
        .map(|mut a| {
            let n = (f64::from(a.instances) * factor).ceil().max(0.0);
            if n.is_nan() || n > max {
                return Err(ApiError::Invalid(vec![Violation::at(
                    "/scaleBy",
                    format!(
                        "scaling {} ({} instances) by {shown} gives more than {MAX_INSTANCES_PER_APP}, expected {MAX_INSTANCES_PER_APP} or less",
                        a.id, a.instances
                    ),
                )]));
            }
            // In 0..=MAX_INSTANCES_PER_APP and whole: the cast is exact.
            a.instances = n as u32;
            Ok(a)
        })
        .collect()
}

/// `POST /v2/groups`: 201 with the version and deployment.
pub(crate) async fn create(State(shared): S, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let q = Query::parse(q.as_deref());
    let v = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return error(e),
    };
    let mut apps = Vec::new();
    if let Err(e) = apps_of(&v, &PathId::root(), &mut apps, "") {
        return error(e);
    }
    let req = DeployRequest {
        apps,
        create_only: true,
        force: q.flag("force"),
        ..DeployRequest::default()
    };
    let mut r = deploy(&shared, req).await;
    if r.status() == StatusCode::OK {
        *r.status_mut() = StatusCode::CREATED;
    }
    r
}

/// `PUT /v2/groups/{id}`.
pub(crate) async fn update(
    State(shared): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let q = Query::parse(q.as_deref());
    let (group, v) = match (group_id(&rest), parse_body(&body)) {
        (Ok(g), Ok(v)) => (g, v),
        (Err(e), _) | (_, Err(e)) => return error(e),
    };
    let current = match apps_under(&shared, group.clone()).await {
        Ok(a) => a,
        Err(e) => return error(e),
    };
    let force = q.flag("force");
    if let Some(factor) = v.get("scaleBy").filter(|f| !f.is_null()) {
        let apps = match scale_factor(factor).and_then(|f| scaled(current, f)) {
            Ok(apps) => apps,
            Err(e) => return error(e),
        };
        return deploy(
            &shared,
            DeployRequest {
                apps,
                force,
                ..DeployRequest::default()
            },
        )
        .await;
    }
    let mut apps = Vec::new();
    let mut with_id = v.clone();
    if let Value::Object(m) = &mut with_id {
        m.insert("id".into(), Value::String(group.to_string()));
    }
    if let Err(e) = apps_of(&with_id, &PathId::root(), &mut apps, "") {
        return error(e);
    }
    let remove = current
        .into_iter()
        .map(|a| a.id)
        .filter(|id| !apps.iter().any(|a| &a.id == id))
        .collect();
    deploy(
        &shared,
        DeployRequest {
            apps,
            remove,
            force,
            ..DeployRequest::default()
        },
    )
    .await
}

/// `DELETE /v2/groups/{id}`.
pub(crate) async fn delete(
    State(shared): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let group = match group_id(&rest) {
        Ok(g) => g,
        Err(e) => return error(e),
    };
    let current = match apps_under(&shared, group.clone()).await {
        Ok(a) => a,
        Err(e) => return error(e),
    };
    if current.is_empty() {
        return error(ApiError::GroupNotFound(group));
    }
    let remove = current.into_iter().map(|a| a.id).collect();
    deploy(
        &shared,
        DeployRequest {
            remove,
            force: q.flag("force"),
            ..DeployRequest::default()
        },
    )
    .await
}
