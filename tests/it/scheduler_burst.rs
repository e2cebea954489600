//! A burst: 1,000 simulated agents and a framework on the SDK that launches
//! 20,000 tasks from one round of offers. Every task must reach RUNNING at
//! the framework and none may be lost: a framework that reads slowly is
//! held back, never disconnected and torn down.
use std::time::Duration;

use agora_tests::TestMaster;
use agora_tests::burst::run_burst;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_20000_tasks_on_1000_agents_all_run_and_none_is_lost() -> anyhow::Result<()> {
    let config = agora_master::MasterConfig {
        // 1,000 agents pinged every 100 ms would be the load, not the burst.
        agent_ping_interval: Duration::from_secs(2),
        ..TestMaster::fast_config()
    };
    let master = TestMaster::start_with(config).await;
    let (agents, tasks) = burst_size();
    let report = run_burst(&master, agents, tasks, Duration::from_secs(240)).await?;
    assert_eq!(report.running, tasks, "{report:?}");
    assert!(
        report.bad.is_empty(),
        "lost or failed: {:?}",
        &report.bad[..report.bad.len().min(5)]
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.master_running,
        Some(tasks as u64),
        "the master holds every task RUNNING"
    );
    eprintln!(
        "burst: {tasks} tasks RUNNING in {:?} ({} updates); {agents} agents registered in {:?}",
        report.elapsed, report.updates, report.register_elapsed
    );
    Ok(())
}

/// 1,000 agents and 20,000 tasks; `BURST_AGENTS`/`BURST_TASKS` shrink it
/// when looking into a failure.
fn burst_size() -> (usize, usize) {
    let get = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    (get("BURST_AGENTS", 1000), get("BURST_TASKS", 20_000))
}
