//! `agora capacity` and `agora fit`: the capacity model from the master's
//! `/api/v1/capacity` API, as tables (the cluster row first) or JSON.
//! `fit` exits 0 when the count fits (or anything fits, without a count),
//! 2 when it does not, 1 on an error.
use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::Value;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// A table.
    Table,
    /// The API's JSON.
    Json,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct CapacityArgs {
    #[command(flatten)]
    pub(crate) ep: crate::globals::Endpoints,
    /// One row per value of this agent attribute (e.g. rack) instead of per agent.
    #[arg(long)]
    pub(crate) group_by: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub(crate) output: Output,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct FitArgs {
    #[command(flatten)]
    pub(crate) ep: crate::globals::Endpoints,
    /// CPUs per instance.
    #[arg(long, default_value_t = 0.1)]
    pub(crate) cpus: f64,
    /// Memory per instance, MB.
    #[arg(long, default_value_t = 128.0)]
    pub(crate) mem: f64,
    /// Disk per instance, MB.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) disk: f64,
    /// GPUs per instance.
    #[arg(long, default_value_t = 0)]
    pub(crate) gpus: u32,
    /// Host ports per instance.
    #[arg(long, default_value_t = 0)]
    pub(crate) ports: u32,
    /// The role the instances would run under.
    #[arg(long, default_value = "*")]
    pub(crate) role: String,
    /// A Marathon constraint, FIELD:OPERATOR[:VALUE] (repeatable), e.g. hostname:UNIQUE.
    #[arg(long)]
    pub(crate) constraint: Vec<String>,
    /// How many are wanted (exit 2 if they do not all fit).
    #[arg(long)]
    pub(crate) count: Option<u32>,
    /// What if an agent with these resources joined, e.g.
    /// 'cpus:16;mem:65536@rack=r3' (repeatable).
    #[arg(long)]
    pub(crate) add_agent: Vec<String>,
    /// What if this agent were drained (repeatable).
    #[arg(long)]
    pub(crate) drain: Vec<String>,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub(crate) output: Output,
}

async fn get_json(master: &str, path: String) -> anyhow::Result<Value> {
    let master = master.to_string();
    tokio::task::spawn_blocking(move || crate::client::get_json(&master, &path)).await?
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn cell(row: &Value, dim: &str) -> String {
    let free = num(&row["free"][dim]);
    let total = num(&row["total"][dim]);
    format!("{}/{}", trim(free), trim(total))
}

fn trim(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn print_row(name: &str, row: &Value) {
    println!(
        "{:<24} {:>13} {:>17} {:>15} {:>7} {:>11} {:>9} {:>9}",
        name,
        cell(row, "cpus"),
        cell(row, "mem"),
        cell(row, "disk"),
        cell(row, "gpus"),
        cell(row, "ports"),
        trim(num(&row["allocated"]["cpus"])),
        trim(num(&row["offered"]["cpus"])),
    );
}

/// `agora capacity`.
pub(crate) async fn capacity(a: CapacityArgs) -> anyhow::Result<()> {
    let v = get_json(&a.ep.master, "/api/v1/capacity".into()).await?;
    if a.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<24} {:>13} {:>17} {:>15} {:>7} {:>11} {:>9} {:>9}",
        "NAME",
        "CPUS FREE",
        "MEM FREE (MB)",
        "DISK FREE (MB)",
        "GPUS",
        "PORTS",
        "ALLOC CPU",
        "OFFER CPU"
    );
    print_row("* (cluster)", &v["cluster"]);
    match &a.group_by {
        Some(attr) => {
            let groups = v["by_attribute"][attr.as_str()]
                .as_object()
                .with_context(|| format!("no agent has the attribute {attr:?}"))?;
            for (value, row) in groups {
                print_row(&format!("{attr}={value}"), row);
            }
        }
        None => {
            for ag in v["agents"].as_array().into_iter().flatten() {
                let name = ag["hostname"].as_str().unwrap_or_default();
                print_row(name, ag);
            }
        }
    }
    Ok(())
}

/// `agora fit`; returns the exit code.
pub(crate) async fn fit(a: FitArgs) -> anyhow::Result<i32> {
    let mut q: Vec<(&str, String)> = vec![
        ("cpus", a.cpus.to_string()),
        ("mem", a.mem.to_string()),
        ("disk", a.disk.to_string()),
        ("gpus", a.gpus.to_string()),
        ("ports", a.ports.to_string()),
        ("role", a.role.clone()),
    ];
    q.extend(a.constraint.iter().map(|c| ("constraint", c.clone())));
    q.extend(a.add_agent.iter().map(|c| ("add_agent", c.clone())));
    q.extend(a.drain.iter().map(|c| ("drain", c.clone())));
    if let Some(n) = a.count {
        q.push(("count", n.to_string()));
    }
    let query = serde_urlencoded::to_string(&q)?;
    let v = get_json(&a.ep.master, format!("/api/v1/capacity/fit?{query}")).await?;
    let placeable = v["placeable"].as_u64().unwrap_or(0);
    let fits = match a.count {
        Some(_) => v["fits"].as_bool().unwrap_or(false),
        None => placeable > 0,
    };
    if a.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let wanted = a.count.map_or(String::new(), |n| format!(" of {n} wanted"));
        println!(
            "{placeable} instance(s){wanted} of cpus={} mem={} disk={} gpus={} ports={} fit",
            a.cpus, a.mem, a.disk, a.gpus, a.ports
        );
        println!("{:<24} {:>9}  BOTTLENECK", "AGENT", "PLACEABLE");
        for ag in v["agents"].as_array().into_iter().flatten() {
            println!(
                "{:<24} {:>9}  {}",
                ag["hostname"].as_str().unwrap_or_default(),
                ag["placeable"],
                ag["bottleneck"].as_str().unwrap_or("-")
            );
        }
        let funnel: Vec<String> = v["funnel"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                format!(
                    "{} {}",
                    s["stage"].as_str().unwrap_or_default(),
                    s["remaining"]
                )
            })
            .collect();
        println!("funnel: {}", funnel.join(" → "));
    }
    Ok(if fits { 0 } else { 2 })
}
