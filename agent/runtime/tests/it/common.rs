//! Fixtures shared by the runtime tests.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agora_model::{AgentId, CommandSpec, DockerSpec, FrameworkId, Scalar, TaskId};
use agora_runtime::{
    DockerConfig, DockerRuntime, LABEL_AGENT_ID, LaunchSpec, Limits, ProcessConfig, ProcessRuntime,
};

/// Cgroup parent used by these tests (separate from a real agent's).
pub(crate) const TEST_CGROUP_PARENT: &str = "agora-test";
/// Pull timeout for tests: there is no registry here, so keep failures quick.
pub(crate) const TEST_PULL_TIMEOUT: Duration = Duration::from_secs(5);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn skip(what: &str, why: &str) {
    assert!(!in_ci(), "{what} unavailable with CI=true: {why}");
    eprintln!("SKIPPED: {what} unavailable ({why}); set CI=true to make this a failure");
}

/// A connected Docker runtime with the test image built, or `None` (with a
/// printed note) when no daemon is reachable. Panics under `CI=true`.
pub(crate) async fn docker_or_skip() -> Option<(DockerRuntime, String)> {
    let config = DockerConfig {
        pull_timeout: TEST_PULL_TIMEOUT,
        ..Default::default()
    };
    match DockerRuntime::connect(config).await {
        Ok(rt) => {
            let image = agora_runtime::testing::ensure_test_image(rt.client())
                .await
                .unwrap();
            Some((rt, image))
        }
        Err(e) => {
            skip("docker", &e.to_string());
            None
        }
    }
}

/// A process runtime under [`TEST_CGROUP_PARENT`], or `None` when cgroups are
/// not usable (not root, no hierarchy). Panics under `CI=true`.
pub(crate) fn process_or_skip() -> Option<ProcessRuntime> {
    match ProcessRuntime::new(ProcessConfig {
        cgroup_parent: TEST_CGROUP_PARENT.into(),
        cgroups: true,
    }) {
        Ok(rt) => Some(rt),
        Err(e) => {
            skip("cgroups", &e.to_string());
            None
        }
    }
}

/// One test's agent: a unique agent id and sandbox root. On drop it removes
/// every container labelled with its agent id and every cgroup under
/// `agora-test/<agent_id>`, even when the test failed half-way.
pub(crate) struct TestAgent {
    pub(crate) agent_id: AgentId,
    dir: tempfile::TempDir,
    next: std::cell::Cell<u32>,
}

impl TestAgent {
    pub(crate) fn new() -> TestAgent {
        TestAgent {
            agent_id: AgentId::new_unchecked(format!(
                "test-agent-{}",
                &AgentId::random().as_str()[..8]
            )),
            dir: tempfile::tempdir().unwrap(),
            next: std::cell::Cell::new(0),
        }
    }

    /// A launch spec for a fresh task with its own sandbox.
    pub(crate) fn spec(
        &self,
        command: Option<CommandSpec>,
        docker: Option<DockerSpec>,
    ) -> LaunchSpec {
        let n = self.next.get();
        self.next.set(n + 1);
        let task_id = TaskId::new_unchecked(format!("task-{n}"));
        let sandbox = self.dir.path().join(format!("sandbox-{n}"));
        std::fs::create_dir_all(&sandbox).unwrap();
        LaunchSpec {
            container_id: agora_runtime::container_id_for(
                &task_id,
                &AgentId::random().as_str()[..8],
            ),
            task_id,
            agent_id: self.agent_id.clone(),
            framework_id: FrameworkId::new_unchecked("test-framework"),
            sandbox,
            command,
            docker,
            env: BTreeMap::from([("AGORA_TEST".to_string(), "yes".to_string())]),
            limits: Limits {
                cpus: Scalar::from_milli(500),
                mem_mb: Scalar::from_units(64),
                pids: None,
            },
        }
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let agent = self.agent_id.to_string();
        remove_test_cgroups(&agent);
        // Drop cannot await; a thread with its own runtime can.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(remove_test_containers(&agent));
        })
        .join();
    }
}

async fn remove_test_containers(agent: &str) {
    use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
    let Ok(docker) = bollard::Docker::connect_with_local_defaults() else {
        return;
    };
    let Ok(docker) = docker.negotiate_version().await else {
        return;
    };
    let filters =
        std::collections::HashMap::from([("label", vec![format!("{LABEL_AGENT_ID}={agent}")])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    for c in docker
        .list_containers(Some(options))
        .await
        .unwrap_or_default()
    {
        if let Some(id) = c.id {
            let _ = docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await;
        }
    }
}

fn remove_test_cgroups(agent: &str) {
    let Ok(roots) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut bases: Vec<PathBuf> = roots.filter_map(Result::ok).map(|e| e.path()).collect();
    bases.push(PathBuf::from("/sys/fs/cgroup"));
    for base in bases {
        let agent_dir = base.join(TEST_CGROUP_PARENT).join(agent);
        let Ok(tasks) = std::fs::read_dir(&agent_dir) else {
            continue;
        };
        for task in tasks.filter_map(Result::ok).filter(|e| e.path().is_dir()) {
            for _ in 0..50 {
                let procs =
                    std::fs::read_to_string(task.path().join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                if std::fs::remove_dir(task.path()).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir(&agent_dir);
    }
}

/// Reads a cgroup file of the task cgroup `rel` on v1 (per-controller
/// hierarchy) or v2 (unified).
pub(crate) fn cgroup_file(rel: &str, controller: &str, file: &str) -> String {
    let v1 = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel)
        .join(file);
    let path = if v1.exists() {
        v1
    } else {
        Path::new("/sys/fs/cgroup").join(rel).join(file)
    };
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Is this host cgroup v2-only?
pub(crate) fn cgroup_v2() -> bool {
    !Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
        && Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Reads a sandbox file (empty if missing).
pub(crate) fn sandbox_file(spec: &LaunchSpec, name: &str) -> String {
    std::fs::read_to_string(spec.sandbox.join(name)).unwrap_or_default()
}

/// A command that allocates ~100 MiB in a shell variable: well over the
/// 32 MiB limit the OOM tests set.
pub(crate) const ALLOCATE_100M: &str =
    r"x=$(dd if=/dev/zero bs=1M count=100 2>/dev/null | tr '\0' a); echo survived ${#x}";

/// A shell command spec.
pub(crate) fn sh(cmd: &str) -> Option<CommandSpec> {
    Some(CommandSpec::shell(cmd))
}
