//! The real `agora` binary as separate processes: kill -9 and restart.
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use agora_tests::{SimAgent, SimAgentConfig, eventually, http_get};

mod common;
use common::{AGORA, free_port, spawn, start_dev, state};

#[tokio::test]
async fn master_kill_9_keeps_its_registry_and_agents_come_back() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let listen = addr.to_string();
    let data = dir.path().display().to_string();
    let args = [
        "master",
        "--etcd-listen",
        "off",
        "--listen",
        &listen,
        "--data-dir",
        &data,
        "--allocation-interval",
        "0.05",
        "--agent-ping-timeout",
        "0.1",
    ];
    let mut master = spawn(&args);
    let agent = SimAgent::start(&format!("http://{addr}"), SimAgentConfig::default()).await;
    let agent_id = tokio::time::timeout(Duration::from_secs(20), agent.agent_id()).await?;

    // kill -9: no chance to flush anything beyond what was already durable.
    master.0.kill()?;
    master.0.wait()?;
    let _master = spawn(&args);
    // The restarted master knows the agent from its registry before the
    // agent re-registers, and the agent then comes back under the same id.
    let st = eventually(
        "restarted master lists the agent as connected",
        Duration::from_secs(20),
        || async {
            let st = state(addr).await?;
            let a = st["agents"]
                .as_array()?
                .iter()
                .find(|a| a["id"] == agent_id.to_string())?
                .clone();
            (a["status"] == "connected").then_some(st)
        },
    )
    .await?;
    assert_eq!(
        st["agents"].as_array().map(Vec::len),
        Some(1),
        "same agent, not a new one: {st}"
    );
    assert!(
        dir.path().join("raft").is_dir(),
        "the Raft log is in the data dir"
    );
    Ok(())
}

#[tokio::test]
async fn dev_runs_a_cluster_and_stops_on_sigterm() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut dev, _, _) = start_dev(
        dir.path(),
        "cpus:2;mem:1024;disk:1024;ports:[32000-32010]",
        false,
    )
    .await?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dev.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = eventually(
        "agora dev exits after SIGTERM",
        Duration::from_secs(20),
        || {
            let s = dev.0.try_wait().ok().flatten();
            async move { s }
        },
    )
    .await?;
    assert!(status.success(), "{status:?}");
    Ok(())
}

mod agent_kill_9 {
    use super::*;
    use agora_proto::v1;
    use agora_tests::{RawFramework, shell_task};

    fn pid_alive(pid: i32) -> bool {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
    }

