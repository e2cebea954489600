//! `agora get agents|frameworks|tasks|offers|roles|apps|deployments` with
//! kubectl's habits: `-o table|wide|json` and `--watch` (redrawn in place
//! on a terminal, a timestamped table per refresh otherwise). Cluster
//! objects come from the master's `/state`, apps and deployments from
//! Marathon.
use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::client::get_json as fetch;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Agents,
    Frameworks,
    Tasks,
    Offers,
    Roles,
    Apps,
    Deployments,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Table,
    Wide,
    Json,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct GetArgs {
    /// What to list.
    #[arg(value_enum)]
    pub(crate) kind: Kind,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub(crate) output: Format,
    /// Refresh every 2 s until interrupted.
    #[arg(short = 'w', long)]
    pub(crate) watch: bool,
    #[command(flatten)]
    pub(crate) ep: crate::globals::Endpoints,
}

/// Between two refreshes of `--watch`.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn frac(used: &Value, total: &Value) -> String {
    format!("{}/{}", s(used), s(total))
}

/// Headers and rows of one listing (wide adds columns), and its JSON.
type Table = (Vec<&'static str>, Vec<Vec<String>>, Value);

fn agents(state: &Value, wide: bool) -> Table {
    let mut h = vec!["ID", "HOSTNAME", "STATUS", "CPUS", "MEM", "TASKS"];
    if wide {
        h.extend(["DISK", "GPUS", "OFFERED CPUS"]);
    }
    let list = state["agents"].clone();
    let rows = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let (u, t) = (&a["used_resources"], &a["resources"]);
            let mut r = vec![
                s(&a["id"]),
                s(&a["hostname"]),
                s(&a["status"]),
                frac(&u["cpus"], &t["cpus"]),
                frac(&u["mem"], &t["mem"]),
                s(&a["task_count"]),
            ];
            if wide {
                r.extend([
                    frac(&u["disk"], &t["disk"]),
                    frac(&u["gpus"], &t["gpus"]),
                    s(&a["offered_resources"]["cpus"]),
                ]);
            }
            r
        })
        .collect();
    (h, rows, list)
}

fn frameworks(state: &Value, wide: bool) -> Table {
    let mut h = vec!["ID", "NAME", "ACTIVE", "TASKS", "OFFERS"];
    if wide {
        h.push("ROLES");
    }
    let list = state["frameworks"].clone();
    let rows = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let mut r = vec![
                s(&f["id"]),
                s(&f["name"]),
                s(&f["active"]),
                f["tasks"].as_array().map_or(0, Vec::len).to_string(),
                f["offers"].as_array().map_or(0, Vec::len).to_string(),
            ];
            if wide {
                r.push(s(&f["roles"]));
            }
            r
        })
        .collect();
    (h, rows, list)
}

fn tasks(state: &Value, wide: bool, offers: bool) -> Table {
    let (key, mut h) = if offers {
        ("offers", vec!["ID", "FRAMEWORK", "AGENT", "CPUS", "MEM"])
    } else {
        ("tasks", vec!["ID", "FRAMEWORK", "STATE", "AGENT", "CPUS"])
    };
    if wide && !offers {
        h.extend(["MEM", "HEALTHY"]);
    }
    let mut list = Vec::new();
    let mut rows = Vec::new();
    for f in state["frameworks"].as_array().into_iter().flatten() {
        for t in f[key].as_array().into_iter().flatten() {
            list.push(t.clone());
            let mut r = vec![s(&t["id"]), s(&f["name"])];
            if offers {
                r.extend([
                    s(&t["agent_id"]),
                    s(&t["resources"]["cpus"]),
                    s(&t["resources"]["mem"]),
                ]);
            } else {
                r.extend([
                    s(&t["state"]),
                    s(&t["agent_id"]),
                    s(&t["resources"]["cpus"]),
                ]);
                if wide {
                    r.extend([s(&t["resources"]["mem"]), s(&t["healthy"])]);
                }
            }
            rows.push(r);
        }
    }
    (h, rows, Value::Array(list))
}

