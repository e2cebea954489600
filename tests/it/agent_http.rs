//! The agent's port answers like an HTTP server: unknown paths are a 404
//! with a JSON body, and `/metrics` passes `promtool check metrics`.
use std::process::Stdio;

use agora_proto::v1::TaskState as S;
use agora_tests::{TestMaster, http_get};
use tokio::io::AsyncWriteExt;

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

/// `promtool` (Debian package `prometheus`); `None` with a note when it is
/// missing, unless `CI=true`, where that is a failure.
fn promtool_or_skip(test: &str) -> Option<&'static str> {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("promtool");
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: CI=true but promtool is not installed (apt-get install prometheus)");
    }
    eprintln!(
        "SKIPPED {test}: promtool is not installed (apt-get install prometheus); set CI=true to make this a failure"
    );
    None
}

#[tokio::test]
async fn agent_metrics_pass_promtool_check() -> anyhow::Result<()> {
    let Some(promtool) = promtool_or_skip("agent_metrics_pass_promtool_check") else {
        return Ok(());
    };
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
        metrics.contains("agent_task_launch_seconds_count"),
        "{metrics}"
    );
    let mut child = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(metrics.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    agent.shutdown().await;
    Ok(())
}