    fn find_file(root: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).ok()?.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n == name) {
                    return Some(p);
                }
            }
        }
        None
    }

    /// A process task keeps running while its agent is killed with SIGKILL
    /// and restarted; the restarted agent (same id) reports it RUNNING and
    /// can still kill it.
    #[tokio::test]
    async fn process_task_survives_agent_kill_9() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (mp, ap) = (free_port(), free_port());
        let maddr: SocketAddr = format!("127.0.0.1:{mp}").parse()?;
        let (ml, al) = (maddr.to_string(), format!("127.0.0.1:{ap}"));
        // Long ping window so the agent's absence does not make it unreachable.
        let _master = spawn(&[
            "master",
            "--etcd-listen",
            "off",
            "--listen",
            &ml,
            "--allocation-interval",
            "0.05",
            "--agent-ping-timeout",
            "1",
            "--max-agent-ping-timeouts",
            "60",
        ]);
        let work = dir.path().join("agent").display().to_string();
        let agent_args = [
            "agent",
            "--master",
            &ml,
            "--work-dir",
            &work,
            "--listen",
            &al,
            "--docker",
            "disabled",
            "--resources",
            "cpus:2;mem:1024;disk:1024;ports:[33000-33010]",
            "--hostname",
            "localhost",
        ];
        let mut agent = spawn(&agent_args);
        let endpoint = format!("http://{maddr}");
        let info = v1::FrameworkInfo {
            name: "kill9".into(),
            failover_timeout_seconds: 600.0,
            checkpoint: true,
            ..Default::default()
        };
        let mut fw = eventually(
            "the master accepts a framework",
            Duration::from_secs(20),
            || {
                let (e, i) = (endpoint.clone(), info.clone());
                async move { RawFramework::subscribe(&e, i).await.ok() }
            },
        )
        .await?;
        let offer = fw.offer().await?;
        let agent_id = offer.agent_id.clone();
        let task = shell_task(
            "survivor",
            "cpus:0.1;mem:32",
            "echo $$ > pid; exec sleep 600",
            &[],
        )?;
        fw.launch(&offer.offer_id, vec![task]).await?;
        fw.until_state(v1::TaskState::TaskRunning).await?;
        let pid_file = eventually("the task writes its pid", Duration::from_secs(10), || {
            let found = find_file(dir.path(), "pid");
            async move { found }
        })
        .await?;
        let pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
        assert!(pid_alive(pid));

        agent.0.kill()?; // SIGKILL
        agent.0.wait()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(pid_alive(pid), "the task must outlive its agent");
        let _agent = spawn(&agent_args);

        eventually(
            "the restarted agent re-registers with the task",
            Duration::from_secs(30),
            || async {
                let st = state(maddr).await?;
                let a = st["agents"]
                    .as_array()?
                    .iter()
                    .find(|a| a["id"] == agent_id.as_str())?
                    .clone();
                (a["status"] == "connected" && a["task_count"] == 1).then_some(())
            },
        )
        .await?;
        fw.client
            .reconcile(v1::ReconcileRequest {
                header: fw.header(),
                tasks: vec![],
            })
            .await?;
        let st = fw.update_acked().await?;
        assert_eq!(
            (st.task_id.as_str(), st.state),
            ("survivor", v1::TaskState::TaskRunning as i32)
        );
        assert!(pid_alive(pid));

        let kill = v1::KillRequest {
            header: fw.header(),
            task_id: "survivor".into(),
            agent_id,
            kill_policy: None,
        };
        fw.client.kill(kill).await?;
        fw.until_state(v1::TaskState::TaskKilled).await?;
        eventually(
            "the task process is gone",
            Duration::from_secs(10),
            || async { (!pid_alive(pid)).then_some(()) },
        )
        .await?;
        Ok(())
    }
}

mod dev_cluster_runs_the_sdk_example {
    use super::*;
    use agora_scheduler_sdk::model::{FrameworkInfo, ResourceRequest};
    use agora_scheduler_sdk::{BatchJob, SchedulerDriver, run_batch};

    /// The Docker daemon, or None when absent and not in CI (with CI=true a
    /// missing daemon fails the test: Docker must be tested for real there).
    async fn docker() -> Option<bollard::Docker> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let d = bollard::Docker::connect_with_local_defaults().ok();
        let d = match d {
            Some(d) => d.negotiate_version().await.ok(),
            None => None,
        };
        let alive = match &d {
            Some(d) => d.ping().await.is_ok(),
            None => false,
        };
        match (alive, ci) {
            (true, _) => d,
            (false, true) => panic!("CI=true but the Docker daemon is not reachable"),
            (false, false) => {
                eprintln!("SKIPPED the Docker part: no Docker daemon");
                None
            }
        }
    }

    async fn batch(
        master: &str,
        name: &str,
        image: Option<String>,
    ) -> anyhow::Result<agora_scheduler_sdk::BatchReport> {
        let mut job = BatchJob::new(
            3,
            "echo hello from $AGORA_TASK_ID; sleep 0.2",
            ResourceRequest::new(0.1, 32.0),
        );
        job.id_prefix = name.to_string();
        job.docker_image = image;
        let builder =
            SchedulerDriver::builder(vec![master.to_string()], FrameworkInfo::named(name));
        Ok(tokio::time::timeout(Duration::from_secs(120), run_batch(builder, job)).await??)
    }

    /// `agora dev` is a working one-machine cluster: the launch_n example's
    /// logic (the SDK's batch launcher) runs real process tasks on it, and
    /// real Docker tasks when a daemon is there.
    #[tokio::test]
    async fn launch_n_runs_real_tasks_on_agora_dev() -> anyhow::Result<()> {
        let docker = docker().await;
        let image = match &docker {
            Some(d) => Some(agora_runtime::testing::ensure_test_image(d).await?),
            None => None,
        };
        let dir = tempfile::tempdir()?;
        let (_dev, m, _) = start_dev(
            dir.path(),
            "cpus:2;mem:2048;disk:2048;ports:[34000-34010]",
            true,
        )
        .await?;
        let ml = m.to_string();
        let report = batch(&ml, "proc", None).await?;
        assert!(report.success(), "process tasks: {:?}", report.failed);
        assert_eq!(report.finished.len(), 3);
        if let Some(image) = image {
            let report = batch(&ml, "dock", Some(image)).await?;
            assert!(report.success(), "docker tasks: {:?}", report.failed);
            assert_eq!(report.finished.len(), 3);
        }
        // Nothing is left running or holding resources.
        let st = state(m).await.ok_or_else(|| anyhow::anyhow!("no /state"))?;
        assert_eq!(st["agents"][0]["task_count"], 0, "all tasks ended: {st}");
        Ok(())
    }
}

