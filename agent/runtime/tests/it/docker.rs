//! Docker runtime against the real daemon, using the local busybox image.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use agora_model::{CommandSpec, DockerNetwork, DockerSpec, PortMapping, Scalar};
use agora_runtime::{
    ContainerHandle, DockerRuntime, LaunchSpec, Limits, Runtime, RuntimeError, RuntimeKind,
};

use crate::common::{ALLOCATE_100M, TestAgent, docker_or_skip, sandbox_file, sh};

fn docker(image: &str) -> Option<DockerSpec> {
    Some(DockerSpec {
        image: image.to_string(),
        network: DockerNetwork::None,
        ..Default::default()
    })
}

async fn launch_wait(
    rt: &DockerRuntime,
    spec: &LaunchSpec,
) -> (ContainerHandle, agora_runtime::ExitStatus) {
    let h = rt.launch(spec).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), rt.wait(&h))
        .await
        .unwrap()
        .unwrap();
    (h, status)
}

#[tokio::test]
async fn docker_launch_wait_reports_exit_codes_and_logs() {
    let Some((rt, image)) = docker_or_skip().await else {
        return;
    };
    let agent = TestAgent::new();
    let ok = agent.spec(sh("echo out-$AGORA_TEST; echo err >&2"), docker(&image));
    let (h, status) = launch_wait(&rt, &ok).await;
    assert_eq!(h.kind, RuntimeKind::Docker);
    assert!(status.success(), "{status:?}");
    assert_eq!(sandbox_file(&ok, "stdout").trim(), "out-yes");
    assert_eq!(sandbox_file(&ok, "stderr").trim(), "err");
    rt.cleanup(&h).await.unwrap();
    let gone = rt
        .client()
        .inspect_container(h.docker_id.as_deref().unwrap(), None)
        .await;
    assert!(gone.is_err(), "container not removed");

    let three = agent.spec(sh("echo failing >&2; exit 3"), docker(&image));
    let (h, status) = launch_wait(&rt, &three).await;
    assert_eq!(
        (status.code, status.signal, status.oom_killed),
        (Some(3), None, false),
        "{status:?}"
    );
    assert!(status.message.contains("failing"), "{}", status.message);
    rt.cleanup(&h).await.unwrap();
}

#[tokio::test]
async fn docker_kill_honours_grace_then_sigkills() {
    let Some((rt, image)) = docker_or_skip().await else {
        return;
    };
    let agent = TestAgent::new();
    let polite = agent.spec(
        sh("trap 'echo bye; exit 0' TERM; while true; do sleep 0.05; done"),
        docker(&image),
    );
    let h = rt.launch(&polite).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    rt.kill(&h, Duration::from_secs(10)).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
    let status = rt.wait(&h).await.unwrap();
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(sandbox_file(&polite, "stdout").contains("bye"));
    rt.cleanup(&h).await.unwrap();

    let stubborn = agent.spec(
        sh("trap '' TERM; while true; do sleep 0.05; done"),
        docker(&image),
    );
    let h = rt.launch(&stubborn).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    rt.kill(&h, Duration::from_secs(1)).await.unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "took {took:?}"
    );
    let status = rt.wait(&h).await.unwrap();
    assert_eq!(
        (status.code, status.signal),
        (Some(137), Some(9)),
        "{status:?}"
    );
    rt.cleanup(&h).await.unwrap();
}

#[tokio::test]
async fn docker_limits_labels_and_network_are_applied() {
    let Some((rt, image)) = docker_or_skip().await else {
        return;
    };
    let agent = TestAgent::new();
    let mut spec = agent.spec(sh("sleep 30"), docker(&image));
    spec.limits = Limits {
        cpus: Scalar::from_milli(1500),
        mem_mb: Scalar::from_units(64),
        pids: Some(50),
    };
    let h = rt.launch(&spec).await.unwrap();
    let info = rt
        .client()
        .inspect_container(h.docker_id.as_deref().unwrap(), None)
        .await
        .unwrap();
    let hc = info.host_config.unwrap();
    assert_eq!(
        (hc.cpu_shares, hc.cpu_quota, hc.cpu_period),
        (Some(1536), Some(150_000), Some(100_000))
    );
    assert_eq!(
        (hc.memory, hc.memory_swap),
        (Some(64 << 20), Some(64 << 20))
    );
    assert_eq!(hc.pids_limit, Some(50));
    assert_eq!(hc.network_mode.as_deref(), Some("none"));
    assert_eq!(
        info.name.as_deref(),
        Some(format!("/agora-{}", spec.container_id).as_str())
    );
    let labels = info.config.unwrap().labels.unwrap();
    assert_eq!(labels["agora.agent_id"], agent.agent_id.as_str());
    assert_eq!(labels["agora.task_id"], spec.task_id.as_str());
    assert_eq!(labels["agora.framework_id"], "test-framework");
    assert_eq!(labels["agora.container_id"], spec.container_id);
    rt.kill(&h, Duration::ZERO).await.unwrap();
    rt.cleanup(&h).await.unwrap();
}

#[tokio::test]
async fn docker_over_memory_limit_is_oom_killed() {
    let Some((rt, image)) = docker_or_skip().await else {
        return;
    };
    let agent = TestAgent::new();
    let mut spec = agent.spec(sh(ALLOCATE_100M), docker(&image));
    spec.limits.mem_mb = Scalar::from_units(32);
    let (h, status) = launch_wait(&rt, &spec).await;
    assert!(
        status.oom_killed,
        "{status:?} stdout={}",
        sandbox_file(&spec, "stdout")
    );
    assert!(
        status.message.contains("Memory limit"),
        "{}",
        status.message
    );
    rt.cleanup(&h).await.unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    Ok(response)
}

