//! `agora app plan -f app.json`, after `nomad job plan`: the definition is
//! read with Marathon's own parser (so a definition Marathon would refuse
//! is refused here, with its paths), compared field by field with the app
//! Marathon runs now, and the instances the change would start are put to
//! the master's fit dry run. Nothing changes. Exit codes: 0 no change, 1 a
//! change whose new instances all fit, 2 a change with instances that
//! cannot be placed now, 255 an error (nomad's, plus 2).
use std::path::Path;

use agora_marathon::api::convert::{parse_app, render_app};
use agora_marathon_planner::PathId;
use anyhow::Context;
use serde_json::Value;

use crate::client::get_json;
use crate::globals::Endpoints;
use crate::marathon_api::call;

/// The exit code of an error (nomad's).
const ERROR: i32 = 255;

/// Fields that change on every deployment and say nothing about the app.
const IGNORED: [&str; 2] = ["version", "versionInfo"];

/// Fields that decide where an instance fits; a change to any of them
/// replaces every instance with one of the new shape.
const SHAPE: [&str; 7] = [
    "cpus",
    "mem",
    "disk",
    "gpus",
    "portDefinitions",
    "constraints",
    "role",
];

/// One line of the diff.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Added(String, String),
    Changed(String, String, String),
}

/// `agora app plan`; returns the exit code, printing any error.
pub(crate) fn plan(ep: &Endpoints, file: &Path) -> i32 {
    match run(ep, file) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ERROR
        }
    }
}

