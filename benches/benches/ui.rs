//! The web pages' server time with many agents: a real master with
//! `UI_AGENTS` simulated agents (rack attributes, some tasks' worth of
//! allocation), then `UI_GETS` GETs of each page over a real socket,
//! `UI_RUNS` runs. The budget: a page with 1,000 agents renders on
//! the server in under 200 ms. The time is request to last byte on
//! loopback (copying the snapshot out of the loop, the capacity model,
//! rendering, sending), so it bounds the server's share from above.
//!
//! `cargo bench -p agora-benches --bench ui`; defaults 1000 agents, 20
//! GETs, 5 runs.
use std::time::{Duration, Instant};

use agora_model::{AttributeValue, Attributes, Resources};
use agora_tests::{SimAgent, SimAgentConfig, TestMaster, http_request};

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const PAGES: [&str; 4] = [
    "/ui",
    "/ui/agents",
    "/ui/agents?sort=cpus.free&order=desc",
    "/ui/fit?cpus=1&mem=512&constraint=rack:GROUP_BY",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let agents = env_usize("UI_AGENTS", 1000);
    let gets = env_usize("UI_GETS", 20);
    let runs = env_usize("UI_RUNS", 5);
    let master = TestMaster::start().await;
    let mut sims = Vec::with_capacity(agents);
    for i in 0..agents {
        let c = SimAgentConfig {
            resources: Resources::parse("cpus:16;mem:65536;disk:100000;ports:[31000-32000]")?,
            attributes: Attributes(
                [
                    (
                        "rack".to_string(),
                        AttributeValue::Text(format!("r{}", i % 40)),
                    ),
                    (
                        "zone".to_string(),
                        AttributeValue::Text(format!("z{}", i % 3)),
                    ),
                ]
                .into_iter()
                .collect(),
            ),
            hostname: format!("bench-{i:05}"),
            ..SimAgentConfig::default()
        };
        sims.push(SimAgent::start(&master.endpoint(), c).await);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, _, body) = http_request(master.addr, "GET", "/api/v1/capacity", None).await?;
        let v: serde_json::Value = serde_json::from_str(&body)?;
        if v["agents"].as_array().map(Vec::len) == Some(agents) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "agents did not all register");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("agents={agents} gets={gets} runs={runs}");
    for page in PAGES {
        let mut medians = Vec::new();
        let mut bytes = 0;
        for _ in 0..runs {
            let mut times = Vec::with_capacity(gets);
            for _ in 0..gets {
                let t = Instant::now();
                let (code, _, body) = http_request(master.addr, "GET", page, None).await?;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                anyhow::ensure!(code == 200, "{page}: HTTP {code}");
                bytes = body.len();
            }
            medians.push(median(times));
        }
        let shown: Vec<String> = medians.iter().map(|m| format!("{m:.1}")).collect();
        println!(
            "{page}: median of run medians {:.1} ms (runs: {} ms), {} KB",
            median(medians.clone()),
            shown.join(", "),
            bytes / 1024
        );
    }
    Ok(())
}
