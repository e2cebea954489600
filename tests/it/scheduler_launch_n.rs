//! The `launch_n` example's logic (`BatchLauncher` / `run_batch`) against
//! simulated agents: all tasks finish, failures are reported, too-small
//! offers are declined, and offers are suppressed once everything is launched.
use std::time::Duration;

use agora_scheduler_sdk::model::{ResourceRequest, Role, TaskState};
use agora_scheduler_sdk::{BatchJob, BatchLauncher, run_batch};
use agora_tests::{TaskBehaviour, TestMaster, eventually};

use crate::scheduler_support::{agent, builder, info};

fn job(count: usize, prefix: &str) -> BatchJob {
    let mut job = BatchJob::new(count, "sleep 1", ResourceRequest::new(0.1, 32.0));
    job.id_prefix = prefix.into();
    job
}

#[tokio::test]
async fn launch_n_runs_every_task_to_finished_across_agents() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    // Room for 3 + 3 tasks: 5 need both agents or two rounds of offers.
    let finish = TaskBehaviour::RunFor(Duration::from_millis(150));
    let (_a1, _) = agent(&master, "cpus:0.3;mem:256", finish).await;
    let (_a2, _) = agent(&master, "cpus:0.3;mem:256", finish).await;
    let report = tokio::time::timeout(
        Duration::from_secs(20),
        run_batch(builder(&master, info("ln")), job(5, "ln")),
    )
    .await??;
    assert!(report.success(), "{report:?}");
    let mut ids: Vec<String> = report.finished.iter().map(ToString::to_string).collect();
    ids.sort();
    assert_eq!(ids, ["ln-1", "ln-2", "ln-3", "ln-4", "ln-5"]);
    Ok(())
}

#[tokio::test]
async fn launch_n_reports_failed_tasks() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let (_a, _) = agent(
        &master,
        "cpus:1;mem:256",
        TaskBehaviour::Fail {
            after: Duration::from_millis(100),
            code: 2,
        },
    )
    .await;
    let report = tokio::time::timeout(
        Duration::from_secs(20),
        run_batch(builder(&master, info("ln-fail")), job(3, "f")),
    )
    .await??;
    assert!(!report.success());
    assert!(report.finished.is_empty());
    assert_eq!(report.failed.len(), 3);
    assert!(
        report
            .failed
            .iter()
            .all(|(_, s, _)| *s == TaskState::Failed),
        "{report:?}"
    );
    Ok(())
}

#[tokio::test]
async fn launch_n_declines_small_offers_and_suppresses_once_all_are_launched() -> anyhow::Result<()>
{
    let master = TestMaster::start().await;
    // Too small for one task: its offers are declined.
    let (_small, _) = agent(&master, "cpus:0.05;mem:512", TaskBehaviour::RunForever).await;
    let mut launcher = BatchLauncher::new(job(2, "s"));
    let sdk = builder(&master, info("ln-suppress")).build()?;
    let driver = sdk.driver();
    let run = tokio::spawn(async move {
        let res = sdk.run(&mut launcher).await;
        (res, launcher)
    });
    let id = eventually("subscribed", Duration::from_secs(5), || async {
        driver.framework_id()
    })
    .await?;
    eventually(
        "the small offer declined",
        Duration::from_secs(5),
        || async {
            let state = master.state().await.ok()?;
            let f = state["frameworks"]
                .as_array()?
                .iter()
                .find(|f| f["id"] == id.as_str())?
                .clone();
            (f["active_filters"].as_u64()? >= 1 && f["offers"].as_array()?.is_empty()).then_some(())
        },
    )
    .await?;

    // A big enough agent arrives; both tasks launch there and run until killed below.
    let (_big, _) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    eventually(
        "suppressed after launching everything",
        Duration::from_secs(10),
        || async {
            let state = master.state().await.ok()?;
            let f = state["frameworks"]
                .as_array()?
                .iter()
                .find(|f| f["id"] == id.as_str())?
                .clone();
            (f["tasks"].as_array()?.len() == 2 && f["suppressed_roles"] == serde_json::json!(["*"]))
                .then_some(())
        },
    )
    .await?;
    assert_eq!(driver.suppressed_roles(), vec![Role::star()]);
    // Killing the tasks ends the batch, with failures reported.
    for n in 1..=2 {
        driver
            .kill(
                &agora_scheduler_sdk::model::TaskId::new_unchecked(format!("s-{n}")),
                None,
                None,
            )
            .await?;
    }
    let (res, launcher) = tokio::time::timeout(Duration::from_secs(10), run).await??;
    res?;
    assert_eq!(launcher.report().failed.len(), 2);
    assert!(
        launcher
            .report()
            .failed
            .iter()
            .all(|(_, s, _)| *s == TaskState::Killed)
    );
    Ok(())
}
