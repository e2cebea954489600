//! `agora agent drain ID` and `agora agent undrain ID`: the operator's
//! maintenance calls (`POST /api/v1/agents/{id}/drain|undrain` on the
//! leading master; a standby's 307 is followed). `--wait` then follows the
//! agent's task count in /state until no task remains on it.
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::client::{get_json, request};

#[derive(Subcommand, Debug, Clone)]
pub(crate) enum AgentOp {
    /// Drain an agent: no new offers from it; frameworks move its tasks away.
    Drain(DrainArgs),
    /// End an agent's drain: it makes offers again.
    Undrain(TargetArgs),
}

#[derive(Args, Debug, Clone)]
pub(crate) struct TargetArgs {
    /// The agent's id (`agora agents` lists them).
    pub(crate) id: String,
    /// Master `host:port` (a standby redirects to the leader); else the
    /// global `--address`/`AGORA_ADDR`, else `AGORA_MASTER`.
    #[arg(long = "master")]
    pub(crate) master: Option<String>,
}

impl TargetArgs {
    fn resolve(&mut self, g: &crate::globals::Globals) {
        let mut ep = crate::globals::Endpoints::default();
        ep.resolve(g);
        self.master = Some(self.master.take().unwrap_or(ep.master));
    }

    fn master(&self) -> &str {
        self.master
            .as_deref()
            .unwrap_or(crate::globals::DEFAULT_MASTER)
    }
}

impl AgentOp {
    /// Fills in the master from the global options.
    pub(crate) fn resolve(&mut self, g: &crate::globals::Globals) {
        match self {
            AgentOp::Drain(a) => a.target.resolve(g),
            AgentOp::Undrain(t) => t.resolve(g),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub(crate) struct DrainArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// When the agent should be empty, in seconds from now (shown to
    /// frameworks; nothing is killed for it).
    #[arg(long)]
    pub(crate) deadline: Option<f64>,
    /// Wait until no task remains on the agent.
    #[arg(long)]
    pub(crate) wait: bool,
    /// Give up waiting after this many seconds (exit 1).
    #[arg(long, default_value_t = 600.0)]
    pub(crate) timeout: f64,
}

/// Runs one operation; errors carry the master's message.
pub(crate) fn run(op: &AgentOp) -> anyhow::Result<()> {
    match op {
        AgentOp::Drain(a) => {
            let body = match a.deadline {
                Some(s) => serde_json::json!({ "deadline_seconds": s }).to_string(),
                None => String::new(),
            };
            call(&a.target, "drain", &body)?;
            println!("agent {} is draining", a.target.id);
            if a.wait {
                wait_empty(
                    &a.target,
                    Duration::from_secs_f64(a.timeout.clamp(0.0, 1e7)),
                )?;
            }
            Ok(())
        }
        AgentOp::Undrain(t) => {
            call(t, "undrain", "")?;
            println!("agent {} is no longer draining", t.id);
            Ok(())
        }
    }
}

fn call(t: &TargetArgs, verb: &str, body: &str) -> anyhow::Result<()> {
    let path = format!("/api/v1/agents/{}/{verb}", t.id);
    let reply = request(t.master(), "POST", &path, body)?;
    if reply.status == 200 {
        return Ok(());
    }
    let message = serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| reply.body.trim().to_string());
    anyhow::bail!("{verb} {}: HTTP {}: {message}", t.id, reply.status)
}

/// Polls /state until the agent holds no task.
fn wait_empty(t: &TargetArgs, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let state = get_json(t.master(), "/state")?;
        let agent = state["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["id"].as_str() == Some(t.id.as_str()))
            .with_context(|| format!("agent {} is no longer in /state", t.id))?;
        let tasks = agent["task_count"].as_u64().unwrap_or(0);
        if tasks == 0 {
            println!("agent {} has no tasks left", t.id);
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < timeout,
            "agent {}: {tasks} task(s) still there after {:.0} s",
            t.id,
            timeout.as_secs_f64()
        );
        eprintln!("agent {}: {tasks} task(s) left", t.id);
        std::thread::sleep(Duration::from_secs(1));
    }
}
