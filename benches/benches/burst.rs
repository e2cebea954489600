//! Burst throughput: simulated agents (the real agent protocol) and one
//! framework on the scheduler SDK that launches every task from one round of
//! offers; timed from the first offer to the last task RUNNING at the
//! framework. Each task makes two acknowledged updates (STARTING, RUNNING),
//! so updates/s = 2 × tasks / seconds (resent duplicates not counted).
//!
//! `cargo bench -p agora-benches --bench burst` (release). Options:
//! `BURST_AGENTS=1000 BURST_TASKS=20000,100000 BURST_RUNS=3`.
use std::time::Duration;

use agora_tests::TestMaster;
use agora_tests::burst::run_burst;

fn env_list(key: &str, default: &str) -> Vec<usize> {
    std::env::var(key)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let agents = env_list("BURST_AGENTS", "1000")[0];
    let runs = env_list("BURST_RUNS", "3")[0];
    for tasks in env_list("BURST_TASKS", "20000,100000") {
        let mut rates = Vec::new();
        for run in 0..runs {
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            let report = rt.block_on(async {
                let config = agora_master::MasterConfig {
                    agent_ping_interval: Duration::from_secs(5),
                    ..TestMaster::fast_config()
                };
                let master = TestMaster::start_with(config).await;
                run_burst(&master, agents, tasks, Duration::from_secs(600)).await
            })?;
            let secs = report.elapsed.as_secs_f64();
            let rate = 2.0 * tasks as f64 / secs;
            rates.push(rate);
            println!(
                "run {run}: {agents} agents, {tasks} tasks RUNNING in {secs:.2} s = {rate:.0} updates/s \
                 ({}; {} updates incl. resends; {:?} events dropped; lost {}; registration {:.2} s; load {})",
                report
                    .percentiles
                    .iter()
                    .map(|(p, at)| format!("{p}% at {:.2} s", at.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(", "),
                report.updates,
                report.dropped_events,
                report.bad.len(),
                report.register_elapsed.as_secs_f64(),
                load.split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{tasks} tasks: median {:.0} updates/s over {runs} runs",
            rates[rates.len() / 2]
        );
    }
    Ok(())
}
