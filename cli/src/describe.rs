//! `agora describe agent ID|HOSTNAME` and `agora describe app ID`: one
//! object in sections, after `nomad node status ID` and `kubectl
//! describe`. An agent: its attributes, its resources split as the
//! capacity model splits them (total/reserved/allocated/offered/free),
//! how many of each reference shape it could still take, the largest task
//! it could take, and its tasks. An app: its definition in brief, its
//! instances, the deployment under way and why instances wait.
use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::client::get_json;
use crate::globals::Endpoints;
use crate::marathon_api::app_id;

#[derive(Args, Debug, Clone)]
pub(crate) struct DescribeArgs {
    #[command(flatten)]
    pub(crate) ep: Endpoints,
    #[command(subcommand)]
    pub(crate) what: What,
}

#[derive(Subcommand, Debug, Clone)]
pub(crate) enum What {
    /// An agent, by id or hostname.
    Agent {
        /// Its id or hostname.
        agent: String,
    },
    /// A Marathon app.
    App {
        /// Its id, e.g. /prod/web.
        id: String,
    },
}

/// The resource dimensions, in the order shown.
const DIMS: [&str; 5] = ["cpus", "mem", "disk", "gpus", "ports"];

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Number(n) => match n.as_f64() {
            // `+ 0.0` turns the -0.0 of an empty sum into 0.
            Some(x) if x.fract() == 0.0 => format!("{:.0}", x + 0.0),
            Some(x) => format!("{x:.2}"),
            None => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// The sum of one dimension over the per-role reservations.
fn reserved(row: &Value, dim: &str) -> f64 {
    row["reserved"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, a)| a[dim].as_f64())
        .sum()
}

/// `agora describe`.
pub(crate) fn describe(a: &DescribeArgs) -> anyhow::Result<()> {
    let out = match &a.what {
        What::Agent { agent } => {
            let state = get_json(&a.ep.master, "/state")?;
            let cap = get_json(&a.ep.master, "/api/v1/capacity")?;
            agent_text(&state, &cap, agent)?
        }
        What::App { id } => {
            let id = app_id(id);
            let app = get_json(&a.ep.marathon, &format!("/v2/apps{id}?embed=app.tasks"))?;
            let deployments = get_json(&a.ep.marathon, "/v2/deployments")?;
            let queue = get_json(&a.ep.marathon, "/v2/queue")?;
            app_text(&app["app"], &deployments, &queue)
        }
    };
    print!("{out}");
    Ok(())
}

