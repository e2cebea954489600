//! `agora master` and `agora agent`: flags (and a TOML file for the master)
//! turned into configurations, then run until Ctrl-C or SIGTERM.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use agora_agent::{AgentConfig, DockerMode};
use agora_master::MasterConfig;
use agora_model::{Attributes, Resources};
use anyhow::Context;
use clap::{Args, ValueEnum};
use tracing::info;

#[derive(Args, Debug, Clone)]
pub(crate) struct MasterArgs {
    /// Address for gRPC and HTTP.
    #[arg(long, env = "AGORA_MASTER_LISTEN")]
    pub(crate) listen: Option<SocketAddr>,
    /// TOML file with any of the settings below (flags win).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Where the registry is kept.
    #[arg(long, env = "AGORA_MASTER_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Seconds between batch allocations (Mesos default 1).
    #[arg(long)]
    pub(crate) allocation_interval: Option<f64>,
    /// Seconds between agent pings (Mesos default 15).
    #[arg(long)]
    pub(crate) agent_ping_timeout: Option<f64>,
    /// Missed pings before an agent is unreachable (Mesos default 5).
    #[arg(long)]
    pub(crate) max_agent_ping_timeouts: Option<u32>,
    /// Rescind offers not answered within this many seconds (default: never).
    #[arg(long)]
    pub(crate) offer_timeout: Option<f64>,
    /// refuse_seconds for declines without filters (Mesos default 5).
    #[arg(long)]
    pub(crate) default_refuse_seconds: Option<f64>,
    /// Role weights, e.g. `web=2,batch=0.5`.
    #[arg(long, value_delimiter = ',')]
    pub(crate) weights: Vec<String>,
    /// This master's member id in its group (default 1): decimal, or `0x`
    /// and hex as `etcdctl member add` prints it.
    #[arg(long = "id", env = "AGORA_MASTER_ID", value_parser = crate::globals::member_id)]
    pub(crate) member_id: Option<u64>,
    /// The group's founding members, `1=HOST:PORT,2=HOST:PORT,...` (the
    /// address agents and frameworks use; add `/ETCD_PORT` when a member's
    /// etcd API is not on 2379). Default: a group of this master alone.
    #[arg(long, env = "AGORA_MASTER_PEERS")]
    pub(crate) peers: Option<String>,
    /// Start empty and wait to be added with `agora members add`.
    #[arg(long)]
    pub(crate) join: bool,
    /// The Raft tick in milliseconds: heartbeats every tick, elections
    /// after 10–20 ticks without a leader.
    #[arg(long)]
    pub(crate) raft_tick_ms: Option<u64>,
    /// Log entries between Raft snapshots (the log is then compacted).
    #[arg(long)]
    pub(crate) raft_snapshot_entries: Option<u64>,
    /// Log entries kept behind a snapshot for followers slightly behind.
    #[arg(long)]
    pub(crate) raft_log_tail_entries: Option<u64>,
    /// Address of the etcd v3 API (`off` to not serve it).
    #[arg(long, env = "AGORA_ETCD_LISTEN", default_value = "0.0.0.0:2379")]
    pub(crate) etcd_listen: String,
    /// How the leader auto-compacts the etcd keyspace's history, as etcd's
    /// flag: `periodic` keeps a time window, `revision` a number of revisions.
    #[arg(long, value_parser = ["periodic", "revision"])]
    pub(crate) etcd_auto_compaction_mode: Option<String>,
    /// The history kept: a duration (`90s`, `30m`, `72h`) or hours in
    /// periodic mode, revisions in revision mode; `0` turns it off.
    /// Default: one hour (the keyspace lives in the masters' memory).
    #[arg(long)]
    pub(crate) etcd_auto_compaction_retention: Option<String>,
    /// Bytes the etcd keyspace may hold in the masters' memory before
    /// writes that add data are refused and the NOSPACE alarm is raised,
    /// as etcd's `--quota-backend-bytes`. Default: 2 GiB.
    #[arg(long)]
    pub(crate) etcd_quota_backend_bytes: Option<u64>,
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        v.is_finite() && v > 0.0,
        "--{name}: {v} is not a positive number of seconds"
    );
    Duration::try_from_secs_f64(v).map_err(|_| anyhow::anyhow!("--{name}: {v} seconds is too long"))
}

