//! Helpers shared by the CLI's process tests: free ports, child processes
//! killed on drop, and `agora dev` started and waited for.
#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agora_tests::{eventually, http_get};

pub(crate) const AGORA: &str = env!("CARGO_BIN_EXE_agora");

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn spawn(args: &[&str]) -> Proc {
    let child = Command::new(AGORA)
        .args(args)
        .env("AGORA_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {AGORA}: {e}"));
    Proc(child)
}

pub(crate) async fn state(addr: SocketAddr) -> Option<serde_json::Value> {
    let (code, body) = http_get(addr, "/state").await.ok()?;
    if code != 200 {
        return None;
    }
    serde_json::from_str(&body).ok()
}

/// Starts `agora dev` on free ports with data under `dir`, and waits until
/// its agent is connected. Returns the process and the master's address.
pub(crate) async fn start_dev(
    dir: &std::path::Path,
    resources: &str,
    docker: bool,
) -> anyhow::Result<(Proc, SocketAddr, SocketAddr)> {
    let (mp, ap) = (free_port(), free_port());
    let m: SocketAddr = format!("127.0.0.1:{mp}").parse()?;
    let data = dir.join("data").display().to_string();
    let (ml, al) = (m.to_string(), format!("127.0.0.1:{ap}"));
    let etcd = format!("127.0.0.1:{}", free_port());
    let marathon = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "dev",
        "--etcd-listen",
        &etcd,
        "--marathon-listen",
        &marathon,
        "--data-dir",
        &data,
        "--master-listen",
        &ml,
        "--agent-listen",
        &al,
        "--resources",
        resources,
    ];
    if !docker {
        args.push("--no-docker");
    }
    let dev = spawn(&args);
    eventually(
        "the dev agent registers",
        Duration::from_secs(30),
        || async {
            let st = state(m).await?;
            (st["agents"].as_array()?.first()?["status"] == "connected").then_some(())
        },
    )
    .await?;
    // Marathon runs in `agora dev` too, and elects itself.
    let marathon_addr: SocketAddr = marathon.parse()?;
    eventually(
        "agora dev's Marathon leads",
        Duration::from_secs(30),
        || async {
            let (code, body) = http_get(marathon_addr, "/v2/leader").await.ok()?;
            (code == 200 && body.contains(&marathon)).then_some(())
        },
    )
    .await?;
    Ok((dev, m, marathon_addr))
}
