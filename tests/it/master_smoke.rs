//! End-to-end smoke test of the master over raw gRPC: a simulated agent, a
//! framework subscribing, an offer, a launch, the task's updates with
//! acknowledgements, and the operator endpoints.
use std::time::Duration;

use agora_proto::v1;
use agora_tests::{SimAgent, SimAgentConfig, TaskBehaviour, TestMaster, eventually};
use tokio_stream::StreamExt;

fn update_state(ev: &v1::Event) -> Option<(String, i32, Vec<u8>)> {
    match &ev.event {
        Some(v1::event::Event::Update(u)) => u.status.as_ref().map(|s| (s.task_id.clone(), s.state, s.uuid.clone())),
        _ => None,
    }
}

#[tokio::test]
async fn offer_launch_finish_with_acks_and_operator_endpoints() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let agent = SimAgent::start(
        &master.endpoint(),
        SimAgentConfig { behaviour: TaskBehaviour::RunFor(Duration::from_millis(200)), ..Default::default() },
    )
    .await;
    let agent_id = agent.agent_id().await;
    let mut client = v1::scheduler_client::SchedulerClient::connect(master.endpoint()).await?;
    let info = v1::FrameworkInfo { name: "smoke".into(), ..Default::default() };
    let mut events = client
        .subscribe(v1::SubscribeRequest { framework_info: Some(info), suppressed_roles: vec![] })
        .await?
        .into_inner();
    let (fw, stream_id) = match events.next().await {
        Some(Ok(v1::Event { event: Some(v1::event::Event::Subscribed(s)) })) => (s.framework_id, s.stream_id),
        other => anyhow::bail!("expected SUBSCRIBED first, got {other:?}"),
    };
    let header = || Some(v1::CallHeader { framework_id: fw.clone(), stream_id: stream_id.clone() });
    let offer = loop {
        match events.next().await {
            Some(Ok(v1::Event { event: Some(v1::event::Event::Offers(o)) })) => break o.offers[0].clone(),
            Some(Ok(_)) => continue,
            other => anyhow::bail!("stream ended: {other:?}"),
        }
    };
    assert_eq!(offer.agent_id, agent_id.to_string());
    let res = agora_model::Resources::parse("cpus:1;mem:128")?;
    let task = v1::TaskInfo {
        task_id: "t1".into(),
        name: "t1".into(),
        resources: agora_proto::convert::resources_to_wire(&res),
        command: Some(v1::CommandInfo { shell: true, value: "true".into(), ..Default::default() }),
        ..Default::default()
    };
    client
        .accept(v1::AcceptRequest {
            header: header(),
            offer_ids: vec![offer.offer_id.clone()],
            operations: vec![v1::Operation {
                operation: Some(v1::operation::Operation::Launch(v1::operation::Launch { task_infos: vec![task] })),
            }],
            filters: None,
        })
        .await?;
    let mut seen = Vec::new();
    while !seen.contains(&(v1::TaskState::TaskFinished as i32)) {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next()).await?;
        let Some(Ok(ev)) = ev else { anyhow::bail!("stream ended") };
        if let Some((task, state, uuid)) = update_state(&ev) {
            assert_eq!(task, "t1");
            assert_eq!(uuid.len(), 16, "agent updates carry a uuid");
            seen.push(state);
            client
                .acknowledge(v1::AcknowledgeRequest { header: header(), agent_id: agent_id.to_string(), task_id: task, uuid })
                .await?;
        }
    }
    assert_eq!(
        seen,
        vec![v1::TaskState::TaskStarting as i32, v1::TaskState::TaskRunning as i32, v1::TaskState::TaskFinished as i32]
    );
    // The finished task shows in /state and its acknowledged update is gone from the agent.
    eventually("agent forgets the acknowledged task", Duration::from_secs(5), || async {
        agent.tasks().await.is_empty().then_some(())
    })
    .await?;
    let state = master.state().await?;
    assert_eq!(state["agents"][0]["id"], agent_id.to_string());
    assert_eq!(state["frameworks"][0]["completed_tasks"][0]["state"], "TASK_FINISHED");
    let metrics = master.metrics().await?;
    assert!(metrics.contains("agora_master_allocation_runs_total"), "{metrics}");
    assert!(metrics.contains("agora_master_agents{state=\"connected\"} 1"), "{metrics}");
    let (code, body) = agora_tests::http_get(master.addr, "/health").await?;
    assert_eq!((code, body.as_str()), (200, "{\"status\":\"ok\"}"));
    Ok(())
}
