//! Agent loss as a framework sees it through the SDK: missed pings make the
//! agent unreachable; partition-aware frameworks get TASK_UNREACHABLE and the
//! task back when the agent re-registers, others get TASK_LOST and the task
//! is killed when the agent returns.
use std::time::{Duration, Instant};

use agora_scheduler_sdk::model::{TaskState, TaskStatusReason};
use agora_tests::{TaskBehaviour, TestMaster, eventually};

use crate::scheduler_support::{Fw, agent, info, pa_info, small_task};

async fn agent_status(master: &TestMaster) -> Option<String> {
    let state = master.state().await.ok()?;
    Some(state["agents"][0]["status"].as_str()?.to_string())
}

#[tokio::test]
async fn partition_aware_framework_sees_unreachable_then_running_after_reregistration()
-> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, pa_info("partition-aware")).await;
    let (agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;
    fw.driver
        .accept(
            vec![offer.id.clone()],
            vec![small_task("t1", &offer)],
            Some(Duration::ZERO),
        )
        .await?;
    fw.state("t1", TaskState::Running).await;
    // The remainder comes straight back (refuse 0); leave it outstanding.
    fw.offer_on(&agent_id).await;

    let t0 = Instant::now();
    agent.partition().await;
    let st = fw.state("t1", TaskState::Unreachable).await;
    // 5 missed pings at 100 ms.
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "unreachable after only {:?}",
        t0.elapsed()
    );
    assert_eq!(st.reason, TaskStatusReason::AgentDisconnected);
    assert_eq!(agent_status(&master).await.as_deref(), Some("unreachable"));
    assert!(
        fw.offers_within(Duration::from_millis(300))
            .await
            .is_empty(),
        "an unreachable agent is not offered"
    );

    agent.heal().await;
    let back = fw.state("t1", TaskState::Running).await;
    assert_eq!(back.agent_id.as_ref(), Some(&agent_id));
    eventually("agent connected again", Duration::from_secs(5), || async {
        (agent_status(&master).await.as_deref() == Some("connected")).then_some(())
    })
    .await?;
    // The rest of the agent is offered again.
    let rest = fw.offer_on(&agent_id).await;
    assert_eq!(rest.resources.cpus().as_f64(), 0.9);
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn other_frameworks_see_task_lost_and_the_task_is_killed_when_the_agent_returns()
-> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("not-partition-aware")).await;
    let (agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;
    fw.driver
        .launch(&offer, vec![small_task("t1", &offer)])
        .await?;
    fw.state("t1", TaskState::Running).await;

    agent.partition().await;
    let lost = fw.state("t1", TaskState::Lost).await;
    assert_eq!(lost.reason, TaskStatusReason::AgentDisconnected);
    assert!(
        lost.uuid.is_none(),
        "master-generated TASK_LOST is not acknowledged"
    );

    // Told the task was lost, the framework must not see it come back: the
    // master kills it when the agent re-registers.
    agent.heal().await;
    fw.state("t1", TaskState::Killed).await;
    eventually(
        "the task is gone from the agent",
        Duration::from_secs(5),
        || async {
            agent
                .tasks()
                .await
                .iter()
                .all(|(_, s)| s.is_terminal())
                .then_some(())
        },
    )
    .await?;
    // The whole agent is free and offered again.
    let whole = fw.offer_on(&agent_id).await;
    assert_eq!(whole.resources.cpus().as_f64(), 1.0);
    fw.stop().await;
    Ok(())
}
