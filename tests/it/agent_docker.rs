//! A real agent with the Docker runtime (real daemon, the local busybox test
//! image) under a real master: exit codes, limits read back with `docker
//! inspect`, kill, OOM, a missing image, a bridge port mapping answering
//! HTTP, and HTTP health checks up to the kill of an unhealthy task. Skipped
//! with a note when there is no daemon, unless `CI=true`.
use agora_proto::v1;
use agora_proto::v1::TaskState as S;
use agora_proto::v1::task_status::Reason as R;
use agora_tests::{TestMaster, http_get};

use crate::agent_support::*;

fn docker_inspect(id: &str, format: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", format, id])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Removes the agent's containers (the agent's GC would, after a day).
fn remove_containers(agent_id: &str) {
    let filter = format!("label=agora.agent_id={agent_id}");
    let Ok(out) = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
    else {
        return;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    if !ids.is_empty() {
        let _ = std::process::Command::new("docker")
            .arg("rm")
            .arg("-f")
            .args(&ids)
            .output();
    }
}

#[tokio::test]
async fn agent_docker_exit_codes_limits_kill_oom_and_missing_image() -> anyhow::Result<()> {
    if docker_or_skip("agent_docker_exit_codes_limits_kill_oom_and_missing_image")
        .await
        .is_none()
    {
        return Ok(());
    }
    let master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    let agent = start_agent(agent_config(&master, dir.path())).await?;
    let agent_id = id_of(&agent)?;
    let mut fw = Framework::subscribe(&master, "docker", &[]).await?;

    fw.launch(
        &agent_id,
        docker_task("d-ok", "echo from-docker", "cpus:0.1;mem:32"),
    )
    .await?;
    fw.launch(&agent_id, docker_task("d-bad", "exit 3", "cpus:0.1;mem:32"))
        .await?;
    fw.launch(
        &agent_id,
        docker_task("d-sleep", "sleep 30", "cpus:0.5;mem:64"),
    )
    .await?;
    let ok = fw.wait_state("d-ok", S::TaskFinished).await?;
    assert_eq!(ok.exit_code, Some(0));
    let (_, body) = http_get(agent.addr(), "/tasks/d-ok/logs").await?;
    assert!(body.contains("from-docker"), "{body}");
    let bad = fw.wait_state("d-bad", S::TaskFailed).await?;
    assert_eq!(bad.exit_code, Some(3));

    fw.wait_state("d-sleep", S::TaskRunning).await?;
    let t = task_state(&agent, "d-sleep").await?;
    let docker_id = t["container"]["handle"]["docker_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let limits = docker_inspect(
        &docker_id,
        "{{.HostConfig.Memory}} {{.HostConfig.CpuQuota}} {{.HostConfig.PidsLimit}}",
    )?;
    assert_eq!(limits, format!("{} 50000 256", 64u64 << 20));
    let labels = docker_inspect(&docker_id, "{{index .Config.Labels \"agora.agent_id\"}}")?;
    assert_eq!(labels, agent_id);
    fw.kill(&agent_id, "d-sleep").await?;
    let killed = fw.wait_state("d-sleep", S::TaskKilled).await?;
    assert_eq!(killed.reason, reason(R::Unspecified));
    assert_eq!(
        docker_inspect(&docker_id, "{{.State.Running}}").unwrap_or_else(|_| "false".into()),
        "false"
    );

    fw.launch(
        &agent_id,
        docker_task(
            "d-hog",
            "dd if=/dev/zero of=/dev/null bs=256M count=4",
            "cpus:0.1;mem:32",
        ),
    )
    .await?;
    let hog = fw
        .wait_for("d-hog", |s| {
            s.state != st(S::TaskStarting) && s.state != st(S::TaskRunning)
        })
        .await?
        .0;
    assert_eq!(
        (hog.state, hog.reason),
        (st(S::TaskFailed), reason(R::ContainerLimitationMemory)),
        "{hog:?}"
    );

    let mut missing = docker_task("d-missing", "true", "cpus:0.1;mem:32");
    if let Some(d) = missing.container.as_mut().and_then(|c| c.docker.as_mut()) {
        d.image = "agora-test/no-such-image:never".into();
    }
    fw.launch(&agent_id, missing).await?;
    let m = fw.wait_state("d-missing", S::TaskFailed).await?;
    assert_eq!(m.reason, reason(R::ContainerImageNotFound), "{m:?}");
    agent.shutdown().await;
    remove_containers(&agent_id);
    Ok(())
}

#[tokio::test]
async fn agent_docker_bridge_port_and_http_health_checks() -> anyhow::Result<()> {
    if docker_or_skip("agent_docker_bridge_port_and_http_health_checks")
        .await
        .is_none()
    {
        return Ok(());
    }
    let master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    let agent = start_agent(agent_config(&master, dir.path())).await?;
    let agent_id = id_of(&agent)?;
    let mut fw = Framework::subscribe(&master, "docker-health", &[]).await?;
    // httpd serves for 3 s, then stops; the container keeps running.
    let cmd = "mkdir -p /www; echo hello > /www/index.html; httpd -f -p 8080 -h /www & sleep 3; kill $!; sleep 60";
    let mut port = 0u16;
    fw.launch_with(
        &agent_id,
        docker_task("web", cmd, "cpus:0.1;mem:32"),
        |t, offer| {
            port = first_port(offer).unwrap_or(0);
            let res =
                agora_model::Resources::parse(&format!("cpus:0.1;mem:32;ports:[{port}-{port}]"))
                    .unwrap_or_default();
            t.resources = agora_proto::convert::resources_to_wire(&res);
            if let Some(d) = t.container.as_mut().and_then(|c| c.docker.as_mut()) {
                d.network = v1::docker_info::Network::Bridge as i32;
                d.port_mappings = vec![v1::docker_info::PortMapping {
                    host_port: u32::from(port),
                    container_port: 8080,
                    protocol: "tcp".into(),
                    name: "http".into(),
                }];
            }
            t.health_check = Some(v1::HealthCheck {
                r#type: v1::health_check::Type::Http as i32,
                delay_seconds: Some(0.0),
                interval_seconds: Some(0.3),
                timeout_seconds: Some(1.0),
                consecutive_failures: Some(3),
                grace_period_seconds: Some(5.0),
                http: Some(v1::health_check::Http {
                    port: u32::from(port),
                    path: "/".into(),
                    scheme: String::new(),
                }),
                ..Default::default()
            });
        },
    )
    .await?;
    let healthy = fw.wait_for("web", |s| s.healthy == Some(true)).await?.0;
    assert_eq!(
        (healthy.state, healthy.reason),
        (st(S::TaskRunning), reason(R::TaskHealthCheckStatusUpdated))
    );
    // The offered host port is mapped to the container's 8080.
    let (code, body) = http_get(format!("127.0.0.1:{port}").parse()?, "/").await?;
    assert_eq!((code, body.trim()), (200, "hello"));

    let unhealthy = fw.wait_for("web", |s| s.healthy == Some(false)).await?.0;
    assert_eq!(unhealthy.state, st(S::TaskRunning));
    let killed = fw.wait_state("web", S::TaskKilled).await?;
    assert_eq!(killed.reason, reason(R::TaskUnhealthy), "{killed:?}");
    let (_, metrics) = http_get(agent.addr(), "/metrics").await?;
    assert!(
        !metrics.contains("agora_agent_health_check_failures_total 0"),
        "{metrics}"
    );
    agent.shutdown().await;
    remove_containers(&agent_id);
    Ok(())
}

#[tokio::test]
async fn agent_docker_task_survives_agent_crash() -> anyhow::Result<()> {
    let _turn = DOCKER_HEAVY.lock().await;
    if docker_or_skip("agent_docker_task_survives_agent_crash")
        .await
        .is_none()
    {
        return Ok(());
    }
    let master = crash_tolerant_master().await;
    let dir = tempfile::tempdir()?;
    let config = agent_config(&master, dir.path());
    let agent = start_agent(config.clone()).await?;
    let agent_id = id_of(&agent)?;
    let addr = agent.addr();
    let mut fw = Framework::subscribe(&master, "docker-recover", &[]).await?;
    fw.launch(
        &agent_id,
        docker_task("d-long", "sleep 30", "cpus:0.1;mem:32"),
    )
    .await?;
    fw.launch(
        &agent_id,
        docker_task("d-short", "sleep 1; exit 5", "cpus:0.1;mem:32"),
    )
    .await?;
    fw.wait_state("d-long", S::TaskRunning).await?;
    fw.wait_state("d-short", S::TaskRunning).await?;
    let docker_id_of = |t: serde_json::Value| {
        t["container"]["handle"]["docker_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let docker_id = docker_id_of(task_state(&agent, "d-long").await?);
    let short_id = docker_id_of(task_state(&agent, "d-short").await?);
    agent.crash();
    // "d-short" exits while no agent is watching.
    agora_tests::eventually(
        "d-short exits",
        std::time::Duration::from_secs(20),
        || async {
            let running = docker_inspect(&short_id, "{{.State.Running}}").ok()?;
            (running == "false").then_some(())
        },
    )
    .await?;
    assert_eq!(
        docker_inspect(&docker_id, "{{.State.Running}}")?,
        "true",
        "the container survives the agent"
    );
    let agent = restart_agent(config, addr).await?;
    let short = fw.wait_state("d-short", S::TaskFailed).await?;
    assert_eq!(short.exit_code, Some(5), "{short:?}");
    fw.reconcile(&agent_id, "d-long").await?;
    assert_eq!(fw.next_update("d-long").await?.state, st(S::TaskRunning));
    fw.kill(&agent_id, "d-long").await?;
    fw.wait_state("d-long", S::TaskKilled).await?;
    agent.shutdown().await;
    remove_containers(&agent_id);
    Ok(())
}

/// A container labelled as this agent's but unknown to its checkpoint (say,
/// launched just before a crash that lost the record) is killed on recovery.
#[tokio::test]
async fn agent_kills_unknown_docker_containers_on_recovery() -> anyhow::Result<()> {
    let _turn = DOCKER_HEAVY.lock().await;
    let Some(docker) = docker_or_skip("agent_kills_unknown_docker_containers_on_recovery").await
    else {
        return Ok(());
    };
    let image = agora_runtime::testing::ensure_test_image(docker.client()).await?;
    let master = crash_tolerant_master().await;
    let dir = tempfile::tempdir()?;
    let config = agent_config(&master, dir.path());
    let agent = start_agent(config.clone()).await?;
    let agent_id = id_of(&agent)?;
    let addr = agent.addr();
    agent.crash();
    let out = std::process::Command::new("docker")
        .args([
            "run",
            "-d",
            "--label",
            &format!("agora.agent_id={agent_id}"),
        ])
        .args([
            "--label",
            "agora.container_id=orphan-1",
            "--label",
            "agora.task_id=orphan",
        ])
        .args([
            "--label",
            "agora.framework_id=nobody",
            &image,
            "sleep",
            "600",
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let orphan = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(docker_inspect(&orphan, "{{.State.Running}}")?, "true");
    let agent = restart_agent(config, addr).await?;
    let gone = agora_tests::eventually(
        "the orphan is killed",
        std::time::Duration::from_secs(20),
        || {
            let running = docker_inspect(&orphan, "{{.State.Running}}")
                .map(|s| s == "true")
                .unwrap_or(false);
            async move { (!running).then_some(()) }
        },
    )
    .await;
    agent.shutdown().await;
    remove_containers(&agent_id);
    gone
}
