//! The agent's port answers like an HTTP server: unknown paths are a 404
//! with a JSON body, and `/metrics` passes `promtool check metrics`.

use agora_proto::v1::TaskState as S;
use agora_tests::{TestMaster, http_get};

use crate::agent_support::*;

#[tokio::test]
async fn agent_http_unknown_path_is_a_json_404() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    let agent = start_agent(agent_config(&master, dir.path())).await?;
    for path in ["/no/such/path", "/statez", "/tasks"] {
        let (code, body) = http_get(agent.addr(), path).await?;
        assert_eq!(code, 404, "{path}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body)?;
        assert!(
            json["message"].as_str().is_some_and(|m| m.contains(path)),
            "{path}: {body}"
        );
    }
    let (code, _) = http_get(agent.addr(), "/health").await?;
    assert_eq!(code, 200);
    agent.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn agent_metrics_pass_promtool_check() -> anyhow::Result<()> {
    if !agora_tests::promtool::available("agent_metrics_pass_promtool_check") {
        return Ok(());
    }
    let master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    let agent = start_agent(agent_config(&master, dir.path())).await?;
    let agent_id = id_of(&agent)?;
    // One finished task, so the histogram and every gauge have samples.
    let mut fw = Framework::subscribe(&master, "metrics", &[]).await?;
    fw.launch(&agent_id, shell_task("m", "true", "cpus:0.1;mem:32"))
        .await?;
    fw.wait_state("m", S::TaskFinished).await?;
    let (code, metrics) = http_get(agent.addr(), "/metrics").await?;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("agora_agent_task_launch_seconds_count"),
        "{metrics}"
    );
    let (passed, said) = agora_tests::promtool::check_metrics(&metrics).await?;
    assert!(
        passed,
        "promtool check metrics failed:\n{said}\n--- metrics ---\n{metrics}"
    );
    agent.shutdown().await;
    Ok(())
}
