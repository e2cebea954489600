//! What is stored, one key per app version, instance and deployment, never
//! one big blob (Marathon broke on ZooKeeper's 1 MB node limit). Every
//! record carries a `format` number so a later release can read old ones.
//!
//! Keys (under the store's prefix):
//! - `framework-id`
//! - `apps/<safe path>/<version, 20 digits>`: an app definition in
//!   Marathon's JSON (the API's own rendering, so parsing it back is the
//!   identity, property-tested in `api/tests/props.rs`)
//! - `instances/<instance id>`
//! - `deployments/<deployment id>`: the original and target definitions of
//!   the apps it touches, and the step it is on; steps are planned again
//!   from those on load.
use std::collections::BTreeMap;

use agora_marathon_planner::{
    AgentFacts, App, Condition, DeploymentId, Goal, InstanceId, PathId, Version, plan,
};
use agora_model::{AgentId, MonoTime, TaskState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::api::convert::{render_app, stored_app_from_json};
use crate::api::json::AppJson;
use crate::state::{AppState, Deployment, Instance, Placed, State};

/// The record format written now.
pub(crate) const FORMAT: u32 = 1;

/// A stored record that cannot be read.
#[derive(Debug, Error)]
#[error("stored record {key}: {reason}")]
pub(crate) struct RecordError {
    pub(crate) key: String,
    pub(crate) reason: String,
}

fn bad(key: &str, reason: impl ToString) -> RecordError {
    RecordError {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

pub(crate) const FRAMEWORK_ID_KEY: &str = "framework-id";

pub(crate) fn app_key(id: &PathId, version: Version) -> String {
    format!("apps/{}/{:020}", id.safe_path(), version.0)
}

pub(crate) fn instance_key(id: &InstanceId) -> String {
    format!("instances/{id}")
}

pub(crate) fn deployment_key(id: &DeploymentId) -> String {
    format!("deployments/{id}")
}

#[derive(Serialize, Deserialize)]
struct AppRecord {
    format: u32,
    app: Value,
}

pub(crate) fn encode_app(app: &App) -> Vec<u8> {
    let rec = AppRecord {
        format: FORMAT,
        app: render_app(app),
    };
    serde_json::to_vec(&rec).unwrap_or_default()
}

fn decode_app_value(key: &str, v: Value) -> Result<App, RecordError> {
    let json: AppJson = serde_json::from_value(v).map_err(|e| bad(key, e))?;
    stored_app_from_json(&json, &PathId::root())
        .map_err(|v| bad(key, format!("invalid app: {v:?}")))
}

fn decode_app(key: &str, bytes: &[u8]) -> Result<App, RecordError> {
    let rec: AppRecord = serde_json::from_slice(bytes).map_err(|e| bad(key, e))?;
    if rec.format != FORMAT {
        return Err(bad(key, format!("unknown format {}", rec.format)));
    }
    decode_app_value(key, rec.app)
}

#[derive(Serialize, Deserialize)]
struct InstanceRecord {
    format: u32,
    id: String,
    app: String,
    version: u64,
    config_version: u64,
    goal: String,
    agent_id: Option<String>,
    hostname: String,
    attributes: BTreeMap<String, String>,
    host_ports: Vec<u64>,
    staged_at_ms: u64,
    started_at_ms: Option<u64>,
    state: Option<TaskState>,
}

fn goal_word(g: Goal) -> &'static str {
    match g {
        Goal::Running => "running",
        Goal::Stopped => "stopped",
        Goal::Decommissioned => "decommissioned",
    }
}

pub(crate) fn encode_instance(i: &Instance) -> Vec<u8> {
    let rec = InstanceRecord {
        format: FORMAT,
        id: i.id.to_string(),
        app: i.app.to_string(),
        version: i.version.0,
        config_version: i.config_version.0,
        goal: goal_word(i.goal).into(),
        agent_id: i.placed.as_ref().map(|p| p.agent_id.to_string()),
        hostname: i
            .placed
            .as_ref()
            .map(|p| p.facts.hostname.clone())
            .unwrap_or_default(),
        attributes: i
            .placed
            .as_ref()
            .map(|p| p.facts.attributes.clone())
            .unwrap_or_default(),
        host_ports: i
            .placed
            .as_ref()
            .map(|p| p.host_ports.clone())
            .unwrap_or_default(),
        staged_at_ms: i.staged_at_ms,
        started_at_ms: i.started_at_ms,
        state: i.task_state,
    };
    serde_json::to_vec(&rec).unwrap_or_default()
}

/// The condition a stored task state stands for until reconciliation
/// tells better.
pub(crate) fn condition_of(state: Option<TaskState>) -> Condition {
    match state {
        None => Condition::Scheduled,
        Some(TaskState::Running) => Condition::Running,
        Some(TaskState::Killing) => Condition::Killing,
        Some(TaskState::Unreachable) => Condition::Unreachable,
        // The master does not know the task (a launch lost with its
        // leader, or an agent that forgot it): gone, as Marathon treats it.
        Some(TaskState::Unknown) => Condition::Terminal,
        Some(s) if s.is_terminal() => Condition::Terminal,
        Some(_) => Condition::Staging,
    }
}

fn decode_instance(key: &str, bytes: &[u8]) -> Result<Instance, RecordError> {
    let rec: InstanceRecord = serde_json::from_slice(bytes).map_err(|e| bad(key, e))?;
    if rec.format != FORMAT {
        return Err(bad(key, format!("unknown format {}", rec.format)));
    }
    let goal = match rec.goal.as_str() {
        "running" => Goal::Running,
        "stopped" => Goal::Stopped,
        "decommissioned" => Goal::Decommissioned,
        other => return Err(bad(key, format!("unknown goal {other:?}"))),
    };
    let app = PathId::parse(&rec.app).map_err(|e| bad(key, e))?;
    let placed = match rec.agent_id {
        Some(a) => Some(Placed {
            agent_id: AgentId::parse(a).map_err(|e| bad(key, e))?,
            facts: AgentFacts {
                hostname: rec.hostname,
                region: None,
                zone: None,
                attributes: rec.attributes,
            },
            host_ports: rec.host_ports,
        }),
        None => None,
    };
    Ok(Instance {
        id: InstanceId::from_string(rec.id),
        app,
        version: Version(rec.version),
        config_version: Version(rec.config_version),
        goal,
        condition: condition_of(rec.state),
        task_state: rec.state,
        healthy: None,
        ready: false,
        placed,
        staged_at_ms: rec.staged_at_ms,
        started_at_ms: rec.started_at_ms,
        unreachable_since: None,
        counted: false,
    })
}

#[derive(Serialize, Deserialize)]
struct DeploymentRecord {
    format: u32,
    id: String,
    version: u64,
    current_step: usize,
    original: Vec<Value>,
    target: Vec<Value>,
    revert_of: Option<String>,
}

pub(crate) fn encode_deployment(d: &Deployment) -> Vec<u8> {
    let rec = DeploymentRecord {
        format: FORMAT,
        id: d.id.to_string(),
        version: d.version.0,
        current_step: d.current_step,
        original: d.plan.original.values().map(render_app).collect(),
        target: d.plan.target.values().map(render_app).collect(),
        revert_of: d.revert_of.as_ref().map(|r| r.to_string()),
    };
    serde_json::to_vec(&rec).unwrap_or_default()
}

fn decode_apps(key: &str, values: Vec<Value>) -> Result<BTreeMap<PathId, App>, RecordError> {
    values
        .into_iter()
        .map(|v| decode_app_value(key, v).map(|a| (a.id.clone(), a)))
        .collect()
}

fn decode_deployment(key: &str, bytes: &[u8], now: MonoTime) -> Result<Deployment, RecordError> {
    let rec: DeploymentRecord = serde_json::from_slice(bytes).map_err(|e| bad(key, e))?;
    if rec.format != FORMAT {
        return Err(bad(key, format!("unknown format {}", rec.format)));
    }
    let original = decode_apps(key, rec.original)?;
    let target = decode_apps(key, rec.target)?;
    let plan = plan(&original, &target).map_err(|e| bad(key, e))?;
    Ok(Deployment {
        id: DeploymentId(rec.id),
        plan,
        version: Version(rec.version),
        current_step: rec.current_step,
        last_progress: now,
        revert_of: rec.revert_of.map(DeploymentId),
    })
}

/// Rebuilds the state from every stored record (a new leader's first
/// step). A record that cannot be read fails the load: a leader must not
/// run with half its state.
pub(crate) fn load_state(
    records: Vec<(String, Vec<u8>)>,
    now: MonoTime,
) -> Result<State, RecordError> {
    let mut state = State::default();
    for (key, bytes) in records {
        if key == FRAMEWORK_ID_KEY {
            let text = String::from_utf8(bytes).map_err(|e| bad(&key, e))?;
            state.framework_id =
                Some(agora_model::FrameworkId::parse(text).map_err(|e| bad(&key, e))?);
        } else if key.starts_with("apps/") {
            let app = decode_app(&key, &bytes)?;
            let entry = state
                .apps
                .entry(app.id.clone())
                .or_insert_with(|| AppState::new(app.clone()));
            if app.version >= entry.app.version {
                entry.app = app.clone();
            }
            entry.versions.insert(app.version, app);
        } else if key.starts_with("instances/") {
            let inst = decode_instance(&key, &bytes)?;
            state.instances.insert(inst.id.clone(), inst);
        } else if key.starts_with("deployments/") {
            let d = decode_deployment(&key, &bytes, now)?;
            state.deployments.insert(d.id.clone(), d);
        }
    }
    state.after_load();
    Ok(state)
}

/// The state's records, for tests: what a fresh load would read.
#[cfg(test)]
pub(crate) fn all_records(state: &State) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Some(f) = &state.framework_id {
        out.push((FRAMEWORK_ID_KEY.to_string(), f.to_string().into_bytes()));
    }
    for a in state.apps.values() {
        for (v, app) in &a.versions {
            out.push((app_key(&app.id, *v), encode_app(app)));
        }
    }
    for i in state.instances.values() {
        out.push((instance_key(&i.id), encode_instance(i)));
    }
    for d in state.deployments.values() {
        out.push((deployment_key(&d.id), encode_deployment(d)));
    }
    out
}
