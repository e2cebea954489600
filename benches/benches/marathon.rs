//! Agora's Marathon at scale, in one process: a real master (its etcd API
//! holding Marathon's state), N simulated agents speaking the real agent
//! protocol (tasks report RUNNING at once), and Marathon. Measures:
//!   1. deploying one app of `MARATHON_INSTANCES` instances (POST to
//!      `tasksRunning == N` in `/v2/apps/{id}`), `MARATHON_RUNS` times,
//!      deleting the app between runs (Marathon's published figure: 500
//!      instances in 14 s on 189 agents);
//!   2. `GET /v2/apps` latency with `MARATHON_APPS` apps defined (0
//!      instances each), 20 GETs.
//!
//! `cargo bench -p agora-benches --bench marathon`; defaults 100 agents,
//! 1000 instances, 3 runs, 1000 apps. The master uses its default
//! allocation interval (1 s, Mesos' default) unless
//! `MARATHON_ALLOCATION_MS` says otherwise.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use agora_model::{AttributeValue, Attributes, Resources};
use agora_tests::{SimAgent, SimAgentConfig, TaskBehaviour, http_request};
use anyhow::Context;
use serde_json::{Value, json};

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let text = body.map(Value::to_string);
    let (code, _, body) = http_request(addr, method, path, text.as_deref()).await?;
    let v = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body)?
    };
    Ok((code, v))
}

async fn until(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("timed out waiting for {what}")
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

async fn deploy_once(m: SocketAddr, n: usize) -> anyhow::Result<f64> {
    let app = json!({"id": "/bench", "cmd": "sleep 1000", "cpus": 0.01, "mem": 1, "instances": n});
    let start = Instant::now();
    let (code, body) = call(m, "POST", "/v2/apps", Some(&app)).await?;
    anyhow::ensure!(code == 201, "POST: {code} {body}");
    until(
        "all instances running",
        Duration::from_secs(600),
        async || {
            matches!(call(m, "GET", "/v2/apps/bench?embed=app.counts", None).await,
            Ok((200, v)) if v["app"]["tasksRunning"].as_u64() == Some(n as u64))
        },
    )
    .await?;
    let secs = start.elapsed().as_secs_f64();
    let (code, body) = call(m, "DELETE", "/v2/apps/bench", None).await?;
    anyhow::ensure!(code == 200, "DELETE: {code} {body}");
    // Gone once its stop deployment is over (the app hides at once).
    until("the app gone", Duration::from_secs(600), async || {
        matches!(call(m, "GET", "/v2/deployments", None).await, Ok((200, v)) if v.as_array().is_some_and(Vec::is_empty))
    })
    .await?;
    Ok(secs)
}

async fn list_latency(m: SocketAddr, apps: usize) -> anyhow::Result<Vec<f64>> {
    let defs: Vec<Value> = (0..apps)
        .map(|i| json!({"id": format!("/many/app-{i}"), "cmd": "sleep 1", "cpus": 0.01, "mem": 1, "instances": 0}))
        .collect();
    let (code, body) = call(m, "PUT", "/v2/apps", Some(&Value::Array(defs))).await?;
    anyhow::ensure!(code == 200, "PUT /v2/apps: {code} {body}");
    until("no deployments", Duration::from_secs(120), async || {
        matches!(call(m, "GET", "/v2/deployments", None).await, Ok((200, v)) if v.as_array().is_some_and(Vec::is_empty))
    })
    .await?;
    let mut out = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let (code, body) = call(m, "GET", "/v2/apps", None).await?;
        anyhow::ensure!(
            code == 200 && body["apps"].as_array().map(Vec::len) == Some(apps),
            "GET /v2/apps: {code}"
        );
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

async fn run() -> anyhow::Result<()> {
    let agents = env_usize("MARATHON_AGENTS", 100);
    let instances = env_usize("MARATHON_INSTANCES", 1000);
    let runs = env_usize("MARATHON_RUNS", 3);
    let apps = env_usize("MARATHON_APPS", 1000);
    let mut cfg = agora_master::MasterConfig::default();
    if let Ok(ms) = std::env::var("MARATHON_ALLOCATION_MS").map(|v| v.parse::<u64>()) {
        cfg.allocation_interval = Duration::from_millis(ms?);
    }
    let interval = cfg.allocation_interval;
    cfg.group.etcd_listen = Some("127.0.0.1:0".parse()?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let master = agora_master::start(cfg, listener).await?;
    master.wait_active(Duration::from_secs(10)).await;
    let etcd = master.etcd_addr().context("no etcd API")?;
    let mut sims = Vec::new();
    for i in 0..agents {
        let attrs: Attributes = Attributes(
            [(
                "rack".to_string(),
                AttributeValue::Text(format!("r{}", i % 10)),
            )]
            .into_iter()
            .collect(),
        );
        let c = SimAgentConfig {
            resources: Resources::parse("cpus:16;mem:16384;disk:10000;ports:[31000-31099]")?,
            attributes: attrs,
            hostname: format!("sim-{i}"),
            behaviour: TaskBehaviour::RunForever,
            ..SimAgentConfig::default()
        };
        sims.push(SimAgent::start(&format!("http://{}", master.addr()), c).await);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let marathon = agora_marathon::start(
        agora_marathon::MarathonConfig {
            masters: vec![master.addr().to_string()],
            etcd: vec![etcd.to_string()],
            ..agora_marathon::MarathonConfig::default()
        },
        listener,
    )
    .await?;
    let m = marathon.addr();
    until("a Marathon leader", Duration::from_secs(30), async || {
        matches!(call(m, "GET", "/v2/leader", None).await, Ok((200, _)))
    })
    .await?;
    println!("marathon bench: {agents} simulated agents, allocation interval {interval:?}");
    let mut times = Vec::new();
    for run in 1..=runs {
        let t = deploy_once(m, instances).await?;
        println!(
            "  run {run}: {instances} instances running in {t:.2} s ({:.0}/s)",
            instances as f64 / t
        );
        times.push(t);
    }
    println!(
        "  deploy median {:.2} s over {runs} runs: {times:.2?}",
        median(&mut times.clone())
    );
    let mut lat = list_latency(m, apps).await?;
    let max = lat.iter().copied().fold(0.0, f64::max);
    println!(
        "  GET /v2/apps with {apps} apps: median {:.1} ms, max {max:.1} ms over 20",
        median(&mut lat)
    );
    marathon.shutdown().await;
    master.shutdown().await;
    drop(sims);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
