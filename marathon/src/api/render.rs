//! The leader's state → Marathon 1.x's JSON bodies: tasks, apps with their
//! embedded counts and tasks, deployments, the launch queue, events. Keys
//! are exactly Marathon's (strict clients such as the `marathon` package on
//! PyPI build objects from the keys they know and fail on others), and
//! timestamps use Marathon's `2026-11-29T12:00:00.000Z` form.
use agora_marathon_planner::{Condition, DeploymentAction, Version};
use agora_model::TaskStatus;
use serde_json::{Map, Value, json};

use crate::api::convert::render_app;
use crate::api::json::format_version;
use crate::state::{AppState, Deployment, Instance, Now, State};

fn stamp(ms: u64) -> String {
    format_version(Version(ms))
}

/// The task state Marathon shows (`TASK_STAGING` before the first update).
fn task_state_word(i: &Instance) -> Value {
    match i.task_state {
        Some(s) => serde_json::to_value(s).unwrap_or(Value::Null),
        None => Value::String("TASK_STAGING".into()),
    }
}

/// One task, as `/v2/tasks` and `/v2/apps/{id}/tasks` show it.
/// `draining`: the task's agent is drained by the operator; then (only
/// then, so that strict Marathon clients see Marathon's keys otherwise) the
/// task carries `"draining": true` until it has moved.
pub(crate) fn task_json(i: &Instance, app: Option<&AppState>, draining: bool) -> Value {
    let (host, agent) = match &i.placed {
        Some(p) => (p.facts.hostname.clone(), p.agent_id.to_string()),
        None => (String::new(), String::new()),
    };
    let ports: Vec<u64> = i
        .placed
        .as_ref()
        .map(|p| p.host_ports.clone())
        .unwrap_or_default();
    let service_ports: Vec<u16> = app
        .map(|a| {
            a.app
                .ports
                .iter()
                .map(|p| crate::state::apps::service_port(&a.app, p))
                .collect()
        })
        .unwrap_or_default();
    let has_checks = app.is_some_and(|a| !a.app.health_checks.is_empty());
    let checks = match (has_checks, i.healthy) {
        (true, Some(alive)) => vec![json!({
            "alive": alive,
            "consecutiveFailures": if alive { 0 } else { 1 },
            "firstSuccess": Value::Null,
            "lastFailure": Value::Null,
            "lastSuccess": Value::Null,
            "lastFailureCause": Value::Null,
            "instanceId": i.id.to_string(),
        })],
        _ => Vec::new(),
    };
    let mut m = Map::new();
    m.insert("appId".into(), json!(i.app.to_string()));
    m.insert("healthCheckResults".into(), json!(checks));
    m.insert("host".into(), json!(host));
    m.insert("id".into(), json!(i.id.to_string()));
    m.insert("ipAddresses".into(), json!([]));
    m.insert("ports".into(), json!(ports));
    m.insert("servicePorts".into(), json!(service_ports));
    m.insert(crate::api::json::AGENT_ID_KEY.into(), json!(agent));
    m.insert("stagedAt".into(), json!(stamp(i.staged_at_ms)));
    if let Some(s) = i.started_at_ms {
        m.insert("startedAt".into(), json!(stamp(s)));
    }
    m.insert("state".into(), task_state_word(i));
    m.insert("version".into(), json!(format_version(i.version)));
    m.insert("localVolumes".into(), json!([]));
    m.insert("role".into(), json!("*"));
    if draining {
        m.insert("draining".into(), json!(true));
    }
    Value::Object(m)
}

/// What `status_update_event` carries.
pub(crate) fn status_event(i: &Instance, status: &TaskStatus) -> Value {
    let mut m = Map::new();
    m.insert(
        crate::api::json::AGENT_ID_KEY.into(),
        json!(
            i.placed
                .as_ref()
                .map(|p| p.agent_id.to_string())
                .unwrap_or_default()
        ),
    );
    m.insert("taskId".into(), json!(i.id.to_string()));
    m.insert("instanceId".into(), json!(i.id.to_string()));
    m.insert("taskStatus".into(), task_state_word(i));
    m.insert("message".into(), json!(status.message));
    m.insert("appId".into(), json!(i.app.to_string()));
    m.insert(
        "host".into(),
        json!(
            i.placed
                .as_ref()
                .map(|p| p.facts.hostname.clone())
                .unwrap_or_default()
        ),
    );
    m.insert(
        "ports".into(),
        json!(
            i.placed
                .as_ref()
                .map(|p| p.host_ports.clone())
                .unwrap_or_default()
        ),
    );
    m.insert("ipAddresses".into(), json!([]));
    m.insert("version".into(), json!(format_version(i.version)));
    Value::Object(m)
}