/// `agora dev` killed with SIGKILL and started again on the same data dir:
/// Marathon's apps come back from the masters' etcd keyspace, and their
/// process tasks, which kept running, are the same ones (nothing doubled,
/// nothing restarted).
#[tokio::test]
async fn dev_kill_9_keeps_marathon_apps_and_their_tasks() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data").display().to_string();
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let (ml, al, el, mal) = (
        addr(free_port()),
        addr(free_port()),
        addr(free_port()),
        addr(free_port()),
    );
    let args = [
        "dev",
        "--data-dir",
        &data,
        "--master-listen",
        &ml,
        "--agent-listen",
        &al,
        "--etcd-listen",
        &el,
        "--marathon-listen",
        &mal,
        "--no-docker",
        "--resources",
        "cpus:2;mem:1024;disk:1024;ports:[33040-33050]",
    ];
    let marathon: SocketAddr = mal.parse()?;
    let get_app = || async move {
        let (code, _, body) = agora_tests::http_request(marathon, "GET", "/v2/apps/survivor", None)
            .await
            .ok()?;
        (code == 200).then(|| serde_json::from_str::<serde_json::Value>(&body).ok())?
    };
    let running_ids = |v: &serde_json::Value| -> Option<Vec<String>> {
        let app = &v["app"];
        let tasks = app["tasks"].as_array()?;
        let mut ids: Vec<String> = tasks
            .iter()
            .filter(|t| t["state"] == "TASK_RUNNING")
            .filter_map(|t| t["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        (app["tasksRunning"] == 2 && ids.len() == 2).then_some(ids)
    };
    let mut dev = spawn(&args);
    eventually("Marathon leads", Duration::from_secs(60), || async {
        let (code, _) = http_get(marathon, "/v2/leader").await.ok()?;
        (code == 200).then_some(())
    })
    .await?;
    let app = r#"{"id": "/survivor", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 2}"#;
    let (code, _, body) =
        agora_tests::http_request(marathon, "POST", "/v2/apps", Some(app)).await?;
    assert_eq!(code, 201, "{body}");
    let before = eventually("2 tasks running", Duration::from_secs(60), || async {
        running_ids(&get_app().await?)
    })
    .await?;

    dev.0.kill()?;
    dev.0.wait()?;
    let _dev = spawn(&args);
    let after = eventually(
        "the same 2 tasks, running, after the restart",
        Duration::from_secs(90),
        || async { running_ids(&get_app().await?).filter(|ids| *ids == before) },
    )
    .await?;
    assert_eq!(after, before);
    let master: SocketAddr = ml.parse()?;
    let live = eventually("the master's view", Duration::from_secs(30), || async {
        let st = state(master).await?;
        let n: usize = st["frameworks"]
            .as_array()?
            .iter()
            .map(|f| {
                f["tasks"].as_array().map_or(0, |t| {
                    t.iter().filter(|t| t["state"] == "TASK_RUNNING").count()
                })
            })
            .sum();
        (n == 2).then_some(n)
    })
    .await?;
    assert_eq!(live, 2);
    let (code, _, body) =
        agora_tests::http_request(marathon, "DELETE", "/v2/apps/survivor", None).await?;
    assert_eq!(code, 200, "{body}");
    // Its tasks are killed before the processes go (no leftover sleeps).
    eventually("the tasks killed", Duration::from_secs(30), || async {
        let st = state(master).await?;
        let running = st["frameworks"].as_array()?.iter().any(|f| {
            f["tasks"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["state"] == "TASK_RUNNING"))
        });
        (!running).then_some(())
    })
    .await?;
    Ok(())
}

