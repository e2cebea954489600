//! `agora dev`: a whole one-machine cluster in one process, with embedded
//! defaults and all data under one directory. The master listens on
//! 127.0.0.1:5050 (etcd API on 2379), the agent on 127.0.0.1:5051 and
//! Marathon on 127.0.0.1:8080 unless told otherwise.
use std::net::SocketAddr;
use std::path::PathBuf;

use agora_agent::{AgentConfig, DockerMode};
use agora_master::MasterConfig;
use anyhow::Context;
use clap::Args;
use tracing::info;

use crate::run::stop_signal;

#[derive(Args, Debug, Clone)]
pub(crate) struct DevArgs {
    /// Where everything is kept (registry, agent checkpoint, sandboxes).
    #[arg(long, default_value = ".agora")]
    pub(crate) data_dir: PathBuf,
    /// Master address.
    #[arg(long, default_value = "127.0.0.1:5050")]
    pub(crate) master_listen: SocketAddr,
    /// Agent address.
    #[arg(long, default_value = "127.0.0.1:5051")]
    pub(crate) agent_listen: SocketAddr,
    /// The etcd v3 API (`off` to not serve it, and no Marathon).
    #[arg(long, default_value = "127.0.0.1:2379")]
    pub(crate) etcd_listen: String,
    /// Marathon's REST API (`off` for none).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) marathon_listen: String,
    /// Agent resources (default: detected from this machine).
    #[arg(long)]
    pub(crate) resources: Option<String>,
    /// Do not use Docker even if a daemon is reachable.
    #[arg(long)]
    pub(crate) no_docker: bool,
}

pub(crate) async fn run(args: DevArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir)?;
    let mut master_cfg = MasterConfig {
        listen: args.master_listen,
        data_dir: Some(data_dir.join("master")),
        ..MasterConfig::default()
    };
    master_cfg.group.etcd_listen = crate::run::parse_etcd_listen(&args.etcd_listen)?;
    let master_cfg_etcd = master_cfg.group.etcd_listen;
    let listener = tokio::net::TcpListener::bind(master_cfg.listen)
        .await
        .with_context(|| format!("binding the master to {}", master_cfg.listen))?;
    let master = agora_master::start(master_cfg, listener).await?;
    let resources = match &args.resources {
        Some(r) => {
            Some(agora_model::Resources::parse(r).with_context(|| format!("--resources {r:?}"))?)
        }
        None => None,
    };
    let agent_cfg = AgentConfig {
        masters: vec![master.addr().to_string()],
        work_dir: data_dir.join("agent"),
        resources,
        hostname: Some("localhost".into()),
        docker: if args.no_docker {
            DockerMode::Disabled
        } else {
            DockerMode::Auto
        },
        ..AgentConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(args.agent_listen)
        .await
        .with_context(|| format!("binding the agent to {}", args.agent_listen))?;
    let agent = agora_agent::start(agent_cfg, listener).await?;
    let marathon = start_marathon(&args, master.addr(), master_cfg_etcd).await?;
    info!(
        master = %master.addr(),
        agent = %agent.addr(),
        data_dir = %data_dir.display(),
        "agora dev cluster running: dashboard at http://{}/ui, state at http://{}/state; Ctrl-C to stop",
        master.addr(),
        master.addr()
    );
    stop_signal().await;
    if let Some(m) = marathon {
        m.shutdown().await;
    }
    agent.shutdown().await;
    master.shutdown().await;
    Ok(())
}

/// Marathon on the dev cluster's master and its etcd API (none when either
/// is off).
async fn start_marathon(
    args: &DevArgs,
    master: SocketAddr,
    etcd: Option<SocketAddr>,
) -> anyhow::Result<Option<agora_marathon::MarathonHandle>> {
    let (Some(etcd), false) = (etcd, args.marathon_listen == "off") else {
        return Ok(None);
    };
    let listen: SocketAddr = args
        .marathon_listen
        .parse()
        .with_context(|| format!("--marathon-listen {:?}", args.marathon_listen))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding Marathon to {listen}"))?;
    let cfg = agora_marathon::MarathonConfig {
        masters: vec![master.to_string()],
        etcd: vec![etcd.to_string()],
        ..agora_marathon::MarathonConfig::default()
    };
    let handle = agora_marathon::start(cfg, listener).await?;
    info!(marathon = %handle.addr(), "Marathon at http://{}/v2/apps", handle.addr());
    Ok(Some(handle))
}