/// Counts Marathon embeds in an app (`apps.counts`).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) staged: u32,
    pub(crate) running: u32,
    pub(crate) healthy: u32,
    pub(crate) unhealthy: u32,
}

pub(crate) fn counts(state: &State, a: &AppState) -> Counts {
    let mut c = Counts::default();
    let has_checks = !a.app.health_checks.is_empty();
    for i in state.instances_of(&a.app.id) {
        if i.condition.is_terminal() {
            continue;
        }
        match i.condition {
            Condition::Running => c.running += 1,
            Condition::Scheduled => {}
            _ => c.staged += 1,
        }
        if has_checks && i.condition == Condition::Running {
            match i.healthy {
                Some(true) => c.healthy += 1,
                Some(false) => c.unhealthy += 1,
                None => {}
            }
        }
    }
    c
}

/// Which parts `embed` asks for.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Embed {
    pub(crate) tasks: bool,
    pub(crate) counts: bool,
    pub(crate) deployments: bool,
    pub(crate) last_task_failure: bool,
}

impl Embed {
    /// From `embed=apps.tasks&embed=app.counts&...` (the `apps.`/`app.`
    /// prefix is optional, as in Marathon).
    pub(crate) fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Embed {
        let mut e = Embed::default();
        for w in words {
            let w = w.trim_start_matches("apps.").trim_start_matches("app.");
            match w {
                "tasks" => e.tasks = true,
                "counts" => e.counts = true,
                "deployments" => e.deployments = true,
                "lastTaskFailure" => e.last_task_failure = true,
                _ => {}
            }
        }
        e
    }

    /// What `GET /v2/apps/{id}` embeds by default (Marathon: all of it).
    pub(crate) fn all() -> Embed {
        Embed {
            tasks: true,
            counts: true,
            deployments: true,
            last_task_failure: true,
        }
    }
}

/// One app with what `embed` asks for.
pub(crate) fn app_json(state: &State, a: &AppState, embed: Embed) -> Value {
    with_extras(render_app(&a.app), app_extras(state, a, embed))
}

/// An app's rendering plus what `app_extras` computed.
pub(crate) fn with_extras(mut v: Value, extras: Map<String, Value>) -> Value {
    if let Value::Object(m) = &mut v {
        m.extend(extras);
    }
    v
}

/// What `embed` adds to an app (counts, deployments, tasks, last failure):
/// cheap to compute inside the loop, while the app itself can be rendered
/// outside it from a clone (`http/apps.rs`).
pub(crate) fn app_extras(state: &State, a: &AppState, embed: Embed) -> Map<String, Value> {
    let mut extras = Map::new();
    let m = &mut extras;
    if embed.counts || embed.tasks {
        let c = counts(state, a);
        m.insert("tasksStaged".into(), json!(c.staged));
        m.insert("tasksRunning".into(), json!(c.running));
        m.insert("tasksHealthy".into(), json!(c.healthy));
        m.insert("tasksUnhealthy".into(), json!(c.unhealthy));
    }
    if embed.deployments || embed.tasks {
        let ds: Vec<Value> = state
            .deployments_of(&a.app.id)
            .into_iter()
            .map(|d| json!({"id": d.id.0}))
            .collect();
        m.insert("deployments".into(), json!(ds));
    }
    if embed.tasks {
        let tasks: Vec<Value> = state
            .instances_of(&a.app.id)
            .filter(|i| i.placed.is_some())
            .map(|i| task_json(i, Some(a), state.on_draining_agent(i)))
            .collect();
        m.insert("tasks".into(), json!(tasks));
    }
    if let (true, Some(f)) = (embed.last_task_failure, &a.last_failure) {
        let mut fm = Map::new();
        fm.insert("appId".into(), json!(a.app.id.to_string()));
        fm.insert("host".into(), json!(f.host));
        fm.insert("message".into(), json!(f.message));
        fm.insert(
            "state".into(),
            serde_json::to_value(f.state).unwrap_or(Value::Null),
        );
        fm.insert("taskId".into(), json!(f.task_id));
        fm.insert("instanceId".into(), json!(f.task_id));
        fm.insert("timestamp".into(), json!(f.timestamp));
        fm.insert("version".into(), json!(format_version(f.version)));
        fm.insert(
            crate::api::json::AGENT_ID_KEY.into(),
            json!(f.agent_id.clone().unwrap_or_default()),
        );
        m.insert("lastTaskFailure".into(), Value::Object(fm));
    }
    extras
}

fn action_json(a: &DeploymentAction) -> Value {
    json!({"action": a.name(), "app": a.app().to_string()})
}

