//! Master behaviours seen over raw gRPC: offer timeout, one live subscription
//! per framework, teardown, metrics.
use std::time::Duration;

use agora_proto::v1;
use agora_tests::{RawFramework, SimAgent, SimAgentConfig, TestMaster, eventually, shell_task};

type Client = agora_tests::raw_framework::SchedulerClient;

/// A raw framework that may be away for a minute without losing its tasks.
async fn subscribe(master: &TestMaster, id: &str) -> anyhow::Result<RawFramework> {
    let info = v1::FrameworkInfo {
        name: "raw".into(),
        framework_id: id.into(),
        failover_timeout_seconds: 60.0,
        ..Default::default()
    };
    RawFramework::subscribe(&master.endpoint(), info).await
}

#[tokio::test]
async fn offers_older_than_offer_timeout_are_rescinded_and_made_again() -> anyhow::Result<()> {
    let master = TestMaster::start_with(agora_master::MasterConfig {
        offer_timeout: Some(Duration::from_millis(300)),
        ..TestMaster::fast_config()
    })
    .await;
    let _agent = SimAgent::start(&master.endpoint(), SimAgentConfig::default()).await;
    let mut fw = subscribe(&master, "").await?;
    let first = fw.offer().await?;
    let rescinded = fw
        .next(|e| match e {
            v1::event::Event::Rescind(r) => Some(r.offer_id),
            _ => None,
        })
        .await?;
    assert_eq!(rescinded, first.offer_id);
    let again = fw.offer().await?;
    assert_ne!(
        again.offer_id, first.offer_id,
        "a fresh offer for the same resources"
    );
    assert_eq!(again.agent_id, first.agent_id);
    Ok(())
}

#[tokio::test]
async fn a_newer_subscription_closes_the_older_one() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut old = subscribe(&master, "").await?;
    let new = subscribe(&master, &old.id).await?;
    assert_eq!(new.id, old.id, "re-subscription keeps the framework id");
    let msg = old
        .next(|e| match e {
            v1::event::Event::Error(e) => Some(e.message),
            _ => None,
        })
        .await?;
    assert!(msg.contains("failed over"), "{msg}");
    // Calls on the old stream id are refused; on the new one accepted.
    let err = old
        .client
        .revive(v1::ReviveRequest {
            header: old.header(),
            roles: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let mut c = new.client.clone();
    c.revive(v1::ReviveRequest {
        header: new.header(),
        roles: vec![],
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn teardown_kills_tasks_and_the_framework_cannot_return() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let agent = SimAgent::start(&master.endpoint(), SimAgentConfig::default()).await;
    let mut fw = subscribe(&master, "").await?;
    let offer = fw.offer().await?;
    let task = shell_task(
        "t1",
        "cpus:1;mem:128",
        "sleep 1000",
        &[("sim.behaviour", "forever")],
    )?;
    fw.launch(&offer.offer_id, vec![task]).await?;
    // Acknowledge STARTING so the agent sends RUNNING (one update in flight per task).
    fw.until_state(v1::TaskState::TaskRunning).await?;
    let metrics = master.metrics().await?;
    assert!(
        metrics.contains("agora_master_tasks{state=\"TASK_RUNNING\"} 1"),
        "{metrics}"
    );
    // The capacity partition's allocated part holds the task's cpus:1.
    let allocated: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("agora_capacity_cpus{") && l.contains("state=\"allocated\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(allocated, 1.0, "{metrics}");
    // At least the offer the task was launched from (the rest of the agent
    // may have been offered again since).
    let offers: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("agora_master_offers_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(offers >= 1.0, "{metrics}");
    let share: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("agora_master_role_dominant_share{role=\"*\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0);
    assert!(
        (0.25..=1.0).contains(&share),
        "role * holds at least the task's cpus:1 of 4: {share}"
    );

    let header = fw.header();
    fw.client.teardown(v1::TeardownRequest { header }).await?;
    // The master acknowledges the KILLED update for the removed framework,
    // so the agent may already have forgotten the task: no live task is left.
    eventually(
        "the agent's task is killed",
        Duration::from_secs(10),
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
    eventually(
        "the master forgets the task",
        Duration::from_secs(10),
        || async {
            let st = master.state().await.ok()?;
            (st["frameworks"].as_array()?.is_empty() && st["agents"][0]["task_count"] == 0)
                .then_some(())
        },
    )
    .await?;
    let mut client = Client::connect(master.endpoint()).await?;
    let info = v1::FrameworkInfo {
        name: "raw".into(),
        framework_id: fw.id.clone(),
        ..Default::default()
    };
    let err = client
        .subscribe(v1::SubscribeRequest {
            framework_info: Some(info),
            suppressed_roles: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    Ok(())
}

#[tokio::test]
async fn losing_an_agent_sends_failure_to_frameworks() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let agent = SimAgent::start(&master.endpoint(), SimAgentConfig::default()).await;
    let agent_id = agent.agent_id().await;
    let mut fw = subscribe(&master, "").await?;
    fw.offer().await?;
    agent.partition().await;
    let lost = fw
        .next(|e| match e {
            v1::event::Event::Failure(f) => Some(f.agent_id),
            _ => None,
        })
        .await?;
    assert_eq!(lost, agent_id.to_string());
    let st = master.state().await?;
    assert_eq!(st["unreachable_agents"][0]["id"], agent_id.to_string());
    Ok(())
}

#[tokio::test]
async fn unreachable_agents_are_forgotten_after_the_registry_age_limit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut master = TestMaster::start_with(agora_master::MasterConfig {
        registry_max_agent_age: Duration::from_millis(500),
        data_dir: Some(dir.path().to_path_buf()),
        ..TestMaster::fast_config()
    })
    .await;
    let agent = SimAgent::start(&master.endpoint(), SimAgentConfig::default()).await;
    let id = agent.agent_id().await.to_string();
    agent.partition().await;
    eventually(
        "the agent is unreachable",
        Duration::from_secs(10),
        || async {
            let st = master.state().await.ok()?;
            (st["unreachable_agents"][0]["id"] == id.as_str()).then_some(())
        },
    )
    .await?;
    eventually(
        "the agent is forgotten",
        Duration::from_secs(10),
        || async {
            let st = master.state().await.ok()?;
            (st["unreachable_agents"].as_array()?.is_empty() && st["agents"].as_array()?.is_empty())
                .then_some(())
        },
    )
    .await?;
    // The replicated registry forgot it too: a restarted master (same
    // Raft log) does not wait for it.
    agent.stop().await;
    master.restart().await?;
    let st = master.state().await?;
    assert!(
        !st.to_string().contains(&id),
        "the restarted master remembers the forgotten agent: {st}"
    );
    Ok(())
}