/// `agora capacity` and `agora fit` against `agora dev`: the cluster row
/// first, and fit's exit codes (0 when the count fits, 2 when it does not).
#[tokio::test]
async fn capacity_and_fit_commands_against_agora_dev() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_dev, m, _) = start_dev(
        dir.path(),
        "cpus:2;mem:1024;disk:1024;ports:[33060-33069]",
        false,
    )
    .await?;
    let master = m.to_string();
    let run = |args: &[&str]| {
        Command::new(AGORA)
            .args(args)
            .args(["--master", &master])
            .output()
    };
    let out = run(&["capacity"])?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows.len() >= 3, "{text}");
    // Totals (free may be offered to Marathon at this moment).
    assert!(
        rows[1].starts_with("* (cluster)") && rows[1].contains("/2 ") && rows[1].contains("/1024"),
        "{text}"
    );
    let json = run(&["capacity", "-o", "json"])?;
    let v: serde_json::Value = serde_json::from_slice(&json.stdout)?;
    assert_eq!(v["cluster"]["total"]["ports"], 10);

    let fits = run(&["fit", "--cpus", "0.5", "--mem", "256", "--count", "4"])?;
    assert_eq!(fits.status.code(), Some(0), "{fits:?}");
    assert!(String::from_utf8_lossy(&fits.stdout).starts_with("4 instance(s) of 4 wanted"));
    let too_many = run(&["fit", "--cpus", "0.5", "--mem", "256", "--count", "5"])?;
    assert_eq!(too_many.status.code(), Some(2), "{too_many:?}");
    let text = String::from_utf8_lossy(&too_many.stdout);
    assert!(text.contains("cpus"), "the bottleneck is named: {text}");
    let unique = run(&[
        "fit",
        "--constraint",
        "hostname:UNIQUE",
        "--count",
        "2",
        "-o",
        "json",
    ])?;
    assert_eq!(unique.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&unique.stdout)?;
    assert_eq!(v["placeable"], 1);
    let what_if = run(&[
        "fit",
        "--cpus",
        "0.5",
        "--mem",
        "256",
        "--count",
        "5",
        "--add-agent",
        "cpus:2;mem:1024@rack=r9",
    ])?;
    assert_eq!(what_if.status.code(), Some(0), "{what_if:?}");
    let bad = run(&["fit", "--constraint", "hostname:NOPE"])?;
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    Ok(())
}

