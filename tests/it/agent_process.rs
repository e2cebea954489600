//! A real agent with the process runtime (real cgroups) under a real
//! master: launch, exit codes, environment, logs over HTTP, kill with
//! TASK_KILLING, cgroup limits, OOM and bad task definitions.
use std::time::Duration;

use agora_proto::v1;
use agora_proto::v1::TaskState as S;
use agora_proto::v1::task_status::Reason as R;
use agora_tests::{TestMaster, http_get};

use crate::agent_support::*;

#[tokio::test]
async fn agent_process_exit_codes_env_and_http() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    let agent = start_agent(agent_config(&master, dir.path())).await?;
    let agent_id = id_of(&agent)?;
    let mut fw = Framework::subscribe(&master, "proc", &[]).await?;

    fw.launch(&agent_id, shell_task("ok", "echo hello", "cpus:0.1;mem:32"))
        .await?;
    let (done, seen) = fw
        .wait_for("ok", |s| s.state == st(S::TaskFinished))
        .await?;
    let states: Vec<i32> = seen.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        vec![st(S::TaskStarting), st(S::TaskRunning), st(S::TaskFinished)]
    );
    assert_eq!(done.exit_code, Some(0));
    assert!(
        seen.iter()
            .all(|s| s.uuid.len() == 16 && s.agent_id == agent_id)
    );

    let cmd = "echo \"id=$MESOS_TASK_ID ports=$PORTS p0=$PORT0 named=$PORT_WEB x=$X\"; echo oops >&2; exit 3";
    let mut task = shell_task("bad", cmd, "cpus:0.1;mem:32");
    task.port_names = vec![v1::PortName {
        name: "web".into(),
        index: 0,
    }];
    if let Some(c) = task.command.as_mut() {
        c.environment.insert("X".into(), "42".into());
    }
    fw.launch_with(&agent_id, task, |t, offer| {
        let p = first_port(offer).unwrap_or(0);
        let ports = agora_model::Resources::parse(&format!("cpus:0.1;mem:32;ports:[{p}-{p}]"))
            .unwrap_or_default();
        t.resources = agora_proto::convert::resources_to_wire(&ports);
    })
    .await?;
    let failed = fw.wait_state("bad", S::TaskFailed).await?;
    assert_eq!(failed.exit_code, Some(3));
    assert!(
        failed.message.contains("oops") || !failed.message.is_empty(),
        "{failed:?}"
    );

    // Logs over HTTP, Mesos /files/read style.
    let (code, body) = http_get(agent.addr(), "/tasks/bad/logs?stream=stdout").await?;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let out = v["data"].as_str().unwrap_or_default();
    assert!(out.starts_with("id=bad ports=21"), "{out}");
    assert!(out.contains("x=42"), "{out}");
    let p0 = out
        .split("p0=")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or_default()
        .to_string();
    assert!(out.contains(&format!("named={p0}")), "{out}");
    let (_, tail) = http_get(agent.addr(), "/tasks/bad/logs?stream=stderr&tail=5").await?;
    let v: serde_json::Value = serde_json::from_str(&tail)?;
    assert_eq!(v["data"], "oops\n");
    let (code, body) = http_get(agent.addr(), "/tasks/bad/logs?offset=x").await?;
    assert_eq!(code, 400);
    assert!(body.contains("offset"), "{body}");
    let (code, _) = http_get(agent.addr(), "/tasks/nope/logs").await?;
    assert_eq!(code, 404);

    let (code, body) = http_get(agent.addr(), "/state").await?;
    assert_eq!(code, 200);
    let state: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(state["agent_id"], agent_id);
    assert_eq!(state["registered"], true);
    assert!(
        state["runtimes"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "process")),
        "{state}"
    );
    let (code, metrics) = http_get(agent.addr(), "/metrics").await?;
    assert_eq!(code, 200);
    assert!(metrics.contains("agora_agent_registered 1"), "{metrics}");
    assert!(metrics.contains("agora_agent_cpus_capacity 2"), "{metrics}");
    assert!(
        metrics.contains("agora_agent_task_launch_seconds_count{runtime=\"process\"}"),
        "launches are timed: {metrics}"
    );
    let (code, _) = http_get(agent.addr(), "/health").await?;
    assert_eq!(code, 200);
    agent.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn agent_process_kill_and_cgroup_limits() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    let agent = start_agent(agent_config(&master, dir.path())).await?;
    let agent_id = id_of(&agent)?;
    let mut fw = Framework::subscribe(
        &master,
        "proc-kill",
        &[v1::framework_info::Capability::TaskKillingState],
    )
    .await?;
    fw.launch(
        &agent_id,
        shell_task("sleeper", "sleep 30", "cpus:0.5;mem:64"),
    )
    .await?;
    fw.wait_state("sleeper", S::TaskRunning).await?;

    let t = task_state(&agent, "sleeper").await?;
    let cgroup = t["container"]["handle"]["cgroup"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!cgroup.is_empty(), "{t}");
    let read = |ctl: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}/{cgroup}/{file}"))
    };
    if std::path::Path::new("/sys/fs/cgroup/memory").exists() {
        assert_eq!(
            read("memory", "memory.limit_in_bytes")?.trim(),
            (64u64 << 20).to_string()
        );
        assert_eq!(read("cpu", "cpu.cfs_quota_us")?.trim(), "50000");
        assert_eq!(read("cpu", "cpu.shares")?.trim(), "512");
        assert_eq!(read("pids", "pids.max")?.trim(), "256");
    } else {
        assert_eq!(read("", "memory.max")?.trim(), (64u64 << 20).to_string());
    }
    let pid = t["container"]["handle"]["pid"].as_u64().unwrap_or_default();
    assert!(pid_alive(pid));

    fw.kill(&agent_id, "sleeper").await?;
    let (killed, seen) = fw
        .wait_for("sleeper", |s| s.state == st(S::TaskKilled))
        .await?;
    assert_eq!(
        seen.first().map(|s| s.state),
        Some(st(S::TaskKilling)),
        "{seen:?}"
    );
    assert_eq!(killed.reason, reason(R::Unspecified));
    assert!(
        !pid_alive(pid) || std::fs::read_to_string(format!("/proc/{pid}/stat"))?.contains(") Z")
    );
    agent.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn agent_process_oom_and_bad_tasks() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    let agent = start_agent(agent_config(&master, dir.path())).await?;
    let agent_id = id_of(&agent)?;
    let mut fw = Framework::subscribe(&master, "proc-bad", &[]).await?;

    // dd allocates its 256 MB block at once: far over the 32 MB limit.
    fw.launch(
        &agent_id,
        shell_task(
            "hog",
            "dd if=/dev/zero of=/dev/null bs=256M count=4",
            "cpus:0.1;mem:32",
        ),
    )
    .await?;
    let hog = fw
        .wait_for("hog", |s| {
            s.state != st(S::TaskStarting) && s.state != st(S::TaskRunning)
        })
        .await?
        .0;
    assert_eq!(
        (hog.state, hog.reason),
        (st(S::TaskFailed), reason(R::ContainerLimitationMemory)),
        "{hog:?}"
    );

    fw.launch(
        &agent_id,
        shell_task("nocmd", "no_such_command_agora", "cpus:0.1;mem:32"),
    )
    .await?;
    let nocmd = fw
        .wait_for("nocmd", |s| s.state == st(S::TaskFailed))
        .await?
        .0;
    assert_eq!(nocmd.reason, reason(R::CommandNotFound), "{nocmd:?}");
    assert_eq!(nocmd.exit_code, Some(127));

    // Beyond the agent: refused with a reason (by the master, which checks
    // the offer first; the agent would refuse it too).
    fw.launch(&agent_id, shell_task("huge", "true", "cpus:64;mem:32"))
        .await?;
    let huge = fw.next_update("huge").await?;
    assert_eq!(huge.state, st(S::TaskError), "{huge:?}");
    assert_ne!(huge.reason, reason(R::Unspecified));

    // An invalid definition (no command, no container).
    let mut empty = shell_task("empty", "", "cpus:0.1;mem:32");
    empty.command = None;
    fw.launch(&agent_id, empty).await?;
    let e = fw.next_update("empty").await?;
    assert_eq!(
        (e.state, e.reason),
        (st(S::TaskError), reason(R::TaskInvalid)),
        "{e:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    agent.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn agent_process_command_health_check_never_kill() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    let agent = start_agent(agent_config(&master, dir.path())).await?;
    let agent_id = id_of(&agent)?;
    let mut fw = Framework::subscribe(&master, "proc-health", &[]).await?;
    let cmd = "touch \"$MESOS_SANDBOX/ok\"; sleep 2; rm \"$MESOS_SANDBOX/ok\"; sleep 60";
    let mut task = shell_task("checked", cmd, "cpus:0.1;mem:32");
    task.health_check = Some(v1::HealthCheck {
        r#type: v1::health_check::Type::Command as i32,
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.3),
        timeout_seconds: Some(2.0),
        consecutive_failures: Some(2),
        grace_period_seconds: Some(5.0),
        command: Some(v1::health_check::Command {
            value: "test -f \"$MESOS_SANDBOX/ok\"".into(),
        }),
        never_kill: true,
        ..Default::default()
    });
    fw.launch(&agent_id, task).await?;
    fw.wait_for("checked", |s| s.healthy == Some(true)).await?;
    let bad = fw
        .wait_for("checked", |s| s.healthy == Some(false))
        .await?
        .0;
    assert_eq!(bad.state, st(S::TaskRunning));
    // never_kill: failing checks are reported, the task keeps running.
    let more = tokio::time::timeout(Duration::from_millis(1500), fw.next_update("checked")).await;
    assert!(
        more.is_err(),
        "no update expected while health stays false: {more:?}"
    );
    assert_eq!(
        task_state(&agent, "checked").await?["state"],
        "TASK_RUNNING"
    );
    fw.kill(&agent_id, "checked").await?;
    fw.wait_state("checked", S::TaskKilled).await?;
    agent.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn agent_gc_removes_sandboxes_of_finished_tasks() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    let mut config = agent_config(&master, dir.path());
    config.gc = agora_agent::GcConfig {
        interval: Duration::from_millis(200),
        max_age: Duration::ZERO,
        ..Default::default()
    };
    let agent = start_agent(config).await?;
    let agent_id = id_of(&agent)?;
    let mut fw = Framework::subscribe(&master, "gc", &[]).await?;
    fw.launch(&agent_id, shell_task("gone", "echo bye", "cpus:0.1;mem:32"))
        .await?;
    fw.launch(&agent_id, shell_task("kept", "sleep 20", "cpus:0.1;mem:32"))
        .await?;
    fw.wait_state("gone", S::TaskFinished).await?;
    fw.wait_state("kept", S::TaskRunning).await?;
    let sandboxes = dir.path().join("sandboxes").join(&fw.id);
    agora_tests::eventually("the finished task's sandbox is removed", WAIT, || async {
        (!sandboxes.join("gone").exists()).then_some(())
    })
    .await?;
    assert!(
        sandboxes.join("kept").exists(),
        "a live task's sandbox is never collected"
    );
    fw.kill(&agent_id, "kept").await?;
    fw.wait_state("kept", S::TaskKilled).await?;
    agent.shutdown().await;
    Ok(())
}