/// The agent's description from `/state` and `/api/v1/capacity`.
pub(crate) fn agent_text(state: &Value, cap: &Value, key: &str) -> anyhow::Result<String> {
    let agent = state["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["id"] == key || a["hostname"] == key)
        .with_context(|| format!("no agent with the id or hostname {key:?}"))?;
    let id = agent["id"].as_str().unwrap_or_default();
    let row = cap["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or(Value::Null);
    let mut o = format!(
        "Agent:     {id}\nHostname:  {}\nStatus:    {}\n",
        text(&agent["hostname"]),
        text(&agent["status"])
    );
    o += "\nAttributes\n";
    let attrs = agent["attributes"].as_object().into_iter().flatten();
    for (k, v) in attrs {
        o += &format!("  {k:<12} {}\n", text(v));
    }
    o += &resources(&row);
    o += &placeable(cap, id);
    o += &tasks(state, id);
    Ok(o)
}

fn resources(row: &Value) -> String {
    let mut o = format!(
        "\nResources\n  {:<6} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
        "", "TOTAL", "RESERVED", "ALLOCATED", "OFFERED", "FREE"
    );
    for d in DIMS {
        let r = serde_json::json!(reserved(row, d));
        o += &format!(
            "  {d:<6} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
            text(&row["total"][d]),
            text(&r),
            text(&row["allocated"][d]),
            text(&row["offered"][d]),
            text(&row["free"][d])
        );
    }
    o
}

/// Per reference shape, how many this agent could take; then the largest
/// task and what is stranded (from the capacity model's fragmentation).
fn placeable(cap: &Value, id: &str) -> String {
    let mut o = format!(
        "\nPlaceable (reference shapes)\n  {:<8} {:>5} {:>8}  {}\n",
        "SHAPE", "CPUS", "MEM (MB)", "HERE"
    );
    let shapes = cap["fragmentation"]["shapes"]
        .as_array()
        .into_iter()
        .flatten();
    for s in shapes {
        o += &format!(
            "  {:<8} {:>5} {:>8}  {}\n",
            text(&s["name"]),
            text(&s["cpus"]),
            text(&s["mem"]),
            text(&s["agents"][id])
        );
    }
    let frag = cap["fragmentation"]["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["id"] == id);
    if let Some(f) = frag {
        let amount = |a: &Value| {
            DIMS.iter()
                .map(|d| format!("{d} {}", text(&a[*d])))
                .collect::<Vec<_>>()
                .join(", ")
        };
        o += &format!("Largest task: {}\n", amount(&f["largest"]));
        if let Some(dim) = f["exhausted"].as_str() {
            o += &format!("Stranded ({dim} exhausted): {}\n", amount(&f["stranded"]));
        }
    }
    o
}

fn tasks(state: &Value, id: &str) -> String {
    let mut o = format!(
        "\nTasks\n  {:<46} {:<12} {:<14} {:>6} {:>8}\n",
        "ID", "FRAMEWORK", "STATE", "CPUS", "MEM"
    );
    for f in state["frameworks"].as_array().into_iter().flatten() {
        let here = f["tasks"].as_array().into_iter().flatten();
        for t in here.filter(|t| t["agent_id"] == id) {
            o += &format!(
                "  {:<46} {:<12} {:<14} {:>6} {:>8}\n",
                text(&t["id"]),
                text(&f["name"]),
                text(&t["state"]),
                text(&t["resources"]["cpus"]),
                text(&t["resources"]["mem"])
            );
        }
    }
    o
}

/// The app's description from `/v2/apps/ID`, `/v2/deployments` and `/v2/queue`.
pub(crate) fn app_text(app: &Value, deployments: &Value, queue: &Value) -> String {
    let id = app["id"].as_str().unwrap_or("?");
    let run = app["cmd"]
        .as_str()
        .map(|c| format!("cmd: {c}"))
        .or_else(|| {
            app["container"]["docker"]["image"]
                .as_str()
                .map(|i| format!("image: {i}"))
        })
        .unwrap_or_else(|| "-".into());
    let constraints: Vec<String> = app["constraints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let parts = c.as_array().into_iter().flatten().map(text);
            parts.collect::<Vec<_>>().join(":")
        })
        .collect();
    let mut o = format!(
        "App:          {id}\nVersion:      {}\nRuns:         {run}\nShape:        cpus {}, mem {} MB, disk {} MB, gpus {}, ports {}\nConstraints:  {}\nInstances:    {} wanted, {} staged, {} running, {} healthy\n",
        text(&app["version"]),
        text(&app["cpus"]),
        text(&app["mem"]),
        text(&app["disk"]),
        text(&app["gpus"]),
        app["portDefinitions"].as_array().map_or(0, Vec::len),
        if constraints.is_empty() {
            "-".into()
        } else {
            constraints.join(", ")
        },
        text(&app["instances"]),
        text(&app["tasksStaged"]),
        text(&app["tasksRunning"]),
        text(&app["tasksHealthy"]),
    );
    o += &instances(app);
    o += &deployment(id, deployments);
    o += &waiting(id, queue);
    o
}

fn health(t: &Value) -> &'static str {
    let results = t["healthCheckResults"].as_array();
    match results {
        Some(r) if !r.is_empty() => {
            if r.iter().all(|h| h["alive"] == true) {
                "healthy"
            } else {
                "unhealthy"
            }
        }
        _ => "-",
    }
}

fn instances(app: &Value) -> String {
    let mut o = format!(
        "\nInstances\n  {:<48} {:<20} {:<14} {:<9} {}\n",
        "ID", "HOST", "STATE", "HEALTH", "VERSION"
    );
    for t in app["tasks"].as_array().into_iter().flatten() {
        o += &format!(
            "  {:<48} {:<20} {:<14} {:<9} {}\n",
            text(&t["id"]),
            text(&t["host"]),
            text(&t["state"]),
            health(t),
            text(&t["version"])
        );
    }
    o
}

fn deployment(id: &str, deployments: &Value) -> String {
    let mine = deployments.as_array().into_iter().flatten().find(|d| {
        d["affectedApps"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == id))
    });
    let Some(d) = mine else {
        return "\nDeployment:   none under way\n".into();
    };
    let actions: Vec<String> = d["currentActions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| text(&a["action"]))
        .collect();
    format!(
        "\nDeployment:   {} step {}/{}: {}\n",
        text(&d["id"]),
        text(&d["currentStep"]),
        text(&d["totalSteps"]),
        actions.join(", ")
    )
}

fn waiting(id: &str, queue: &Value) -> String {
    let item = queue["queue"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["app"]["id"] == id);
    let Some(item) = item else {
        return "Waiting:      nothing waits for resources\n".into();
    };
    let mut o = format!("Waiting:      {} instance(s)\n", text(&item["count"]));
    let reasons = item["processedOffersSummary"]["rejectSummaryLastOffers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["declined"].as_u64().is_some_and(|n| n > 0));
    for r in reasons {
        o += &format!(
            "  declined for {}: {} of {} offers\n",
            text(&r["reason"]),
            text(&r["declined"]),
            text(&r["processed"])
        );
    }
    o
}

#[cfg(test)]
#[path = "describe_tests.rs"]
mod tests;