/// `agora app deploy -f` follows the deployment: ✓ and exit 0 when the app
/// runs; exit 2 with the waiting reason when it cannot be placed in time.
#[tokio::test]
async fn app_deploy_follows_the_deployment_and_exits_by_outcome() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_dev, m, marathon) = start_dev(
        dir.path(),
        "cpus:2;mem:1024;disk:1024;ports:[33070-33079]",
        false,
    )
    .await?;
    let marathon = marathon.to_string();
    let file = dir.path().join("app.json");
    let deploy = |def: &str| -> anyhow::Result<std::process::Output> {
        std::fs::write(&file, def)?;
        let path = file.display().to_string();
        Ok(Command::new(AGORA)
            .args([
                "app",
                "deploy",
                "-f",
                &path,
                "--marathon",
                &marathon,
                "--timeout",
                "5",
            ])
            .output()?)
    };
    let ok = deploy(
        r#"{"id": "/cli/web", "cmd": "sleep 300", "cpus": 0.1, "mem": 16, "instances": 2}"#,
    )?;
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{text} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("✓ /cli/web deployed")),
        "{text}"
    );
    assert!(
        text.lines().count() >= 2,
        "progress lines before the end: {text}"
    );
    // kubectl-style listings of what runs.
    let master = m.to_string();
    let get = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new(AGORA)
            .arg("get")
            .args(args)
            .args(["--master", &master, "--marathon", &marathon])
            .output()?;
        anyhow::ensure!(out.status.success(), "agora get {args:?}: {out:?}");
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let apps = get(&["apps"])?;
    let row = apps
        .lines()
        .find(|l| l.starts_with("/cli/web"))
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        row.split_whitespace().take(4).collect::<Vec<_>>(),
        vec!["/cli/web", "2", "2", "0"],
        "{apps}"
    );
    let json: serde_json::Value = serde_json::from_str(&get(&["apps", "-o", "json"])?)?;
    assert!(
        json.as_array()
            .is_some_and(|a| a.iter().any(|x| x["id"] == "/cli/web"))
    );
    assert!(
        get(&["apps", "-o", "wide"])?
            .lines()
            .next()
            .is_some_and(|h| h.contains("IMAGE OR CMD"))
    );
    let tasks = get(&["tasks"])?;
    assert_eq!(
        tasks.lines().filter(|l| l.contains("cli_web.")).count(),
        2,
        "{tasks}"
    );
    assert_eq!(get(&["agents"])?.lines().count(), 2);
    assert!(get(&["roles"])?.contains('*'));
    assert_eq!(get(&["deployments"])?.lines().count(), 1, "only the header");
    let mut watch = Command::new(AGORA)
        .args(["get", "agents", "--watch", "--master", &master])
        .stdout(Stdio::piped())
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    watch.kill()?;
    let out = watch.wait_with_output()?;
    let refreshes = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("# "))
        .count();
    assert!(refreshes >= 2, "--watch refreshes: {out:?}");

    let big =
        deploy(r#"{"id": "/cli/big", "cmd": "sleep 300", "cpus": 50, "mem": 16, "instances": 1}"#)?;
    let text = String::from_utf8_lossy(&big.stdout);
    assert_eq!(big.status.code(), Some(2), "{text}");
    assert!(
        text.contains("not placeable") && text.contains("InsufficientCpus"),
        "{text}"
    );
    // `agora why`: the queue's reasons and where the shape fits now.
    let why = |app: &str| {
        Command::new(AGORA)
            .args(["why", app, "--master", &master, "--marathon", &marathon])
            .output()
    };
    let waiting = why("/cli/big")?;
    let text = String::from_utf8_lossy(&waiting.stdout);
    assert_eq!(
        waiting.status.code(),
        Some(2),
        "{text} {}",
        String::from_utf8_lossy(&waiting.stderr)
    );
    assert!(
        text.contains("declined for InsufficientCpus") && text.contains("right now 0 more"),
        "{text}"
    );
    assert!(text.contains("cpus"), "the bottleneck per agent: {text}");
    let fine = why("cli/web")?;
    assert_eq!(fine.status.code(), Some(0), "{fine:?}");
    assert!(String::from_utf8_lossy(&fine.stdout).contains("nothing waits"));
    for id in ["/cli/web", "/cli/big"] {
        let m: SocketAddr = marathon.parse()?;
        let _ = agora_tests::http_request(m, "DELETE", &format!("/v2/apps{id}?force=true"), None)
            .await?;
    }
    Ok(())
}

/// `agora agent drain|undrain ID` against `agora dev`: exit 0 and the
/// agent shown draining (and no longer), `--wait` returns once the agent
/// holds no task, an unknown agent is exit 1 with the master's message, and
/// `agora agent` with run flags still parses as running an agent.
#[tokio::test]
async fn agent_drain_and_undrain_commands() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_dev, m, _) = start_dev(dir.path(), "cpus:2;mem:1024;disk:1024", false).await?;
    let master = m.to_string();
    let st = state(m).await.ok_or_else(|| anyhow::anyhow!("no /state"))?;
    let id = st["agents"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let run = |args: &[&str]| {
        Command::new(AGORA)
            .args(args)
            .args(["--master", &master])
            .output()
    };

    let out = run(&[
        "agent",
        "drain",
        &id,
        "--deadline",
        "60",
        "--wait",
        "--timeout",
        "30",
    ])?;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("is draining") && text.contains("no tasks left"),
        "{text}"
    );
    let agents = run(&["agents"])?;
    assert!(
        String::from_utf8_lossy(&agents.stdout).contains("connected,draining"),
        "{agents:?}"
    );

    let out = run(&["agent", "undrain", &id])?;
    assert!(out.status.success(), "{out:?}");
    let st = state(m).await.ok_or_else(|| anyhow::anyhow!("no /state"))?;
    assert!(st["agents"][0]["maintenance"].is_null(), "{st}");

    let out = run(&["agent", "drain", "nobody"])?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HTTP 404"),
        "{out:?}"
    );
    // The run flags and the subcommands exclude each other.
    let both = Command::new(AGORA)
        .args(["agent", "--work-dir", "/nonexistent", "drain", &id])
        .output()?;
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    Ok(())
}
