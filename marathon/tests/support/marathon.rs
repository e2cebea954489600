//! Agora's Marathon in-process, through [`agora_marathon::start`] as the
//! CLI runs it, on a test's etcd; its master is an address nobody listens
//! on (the API, the loop and the store work without one: apps wait for
//! offers).
use std::net::SocketAddr;
use std::time::Duration;

use agora_marathon::{MarathonConfig, MarathonHandle};
use anyhow::bail;
use serde_json::Value;

use super::etcd::Etcd;
use super::http;

/// How long a new Marathon may take to win the election and load.
const LEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// A Marathon process under test.
pub(crate) struct TestMarathon {
    /// Where its API listens.
    pub(crate) addr: SocketAddr,
    handle: Option<MarathonHandle>,
}

/// A loopback address with nothing listening (the listener is dropped).
fn dead_addr() -> anyhow::Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

impl TestMarathon {
    /// Starts Marathon on `etcd` (its state under the store's prefix,
    /// `/marathon`) and waits until it leads: `GET /v2/groups` answers 200
    /// only once its loop runs.
    pub(crate) async fn start(etcd: &Etcd) -> anyhow::Result<TestMarathon> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let cfg = MarathonConfig {
            masters: vec![dead_addr()?],
            etcd: vec![etcd.url()],
            prefix: etcd.config().prefix,
            leader_lease: Duration::from_secs(2),
            ..MarathonConfig::default()
        };
        let handle = agora_marathon::start(cfg, listener).await?;
        let m = TestMarathon {
            addr: handle.addr(),
            handle: Some(handle),
        };
        let deadline = tokio::time::Instant::now() + LEAD_TIMEOUT;
        loop {
            if let Ok((200, _)) = m.get("/v2/groups").await {
                return Ok(m);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("Marathon did not lead within {LEAD_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Any method, JSON in and out.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        http::call(self.addr, method, path, body).await
    }

    /// GET.
    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.call("GET", path, None).await
    }

    /// Resigns and stops serving (another Marathon may then lead).
    pub(crate) async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}
