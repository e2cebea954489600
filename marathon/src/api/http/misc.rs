//! `/v2/info`, `/v2/leader` (GET; DELETE abdicates), `/ping`, `/metrics`
//! (Prometheus text) and `/v2/groups` (the app tree, read-only for now).
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use agora_marathon_planner::PathId;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use serde_json::{Value, json};

use super::{error, json, read};
use crate::api::error::ApiError;
use crate::api::json::format_version;
use crate::api::render::{Embed, app_json};
use crate::config::FAILOVER_TIMEOUT;
use crate::leader::{Route, Shared};
use crate::state::AppState;

/// The Marathon version Agora's API follows.
pub(crate) const MARATHON_VERSION: &str = "1.11.24";

fn leader_of(shared: &Shared) -> Option<String> {
    match &*shared.route.borrow() {
        Route::Leading(_) => Some(shared.me.clone()),
        Route::Following(l) => l.clone(),
    }
}

pub(crate) async fn info(State(shared): State<Arc<Shared>>) -> Response {
    let elected = matches!(&*shared.route.borrow(), Route::Leading(_));
    let cfg = &shared.config;
    let body = json!({
        "name": "marathon",
        "version": MARATHON_VERSION,
        "buildref": concat!("agora-", env!("CARGO_PKG_VERSION")),
        "elected": elected,
        "leader": leader_of(&shared),
        "frameworkId": shared.framework_id.borrow().clone(),
        "marathon_config": {
            "checkpoint": true,
            "executor": "//cmd",
            "failover_timeout": FAILOVER_TIMEOUT.as_secs(),
            "framework_name": cfg.framework_name,
            "ha": true,
            "hostname": shared.me,
            "leader_proxy_connection_timeout_ms": 5000,
            "leader_proxy_read_timeout_ms": 10000,
            "local_port_min": 10000,
            "local_port_max": 20000,
            "master": cfg.masters.join(","),
            "mesos_role": cfg.role,
            "mesos_user": "root",
            "reconciliation_initial_delay": 15000,
            "reconciliation_interval": crate::state::RECONCILE_INTERVAL.as_millis() as u64,
            "task_launch_timeout": 300000,
            "decline_offer_duration": crate::state::DECLINE_FILTER.as_millis() as u64,
            "max_instances_per_offer": crate::state::MAX_INSTANCES_PER_OFFER,
        },
        "zookeeper_config": {
            "zk": format!("etcd://{}{}", cfg.etcd.join(","), cfg.prefix),
            "zk_max_versions": crate::state::MAX_VERSIONS,
        },
        "http_config": {"http_port": shared.me.rsplit(':').next().and_then(|p| p.parse::<u16>().ok())},
        "event_subscriber": Value::Null,
    });
    json(StatusCode::OK, body)
}

pub(crate) async fn leader(State(shared): State<Arc<Shared>>) -> Response {
    match leader_of(&shared) {
        Some(l) => json(StatusCode::OK, json!({"leader": l})),
        None => json(
            StatusCode::NOT_FOUND,
            json!({"message": "There is no leader"}),
        ),
    }
}

/// `DELETE /v2/leader`: this process, if it leads, gives up leadership and
/// pauses before campaigning again.
pub(crate) async fn abdicate(State(shared): State<Arc<Shared>>) -> Response {
    if matches!(&*shared.route.borrow(), Route::Leading(_)) {
        shared.abdicate.notify_one();
        json(StatusCode::OK, json!({"message": "Leadership abdicted"}))
    } else {
        json(
            StatusCode::NOT_FOUND,
            json!({"message": "There is no leader"}),
        )
    }
}

pub(crate) async fn ping() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], "pong").into_response()
}

/// Prometheus text, read from the state at scrape time.
pub(crate) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let leading = matches!(&*shared.route.borrow(), Route::Leading(_));
    let counts = if leading {
        read(&shared, |state, now| scrape(state, now.wall_ms))
            .await
            .ok()
    } else {
        None
    };
    match render_metrics(leading, counts) {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": e.to_string()}),
        ),
    }
}

fn condition_word(c: agora_marathon_planner::Condition) -> &'static str {
    use agora_marathon_planner::Condition as C;
    match c {
        C::Scheduled => "scheduled",
        C::Staging => "staging",
        C::Running => "running",
        C::Unreachable => "unreachable",
        C::UnreachableInactive => "unreachable_inactive",
        C::Killing => "killing",
        C::Terminal => "terminal",
    }
}

