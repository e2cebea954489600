//! `agora deployment list|watch|stop|rollback`, after the dcos CLI's
//! `marathon deployment` commands; `watch` and `rollback` follow with the
//! same follower as `agora app deploy` (the deployment's first affected
//! app is the one drawn) and the same exit codes.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::app::FollowArgs;
use crate::follow::{Started, View, follow};
use crate::get::{Format, GetArgs, Kind};
use crate::globals::{Endpoints, Globals};
use crate::marathon_api::call;

#[derive(Args, Debug, Clone)]
pub(crate) struct DeploymentArgs {
    #[command(flatten)]
    pub(crate) ep: Endpoints,
    #[command(subcommand)]
    pub(crate) command: DeploymentCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub(crate) enum DeploymentCommand {
    /// The deployments under way (as `agora get deployments`).
    List,
    /// Follow a deployment to its end.
    Watch {
        /// The deployment id.
        id: String,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Forget a deployment where it stands (Marathon's DELETE with force=true).
    Stop {
        /// The deployment id.
        id: String,
    },
    /// Roll a deployment back (a new deployment to the previous definitions) and follow that.
    Rollback {
        /// The deployment id.
        id: String,
        #[command(flatten)]
        follow: FollowArgs,
    },
}

/// The deployment `id` among those under way.
fn find(m: &str, id: &str) -> anyhow::Result<Value> {
    let (status, list) = call(m, "GET", "/v2/deployments", "")?;
    anyhow::ensure!(status == 200, "GET /v2/deployments: HTTP {status}: {list}");
    list.as_array()
        .and_then(|l| l.iter().find(|d| d["id"] == id))
        .cloned()
        .with_context(|| format!("no deployment {id} under way"))
}

fn first_app(d: &Value) -> anyhow::Result<String> {
    d["affectedApps"][0]
        .as_str()
        .map(str::to_string)
        .context("the deployment affects no app")
}

/// `agora deployment ...`; returns the exit code.
pub(crate) fn run(a: &DeploymentArgs, g: &Globals) -> anyhow::Result<i32> {
    let m = a.ep.marathon.as_str();
    let (started, f) = match &a.command {
        DeploymentCommand::List => {
            let list = GetArgs {
                kind: Kind::Deployments,
                output: Format::Table,
                watch: false,
                ep: a.ep.clone(),
            };
            crate::get::get(&list)?;
            return Ok(0);
        }
        DeploymentCommand::Stop { id } => {
            let path = format!("/v2/deployments/{id}?force=true");
            let (status, body) = call(m, "DELETE", &path, "")?;
            anyhow::ensure!(status == 202, "DELETE {path}: HTTP {status}: {body}");
            println!("deployment {id} stopped");
            return Ok(0);
        }
        DeploymentCommand::Watch { id, follow } => {
            let d = find(m, id)?;
            let started = Started {
                app: first_app(&d)?,
                deployment: Some(id.clone()),
                version: d["version"].as_str().map(str::to_string),
            };
            (started, follow)
        }
        DeploymentCommand::Rollback { id, follow } => {
            let app = first_app(&find(m, id)?)?;
            let path = format!("/v2/deployments/{id}");
            let (status, body) = call(m, "DELETE", &path, "")?;
            anyhow::ensure!(status == 200, "DELETE {path}: HTTP {status}: {body}");
            let started = Started {
                app,
                deployment: body["deploymentId"].as_str().map(str::to_string),
                version: body["version"].as_str().map(str::to_string),
            };
            (started, follow)
        }
    };
    if f.detach {
        println!("{}: following detached", started.app);
        return Ok(0);
    }
    follow(m, &started, &View::for_stdout(g, f.timeout))
}