/// The definition as given and as Marathon would store and render it.
fn normalise(file: &Path) -> anyhow::Result<(Value, Value)> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    match parse_app(&bytes, &PathId::root()) {
        Ok(app) => Ok((serde_json::from_slice(&bytes)?, render_app(&app))),
        Err(e) => {
            let (status, body) = e.to_response();
            anyhow::bail!(
                "{} is not a valid app (HTTP {status}): {body}",
                file.display()
            )
        }
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Port 0 asks Marathon to pick a service port; it is no change from the
/// port Marathon picked before.
fn keep_picked_ports(old: &Value, new: &mut Value) {
    let ports = new["portDefinitions"].as_array_mut().into_iter().flatten();
    for (i, p) in ports.enumerate() {
        let picked = &old["portDefinitions"][i]["port"];
        if p["port"] == 0 && !picked.is_null() {
            p["port"] = picked.clone();
        }
    }
}

/// The fields of `new` that differ from `old`; for a new app, the fields
/// the file sets (`given`), not every default.
pub(crate) fn diff(old: Option<&Value>, new: &Value, given: &Value) -> Vec<Change> {
    let mut new = new.clone();
    if let Some(o) = old {
        keep_picked_ports(o, &mut new);
    }
    let fields = new.as_object().into_iter().flatten();
    fields
        .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
        .filter(|(k, _)| old.is_some() || !given[k.as_str()].is_null())
        .filter_map(|(k, v)| match old {
            None => Some(Change::Added(k.clone(), compact(v))),
            Some(o) if o[k] != *v => Some(Change::Changed(k.clone(), compact(&o[k]), compact(v))),
            Some(_) => None,
        })
        .collect()
}

fn instances(app: &Value) -> u64 {
    app["instances"].as_u64().unwrap_or(0)
}

/// How many instances need new room: all of a new app's, all of the new
/// shape's (the old ones are counted as still holding theirs, as they do
/// until the rolling restart stops them), or only the added ones when the
/// shape stays.
fn needed(old: Option<&Value>, new: &Value, changes: &[Change]) -> (u64, &'static str) {
    let Some(old) = old else {
        return (instances(new), "new app");
    };
    let only_instances = changes
        .iter()
        .all(|c| matches!(c, Change::Changed(k, ..) if k == "instances"));
    let shape = changes
        .iter()
        .any(|c| matches!(c, Change::Changed(k, ..) | Change::Added(k, _) if SHAPE.contains(&k.as_str())));
    let more = instances(new).saturating_sub(instances(old));
    if only_instances {
        (more, "scale only: no instance is restarted")
    } else if shape {
        (
            instances(new),
            "restart: every instance is replaced by one of the new shape",
        )
    } else {
        (more, "restart: every instance is replaced (same shape)")
    }
}

/// The fit dry run's query for the new definition and `count` instances.
fn fit_query(app: &Value, count: u64) -> anyhow::Result<String> {
    let mut q = crate::why::shape_query(app);
    if let Some(role) = app["role"].as_str() {
        q.push(("role", role.to_string()));
    }
    q.push(("count", count.to_string()));
    Ok(serde_urlencoded::to_string(&q)?)
}

fn print_diff(id: &str, old: Option<&Value>, changes: &[Change]) {
    let mark = if old.is_some() { "~" } else { "+" };
    println!("{mark} app {id}");
    for c in changes {
        match c {
            Change::Added(k, v) => println!("  + {k}: {v}"),
            Change::Changed(k, o, n) => println!("  ~ {k}: {o} → {n}"),
        }
    }
}

fn run(ep: &Endpoints, file: &Path) -> anyhow::Result<i32> {
    let (given, new) = normalise(file)?;
    let id = new["id"].as_str().context("the app has no id")?.to_string();
    let (status, current) = call(&ep.marathon, "GET", &format!("/v2/apps{id}"), "")?;
    let old = match status {
        200 => Some(current["app"].clone()),
        404 => None,
        _ => anyhow::bail!("GET /v2/apps{id}: HTTP {status}: {current}"),
    };
    let changes = diff(old.as_ref(), &new, &given);
    if changes.is_empty() {
        println!("{id}: no change");
        return Ok(0);
    }
    print_diff(&id, old.as_ref(), &changes);
    let (count, kind) = needed(old.as_ref(), &new, &changes);
    println!("{kind}; {count} new instance(s) need room");
    if count == 0 {
        println!("All new instances can be placed (none needed).");
        return Ok(1);
    }
    let fit = get_json(
        &ep.master,
        &format!("/api/v1/capacity/fit?{}", fit_query(&new, count)?),
    )?;
    let placeable = fit["placeable"].as_u64().unwrap_or(0);
    if fit["fits"].as_bool().unwrap_or(false) {
        println!("All {count} new instance(s) can be placed ({placeable} would fit).");
        return Ok(1);
    }
    println!("WARNING: only {placeable} of {count} new instance(s) can be placed now:");
    crate::why::print_fit_agents(&fit);
    Ok(2)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Change, diff, needed};

    #[test]
    fn a_scale_is_told_from_a_restart() {
        let old =
            json!({"id": "/a", "instances": 2, "cpus": 0.1, "cmd": "sleep 1", "version": "x"});
        let more =
            json!({"id": "/a", "instances": 5, "cpus": 0.1, "cmd": "sleep 1", "version": "y"});
        let changes = diff(Some(&old), &more, &more);
        assert_eq!(
            changes,
            vec![Change::Changed("instances".into(), "2".into(), "5".into())]
        );
        assert_eq!(needed(Some(&old), &more, &changes).0, 3);
        let bigger = json!({"id": "/a", "instances": 2, "cpus": 0.5, "cmd": "sleep 1"});
        let changes = diff(Some(&old), &bigger, &bigger);
        assert_eq!(needed(Some(&old), &bigger, &changes).0, 2);
        let cmd = json!({"id": "/a", "instances": 2, "cpus": 0.1, "cmd": "sleep 2"});
        let changes = diff(Some(&old), &cmd, &cmd);
        assert_eq!(needed(Some(&old), &cmd, &changes).0, 0);
        assert!(diff(Some(&old), &old, &old).is_empty());
        let full = json!({"id": "/a", "cpus": 1, "mem": 128});
        assert_eq!(diff(None, &full, &json!({"id": "/a", "cpus": 1})).len(), 2);
        let picked = json!({"id": "/a", "portDefinitions": [{"port": 10000}]});
        let any = json!({"id": "/a", "portDefinitions": [{"port": 0}]});
        assert!(diff(Some(&picked), &any, &any).is_empty());
    }
}