fn roles(state: &Value) -> Table {
    let mut by_role: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for f in state["frameworks"].as_array().into_iter().flatten() {
        for r in f["roles"].as_array().into_iter().flatten() {
            let e = by_role.entry(s(r)).or_default();
            e.0 += 1;
            e.1 += f["tasks"].as_array().map_or(0, Vec::len);
        }
    }
    let list = by_role
        .iter()
        .map(|(r, (f, t))| serde_json::json!({"role": r, "frameworks": f, "tasks": t}))
        .collect();
    let rows = by_role
        .into_iter()
        .map(|(r, (f, t))| vec![r, f.to_string(), t.to_string()])
        .collect();
    (
        vec!["ROLE", "FRAMEWORKS", "TASKS"],
        rows,
        Value::Array(list),
    )
}

fn apps(m: &Value, wide: bool) -> Table {
    let mut h = vec![
        "ID",
        "INSTANCES",
        "RUNNING",
        "HEALTHY",
        "STAGED",
        "DEPLOYMENTS",
    ];
    if wide {
        h.extend(["CPUS", "MEM", "IMAGE OR CMD"]);
    }
    let list = m["apps"].clone();
    let rows = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let mut r = vec![
                s(&a["id"]),
                s(&a["instances"]),
                s(&a["tasksRunning"]),
                s(&a["tasksHealthy"]),
                s(&a["tasksStaged"]),
                a["deployments"].as_array().map_or(0, Vec::len).to_string(),
            ];
            if wide {
                let what = a["container"]["docker"]["image"]
                    .as_str()
                    .or(a["cmd"].as_str())
                    .unwrap_or("-");
                r.extend([s(&a["cpus"]), s(&a["mem"]), what.to_string()]);
            }
            r
        })
        .collect();
    (h, rows, list)
}

fn deployments(list: &Value) -> Table {
    let rows = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let actions: Vec<String> = d["currentActions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| format!("{} {}", s(&a["action"]), s(&a["app"])))
                .collect();
            vec![
                s(&d["id"]),
                s(&d["affectedApps"]),
                format!("{}/{}", s(&d["currentStep"]), s(&d["totalSteps"])),
                actions.join(", "),
            ]
        })
        .collect();
    (vec!["ID", "APPS", "STEP", "ACTIONS"], rows, list.clone())
}

fn listing(a: &GetArgs) -> anyhow::Result<Table> {
    let wide = a.output == Format::Wide;
    Ok(match a.kind {
        Kind::Agents => agents(&fetch(&a.ep.master, "/state")?, wide),
        Kind::Frameworks => frameworks(&fetch(&a.ep.master, "/state")?, wide),
        Kind::Tasks => tasks(&fetch(&a.ep.master, "/state")?, wide, false),
        Kind::Offers => tasks(&fetch(&a.ep.master, "/state")?, wide, true),
        Kind::Roles => roles(&fetch(&a.ep.master, "/state")?),
        Kind::Apps => apps(
            &fetch(
                &a.ep.marathon,
                "/v2/apps?embed=apps.counts&embed=apps.deployments",
            )?,
            wide,
        ),
        Kind::Deployments => deployments(&fetch(&a.ep.marathon, "/v2/deployments")?),
    })
}

fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

/// `agora get`.
pub(crate) fn get(a: &GetArgs) -> anyhow::Result<()> {
    let tty = std::io::stdout().is_terminal();
    loop {
        let (headers, rows, json) = listing(a)?;
        let text = match a.output {
            Format::Json => format!("{}\n", serde_json::to_string_pretty(&json)?),
            _ => render(&headers, &rows),
        };
        if !a.watch {
            print!("{text}");
            return Ok(());
        }
        if tty {
            print!("\x1b[2J\x1b[H{text}");
        } else {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            print!("# {now}\n{text}");
        }
        use std::io::Write;
        std::io::stdout().flush()?;
        std::thread::sleep(WATCH_INTERVAL);
    }
}
