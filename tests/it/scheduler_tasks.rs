//! Tasks through the scheduler SDK: launch and the status-update stream with
//! acknowledgements (automatic and manual), several tasks from one offer,
//! failures and KILL.
use std::collections::BTreeSet;
use std::time::Duration;

use agora_scheduler_sdk::OfferResources;
use agora_scheduler_sdk::model::{
    ResourceRequest, StatusSource, TaskId, TaskState, TaskStatusReason,
};
use agora_tests::{TaskBehaviour, TestMaster, eventually};

use crate::scheduler_support::{
    Ev, Fw, agent, builder, info, pa_info, small_task, state_framework, task,
};

#[tokio::test]
async fn launch_runs_through_staging_starting_running_finished_with_acks() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("lifecycle")).await;
    let (agent, agent_id) = agent(
        &master,
        "cpus:1;mem:256",
        TaskBehaviour::RunFor(Duration::from_millis(400)),
    )
    .await;
    let offer = fw.offer_on(&agent_id).await;
    fw.driver
        .launch(&offer, vec![small_task("t1", &offer)])
        .await?;

    // STAGING is the master's state until the agent reports; /state shows it
    // (or the task has already moved on, on a fast machine).
    let f = state_framework(&master, &fw.id).await.expect("framework");
    let first = f["tasks"][0]["state"]
        .as_str()
        .unwrap_or("gone")
        .to_string();
    assert!(
        ["TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"].contains(&first.as_str()),
        "{first}"
    );

    let mut states = Vec::new();
    while states.last() != Some(&TaskState::Finished) {
        let st = fw.update("t1").await;
        assert!(st.uuid.is_some(), "agent updates carry a uuid");
        assert_eq!(st.agent_id.as_ref(), Some(&agent_id));
        assert_eq!(st.source, StatusSource::Executor);
        states.push(st.state);
    }
    assert_eq!(
        states,
        [TaskState::Starting, TaskState::Running, TaskState::Finished]
    );
    // The driver acknowledged every update: the agent forgets the task.
    eventually(
        "agent garbage-collects the acknowledged task",
        Duration::from_secs(5),
        || async { agent.tasks().await.is_empty().then_some(()) },
    )
    .await?;
    let f = state_framework(&master, &fw.id).await.expect("framework");
    assert_eq!(f["completed_tasks"][0]["id"], "t1");
    assert_eq!(f["completed_tasks"][0]["state"], "TASK_FINISHED");
    // No duplicates arrive once acknowledged (the agent retries every 300 ms).
    let dup = fw
        .try_expect(Duration::from_millis(700), |e| {
            matches!(e, Ev::Update(_)).then_some(())
        })
        .await;
    assert!(dup.is_none(), "an acknowledged update was redelivered");
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn without_auto_ack_updates_are_redelivered_until_acknowledged() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start_with(builder(&master, info("manual-ack")).auto_acknowledge(false)).await;
    let (agent, agent_id) = agent(
        &master,
        "cpus:1;mem:256",
        TaskBehaviour::RunFor(Duration::from_millis(100)),
    )
    .await;
    let offer = fw.offer_on(&agent_id).await;
    fw.driver
        .launch(&offer, vec![small_task("t1", &offer)])
        .await?;

    // Updates form an ordered stream per task: STARTING is resent until it
    // is acknowledged, and RUNNING is not sent before that.
    let first = fw.update("t1").await;
    assert_eq!(first.state, TaskState::Starting);
    let again = fw.update("t1").await;
    assert_eq!(
        (again.state, again.uuid),
        (TaskState::Starting, first.uuid),
        "the same update, redelivered"
    );
    loop {
        let st = fw.update("t1").await;
        fw.driver.acknowledge(&st).await?;
        if st.state == TaskState::Finished {
            break;
        }
    }
    // Drain duplicates that crossed with the acknowledgements, then check
    // the stream ended at FINISHED and the agent let go of the task.
    eventually(
        "agent garbage-collects the task",
        Duration::from_secs(5),
        || async { agent.tasks().await.is_empty().then_some(()) },
    )
    .await?;
    let mut seen = BTreeSet::new();
    while let Some(st) = fw
        .try_expect(Duration::from_millis(700), |e| {
            if let Ev::Update(s) = e {
                Some(s.clone())
            } else {
                None
            }
        })
        .await
    {
        seen.insert(st.state);
    }
    assert!(
        seen.iter()
            .all(|s| [TaskState::Starting, TaskState::Running, TaskState::Finished].contains(s))
    );
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn several_tasks_carved_from_one_offer_get_disjoint_ports() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("carve")).await;
    let (_agent, agent_id) = agent(
        &master,
        "cpus:1;mem:512;ports:[31000-31003]",
        TaskBehaviour::RunForever,
    )
    .await;
    let offer = fw.offer_on(&agent_id).await;
    let mut res = OfferResources::new(&offer);
    let req = ResourceRequest::new(0.25, 100.0).ports(1);
    let tasks: Vec<_> = (1..=4)
        .map(|i| task(&format!("t{i}"), &offer, &mut res, req))
        .collect();
    assert!(res.take(&req).is_none(), "cpus are used up");
    let ports: BTreeSet<String> = tasks
        .iter()
        .map(|t| t.resources.ports().to_string())
        .collect();
    assert_eq!(ports.len(), 4, "{ports:?}");
    // refuse 0: the remainder may be offered straight back (checked below).
    fw.driver
        .accept(vec![offer.id.clone()], tasks, Some(Duration::ZERO))
        .await?;
    for i in 1..=4 {
        fw.state(&format!("t{i}"), TaskState::Running).await;
    }
    let f = state_framework(&master, &fw.id).await.expect("framework");
    assert_eq!(f["used_resources"]["cpus"], 1.0);
    assert_eq!(f["used_resources"]["mem"], 400.0);
    // What is left (112 MB, no cpus) is offered again.
    let rest = fw.offer_on(&agent_id).await;
    assert_eq!(rest.resources.mem().as_f64(), 112.0);
    assert!(rest.resources.cpus().is_zero());
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_failing_task_reports_task_failed_with_its_exit_code() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("fail")).await;
    let behaviour = TaskBehaviour::Fail {
        after: Duration::from_millis(150),
        code: 3,
    };
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", behaviour).await;
    let offer = fw.offer_on(&agent_id).await;
    fw.driver
        .launch(&offer, vec![small_task("t1", &offer)])
        .await?;
    let st = fw.state("t1", TaskState::Failed).await;
    assert_eq!(st.exit_code, Some(3));
    // Its resources are free again: the whole agent is offered.
    let o = fw.offer_on(&agent_id).await;
    assert_eq!(o.resources.cpus().as_f64(), 1.0);
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn kill_ends_a_running_task_and_unknown_tasks_are_reported() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("kill")).await;
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;
    fw.driver
        .launch(&offer, vec![small_task("t1", &offer)])
        .await?;
    fw.state("t1", TaskState::Running).await;
    fw.driver
        .kill(
            &TaskId::new_unchecked("t1"),
            Some(&agent_id),
            Some(Duration::from_millis(100)),
        )
        .await?;
    fw.state("t1", TaskState::Killed).await;
    let f = state_framework(&master, &fw.id).await.expect("framework");
    assert_eq!(f["completed_tasks"][0]["state"], "TASK_KILLED");

    // Killing a task the master never heard of: TASK_LOST (not partition-aware).
    fw.driver
        .kill(&TaskId::new_unchecked("ghost"), None, None)
        .await?;
    let st = fw.update("ghost").await;
    assert_eq!(
        (st.state, st.reason),
        (TaskState::Lost, TaskStatusReason::TaskUnknown)
    );
    assert!(
        st.uuid.is_none(),
        "master-generated updates need no acknowledgement"
    );
    fw.stop().await;

    // ... and TASK_UNKNOWN for a partition-aware framework.
    let mut pa = Fw::start(&master, pa_info("kill-pa")).await;
    pa.driver
        .kill(&TaskId::new_unchecked("ghost"), None, None)
        .await?;
    assert_eq!(pa.update("ghost").await.state, TaskState::Unknown);
    pa.stop().await;
    Ok(())
}