/// Every step of a deployment with its actions.
fn steps_json(d: &Deployment) -> Vec<Value> {
    (0..d.plan.steps.len()).map(|i| step_json(d, i)).collect()
}

/// A deployment's steps, for events.
pub(crate) fn plan_json(d: &Deployment) -> Value {
    let steps = steps_json(d);
    let apps =
        |m: &agora_marathon_planner::Apps| -> Vec<Value> { m.values().map(render_app).collect() };
    json!({
        "id": d.id.0,
        "version": format_version(d.version),
        "original": {"id": "/", "apps": apps(&d.plan.original), "groups": [], "dependencies": [], "version": format_version(d.version)},
        "target": {"id": "/", "apps": apps(&d.plan.target), "groups": [], "dependencies": [], "version": format_version(d.version)},
        "steps": steps,
    })
}

/// One step of a deployment, for events.
pub(crate) fn step_json(d: &Deployment, index: usize) -> Value {
    let actions: Vec<Value> = d
        .plan
        .steps
        .get(index)
        .map(|s| s.actions.iter().map(action_json).collect())
        .unwrap_or_default();
    json!({"actions": actions})
}

/// Readiness of an app's new instances, as a deployment's current action
/// shows it.
fn readiness_results(state: &State, app: &agora_marathon_planner::PathId) -> Vec<Value> {
    let Some(a) = state.apps.get(app) else {
        return Vec::new();
    };
    let Some(check) = a.app.readiness_checks.first() else {
        return Vec::new();
    };
    state
        .instances_of(app)
        .filter(|i| i.config_version == a.app.config_version() && i.condition == Condition::Running)
        .map(|i| json!({"name": check.name, "taskId": i.id.to_string(), "ready": i.ready, "lastResponse": Value::Null}))
        .collect()
}

/// One deployment, as `/v2/deployments` shows it.
pub(crate) fn deployment_json(state: &State, d: &Deployment) -> Value {
    let current: Vec<Value> = d
        .plan
        .steps
        .get(d.current_step)
        .map(|s| {
            s.actions
                .iter()
                .map(|a| {
                    json!({
                        "action": a.name(),
                        "app": a.app().to_string(),
                        "readinessCheckResults": readiness_results(state, a.app()),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let steps = steps_json(d);
    json!({
        "id": d.id.0,
        "version": format_version(d.version),
        "affectedApps": d.plan.affected_apps().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "affectedPods": [],
        "steps": steps,
        "currentActions": current,
        "currentStep": (d.current_step + 1).min(d.plan.steps.len().max(1)),
        "totalSteps": d.plan.steps.len(),
    })
}

/// `/v2/queue`: apps with instances waiting for offers, how many, their
/// launch delay, and what the offers looked at said (the "why is my app
/// waiting" answer).
pub(crate) fn queue_json(state: &State, now: Now) -> Value {
    let mut items = Vec::new();
    for a in state.apps.values().filter(|a| !a.removing) {
        let waiting: Vec<&Instance> = state
            .instances_of(&a.app.id)
            .filter(|i| {
                i.condition == Condition::Scheduled
                    && i.goal == agora_marathon_planner::Goal::Running
            })
            .collect();
        if waiting.is_empty() {
            continue;
        }
        let since = waiting
            .iter()
            .map(|i| i.staged_at_ms)
            .min()
            .unwrap_or(now.wall_ms);
        let left_ms = a.delay.until_wall_ms.saturating_sub(now.wall_ms);
        let funnel: Vec<Value> = a
            .offer_stats
            .funnel()
            .iter()
            .map(|s| json!({"reason": s.reason.as_str(), "declined": s.declined, "processed": s.processed}))
            .collect();
        let summary = json!({
            "processedOffersCount": a.offer_stats.processed_offers,
            "unusedOffersCount": a.offer_stats.unused_offers,
            "lastUnusedOfferAt": a.last_offer_wall_ms.map(stamp),
            "lastUsedOfferAt": Value::Null,
            "rejectSummaryLastOffers": funnel,
            "rejectSummaryLaunchAttempt": funnel,
        });
        let mut item = json!({
            "app": app_json(state, a, Embed::default()),
            "count": waiting.len(),
            "delay": {"timeLeftSeconds": left_ms / 1000, "overdue": left_ms == 0},
            "since": stamp(since),
            "processedOffersSummary": summary,
            "lastUnusedOffers": [],
        });
        // Only while some of the app's instances still run on draining
        // agents (the waiting ones replace them); Marathon's keys otherwise.
        let draining = state
            .instances_of(&a.app.id)
            .filter(|i| i.is_active() && state.on_draining_agent(i))
            .count();
        if draining > 0 {
            item["draining"] = json!(draining);
        }
        items.push(item);
    }
    json!({"queue": items})
}
