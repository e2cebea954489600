//! Process runtime against real cgroups.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agora_model::{CommandSpec, Scalar};
use agora_runtime::{Limits, ProcessConfig, ProcessRuntime, Runtime, RuntimeError, RuntimeKind};

use crate::common::{
    ALLOCATE_100M, TestAgent, cgroup_file, cgroup_v2, process_or_skip, sandbox_file, sh,
};

#[tokio::test]
async fn process_launch_wait_reports_exit_codes_logs_and_env() {
    let Some(rt) = process_or_skip() else { return };
    let agent = TestAgent::new();
    let ok = agent.spec(
        sh("echo out-$AGORA_TEST; echo home=${HOME:-unset}; pwd; echo err >&2"),
        None,
    );
    let h = rt.launch(&ok).await.unwrap();
    assert_eq!(h.kind, RuntimeKind::Process);
    let status = rt.wait(&h).await.unwrap();
    assert!(status.success(), "{status:?}");
    let out = sandbox_file(&ok, "stdout");
    assert!(out.contains("out-yes"), "{out}");
    assert!(out.contains("home=unset"), "agent env leaked: {out}");
    assert!(
        out.contains(ok.sandbox.to_str().unwrap()),
        "cwd is not the sandbox: {out}"
    );
    assert_eq!(sandbox_file(&ok, "stderr").trim(), "err");
    rt.cleanup(&h).await.unwrap();

    let three = agent.spec(sh("echo failing >&2; exit 3"), None);
    let h = rt.launch(&three).await.unwrap();
    let status = rt.wait(&h).await.unwrap();
    assert_eq!(
        (status.code, status.signal, status.oom_killed),
        (Some(3), None, false),
        "{status:?}"
    );
    assert!(
        status.message.contains("status 3") && status.message.contains("failing"),
        "{}",
        status.message
    );
    rt.cleanup(&h).await.unwrap();
    assert!(
        !std::path::Path::new("/sys/fs/cgroup/memory")
            .join(h.cgroup.unwrap())
            .exists()
    );
}

#[tokio::test]
async fn process_kill_honours_grace_then_sigkills() {
    let Some(rt) = process_or_skip() else { return };
    let agent = TestAgent::new();
    // Exits by itself on SIGTERM, well within the grace period.
    let polite = agent.spec(
        sh("trap 'echo bye; exit 0' TERM; while true; do sleep 0.05; done"),
        None,
    );
    let h = rt.launch(&polite).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    rt.kill(&h, Duration::from_secs(10)).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    let status = rt.wait(&h).await.unwrap();
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(sandbox_file(&polite, "stdout").contains("bye"));
    rt.cleanup(&h).await.unwrap();

    // Ignores SIGTERM (and so do its children): SIGKILL after the grace.
    let stubborn = agent.spec(
        sh("trap '' TERM; sleep 1000 & while true; do sleep 0.05; done"),
        None,
    );
    let h = rt.launch(&stubborn).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    rt.kill(&h, Duration::from_secs(1)).await.unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "took {took:?}"
    );
    let status = rt.wait(&h).await.unwrap();
    assert_eq!(status.signal, Some(9), "{status:?}");
    // The background `sleep 1000` died with the rest of the cgroup.
    assert_eq!(
        cgroup_file(h.cgroup.as_deref().unwrap(), "pids", "cgroup.procs"),
        ""
    );
    rt.cleanup(&h).await.unwrap();
}

