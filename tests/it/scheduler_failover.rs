//! Framework failover through the scheduler SDK: a new driver taking over
//! within failover_timeout keeps the tasks; after it they are killed and the
//! framework is gone; a newer subscription ends the older one; the driver
//! re-subscribes by itself after a master restart.
use std::time::Duration;

use agora_scheduler_sdk::SdkError;
use agora_scheduler_sdk::model::{FrameworkInfo, Role, TaskId, TaskState, TaskStatusReason};
use agora_tests::{TaskBehaviour, TestMaster, eventually};

use crate::scheduler_support::{Ev, Fw, agent, builder, info, small_task, state_framework};

fn with_failover(name: &str, timeout: Duration) -> FrameworkInfo {
    let mut i = info(name);
    i.failover_timeout = timeout;
    i
}

#[tokio::test]
async fn a_new_scheduler_within_failover_timeout_keeps_the_tasks() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let framework = with_failover("failover", Duration::from_secs(30));
    let mut first = Fw::start(&master, framework.clone()).await;
    let (agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = first.offer_on(&agent_id).await;
    first
        .driver
        .launch(&offer, vec![small_task("t1", &offer)])
        .await?;
    first.state("t1", TaskState::Running).await;
    let id = first.id.clone();
    first.stop().await;

    let f = eventually(
        "framework marked disconnected",
        Duration::from_secs(5),
        || async {
            state_framework(&master, &id)
                .await
                .filter(|f| f["connected"] == false)
        },
    )
    .await?;
    assert_eq!(
        f["tasks"][0]["state"], "TASK_RUNNING",
        "tasks survive the disconnection"
    );

    // A new scheduler process takes over with the saved framework id.
    let mut second = Fw::start(
        &master,
        FrameworkInfo {
            id: Some(id.clone()),
            ..framework
        },
    )
    .await;
    assert_eq!(second.id, id);
    second.driver.reconcile(vec![]).await?;
    let st = second.state("t1", TaskState::Running).await;
    assert_eq!(st.reason, TaskStatusReason::Reconciliation);
    assert_eq!(
        agent.tasks().await,
        vec![(TaskId::new_unchecked("t1"), TaskState::Running)]
    );
    let f = state_framework(&master, &id).await.expect("framework");
    assert_eq!(f["connected"], true);
    second.stop().await;
    Ok(())
}

