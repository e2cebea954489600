//! End-to-end smoke test of the master over raw gRPC: a simulated agent, a
//! framework subscribing, an offer, a launch, the task's updates with
//! acknowledgements, and the operator endpoints.
use std::time::Duration;

use agora_proto::v1;
use agora_tests::{
    RawFramework, SimAgent, SimAgentConfig, TaskBehaviour, TestMaster, eventually, shell_task,
};

#[tokio::test]
async fn offer_launch_finish_with_acks_and_operator_endpoints() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let agent = SimAgent::start(
        &master.endpoint(),
        SimAgentConfig {
            behaviour: TaskBehaviour::RunFor(Duration::from_millis(200)),
            ..Default::default()
        },
    )
    .await;
    let agent_id = agent.agent_id().await;
    let info = v1::FrameworkInfo {
        name: "smoke".into(),
        ..Default::default()
    };
    let mut fw = RawFramework::subscribe(&master.endpoint(), info).await?;
    let offer = fw.offer().await?;
    assert_eq!(offer.agent_id, agent_id.to_string());
    fw.launch(
        &offer.offer_id,
        vec![shell_task("t1", "cpus:1;mem:128", "true", &[])?],
    )
    .await?;
    let mut seen = Vec::new();
    while seen.last() != Some(&(v1::TaskState::TaskFinished as i32)) {
        let st = fw.update_acked().await?;
        assert_eq!(st.task_id, "t1");
        assert_eq!(st.uuid.len(), 16, "agent updates carry a uuid");
        seen.push(st.state);
    }
    assert_eq!(
        seen,
        vec![
            v1::TaskState::TaskStarting as i32,
            v1::TaskState::TaskRunning as i32,
            v1::TaskState::TaskFinished as i32
        ]
    );
    // The finished task shows in /state and its acknowledged update is gone from the agent.
    eventually(
        "agent forgets the acknowledged task",
        Duration::from_secs(5),
        || async { agent.tasks().await.is_empty().then_some(()) },
    )
    .await?;
    let state = master.state().await?;
    assert_eq!(state["agents"][0]["id"], agent_id.to_string());
    assert_eq!(
        state["frameworks"][0]["completed_tasks"][0]["state"],
        "TASK_FINISHED"
    );
    let metrics = master.metrics().await?;
    assert!(
        metrics.contains("agora_master_allocation_runs_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agora_master_agents{state=\"connected\"} 1"),
        "{metrics}"
    );
    let (code, body) = agora_tests::http_get(master.addr, "/health").await?;
    assert_eq!((code, body.as_str()), (200, "{\"status\":\"ok\"}"));
    Ok(())
}

#[tokio::test]
async fn an_unknown_http_path_is_a_json_404() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let (code, body) = agora_tests::http_get(master.addr, "/anything").await?;
    assert_eq!(code, 404, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(json["path"], "/anything");
    assert_eq!(json["error"], "not found");
    // gRPC clients calling a method nobody serves still get UNIMPLEMENTED.
    let mut raw = v1::scheduler_client::SchedulerClient::connect(master.endpoint()).await?;
    assert!(
        raw.teardown(v1::TeardownRequest { header: None })
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn the_master_metrics_pass_promtool() -> anyhow::Result<()> {
    if !agora_tests::promtool::available("the_master_metrics_pass_promtool") {
        return Ok(());
    }
    let master = TestMaster::start().await;
    let _agent = SimAgent::start(&master.endpoint(), SimAgentConfig::default()).await;
    let text = master.metrics().await?;
    let (passed, said) = agora_tests::promtool::check_metrics(&text).await?;
    assert!(passed, "promtool: {said}");
    Ok(())
}