/// What a scrape reads from the state.
struct Counts {
    apps: i64,
    deployments: i64,
    by_condition: BTreeMap<&'static str, i64>,
    /// Instances waiting for offers, per app and [`waiting_reason`].
    waiting: BTreeMap<(String, &'static str), i64>,
    /// Offers declined for a waiting app, per app and first reason (the
    /// `/v2/queue` funnel).
    declined: BTreeMap<(String, &'static str), i64>,
}

/// Why an app's instances wait, as one label value (the `/v2/queue`
/// answer reduced to a word, so that waiting can be summed by reason):
/// `Backoff` while its launch delay runs, else the decline reason that
/// turned down the most offers since it started waiting, else
/// `AwaitingOffers` (no offer has been turned down yet).
fn waiting_reason(a: &AppState, now_wall_ms: u64) -> &'static str {
    if a.delay.until_wall_ms > now_wall_ms {
        return "Backoff";
    }
    a.offer_stats
        .declined
        .iter()
        // Most declines first; on a tie, the earlier stage of the funnel.
        .max_by_key(|(kind, n)| (**n, std::cmp::Reverse(**kind)))
        .map_or("AwaitingOffers", |(kind, _)| kind.as_str())
}

fn scrape(state: &crate::state::State, now_wall_ms: u64) -> Counts {
    let mut by_condition: BTreeMap<&'static str, i64> = BTreeMap::new();
    let mut waiting_per_app: BTreeMap<&PathId, i64> = BTreeMap::new();
    for i in state.instances.values() {
        *by_condition.entry(condition_word(i.condition)).or_default() += 1;
        if i.condition == agora_marathon_planner::Condition::Scheduled
            && i.goal == agora_marathon_planner::Goal::Running
        {
            *waiting_per_app.entry(&i.app).or_default() += 1;
        }
    }
    let mut waiting = BTreeMap::new();
    let mut declined = BTreeMap::new();
    for (id, n) in waiting_per_app {
        let Some(a) = state.apps.get(id) else {
            continue;
        };
        let id = id.to_string();
        waiting.insert((id.clone(), waiting_reason(a, now_wall_ms)), n);
        for (reason, n) in &a.offer_stats.declined {
            declined.insert((id.clone(), reason.as_str()), i64::from(*n));
        }
    }
    Counts {
        apps: state.apps.len() as i64,
        deployments: state.deployments.len() as i64,
        by_condition,
        waiting,
        declined,
    }
}

fn render_metrics(leading: bool, counts: Option<Counts>) -> Result<String, prometheus::Error> {
    let reg = Registry::new();
    let leader = IntGauge::new(
        "marathon_leader",
        "1 if this Marathon process is the leader",
    )?;
    leader.set(i64::from(leading));
    reg.register(Box::new(leader.clone()))?;
    if let Some(c) = counts {
        let a = IntGauge::new("marathon_apps", "Apps defined")?;
        a.set(c.apps);
        reg.register(Box::new(a))?;
        let d = IntGauge::new("marathon_deployments", "Deployments in progress")?;
        d.set(c.deployments);
        reg.register(Box::new(d))?;
        let i = IntGaugeVec::new(
            Opts::new("marathon_instances", "Instances by condition"),
            &["condition"],
        )?;
        for (k, v) in c.by_condition {
            i.with_label_values(&[k]).set(v);
        }
        reg.register(Box::new(i))?;
        let w = IntGaugeVec::new(
            Opts::new(
                "marathon_queue_waiting_instances",
                "Instances waiting for offers, per app and reason (Backoff, AwaitingOffers, or the decline reason that turned down the most offers)",
            ),
            &["app", "reason"],
        )?;
        for ((app, reason), n) in &c.waiting {
            w.with_label_values(&[app.as_str(), reason]).set(*n);
        }
        reg.register(Box::new(w))?;
        let r = IntGaugeVec::new(
            Opts::new(
                "marathon_queue_declined_offers",
                "Offers declined for a waiting app since it started waiting, by first reason",
            ),
            &["app", "reason"],
        )?;
        for ((app, reason), n) in &c.declined {
            r.with_label_values(&[app.as_str(), reason]).set(*n);
        }
        reg.register(Box::new(r))?;
    }
    let mut buf = Vec::new();
    TextEncoder::new().encode(&reg.gather(), &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The group tree under `root`: apps by their parent path.
///
/// Runs inside the event loop, on whatever the state holds, so it must not
/// panic on any set of ids: an app whose id is also another app's group
/// (`/a` and `/a/b`, refused since but possibly in a store written
/// before) shows as an app of its parent and as that group, and is not an
/// app inside itself.
fn group_json(apps: &[(PathId, Value)], root: &PathId, version: &str) -> Value {
    let depth = root.segments().len();
    let mut direct: Vec<Value> = Vec::new();
    // Sorted and unique whatever order `apps` comes in.
    let mut children: BTreeSet<PathId> = BTreeSet::new();
    for (id, v) in apps.iter().filter(|(id, _)| id.is_within(root)) {
        let segments = id.segments();
        match segments.len().cmp(&(depth + 1)) {
            Ordering::Equal => direct.push(v.clone()),
            // Deeper: in the child group named by its next segment.
            Ordering::Greater => {
                if let Some(Ok(g)) = segments.get(..=depth).map(PathId::from_segments) {
                    children.insert(g);
                }
            }
            // The group's own id: an app where this group is, not in it.
            Ordering::Less => {}
        }
    }
    let groups: Vec<Value> = children
        .iter()
        .map(|g| group_json(apps, g, version))
        .collect();
    json!({"id": root.to_string(), "apps": direct, "groups": groups, "pods": [], "dependencies": [], "version": version})
}

async fn tree(shared: &Shared, root: PathId) -> Response {
    let r = read(shared, move |state, now| {
        let apps: Vec<(PathId, Value)> = state
            .apps
            .values()
            .filter(|a| !a.removing)
            .map(|a| (a.app.id.clone(), app_json(state, a, Embed::default())))
            .collect();
        let known = root.is_root()
            || apps
                .iter()
                .any(|(id, _)| id.is_within(&root) && *id != root);
        known.then(|| {
            group_json(
                &apps,
                &root,
                &format_version(agora_marathon_planner::Version(now.wall_ms)),
            )
        })
    })
    .await;
    match r {
        Ok(Some(v)) => json(StatusCode::OK, v),
        Ok(None) => error(ApiError::GroupNotFound(PathId::root())),
        Err(e) => error(e),
    }
}

pub(crate) async fn groups(State(shared): State<Arc<Shared>>) -> Response {
    tree(&shared, PathId::root()).await
}

pub(crate) async fn group(State(shared): State<Arc<Shared>>, Path(rest): Path<String>) -> Response {
    match PathId::parse(&format!("/{}", rest.trim_matches('/'))) {
        Ok(id) => tree(&shared, id).await,
        Err(_) => error(ApiError::GroupNotFound(PathId::root())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &Value, key: &str) -> Vec<String> {
        v[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["id"].as_str().map(str::to_string))
            .collect()
    }

    /// `/a` and `/a/b` both apps (refused now, but maybe in an old store):
    /// the tree renders, `/a` as an app of `/` and as the group of `/a/b`.
    #[test]
    fn an_app_that_is_also_a_group_renders_without_panicking() {
        let apps: Vec<(PathId, Value)> = ["/a", "/a/b", "/a/b/c/d", "/z"]
            .iter()
            .map(|s| {
                let id = PathId::parse(s).unwrap();
                (id, json!({"id": s}))
            })
            .collect();
        let root = group_json(&apps, &PathId::root(), "v");
        assert_eq!(ids(&root, "apps"), ["/a", "/z"]);
        assert_eq!(ids(&root, "groups"), ["/a"]);
        let a = &root["groups"][0];
        assert_eq!(ids(a, "apps"), ["/a/b"]);
        assert_eq!(ids(a, "groups"), ["/a/b"]);
        let ab = &a["groups"][0];
        assert_eq!(ids(ab, "apps"), Vec::<String>::new());
        assert_eq!(ids(ab, "groups"), ["/a/b/c"]);
        assert_eq!(ids(&ab["groups"][0], "apps"), ["/a/b/c/d"]);
    }
}