#[tokio::test]
async fn docker_bridge_port_mapping_serves_http() {
    let Some((rt, image)) = docker_or_skip().await else {
        return;
    };
    let agent = TestAgent::new();
    let port = free_port();
    let spec = agent.spec(
        sh("mkdir -p /www && echo hello-agora > /www/index.html && exec httpd -f -p 80 -h /www"),
        Some(DockerSpec {
            image,
            network: DockerNetwork::Bridge,
            port_mappings: vec![PortMapping {
                host_port: port,
                container_port: 80,
                protocol: "tcp".into(),
                name: None,
            }],
            ..Default::default()
        }),
    );
    let h = rt.launch(&spec).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let response = loop {
        match http_get(port, "/index.html") {
            Ok(r) if r.contains("hello-agora") => break r,
            other if Instant::now() > deadline => panic!("no answer on port {port}: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    rt.kill(&h, Duration::from_secs(1)).await.unwrap();
    rt.cleanup(&h).await.unwrap();
}

#[tokio::test]
async fn docker_missing_image_is_image_not_found_quickly() {
    let Some((rt, _)) = docker_or_skip().await else {
        return;
    };
    let agent = TestAgent::new();
    let spec = agent.spec(sh("true"), docker("agora-test/no-such-image:1"));
    let start = Instant::now();
    match rt.launch(&spec).await {
        Err(RuntimeError::ImageNotFound { image, reason }) => {
            assert_eq!(image, "agora-test/no-such-image:1");
            assert!(!reason.is_empty());
        }
        other => panic!("expected ImageNotFound, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn docker_missing_command_is_reported() {
    let Some((rt, image)) = docker_or_skip().await else {
        return;
    };
    let agent = TestAgent::new();
    let (h, status) = launch_wait(
        &rt,
        &agent.spec(sh("no-such-command-agora"), docker(&image)),
    )
    .await;
    assert_eq!(status.code, Some(127), "{status:?}");
    assert!(
        status.command_not_found && status.message.contains("not found"),
        "{status:?}"
    );
    rt.cleanup(&h).await.unwrap();

    let argv = CommandSpec {
        value: "/no/such/binary".into(),
        ..Default::default()
    };
    match rt.launch(&agent.spec(Some(argv), docker(&image))).await {
        Err(RuntimeError::CommandNotFound(msg)) => {
            assert!(msg.contains("/no/such/binary"), "{msg}")
        }
        other => panic!("expected CommandNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn docker_exec_runs_inside_with_timeout() {
    let Some((rt, image)) = docker_or_skip().await else {
        return;
    };
    let agent = TestAgent::new();
    let h = rt
        .launch(&agent.spec(sh("touch /ready; sleep 30"), docker(&image)))
        .await
        .unwrap();
    let env = BTreeMap::from([("CHECK".to_string(), "v".to_string())]);
    let t = Duration::from_secs(5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rt.exec(&h, "test \"$CHECK\" = v && test -f /ready", &env, t)
            .await
            .unwrap(),
        0
    );
    assert_eq!(rt.exec(&h, "exit 2", &env, t).await.unwrap(), 2);
    let start = Instant::now();
    let err = rt
        .exec(&h, "sleep 10", &env, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Timeout(..)), "{err}");
    assert!(start.elapsed() < Duration::from_secs(3));
    rt.kill(&h, Duration::ZERO).await.unwrap();
    rt.cleanup(&h).await.unwrap();
}

#[tokio::test]
async fn docker_recovery_finds_live_containers_exit_codes_and_orphans() {
    let Some((rt, image)) = docker_or_skip().await else {
        return;
    };
    let agent = TestAgent::new();
    let spec = agent.spec(
        sh("echo before; sleep 2; echo after; exit 4"),
        docker(&image),
    );
    let h = rt.launch(&spec).await.unwrap();
    let orphan = rt
        .launch(&agent.spec(sh("sleep 30"), docker(&image)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(rt);

    let (rt, _) = docker_or_skip().await.unwrap();
    let report = rt
        .recover(&agent.agent_id, std::slice::from_ref(&h))
        .await
        .unwrap();
    assert_eq!(report.alive, vec![h.clone()]);
    assert!(report.exited.is_empty());
    assert_eq!(report.orphans.len(), 1, "{report:?}");
    assert_eq!(report.orphans[0].container_id, orphan.container_id);
    assert_eq!(report.orphans[0].docker_id, orphan.docker_id);

    let status = tokio::time::timeout(Duration::from_secs(10), rt.wait(&h))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code, Some(4), "{status:?}");
    let out = sandbox_file(&spec, "stdout");
    assert!(out.contains("after"), "{out}");

    // Recovering again after the exit reports the status.
    let report = rt
        .recover(&agent.agent_id, &[h.clone(), orphan.clone()])
        .await
        .unwrap();
    assert_eq!(report.exited.len(), 1);
    assert_eq!(report.exited[0].status.as_ref().unwrap().code, Some(4));
    assert_eq!(report.alive.len(), 1);
    assert!(report.orphans.is_empty());
    rt.kill(&orphan, Duration::ZERO).await.unwrap();
    rt.cleanup(&h).await.unwrap();
    rt.cleanup(&orphan).await.unwrap();
}
