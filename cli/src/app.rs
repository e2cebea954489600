//! `agora app deploy|scale|restart|rollback|plan`. Each change starts a
//! Marathon deployment and then follows it to its end with the shared
//! follower ([`crate::follow`]): exit 0 deployed, 2 not placeable by the
//! deadline, 3 failed or rolled back, 1 any other error; `--detach`
//! returns once the deployment has started. `plan` changes nothing
//! ([`crate::plan`]).
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::follow::{Started, View, follow};
use crate::globals::{Endpoints, Globals};
use crate::marathon_api::{app_id, call};

#[derive(Args, Debug, Clone)]
pub(crate) struct AppArgs {
    #[command(flatten)]
    pub(crate) ep: Endpoints,
    #[command(subcommand)]
    pub(crate) command: AppCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub(crate) enum AppCommand {
    /// Create or update an app from a Marathon JSON file and follow the deployment.
    Deploy {
        /// The app definition (Marathon v2 JSON).
        #[arg(short = 'f', long)]
        file: PathBuf,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Set an app's instance count and follow the deployment.
    Scale {
        /// The app id, e.g. /prod/web.
        id: String,
        /// How many instances.
        instances: u32,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Replace all of an app's instances (a rolling restart) and follow it.
    Restart {
        /// The app id.
        id: String,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Go back to an earlier version (default: the one before the current) and follow it.
    Rollback {
        /// The app id.
        id: String,
        /// The version to go back to (see /v2/apps/ID/versions).
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// What deploying a file would change, and whether its new instances fit
    /// (exit 0 no change, 1 change, 2 change that cannot all be placed, 255 error).
    Plan {
        /// The app definition (Marathon v2 JSON).
        #[arg(short = 'f', long)]
        file: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub(crate) struct FollowArgs {
    /// Give up (exit 2 if instances cannot be placed) after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub(crate) timeout: u64,
    /// Return once the deployment has started instead of following it.
    #[arg(long)]
    pub(crate) detach: bool,
    /// Override a deployment that holds the app (Marathon's `force=true`).
    #[arg(long)]
    pub(crate) force: bool,
}

impl FollowArgs {
    /// The query that carries `--force`, after `first` (e.g. `?a=b`).
    fn query(&self, first: &str) -> String {
        match (first.is_empty(), self.force) {
            (_, false) => first.to_string(),
            (true, true) => "?force=true".into(),
            (false, true) => format!("{first}&force=true"),
        }
    }
}

/// `agora app ...`; returns the exit code.
pub(crate) fn run(a: &AppArgs, g: &Globals) -> anyhow::Result<i32> {
    let m = a.ep.marathon.as_str();
    let (started, f) = match &a.command {
        AppCommand::Plan { file } => return Ok(crate::plan::plan(&a.ep, file)),
        AppCommand::Deploy { file, follow } => (deploy(m, file, follow)?, follow),
        AppCommand::Scale {
            id,
            instances,
            follow,
        } => {
            let body = json!({ "instances": instances }).to_string();
            (
                change(m, "PUT", &app_id(id), &follow.query(""), &body)?,
                follow,
            )
        }
        AppCommand::Restart { id, follow } => {
            let tail = format!("/restart{}", follow.query(""));
            (change(m, "POST", &app_id(id), &tail, "")?, follow)
        }
        AppCommand::Rollback {
            id,
            version,
            follow,
        } => (
            rollback(m, &app_id(id), version.as_deref(), follow)?,
            follow,
        ),
    };
    let Some(deployment) = started.deployment.as_deref() else {
        println!("{}: nothing to do (no deployment started)", started.app);
        return Ok(0);
    };
    if f.detach {
        println!(
            "{}: deployment {deployment} started (version {})",
            started.app,
            started.version.as_deref().unwrap_or("?")
        );
        return Ok(0);
    }
    follow(m, &started, &View::for_stdout(g, f.timeout))
}

/// Sends a change to `/v2/apps{id}{tail}` and reads what it started.
fn change(m: &str, method: &str, id: &str, tail: &str, body: &str) -> anyhow::Result<Started> {
    let path = format!("/v2/apps{id}{tail}");
    let (status, answer) = call(m, method, &path, body)?;
    anyhow::ensure!(
        status == 200 || status == 201,
        "{method} {path}: HTTP {status}: {answer}"
    );
    // A change answers `{version, deploymentId}`; creating an app answers
    // the app itself, with its deployment in `deployments`.
    let deployment = answer["deploymentId"]
        .as_str()
        .or_else(|| answer["deployments"][0]["id"].as_str());
    Ok(Started {
        app: id.to_string(),
        deployment: deployment.map(str::to_string),
        version: answer["version"].as_str().map(str::to_string),
    })
}

/// PUTs a whole definition (no merge: the file is the app).
fn deploy(m: &str, file: &PathBuf, f: &FollowArgs) -> anyhow::Result<Started> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let def: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let id = app_id(def["id"].as_str().context("the definition has no \"id\"")?);
    change(m, "PUT", &id, &f.query("?partialUpdate=false"), &text)
}

/// PUTs `{"version": V}`, V given or the version before the current one.
fn rollback(m: &str, id: &str, version: Option<&str>, f: &FollowArgs) -> anyhow::Result<Started> {
    let version = match version {
        Some(v) => v.to_string(),
        None => previous_version(m, id)?,
    };
    let body = json!({ "version": version }).to_string();
    change(m, "PUT", id, &f.query(""), &body)
}

/// The version listed after the app's current one (newest first).
fn previous_version(m: &str, id: &str) -> anyhow::Result<String> {
    let (status, app) = call(m, "GET", &format!("/v2/apps{id}"), "")?;
    anyhow::ensure!(status == 200, "GET /v2/apps{id}: HTTP {status}: {app}");
    let current = app["app"]["version"].as_str().unwrap_or_default();
    let (status, list) = call(m, "GET", &format!("/v2/apps{id}/versions"), "")?;
    anyhow::ensure!(
        status == 200,
        "GET /v2/apps{id}/versions: HTTP {status}: {list}"
    );
    let versions: Vec<&str> = list["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let at = versions.iter().position(|v| *v == current).unwrap_or(0);
    versions
        .get(at + 1)
        .map(|v| v.to_string())
        .with_context(|| format!("{id} has no version before {current}"))
}