#[tokio::test]
async fn process_limits_are_written_to_the_cgroup() {
    let Some(rt) = process_or_skip() else { return };
    let agent = TestAgent::new();
    let mut spec = agent.spec(sh("sleep 30"), None);
    spec.limits = Limits {
        cpus: Scalar::from_milli(500),
        mem_mb: Scalar::from_units(64),
        pids: Some(50),
    };
    let h = rt.launch(&spec).await.unwrap();
    let rel = h.cgroup.clone().unwrap();
    assert_eq!(
        rel,
        format!("agora-test/{}/{}", agent.agent_id, spec.container_id)
    );
    if cgroup_v2() {
        assert_eq!(cgroup_file(&rel, "cpu", "cpu.weight"), "20");
        assert_eq!(cgroup_file(&rel, "cpu", "cpu.max"), "50000 100000");
        assert_eq!(
            cgroup_file(&rel, "memory", "memory.max"),
            (64u64 << 20).to_string()
        );
    } else {
        assert_eq!(cgroup_file(&rel, "cpu", "cpu.shares"), "512");
        assert_eq!(cgroup_file(&rel, "cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cgroup_file(&rel, "cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(
            cgroup_file(&rel, "memory", "memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
    }
    assert_eq!(cgroup_file(&rel, "pids", "pids.max"), "50");
    // The task (wrapper and sleep) is inside.
    let procs = cgroup_file(&rel, "memory", "cgroup.procs");
    assert!(
        procs.lines().any(|p| p == h.pid.unwrap().to_string()),
        "{procs}"
    );
    rt.kill(&h, Duration::from_millis(100)).await.unwrap();
    rt.cleanup(&h).await.unwrap();
}

#[tokio::test]
async fn process_over_memory_limit_is_oom_killed() {
    let Some(rt) = process_or_skip() else { return };
    let agent = TestAgent::new();
    let mut spec = agent.spec(sh(ALLOCATE_100M), None);
    spec.limits.mem_mb = Scalar::from_units(32);
    let h = rt.launch(&spec).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), rt.wait(&h))
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.oom_killed,
        "{status:?} stdout={}",
        sandbox_file(&spec, "stdout")
    );
    assert!(!status.success());
    assert!(
        status.message.contains("Memory limit"),
        "{}",
        status.message
    );
    rt.cleanup(&h).await.unwrap();
}

#[tokio::test]
async fn process_missing_command_is_reported() {
    let Some(rt) = process_or_skip() else { return };
    let agent = TestAgent::new();
    let spec = agent.spec(sh("no-such-command-agora --flag"), None);
    let h = rt.launch(&spec).await.unwrap();
    let status = rt.wait(&h).await.unwrap();
    assert_eq!(status.code, Some(127));
    assert!(status.command_not_found, "{status:?}");
    assert!(status.message.contains("not found"), "{}", status.message);
    rt.cleanup(&h).await.unwrap();

    let argv = CommandSpec {
        value: "no-such-command-agora".into(),
        ..Default::default()
    };
    match rt.launch(&agent.spec(Some(argv), None)).await {
        Err(RuntimeError::CommandNotFound(msg)) => {
            assert!(msg.contains("no-such-command-agora"), "{msg}")
        }
        other => panic!("expected CommandNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn process_exec_runs_in_task_context_with_timeout() {
    let Some(rt) = process_or_skip() else { return };
    let agent = TestAgent::new();
    let spec = agent.spec(sh("sleep 30"), None);
    let h = rt.launch(&spec).await.unwrap();
    let env = BTreeMap::from([("CHECK".to_string(), "v".to_string())]);
    let t = Duration::from_secs(5);
    assert_eq!(
        rt.exec(&h, "test \"$CHECK\" = v && test -f stdout", &env, t)
            .await
            .unwrap(),
        0
    );
    assert_eq!(rt.exec(&h, "exit 2", &env, t).await.unwrap(), 2);
    let in_cgroup = format!("grep -q {} /proc/self/cgroup", spec.container_id);
    assert_eq!(rt.exec(&h, &in_cgroup, &env, t).await.unwrap(), 0);
    let start = Instant::now();
    let err = rt
        .exec(&h, "sleep 10", &env, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Timeout(..)), "{err}");
    assert!(start.elapsed() < Duration::from_secs(3));
    rt.kill(&h, Duration::from_millis(100)).await.unwrap();
    rt.cleanup(&h).await.unwrap();
}

#[tokio::test]
async fn process_recovery_finds_live_tasks_exit_codes_and_orphans() {
    let Some(rt) = process_or_skip() else { return };
    let agent = TestAgent::new();
    let spec = agent.spec(sh("sleep 1.5; echo done; exit 4"), None);
    let h = rt.launch(&spec).await.unwrap();
    let orphan_spec = agent.spec(sh("sleep 30"), None);
    let orphan = rt.launch(&orphan_spec).await.unwrap();
    let finished_spec = agent.spec(sh("exit 5"), None);
    let finished = rt.launch(&finished_spec).await.unwrap();
    rt.wait(&finished).await.unwrap();
    drop(rt);

    // A new runtime, as after an agent restart: nothing is its child.
    let rt = process_or_skip().unwrap();
    let report = rt
        .recover(&agent.agent_id, &[h.clone(), finished.clone()])
        .await
        .unwrap();
    assert_eq!(report.alive, vec![h.clone()]);
    assert_eq!(report.exited.len(), 1);
    assert_eq!(report.exited[0].status.as_ref().unwrap().code, Some(5));
    assert_eq!(report.orphans.len(), 1, "{report:?}");
    assert_eq!(report.orphans[0].cgroup, orphan.cgroup);

    let status = tokio::time::timeout(Duration::from_secs(10), rt.wait(&h))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code, Some(4), "{status:?}");
    assert!(sandbox_file(&spec, "stdout").contains("done"));

    // Orphans have no pid: kill and wait go through the cgroup.
    rt.kill(&report.orphans[0], Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(
        cgroup_file(orphan.cgroup.as_deref().unwrap(), "pids", "cgroup.procs"),
        ""
    );
    for handle in [&h, &finished, &report.orphans[0]] {
        rt.cleanup(handle).await.unwrap();
    }
}

#[tokio::test]
async fn process_without_cgroups_runs_and_kills_by_process_group() {
    let config = ProcessConfig {
        cgroup_parent: "unused".into(),
        cgroups: false,
    };
    let rt = ProcessRuntime::new(config).unwrap();
    let agent = TestAgent::new();
    let spec = agent.spec(sh("exit 6"), None);
    let h = rt.launch(&spec).await.unwrap();
    assert_eq!(h.cgroup, None);
    assert_eq!(rt.wait(&h).await.unwrap().code, Some(6));
    let spec = agent.spec(sh("trap '' TERM; while true; do sleep 0.05; done"), None);
    let h = rt.launch(&spec).await.unwrap();
    // Let the shell install its trap first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    rt.kill(&h, Duration::from_millis(200)).await.unwrap();
    assert_eq!(rt.wait(&h).await.unwrap().signal, Some(9));
    rt.cleanup(&h).await.unwrap();
}