impl MasterArgs {
    pub(crate) fn into_config(self) -> anyhow::Result<MasterConfig> {
        let mut cfg = MasterConfig::default();
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            cfg = cfg
                .merge_toml(&text)
                .with_context(|| format!("in {}", path.display()))?;
        }
        if let Some(v) = self.listen {
            cfg.listen = v;
        }
        if let Some(v) = self.data_dir {
            cfg.data_dir = Some(v);
        }
        if let Some(v) = self.allocation_interval {
            cfg.allocation_interval = secs("allocation-interval", v)?;
        }
        if let Some(v) = self.agent_ping_timeout {
            cfg.agent_ping_interval = secs("agent-ping-timeout", v)?;
        }
        if let Some(v) = self.max_agent_ping_timeouts {
            cfg.max_agent_ping_misses = v;
        }
        if let Some(v) = self.offer_timeout {
            cfg.offer_timeout = Some(secs("offer-timeout", v)?);
        }
        if let Some(v) = self.default_refuse_seconds {
            cfg.default_refuse = secs("default-refuse-seconds", v)?;
        }
        if let Some(v) = self.member_id {
            cfg.group.member_id = v;
        }
        if let Some(v) = &self.peers {
            cfg.group.peers = agora_master::replication::GroupConfig::parse_peers(v)?;
        }
        if self.join {
            cfg.group.join = true;
        }
        if let Some(n) = self.raft_snapshot_entries {
            cfg.group.snapshot_entries = n;
        }
        if let Some(n) = self.raft_log_tail_entries {
            cfg.group.log_tail_entries = n;
        }
        if let Some(ms) = self.raft_tick_ms {
            anyhow::ensure!(ms > 0, "--raft-tick-ms: must be positive");
            cfg.group.tick = Duration::from_millis(ms);
        }
        let (mode, retention) = (
            self.etcd_auto_compaction_mode.as_deref(),
            self.etcd_auto_compaction_retention.as_deref(),
        );
        if let Some(v) = agora_master::replication::AutoCompaction::from_flags(mode, retention)
            .map_err(|e| anyhow::anyhow!("--etcd-auto-compaction-*: {e}"))?
        {
            cfg.group.etcd_auto_compaction = v;
        }
        if let Some(bytes) = self.etcd_quota_backend_bytes {
            anyhow::ensure!(bytes > 0, "--etcd-quota-backend-bytes: must be positive");
            cfg.group.etcd_quota_backend_bytes = bytes;
        }
        if cfg.group.etcd_listen.is_none() || self.etcd_listen != "0.0.0.0:2379" {
            cfg.group.etcd_listen = parse_etcd_listen(&self.etcd_listen)?;
        }
        for w in &self.weights {
            let (role, weight) = w
                .split_once('=')
                .with_context(|| format!("--weights: {w:?} is not role=weight"))?;
            let weight: f64 = weight
                .parse()
                .with_context(|| format!("--weights: {weight:?} is not a number"))?;
            cfg.role_weights.insert(role.to_string(), weight);
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// `--etcd-listen`: an address, or `off`.
pub(crate) fn parse_etcd_listen(text: &str) -> anyhow::Result<Option<SocketAddr>> {
    if text == "off" {
        return Ok(None);
    }
    let addr = text
        .parse()
        .with_context(|| format!("--etcd-listen: {text:?} is not HOST:PORT or off"))?;
    Ok(Some(addr))
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub(crate) enum DockerFlag {
    /// Use Docker when the daemon answers.
    Auto,
    /// Refuse to start without Docker.
    Required,
    /// Never use Docker.
    Disabled,
}

/// `agora agent [run flags]` runs an agent; `agora agent drain|undrain ID`
/// is the operator's call about one. The run flags and the subcommands
/// exclude each other, so existing `agora agent --work-dir ...` command
/// lines keep working.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct AgentCommand {
    #[command(subcommand)]
    pub(crate) op: Option<crate::maintenance::AgentOp>,
    #[command(flatten)]
    pub(crate) run: AgentArgs,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct AgentArgs {
    /// Masters, `host:port[,host:port...]`.
    #[arg(long, env = "AGORA_MASTER", value_delimiter = ',', required = true)]
    pub(crate) master: Vec<String>,
    /// Work directory: checkpoint and sandboxes. (An `Option` only so that
    /// `agora agent drain ID` parses without it; clap requires it otherwise.)
    #[arg(long, env = "AGORA_WORK_DIR", required = true)]
    pub(crate) work_dir: Option<PathBuf>,
    /// Address for the agent's HTTP endpoints.
    #[arg(long, default_value = "0.0.0.0:5051")]
    pub(crate) listen: SocketAddr,
    /// Resources, e.g. `cpus:4;mem:8192;ports:[31000-32000]` (default: detected).
    #[arg(long)]
    pub(crate) resources: Option<String>,
    /// Attributes, e.g. `rack:r1;zone:a`.
    #[arg(long)]
    pub(crate) attributes: Option<String>,
    /// Hostname to report (default: detected).
    #[arg(long)]
    pub(crate) hostname: Option<String>,
    /// Docker runtime.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) docker: DockerFlag,
}

impl AgentArgs {
    pub(crate) fn into_config(self) -> anyhow::Result<AgentConfig> {
        let resources = match &self.resources {
            Some(r) => Some(Resources::parse(r).with_context(|| format!("--resources {r:?}"))?),
            None => None,
        };
        let attributes = match &self.attributes {
            Some(a) => Attributes::parse(a).with_context(|| format!("--attributes {a:?}"))?,
            None => Attributes::default(),
        };
        Ok(AgentConfig {
            masters: self.master,
            work_dir: self.work_dir.context("--work-dir is required")?,
            resources,
            attributes,
            hostname: self.hostname,
            docker: match self.docker {
                DockerFlag::Auto => DockerMode::Auto,
                DockerFlag::Required => DockerMode::Required,
                DockerFlag::Disabled => DockerMode::Disabled,
            },
            ..AgentConfig::default()
        })
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

pub(crate) async fn master(args: MasterArgs) -> anyhow::Result<()> {
    let cfg = args.into_config()?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let handle = agora_master::start(cfg, listener).await?;
    info!(addr = %handle.addr(), "agora master running; Ctrl-C to stop");
    stop_signal().await;
    handle.shutdown().await;
    Ok(())
}

pub(crate) async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let listen = args.listen;
    let cfg = args.into_config()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let handle = agora_agent::start(cfg, listener).await?;
    info!(addr = %handle.addr(), "agora agent running; Ctrl-C to stop (tasks keep running)");
    stop_signal().await;
    handle.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use agora_master::replication::AutoCompaction;
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Master {
        #[command(flatten)]
        args: MasterArgs,
    }

    fn config(flags: &[&str]) -> anyhow::Result<MasterConfig> {
        let argv = std::iter::once("agora-master").chain(flags.iter().copied());
        Master::try_parse_from(argv)?.args.into_config()
    }

    #[test]
    fn etcd_auto_compaction_flags_read_as_etcds() -> anyhow::Result<()> {
        let compaction = |flags: &[&str]| config(flags).map(|c| c.group.etcd_auto_compaction);
        let hour = AutoCompaction::Periodic(Duration::from_secs(3600));
        assert_eq!(compaction(&[])?, hour, "one hour unless told");
        assert_eq!(
            compaction(&["--etcd-auto-compaction-retention", "72h"])?,
            AutoCompaction::Periodic(Duration::from_secs(72 * 3600))
        );
        let revisions = [
            "--etcd-auto-compaction-mode",
            "revision",
            "--etcd-auto-compaction-retention",
            "5000",
        ];
        assert_eq!(compaction(&revisions)?, AutoCompaction::Revisions(5000));
        let off = ["--etcd-auto-compaction-retention", "0"];
        assert_eq!(compaction(&off)?, AutoCompaction::Off);
        for bad in [
            &["--etcd-auto-compaction-mode", "revision"][..],
            &[
                "--etcd-auto-compaction-mode",
                "hourly",
                "--etcd-auto-compaction-retention",
                "1",
            ],
            &["--etcd-auto-compaction-retention", "soon"],
        ] {
            let error = compaction(bad).expect_err("refused");
            assert!(
                error.to_string().contains("auto-compaction"),
                "{bad:?}: {error}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_space_quota_flag_reads_as_etcds() -> anyhow::Result<()> {
        let quota = |flags: &[&str]| config(flags).map(|c| c.group.etcd_quota_backend_bytes);
        assert_eq!(
            quota(&[])?,
            2 * 1024 * 1024 * 1024,
            "etcd's 2 GiB unless told"
        );
        assert_eq!(
            quota(&["--etcd-quota-backend-bytes", "8589934592"])?,
            8 * 1024 * 1024 * 1024
        );
        for bad in ["0", "-1", "2GB"] {
            assert!(
                quota(&["--etcd-quota-backend-bytes", bad]).is_err(),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_member_id_reads_as_etcdctl_prints_it() -> anyhow::Result<()> {
        let id = |flags: &[&str]| config(flags).map(|c| c.group.member_id);
        assert_eq!(id(&["--id", "10"])?, 10);
        let peers = ["--peers", "1=a:5050,0xa=b:5050"];
        assert_eq!(id(&[&["--id", "0xa"][..], &peers].concat())?, 10);
        let error = id(&["--id", "a"]).expect_err("refused").to_string();
        assert!(error.contains("0x and hex"), "{error}");
        Ok(())
    }
}
