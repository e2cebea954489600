//! `agora app deploy -f app.json`: PUT the definition to Marathon and
//! follow the deployment to its end — one status line redrawn in place on a
//! terminal, one timestamped line per change otherwise — ending with a ✓/✗
//! line. Exit codes (nomad's habits): 0 deployed, 2 not placeable by the
//! deadline (with the waiting reasons from `/v2/queue`), 3 failed or rolled
//! back, 1 any other error.
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::client::request;

#[derive(Args, Debug, Clone)]
pub(crate) struct AppArgs {
    #[command(subcommand)]
    pub(crate) command: AppCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub(crate) enum AppCommand {
    /// Create or update an app from a Marathon JSON file and follow the deployment.
    Deploy(DeployArgs),
}

#[derive(Args, Debug, Clone)]
pub(crate) struct DeployArgs {
    /// The app definition (Marathon v2 JSON).
    #[arg(short = 'f', long)]
    pub(crate) file: PathBuf,
    /// Marathon `host:port`.
    #[arg(long, env = "AGORA_MARATHON", default_value = "127.0.0.1:8080")]
    pub(crate) marathon: String,
    /// Give up (exit 2 if instances cannot be placed) after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub(crate) timeout: u64,
}

/// How often the deployment is looked at.
const POLL: Duration = Duration::from_millis(500);

fn call(marathon: &str, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, Value)> {
    let r = request(marathon, method, path, body)?;
    let v = if r.body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&r.body).with_context(|| format!("{path}: not JSON: {}", r.body))?
    };
    Ok((r.status, v))
}

/// What one look at the deployment shows.
fn status_line(app: &Value, deployment: Option<&Value>) -> String {
    let step = deployment.map_or(String::new(), |d| {
        format!(
            "step {}/{} {} ",
            d["currentStep"],
            d["totalSteps"],
            d["currentActions"][0]["action"].as_str().unwrap_or("")
        )
    });
    format!(
        "{}{}: {} wanted, {} staged, {} running, {} healthy",
        step,
        app["id"].as_str().unwrap_or("?"),
        app["instances"],
        app["tasksStaged"],
        app["tasksRunning"],
        app["tasksHealthy"]
    )
}

fn show(line: &str, last: &mut String, tty: bool) {
    if line == last {
        return;
    }
    if tty {
        print!("\r\x1b[K{line}");
    } else {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        println!("{now} {line}");
    }
    let _ = std::io::stdout().flush();
    *last = line.to_string();
}

/// Waiting reasons of an app from `/v2/queue`, e.g. "InsufficientCpus ×3".
fn waiting_reasons(marathon: &str, id: &str) -> String {
    let Ok((_, q)) = call(marathon, "GET", "/v2/queue", "") else {
        return String::new();
    };
    let item = q["queue"]
        .as_array()
        .and_then(|q| q.iter().find(|i| i["app"]["id"] == id))
        .cloned();
    let Some(item) = item else {
        return String::new();
    };
    item["processedOffersSummary"]["rejectSummaryLastOffers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["declined"].as_u64().is_some_and(|n| n > 0))
        .map(|r| format!("{} ×{}", r["reason"].as_str().unwrap_or("?"), r["declined"]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `agora app deploy`; returns the exit code.
pub(crate) fn deploy(a: &DeployArgs) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let def: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", a.file.display()))?;
    let id = def["id"]
        .as_str()
        .context("the definition has no \"id\"")?
        .to_string();
    let id = if id.starts_with('/') {
        id
    } else {
        format!("/{id}")
    };
    let (status, body) = call(
        &a.marathon,
        "PUT",
        &format!("/v2/apps{id}?partialUpdate=false"),
        &text,
    )?;
    anyhow::ensure!(
        status == 200 || status == 201,
        "PUT /v2/apps{id}: HTTP {status}: {body}"
    );
    let (_, app) = call(&a.marathon, "GET", &format!("/v2/apps{id}"), "")?;
    let version = app["app"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let deployment = body["deploymentId"]
        .as_str()
        .or_else(|| app["app"]["deployments"][0]["id"].as_str())
        .map(str::to_string);
    let tty = std::io::stdout().is_terminal();
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    let mut last = String::new();
    loop {
        let (_, list) = call(&a.marathon, "GET", "/v2/deployments", "")?;
        let running = list
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|d| deployment.as_deref().is_some_and(|id| d["id"] == id))
            })
            .cloned();
        let (_, now) = call(&a.marathon, "GET", &format!("/v2/apps{id}"), "")?;
        show(&status_line(&now["app"], running.as_ref()), &mut last, tty);
        if running.is_none() {
            if tty {
                println!();
            }
            let same = now["app"]["version"].as_str() == Some(version.as_str());
            return Ok(if same {
                println!("✓ {id} deployed (version {version})");
                0
            } else {
                println!(
                    "✗ {id}: the deployment failed or was rolled back (now version {})",
                    now["app"]["version"]
                );
                3
            });
        }
        if Instant::now() >= deadline {
            if tty {
                println!();
            }
            let why = waiting_reasons(&a.marathon, &id);
            println!(
                "✗ {id}: not placeable within {} s{}",
                a.timeout,
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {why}")
                }
            );
            return Ok(2);
        }
        std::thread::sleep(POLL);
    }
}
