//! A group of three masters in one process: the leader crashes while a
//! simulated agent runs a framework's tasks. The agent re-registers with
//! the new leader (following the standbys' redirects), the framework
//! re-subscribes with its id, the tasks reappear RUNNING and untouched,
//! and offers flow again. Standbys redirect HTTP and refuse with a hint.
use std::time::{Duration, Instant};

use agora_scheduler_sdk::SchedulerDriver;
use agora_scheduler_sdk::model::{Resources, TaskState};
use agora_tests::{SimAgent, SimAgentConfig, TaskBehaviour, TestGroup, TestMaster, eventually};

use crate::scheduler_support::{Ev, Fw, info, small_task};

const SETTLE: Duration = Duration::from_secs(20);

async fn group() -> anyhow::Result<TestGroup> {
    TestGroup::start(3, TestMaster::fast_config()).await
}

#[tokio::test]
async fn agents_and_frameworks_follow_a_leader_crash_and_tasks_survive() -> anyhow::Result<()> {
    let mut group = group().await?;
    let leader = group.leader(SETTLE).await?;
    let config = SimAgentConfig {
        resources: Resources::parse("cpus:2;mem:1024")?,
        behaviour: TaskBehaviour::RunForever,
        ..Default::default()
    };
    let agent = SimAgent::start(&group.addresses(), config).await;
    let agent_id = agent.agent_id().await;
    let mut framework = info("ha");
    framework.failover_timeout = Duration::from_secs(60);
    let masters: Vec<String> = group.masters.values().map(TestMaster::host_port).collect();
    let builder = SchedulerDriver::builder(masters, framework)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .call_timeout(Duration::from_secs(5));
    let mut fw = Fw::start_with(builder).await;
    let id = fw.id.clone();
    let offer = fw.offer_on(&agent_id).await;
    let tasks = vec![small_task("a", &offer), small_task("b", &offer)];
    fw.driver.launch(&offer, tasks).await?;
    fw.state("a", TaskState::Running).await;
    fw.state("b", TaskState::Running).await;

    let crashed_at = Instant::now();
    if let Some(master) = group.masters.get_mut(&leader) {
        master.crash();
    }
    let new_leader = group.leader(SETTLE).await?;
    let elected = crashed_at.elapsed();
    assert_ne!(new_leader, leader);
    let again = fw
        .expect("SUBSCRIBED at the new leader", |e| match e {
            Ev::Subscribed(i) => Some(i.clone()),
            _ => None,
        })
        .await;
    assert_eq!(again, id, "the same framework, failed over");
    let resubscribed = crashed_at.elapsed();
    // Offers flow again: the agent is back at the new leader.
    fw.offer_on(&agent_id).await;
    let offers_again = crashed_at.elapsed();
    let master = &group.masters[&new_leader];
    let state = eventually("the agent's tasks at the new leader", SETTLE, || async {
        let st = master.state().await.ok()?;
        let agent = st["agents"].as_array()?.first()?.clone();
        let fw = st["frameworks"].as_array()?.first()?.clone();
        let running = fw["tasks"]
            .as_array()?
            .iter()
            .filter(|t| t["state"] == "TASK_RUNNING")
            .count();
        (agent["status"] == "connected" && running == 2).then_some(st)
    })
    .await?;
    assert_eq!(state["frameworks"][0]["id"], id.to_string());
    assert_eq!(state["replication"]["leader_id"], new_leader);
    let sim_tasks = agent.tasks().await;
    assert!(
        sim_tasks.iter().all(|(_, s)| *s == TaskState::Running) && sim_tasks.len() == 2,
        "the agent's tasks were untouched: {sim_tasks:?}"
    );
    eprintln!(
        "leader crash to: a new active leader {elected:?}, the framework re-subscribed {resubscribed:?}, offers flowing again {offers_again:?}"
    );
    fw.stop().await;
    agent.stop().await;
    Ok(())
}

#[tokio::test]
async fn standbys_redirect_http_and_refuse_calls_with_the_leaders_address() -> anyhow::Result<()> {
    let group = group().await?;
    let leader = group.leader(SETTLE).await?;
    let leader_addr = group.masters[&leader].host_port();
    let standby = group
        .masters
        .iter()
        .find(|(id, _)| **id != leader)
        .map(|(_, m)| m);
    let Some(standby) = standby else {
        anyhow::bail!("no standby");
    };
    let (code, body) = eventually("a standby that knows the leader", SETTLE, || async {
        let (code, body) = agora_tests::http_get(standby.addr, "/state").await.ok()?;
        (code == 307).then_some((code, body))
    })
    .await?;
    assert_eq!(code, 307);
    assert!(body.contains(&leader_addr), "{body}");
    let (code, body) = agora_tests::http_get(standby.addr, "/members").await?;
    assert_eq!(code, 200, "every member lists the group");
    let members: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(members["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(members["leader"], leader_addr.as_str());
    let (code, metrics) = agora_tests::http_get(standby.addr, "/metrics").await?;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("agora_master_raft_is_leader 0"),
        "{metrics}"
    );
    // The Scheduler API: UNAVAILABLE with the leader in the metadata.
    let mut client =
        agora_proto::v1::scheduler_client::SchedulerClient::connect(standby.endpoint()).await?;
    let request = agora_proto::v1::SubscribeRequest {
        framework_info: Some(agora_proto::convert::framework_to_wire(&info("redirected"))),
        ..Default::default()
    };
    let Err(status) = client.subscribe(request).await else {
        anyhow::bail!("a standby accepted a subscription");
    };
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(agora_proto::leader_hint(&status), Some(leader_addr));
    Ok(())
}

/// A leader stopped on purpose (SIGTERM, a rolling restart) hands
/// leadership to a follower before it goes: another member leads while the
/// old one is still stopping, and nobody waits out an election timeout
/// (10-20 ticks without a heartbeat, which the old leader sends until its
/// replica stops at the end of its shutdown) as after a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_leader_hands_leadership_to_a_follower() -> anyhow::Result<()> {
    let mut group = group().await?;
    let old = group.leader(SETTLE).await?;
    let term_before = leader_term(&group, old).await?;
    let mut stopping = group.masters.remove(&old).expect("the leader is a member");
    // An election could not even begin within this bound of the stop.
    let election_floor = TestMaster::fast_config().group.tick * 10;
    let started = Instant::now();
    let (_, new) = tokio::join!(stopping.stop(), async {
        let new = group.leader(election_floor).await;
        (new, started.elapsed())
    });
    let (new, took) = (new.0?, new.1);
    assert_ne!(new, old);
    assert!(took < election_floor, "a follower led after {took:?}");
    assert_eq!(leader_term(&group, new).await?, term_before + 1);
    Ok(())
}

/// The Raft term member `id` reports on `/state`.
async fn leader_term(group: &TestGroup, id: u64) -> anyhow::Result<u64> {
    let state = group.masters[&id].state().await?;
    state["replication"]["term"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no replication.term in /state: {state}"))
}
