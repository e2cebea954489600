//! `agora marathon`: one Marathon process. Several may run against the same
//! coordination service; they elect a leader and the others proxy.
use std::net::SocketAddr;
use std::time::Duration;

use agora_marathon::MarathonConfig;
use anyhow::Context;
use clap::Args;

use crate::run::stop_signal;

#[derive(Args, Debug, Clone)]
pub(crate) struct MarathonArgs {
    /// Masters, comma-separated HOST:PORT (any members of the group).
    #[arg(long, default_value = "127.0.0.1:5050", value_delimiter = ',')]
    pub(crate) master: Vec<String>,
    /// etcd v3 endpoints of the coordination service, comma-separated
    /// (the masters serve it on port 2379).
    #[arg(long, default_value = "127.0.0.1:2379", value_delimiter = ',')]
    pub(crate) etcd: Vec<String>,
    /// Where the REST API listens (Marathon's default port is 8080).
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub(crate) listen: SocketAddr,
    /// HOST:PORT other Marathon processes reach this one at (default: the
    /// listen address, with this host's name when it listens on 0.0.0.0).
    #[arg(long)]
    pub(crate) advertise: Option<String>,
    /// Key prefix of the state in the coordination service.
    #[arg(long, default_value = "/marathon")]
    pub(crate) zk_prefix: String,
    /// Framework name at the master.
    #[arg(long, default_value = "marathon")]
    pub(crate) framework_name: String,
    /// Role the framework subscribes with.
    #[arg(long, default_value = "*")]
    pub(crate) mesos_role: String,
    /// The leader lease, in seconds: a dead leader is replaced after about this.
    #[arg(long, default_value_t = 5)]
    pub(crate) leader_lease_secs: u64,
}

impl MarathonArgs {
    pub(crate) fn config(&self, bound: SocketAddr) -> MarathonConfig {
        let advertise = self.advertise.clone().or_else(|| {
            bound.ip().is_unspecified().then(|| {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "127.0.0.1".into());
                format!("{host}:{}", bound.port())
            })
        });
        MarathonConfig {
            masters: self.master.clone(),
            etcd: self.etcd.clone(),
            prefix: self.zk_prefix.clone(),
            advertise,
            framework_name: self.framework_name.clone(),
            role: self.mesos_role.clone(),
            leader_lease: Duration::from_secs(self.leader_lease_secs.max(1)),
        }
    }
}

pub(crate) async fn run(args: MarathonArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding Marathon to {}", args.listen))?;
    let cfg = args.config(listener.local_addr()?);
    let handle = agora_marathon::start(cfg, listener).await?;
    tracing::info!(addr = %handle.addr(), "Marathon running; Ctrl-C to stop");
    stop_signal().await;
    handle.shutdown().await;
    Ok(())
}
