//! The in-process cluster harness for Agora's integration tests: a real
//! master on a loopback socket (`TestMaster`), simulated agents that speak the
//! real agent link protocol (`SimAgent`, reusable for scale benchmarks),
//! a real Prometheus scraping them (`prometheus`), Grafana dashboards read
//! as data (`grafana`), and small helpers (HTTP GET, polling).
//!
//! Everything runs on real sockets; nothing is mocked.
pub mod browser;
pub mod burst;
pub mod grafana;
pub mod group;
pub mod http;
pub mod marathon;
pub mod master;
pub mod prometheus;
pub mod promtool;
pub mod proxy;
pub mod raw_framework;
pub mod sim_agent;

pub use group::TestGroup;
pub use http::{http_get, http_request};
pub use marathon::TestMarathon;
pub use master::TestMaster;
pub use proxy::TcpProxy;
pub use raw_framework::{RawFramework, shell_task};
pub use sim_agent::{SimAgent, SimAgentConfig, TaskBehaviour};

use std::future::Future;
use std::time::Duration;

/// Installs a test-friendly tracing subscriber once (RUST_LOG controls it).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Polls `f` every 20 ms until it returns Some, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
