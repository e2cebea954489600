//! Master scale: a real master in its own process (this binary re-executed
//! with `SCALE_CHILD_DATA_DIR` set, running `agora_master::start` exactly as
//! `agora master` does) and N simulated agents (the real agent protocol) in
//! this one. Measures:
//!   1. registering N agents (to `activated_agents == N` in /state);
//!   2. the idle master's RSS (/proc/PID/status VmRSS) after registration;
//!   3. /state latency with N agents (median and max of 10 GETs);
//!   4. /state latency again with `SCALE_TASKS` running tasks (a burst);
//!   5. kill -9 of the master, a restart on the same port and data dir, and
//!      the time until every agent has re-registered.
//!
//! `cargo bench -p agora-benches --bench scale`; options `SCALE_AGENTS=10000
//! SCALE_TASKS=50000`; for profiling, `SCALE_CHILD_WRAPPER=heaptrack` runs
//! the master under a heap profiler and `SCALE_IDLE_HOLD_SECS=60` keeps the
//! idle master up for inspection.
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agora_tests::burst::BurstLauncher;

use agora_tests::{SimAgent, SimAgentConfig, TaskBehaviour, http_get};

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The child: a master on the given port (0 = any), printing its address.
fn child_master(data_dir: String) -> anyhow::Result<()> {
    let port: u16 = std::env::var("SCALE_CHILD_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("{}", listener.local_addr()?);
        let cfg = agora_master::MasterConfig {
            data_dir: Some(data_dir.into()),
            agent_ping_interval: Duration::from_secs(15),
            ..agora_master::MasterConfig::default()
        };
        let _master = agora_master::start(cfg, listener).await?;
        std::future::pending::<()>().await;
        Ok(())
    })
}

fn spawn_master(data_dir: &str, port: u16) -> anyhow::Result<(Child, SocketAddr)> {
    let exe = std::env::current_exe()?;
    // SCALE_CHILD_WRAPPER (e.g. `heaptrack`) runs the master under a
    // profiler; RSS is then the wrapper's, so only profile with it.
    let mut command = match std::env::var("SCALE_CHILD_WRAPPER") {
        Ok(wrapper) if !wrapper.is_empty() => {
            let mut c = Command::new(wrapper);
            c.arg(exe);
            c
        }
        _ => Command::new(exe),
    };
    let mut child = command
        .env("SCALE_CHILD_DATA_DIR", data_dir)
        .env("SCALE_CHILD_PORT", port.to_string())
        .stdout(Stdio::piped())
        .spawn()?;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    // The master prints its address first; a wrapper may print before it.
    let mut out = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        anyhow::ensure!(out.read_line(&mut line)? > 0, "the master exited");
        if let Ok(addr) = line.trim().parse() {
            return Ok((child, addr));
        }
    }
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn active_agents(addr: SocketAddr) -> Option<u64> {
    let (code, body) = http_get(addr, "/state").await.ok()?;
    if code != 200 {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&body).ok()?["activated_agents"].as_u64()
}

async fn wait_active(addr: SocketAddr, n: usize, limit: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if active_agents(addr).await.is_some_and(|a| a as usize >= n) {
            return Ok(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("{n} agents not active within {limit:?}")
}

async fn state_latency(addr: SocketAddr) -> anyhow::Result<(f64, f64)> {
    let mut ms = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let (code, _) = http_get(addr, "/state").await?;
        anyhow::ensure!(code == 200, "/state answered {code}");
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], ms[ms.len() - 1]))
}

fn main() -> anyhow::Result<()> {
    if let Ok(dir) = std::env::var("SCALE_CHILD_DATA_DIR") {
        return child_master(dir);
    }
    let agents = env_usize("SCALE_AGENTS", 10_000);
    let tasks = env_usize("SCALE_TASKS", 50_000);
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().to_string_lossy().into_owned();
    let (mut master, addr) = spawn_master(&data_dir, 0)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{agents} agents, {tasks} tasks; load at start {}",
        load.trim()
    );
    let result = rt.block_on(async {
        let endpoint = format!("http://{addr}");
        let config = SimAgentConfig {
            resources: agora_model::Resources::parse("cpus:64;mem:65536;disk:10000")?,
            behaviour: TaskBehaviour::RunForever,
            retry_interval: Duration::from_secs(5),
            ..SimAgentConfig::default()
        };
        let start = Instant::now();
        let mut sims = Vec::with_capacity(agents);
        for _ in 0..agents {
            sims.push(SimAgent::start(&endpoint, config.clone()).await);
        }
        let register = wait_active(addr, agents, Duration::from_secs(600)).await?;
        println!("register {agents} agents: {:.2} s (from the first connect)", start.elapsed().as_secs_f64());
        let _ = register;
        tokio::time::sleep(Duration::from_secs(5)).await;
        println!("idle master RSS with {agents} agents: {:.0} MB", rss_mb(master.id()));
        // SCALE_IDLE_HOLD_SECS keeps the idle master up for inspection
        // (pmap, /proc/PID/smaps) before the /state phase.
        let hold = env_usize("SCALE_IDLE_HOLD_SECS", 0) as u64;
        tokio::time::sleep(Duration::from_secs(hold)).await;
        let (p50, max) = state_latency(addr).await?;
        println!("/state with {agents} agents: p50 {p50:.1} ms, max {max:.1} ms");
        let launcher = if tasks > 0 {
            let mut launcher = BurstLauncher::start(&addr.to_string(), agents, tasks).await?;
            let report = launcher.wait(Duration::from_secs(600)).await?;
            println!(
                "{tasks} tasks RUNNING in {:.2} s ({} lost)",
                report.elapsed.as_secs_f64(),
                report.bad.len()
            );
            let (p50, max) = state_latency(addr).await?;
            println!("/state with {agents} agents and {tasks} tasks: p50 {p50:.1} ms, max {max:.1} ms");
            println!("master RSS with {tasks} tasks: {:.0} MB", rss_mb(master.id()));
            Some(launcher)
        } else {
            None
        };
        // kill -9, restart on the same port with the same data dir.
        master.kill()?;
        master.wait()?;
        let restart = Instant::now();
        let (m2, _) = spawn_master(&data_dir, addr.port())?;
        master = m2;
        let back = wait_active(addr, agents, Duration::from_secs(600)).await?;
        println!(
            "re-register {agents} agents after kill -9 and restart: {:.2} s ({:.2} s after the master listened)",
            restart.elapsed().as_secs_f64(),
            back.as_secs_f64()
        );
        if let Some(l) = launcher {
            l.stop().await;
        }
        for s in sims {
            s.stop().await;
        }
        anyhow::Ok(())
    });
    let _ = master.kill();
    let _ = master.wait();
    result
}
