//! Agora's Marathon in-process for tests, on a [`TestMaster`]'s etcd API,
//! with JSON helpers for its REST API.
use std::net::SocketAddr;
use std::time::Duration;

use agora_marathon::{MarathonConfig, MarathonHandle};
use anyhow::Context;
use serde_json::Value;

use crate::http::http_request;

/// A Marathon process under test, on a runtime of its own so that
/// [`TestMarathon::crash`] ends every task it runs at once, as kill -9
/// would (its leader lease then has to expire).
pub struct TestMarathon {
    /// Where its API listens.
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    handle: Option<MarathonHandle>,
}

impl TestMarathon {
    /// Starts Marathon against `masters` and the etcd endpoint `etcd`, with
    /// a short leader lease, and waits until some Marathon leads.
    pub async fn start(
        masters: Vec<String>,
        etcd: SocketAddr,
        prefix: &str,
    ) -> anyhow::Result<TestMarathon> {
        crate::init_tracing();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let cfg = MarathonConfig {
            masters,
            etcd: vec![etcd.to_string()],
            prefix: prefix.to_string(),
            leader_lease: Duration::from_secs(2),
            ..MarathonConfig::default()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let handle = runtime
            .spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                agora_marathon::start(cfg, listener)
                    .await
                    .map_err(anyhow::Error::from)
            })
            .await??;
        Ok(TestMarathon {
            addr,
            runtime: Some(runtime),
            handle: Some(handle),
        })
    }

    /// Waits until this process answers `/v2/leader` with some leader.
    pub async fn wait_leader(&self, timeout: Duration) -> anyhow::Result<String> {
        crate::eventually("a Marathon leader", timeout, || async {
            let (code, body) = self.get("/v2/leader").await.ok()?;
            (code == 200).then(|| body["leader"].as_str().map(str::to_string))?
        })
        .await
    }

    /// GET, JSON body.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.call("GET", path, None).await
    }

    /// Any method, JSON in and out (an empty body reads as `null`).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let (code, _, body) = self.call_raw(method, path, body).await?;
        Ok((code, body))
    }

    /// Any method; also returns the response head (lower-cased).
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, String, Value)> {
        let text = body.map(Value::to_string);
        let (code, head, body) = http_request(self.addr, method, path, text.as_deref()).await?;
        let json = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body)
                .with_context(|| format!("{method} {path}: not JSON: {body}"))?
        };
        Ok((code, head, json))
    }

    /// Stops it (resigning leadership if it leads).
    pub async fn stop(&mut self) {
        if let (Some(h), Some(rt)) = (self.handle.take(), self.runtime.as_ref()) {
            let _ = rt.spawn(h.shutdown()).await;
        }
        self.crash();
    }

    /// Ends every task at once without resigning: its lease must expire
    /// (as after kill -9).
    pub fn crash(&mut self) {
        self.handle = None;
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for TestMarathon {
    fn drop(&mut self) {
        self.crash();
    }
}
