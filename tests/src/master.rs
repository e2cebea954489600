//! A real master on 127.0.0.1 for tests, with fast timings, that can be
//! stopped, crashed and restarted on the same port.
use std::net::SocketAddr;
use std::time::Duration;

use agora_master::{MasterConfig, MasterHandle};
use anyhow::Context;

use crate::http::http_get;

/// How long a one-member group may take to elect itself and start its core.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A master under test.
pub struct TestMaster {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its configuration (restart reuses it).
    pub config: MasterConfig,
    handle: Option<MasterHandle>,
}

impl TestMaster {
    /// Timings short enough for tests: allocation every 50 ms, agent pings
    /// every 100 ms with 5 misses allowed, heartbeats every second.
    pub fn fast_config() -> MasterConfig {
        MasterConfig {
            allocation_interval: Duration::from_millis(50),
            agent_ping_interval: Duration::from_millis(100),
            max_agent_ping_misses: 5,
            framework_heartbeat_interval: Duration::from_secs(1),
            agent_reregister_timeout: Duration::from_secs(5),
            ..MasterConfig::default()
        }
    }

    /// Starts a master with `fast_config()`.
    pub async fn start() -> TestMaster {
        Self::start_with(Self::fast_config()).await
    }

    /// Starts a master with the given configuration on 127.0.0.1:0.
    pub async fn start_with(config: MasterConfig) -> TestMaster {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("bind 127.0.0.1:0: {e}"),
        };
        let master = match TestMaster::start_member(config, listener).await {
            Ok(m) => m,
            Err(e) => panic!("master start: {e}"),
        };
        // A group of one elects itself at once; wait for its core.
        assert!(
            master.wait_active().await,
            "the master did not become active"
        );
        master
    }

    /// Whether its core runs within [`ACTIVE_TIMEOUT`].
    async fn wait_active(&self) -> bool {
        match &self.handle {
            Some(handle) => handle.wait_active(ACTIVE_TIMEOUT).await,
            None => false,
        }
    }

    /// Starts one member of a group on `listener` without waiting for it
    /// to lead (see `TestGroup`).
    pub async fn start_member(
        config: MasterConfig,
        listener: tokio::net::TcpListener,
    ) -> anyhow::Result<TestMaster> {
        crate::init_tracing();
        let addr = listener.local_addr()?;
        let handle = agora_master::start(config.clone(), listener).await?;
        Ok(TestMaster {
            addr,
            config,
            handle: Some(handle),
        })
    }

    /// Whether this master leads its group and runs its core.
    pub fn is_active(&self) -> bool {
        self.handle.as_ref().is_some_and(MasterHandle::is_active)
    }

    /// Restarts a member of a group on its address without waiting for
    /// it to lead.
    pub async fn restart_member(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        let listener = rebind(self.addr).await?;
        self.handle = Some(agora_master::start(self.config.clone(), listener).await?);
        Ok(())
    }

    /// Where it serves the etcd v3 API, if it does.
    pub fn etcd_addr(&self) -> Option<SocketAddr> {
        self.handle.as_ref().and_then(MasterHandle::etcd_addr)
    }

    /// `http://127.0.0.1:PORT`, for gRPC clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// GET /state as JSON.
    pub async fn state(&self) -> anyhow::Result<serde_json::Value> {
        let (code, body) = http_get(self.addr, "/state").await?;
        anyhow::ensure!(code == 200, "/state answered {code}: {body}");
        serde_json::from_str(&body).context("/state is not JSON")
    }

    /// GET /metrics text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let (code, body) = http_get(self.addr, "/metrics").await?;
        anyhow::ensure!(code == 200, "/metrics answered {code}");
        Ok(body)
    }

    /// Graceful stop.
    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    /// Abrupt stop (the in-process stand-in for kill -9).
    pub fn crash(&mut self) {
        if let Some(h) = self.handle.take() {
            h.crash();
        }
    }

    /// Starts again on the same port (state is rebuilt from agents and
    /// frameworks, plus the registry from the Raft log if `config.data_dir`
    /// is set).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.restart_member().await?;
        anyhow::ensure!(
            self.wait_active().await,
            "the restarted master did not become active"
        );
        Ok(())
    }
}

/// Binds `addr` again, waiting for the old socket to go.
async fn rebind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let mut last = None;
    for _ in 0..100 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(anyhow::anyhow!("could not rebind {addr}: {last:?}"))
}

impl Drop for TestMaster {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.crash();
        }
    }
}
