//! Reliability of a real agent: status updates resent until acknowledged,
//! agent crash and restart with tasks still running, master restart, and a
//! damaged or foreign checkpoint.
use std::time::Duration;

use agora_agent::AgentError;
use agora_proto::v1;
use agora_proto::v1::TaskState as S;
use agora_tests::TestMaster;

use crate::agent_support::*;

#[tokio::test]
async fn agent_resends_updates_until_acknowledged() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    let agent = start_agent(agent_config(&master, dir.path())).await?;
    let agent_id = id_of(&agent)?;
    let mut fw = Framework::subscribe(&master, "no-acks", &[]).await?;
    fw.auto_ack = false;
    fw.launch(&agent_id, shell_task("t", "sleep 20", "cpus:0.1;mem:32"))
        .await?;
    // Unacknowledged, the head (STARTING) comes again and again; RUNNING
    // waits behind it.
    let first = fw.next_update("t").await?;
    assert_eq!(first.state, st(S::TaskStarting));
    let again = fw.next_update("t").await?;
    assert_eq!(
        (again.state, &again.uuid),
        (first.state, &first.uuid),
        "the same update is resent"
    );
    fw.ack(&first).await?;
    let running = loop {
        let s = fw.next_update("t").await?;
        if s.uuid != first.uuid {
            break s;
        }
    };
    assert_eq!(running.state, st(S::TaskRunning));
    fw.ack(&running).await?;
    // Acknowledged: nothing more arrives (backoff min is 200 ms).
    let quiet = tokio::time::timeout(Duration::from_millis(1200), fw.next_update("t")).await;
    assert!(
        quiet.is_err(),
        "unexpected update after all acks: {quiet:?}"
    );
    let metrics = agora_tests::http_get(agent.addr(), "/metrics").await?.1;
    assert!(
        !metrics.contains("agora_agent_status_update_retries_total 0"),
        "{metrics}"
    );
    fw.auto_ack = true;
    fw.kill(&agent_id, "t").await?;
    fw.wait_state("t", S::TaskKilled).await?;
    // The terminal update was acknowledged: the agent forgets the task.
    agora_tests::eventually("task forgotten", WAIT, || async {
        task_state(&agent, "t").await.is_err().then_some(())
    })
    .await?;
    assert!(
        !dir.path()
            .join("meta/tasks")
            .join(&fw.id)
            .join("t")
            .exists()
    );
    agent.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn agent_crash_restart_recovers_tasks() -> anyhow::Result<()> {
    let master = crash_tolerant_master().await;
    let dir = tempfile::tempdir()?;
    let config = agent_config(&master, dir.path());
    let agent = start_agent(config.clone()).await?;
    let agent_id = id_of(&agent)?;
    let addr = agent.addr();
    let mut fw = Framework::subscribe(&master, "recover", &[]).await?;
    fw.launch(&agent_id, shell_task("long", "sleep 30", "cpus:0.1;mem:32"))
        .await?;
    fw.wait_state("long", S::TaskRunning).await?;
    fw.launch(
        &agent_id,
        shell_task("short", "sleep 1; exit 4", "cpus:0.1;mem:32"),
    )
    .await?;
    fw.wait_state("short", S::TaskRunning).await?;
    let pid_of = |state: serde_json::Value| {
        state["container"]["handle"]["pid"]
            .as_u64()
            .unwrap_or_default()
    };
    let pid = pid_of(task_state(&agent, "long").await?);
    let short_pid = pid_of(task_state(&agent, "short").await?);

    agent.crash();
    // "short" exits while no agent is watching; "long" keeps running.
    agora_tests::eventually("short exits", Duration::from_secs(10), || async {
        (!pid_alive(short_pid)).then_some(())
    })
    .await?;
    assert!(pid_alive(pid), "the task survives the agent");

    let agent = restart_agent(config, addr).await?;
    assert_eq!(id_of(&agent)?, agent_id, "same agent id after recovery");
    let short = fw.wait_state("short", S::TaskFailed).await?;
    assert_eq!(short.exit_code, Some(4), "{short:?}");
    fw.reconcile(&agent_id, "long").await?;
    let long = fw.next_update("long").await?;
    assert_eq!(long.state, st(S::TaskRunning), "{long:?}");
    assert_eq!(task_state(&agent, "long").await?["state"], "TASK_RUNNING");
    // The recovered task is watched again: a kill ends it with TASK_KILLED.
    fw.kill(&agent_id, "long").await?;
    fw.wait_state("long", S::TaskKilled).await?;
    agent.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn agent_survives_master_restart() -> anyhow::Result<()> {
    let mut master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    let agent = start_agent(agent_config(&master, dir.path())).await?;
    let agent_id = id_of(&agent)?;
    let mut fw = Framework::subscribe(&master, "master-restart", &[]).await?;
    fw.launch(&agent_id, shell_task("brief", "sleep 1", "cpus:0.1;mem:32"))
        .await?;
    fw.launch(
        &agent_id,
        shell_task("steady", "sleep 30", "cpus:0.1;mem:32"),
    )
    .await?;
    fw.wait_state("steady", S::TaskRunning).await?;
    master.stop().await;
    // "brief" finishes while there is no master: its update waits on disk.
    agora_tests::eventually("brief finishes", Duration::from_secs(10), || async {
        let t = task_state(&agent, "brief").await.ok()?;
        (t["state"] == "TASK_FINISHED").then_some(())
    })
    .await?;
    assert_eq!(agent.state().await?["registered"], false);
    master.restart().await?;
    fw.resubscribe(&master).await?;
    let done = fw.wait_state("brief", S::TaskFinished).await?;
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(id_of(&agent)?, agent_id);
    fw.reconcile(&agent_id, "steady").await?;
    assert_eq!(fw.next_update("steady").await?.state, st(S::TaskRunning));
    fw.kill(&agent_id, "steady").await?;
    fw.wait_state("steady", S::TaskKilled).await?;
    agent.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn agent_refuses_damaged_or_foreign_checkpoint() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = agora_agent::AgentConfig {
        masters: vec!["127.0.0.1:1".into()],
        work_dir: dir.path().to_path_buf(),
        hostname: Some("host-a".into()),
        docker: agora_agent::DockerMode::Disabled,
        ..Default::default()
    };
    let meta = dir.path().join("meta");
    std::fs::create_dir_all(meta.join("tasks/fw/t"))?;
    std::fs::write(
        meta.join("agent.json"),
        r#"{"format_version":1,"hostname":"host-a","agent_id":"a1"}"#,
    )?;
    std::fs::write(meta.join("tasks/fw/t/task.json"), "{ damaged")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    match agora_agent::start(config.clone(), listener).await {
        Err(AgentError::DamagedCheckpoint { path, .. }) => {
            assert_eq!(path, meta.join("tasks/fw/t/task.json"))
        }
        Err(e) => anyhow::bail!("wrong error: {e}"),
        Ok(_) => anyhow::bail!("started on a damaged checkpoint"),
    }
    assert_eq!(
        std::fs::read_to_string(meta.join("tasks/fw/t/task.json"))?,
        "{ damaged"
    );

    std::fs::remove_dir_all(meta.join("tasks"))?;
    let other_host = agora_agent::AgentConfig {
        hostname: Some("host-b".into()),
        ..config
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    match agora_agent::start(other_host, listener).await {
        Err(e @ AgentError::ForeignWorkDir { .. }) => {
            assert!(e.to_string().contains("agent.json"), "{e}")
        }
        Err(e) => anyhow::bail!("wrong error: {e}"),
        Ok(_) => anyhow::bail!("started on another agent's work dir"),
    }
    assert!(meta.join("agent.json").exists());
    Ok(())
}

/// With several masters configured, an agent whose first master does not
/// answer registers with the next one in the list.
#[tokio::test]
async fn agent_tries_the_next_master_in_the_list() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let dir = tempfile::tempdir()?;
    // A port nothing listens on: bind, note it, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut config = agent_config(&master, dir.path());
    config.masters = vec![dead.to_string(), master.host_port()];
    let agent = start_agent(config).await?;
    let id = id_of(&agent)?;
    let st = master.state().await?;
    assert_eq!(
        st["agents"][0]["id"],
        id.as_str(),
        "registered with the second master"
    );
    agent.shutdown().await;
    Ok(())
}

/// Rewrites a task's checkpointed record (the agent must be stopped).
fn edit_task_record(
    work_dir: &std::path::Path,
    framework: &str,
    task: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> anyhow::Result<()> {
    let path = work_dir
        .join("meta/tasks")
        .join(framework)
        .join(task)
        .join("task.json");
    let mut record: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    edit(&mut record);
    std::fs::write(&path, serde_json::to_vec_pretty(&record)?)?;
    Ok(())
}

/// An agent that ran task "t" (`sleep 30`) and was then killed as by
/// kill -9, with what it takes to edit its records and restart it.
struct CrashedAgent {
    _master: TestMaster,
    dir: tempfile::TempDir,
    config: agora_agent::AgentConfig,
    addr: std::net::SocketAddr,
    fw: Framework,
    pid: u64,
}

async fn crash_with_running_task(framework: &str) -> anyhow::Result<CrashedAgent> {
    let master = crash_tolerant_master().await;
    let dir = tempfile::tempdir()?;
    let config = agent_config(&master, dir.path());
    let agent = start_agent(config.clone()).await?;
    let agent_id = id_of(&agent)?;
    let addr = agent.addr();
    let mut fw = Framework::subscribe(&master, framework, &[]).await?;
    fw.launch(&agent_id, shell_task("t", "sleep 30", "cpus:0.1;mem:32"))
        .await?;
    fw.wait_state("t", S::TaskRunning).await?;
    let pid = task_state(&agent, "t").await?["container"]["handle"]["pid"]
        .as_u64()
        .unwrap_or_default();
    agent.crash();
    Ok(CrashedAgent {
        _master: master,
        dir,
        config,
        addr,
        fw,
        pid,
    })
}

/// The agent died after checkpointing a launch but before the runtime's
/// launch returned (the record has no container handle): the restarted
/// agent reports TASK_FAILED (agent restarted) and kills the container it
/// cannot own as an orphan.
#[tokio::test]
async fn agent_restarted_mid_launch_fails_the_task_and_kills_the_orphan() -> anyhow::Result<()> {
    let CrashedAgent {
        _master,
        dir,
        config,
        addr,
        mut fw,
        pid,
    } = crash_with_running_task("mid-launch").await?;
    edit_task_record(dir.path(), &fw.id, "t", |r| {
        r["handle"] = serde_json::Value::Null;
        r["state"] = "TASK_STARTING".into();
    })?;
    assert!(pid_alive(pid));

    let agent = restart_agent(config, addr).await?;
    let failed = fw.wait_state("t", S::TaskFailed).await?;
    assert_eq!(
        failed.reason,
        reason(v1::task_status::Reason::AgentRestarted),
        "{failed:?}"
    );
    agora_tests::eventually("orphan killed", WAIT, || async {
        (!pid_alive(pid)).then_some(())
    })
    .await?;
    agent.shutdown().await;
    Ok(())
}

/// The agent died after checkpointing a kill request but before the
/// container was gone: the restarted agent kills it again and reports
/// TASK_KILLED.
#[tokio::test]
async fn agent_restarted_mid_kill_kills_again() -> anyhow::Result<()> {
    let CrashedAgent {
        _master,
        dir,
        config,
        addr,
        mut fw,
        pid,
    } = crash_with_running_task("mid-kill").await?;
    edit_task_record(dir.path(), &fw.id, "t", |r| {
        r["kill"] = "Requested".into();
        r["state"] = "TASK_KILLING".into();
    })?;
    assert!(pid_alive(pid), "the kill never reached the task");

    let agent = restart_agent(config, addr).await?;
    let killed = fw.wait_state("t", S::TaskKilled).await?;
    assert_eq!(
        killed.reason,
        reason(v1::task_status::Reason::Unspecified),
        "{killed:?}"
    );
    agora_tests::eventually("task process gone", WAIT, || async {
        (!pid_alive(pid)).then_some(())
    })
    .await?;
    agent.shutdown().await;
    Ok(())
}