#[tokio::test]
async fn after_failover_timeout_tasks_are_killed_and_the_framework_cannot_return()
-> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let framework = with_failover("expire", Duration::from_millis(300));
    let mut first = Fw::start(&master, framework.clone()).await;
    let (agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = first.offer_on(&agent_id).await;
    first
        .driver
        .launch(&offer, vec![small_task("t1", &offer)])
        .await?;
    first.state("t1", TaskState::Running).await;
    let id = first.id.clone();
    first.stop().await;

    // The task is killed on the agent (and, its framework gone, the master
    // acknowledges the update so the agent forgets it).
    eventually("the task is killed", Duration::from_secs(5), || async {
        let tasks = agent.tasks().await;
        tasks
            .iter()
            .all(|(_, s)| *s == TaskState::Killed)
            .then_some(())
    })
    .await?;
    eventually(
        "framework removed from /state",
        Duration::from_secs(5),
        || async { state_framework(&master, &id).await.is_none().then_some(()) },
    )
    .await?;

    // Coming back with the old id is refused: the driver reports it as fatal.
    let mut late = Fw::spawn(builder(
        &master,
        FrameworkInfo {
            id: Some(id),
            ..framework
        },
    ));
    let err = late
        .finished()
        .await
        .expect_err("a removed framework cannot re-subscribe");
    assert!(
        matches!(err, SdkError::Fatal(ref m) if m.contains("removed")),
        "{err:?}"
    );
    late.expect("error callback", |e| {
        matches!(e, Ev::Error(m) if m.contains("removed")).then_some(())
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn a_newer_subscription_of_the_same_framework_ends_the_older_one() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let framework = with_failover("twice", Duration::from_secs(30));
    let mut old = Fw::start(&master, framework.clone()).await;
    let new = Fw::start(
        &master,
        FrameworkInfo {
            id: Some(old.id.clone()),
            ..framework
        },
    )
    .await;
    let err = old
        .finished()
        .await
        .expect_err("the old driver is told to stop");
    assert!(
        matches!(err, SdkError::Fatal(ref m) if m.contains("failed over")),
        "{err:?}"
    );
    // The new one is the subscription of record.
    new.driver.revive(vec![]).await?;
    let f = state_framework(&master, &new.id).await.expect("framework");
    assert_eq!(f["connected"], true);
    new.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_driver_resubscribes_with_the_same_id_after_a_master_restart() -> anyhow::Result<()> {
    let mut master = TestMaster::start().await;
    let mut fw = Fw::start(&master, with_failover("survivor", Duration::from_secs(60))).await;
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;
    fw.driver
        .launch(&offer, vec![small_task("t1", &offer)])
        .await?;
    fw.state("t1", TaskState::Running).await;

    master.restart().await?;
    fw.expect("disconnected", |e| {
        matches!(e, Ev::Disconnected).then_some(())
    })
    .await;
    let id = fw
        .expect("re-subscribed", |e| match e {
            Ev::Subscribed(id) => Some(id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(id, fw.id, "same framework id after the master restart");
    assert!(fw.driver.is_subscribed());
    // The new master learns the task from the re-registering agent;
    // until then reconciliation may say TASK_UNKNOWN, so ask until it knows.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "t1 never reconciled as running"
        );
        fw.driver
            .reconcile(vec![(TaskId::new_unchecked("t1"), None)])
            .await?;
        let running = fw
            .try_expect(Duration::from_millis(300), |e| match e {
                Ev::Update(s) if s.task_id.as_str() == "t1" && s.state == TaskState::Running => {
                    Some(())
                }
                _ => None,
            })
            .await;
        if running.is_some() {
            break;
        }
    }
    // Offers flow again for what is left on the agent.
    let rest = fw.offer_on(&agent_id).await;
    assert_eq!(rest.resources.cpus().as_f64(), 0.9);
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn teardown_kills_the_tasks_removes_the_framework_and_ends_run_cleanly() -> anyhow::Result<()>
{
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, with_failover("teardown", Duration::from_secs(60))).await;
    let (agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;
    fw.driver
        .launch(&offer, vec![small_task("t1", &offer)])
        .await?;
    fw.state("t1", TaskState::Running).await;
    let id = fw.id.clone();

    fw.driver.teardown().await?;
    fw.finished().await?;
    let error = fw
        .try_expect(Duration::from_millis(200), |e| {
            matches!(e, Ev::Error(_)).then_some(())
        })
        .await;
    assert!(
        error.is_none(),
        "the master's goodbye to TEARDOWN reached error()"
    );
    eventually("the task is killed", Duration::from_secs(5), || async {
        agent
            .tasks()
            .await
            .iter()
            .all(|(_, s)| *s == TaskState::Killed)
            .then_some(())
    })
    .await?;
    eventually(
        "framework removed from /state",
        Duration::from_secs(5),
        || async { state_framework(&master, &id).await.is_none().then_some(()) },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn update_framework_changes_the_framework_in_place() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("before")).await;
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;
    assert!(offer.role.is_star());

    let mut changed = fw.driver.framework_info();
    changed.name = "after".into();
    changed.failover_timeout = Duration::from_secs(42);
    changed.roles = vec![Role::parse("web")?];
    fw.driver.update_framework(changed).await?;
    // Offers for the dropped role are rescinded; new ones come for the new role.
    let rescinded = fw
        .expect("RESCIND of the '*' offer", |e| match e {
            Ev::Rescinded(id) => Some(id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(rescinded, offer.id);
    let web = fw.offer_on(&agent_id).await;
    assert_eq!(web.role.as_str(), "web");
    let f = state_framework(&master, &fw.id).await.expect("framework");
    assert_eq!(f["name"], "after");
    assert_eq!(f["failover_timeout"], 42.0);
    assert_eq!(f["roles"], serde_json::json!(["web"]));
    assert_eq!(fw.driver.framework_info().roles, vec![Role::parse("web")?]);
    fw.stop().await;
    Ok(())
}

/// The master's connection goes silent without closing (a black hole): the
/// driver notices the missing heartbeats, moves to the next master address
/// and re-subscribes with the same framework id.
#[tokio::test]
async fn the_driver_resubscribes_when_the_master_goes_silent() -> anyhow::Result<()> {
    let master = TestMaster::start_with(agora_master::MasterConfig {
        framework_heartbeat_interval: Duration::from_millis(200),
        ..TestMaster::fast_config()
    })
    .await;
    let proxy = agora_tests::TcpProxy::start(master.addr).await?;
    let masters = [proxy.addr.to_string(), master.host_port()];
    let b = agora_scheduler_sdk::SchedulerDriver::builder(
        masters,
        with_failover("silent", Duration::from_secs(30)),
    )
    .backoff(Duration::from_millis(20), Duration::from_millis(200))
    .call_timeout(Duration::from_secs(2));
    let mut fw = Fw::start_with(b).await;
    let id = fw.id.clone();
    proxy.blackhole();
    fw.expect("disconnected after missed heartbeats", |e| {
        matches!(e, Ev::Disconnected).then_some(())
    })
    .await;
    let again = fw
        .expect("SUBSCRIBED again", |e| match e {
            Ev::Subscribed(i) => Some(i.clone()),
            _ => None,
        })
        .await;
    assert_eq!(again, id, "the same framework, failed over");
    let f = eventually(
        "the master sees the framework connected",
        Duration::from_secs(5),
        || async {
            state_framework(&master, &id)
                .await
                .filter(|f| f["connected"] == true)
        },
    )
    .await?;
    assert_eq!(f["id"], id.to_string());
    fw.stop().await;
    Ok(())
}
