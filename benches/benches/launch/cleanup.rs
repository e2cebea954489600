//! Removing everything the launch bench started: Agora tasks are killed
//! through the framework, then their containers and cgroups are removed
//! with the runtimes' `cleanup`; the direct launches are killed and cleaned
//! up the same way; the CLI's containers are removed by id.
use std::path::Path;
use std::time::Duration;

use agora_proto::v1;
use agora_runtime::{ContainerHandle, ProcessConfig, ProcessRuntime, Runtime, RuntimeKind};

use crate::Cluster;

/// Agora tasks killed at a time: a few hundred kills at once stall the
/// agent's event loop for over a second (each kill and each TASK_KILLED is
/// checkpointed with fsyncs inside the loop) and load the daemon.
const KILL_BATCH: usize = 20;

/// Removes everything the run started; keeps going past errors and
/// reports the first one.
pub(crate) async fn cleanup(c: &mut Cluster) -> anyhow::Result<()> {
    let mut first_error: Option<anyhow::Error> = None;
    let mut note = |r: anyhow::Result<()>| {
        if let Err(e) = r {
            eprintln!("cleanup: {e:#}");
            first_error.get_or_insert(e);
        }
    };
    // Agora tasks: handles first (the agent forgets a task once its
    // TASK_KILLED is acknowledged), then kill through the framework.
    let mut handles: Vec<ContainerHandle> = Vec::new();
    if let Some(agent) = &c.agent {
        match agent.state().await {
            Ok(state) => {
                for t in state["tasks"].as_array().into_iter().flatten() {
                    let h = serde_json::from_value(t["container"]["handle"].clone());
                    handles.extend(h.ok().flatten());
                }
            }
            Err(e) => note(Err(e.into())),
        }
    }
    for batch in c.agora_tasks.chunks(KILL_BATCH) {
        for id in batch {
            note(c.framework.kill(&c.agent_id, id).await);
        }
        for id in batch {
            let killed = c.framework.wait_state(id, v1::TaskState::TaskKilled).await;
            note(killed.map(drop));
        }
    }
    if let Some(agent) = c.agent.take() {
        agent.shutdown().await;
    }
    if let Some(master) = c.master.take() {
        master.shutdown().await;
    }
    // The runtimes' cleanup removes exited containers and task cgroups; a
    // runtime on the agent's cgroup parent may clean up its tasks.
    let agent_process = ProcessRuntime::new(ProcessConfig {
        cgroup_parent: c.cgroup_parent.clone(),
        cgroups: true,
    });
    for h in &handles {
        let r = match (h.kind, &agent_process) {
            (RuntimeKind::Docker, _) => c.docker.cleanup(h).await.map_err(Into::into),
            (RuntimeKind::Process, Ok(p)) => p.cleanup(h).await.map_err(Into::into),
            (RuntimeKind::Process, Err(e)) => Err(anyhow::anyhow!("process runtime: {e}")),
        };
        note(r);
    }
    for h in &c.direct {
        let r = match h.kind {
            RuntimeKind::Docker => c.docker.kill(h, Duration::ZERO).await,
            RuntimeKind::Process => c.process.kill(h, Duration::ZERO).await,
        };
        note(r.map_err(Into::into));
        let r = match h.kind {
            RuntimeKind::Docker => c.docker.cleanup(h).await,
            RuntimeKind::Process => c.process.cleanup(h).await,
        };
        note(r.map_err(Into::into));
    }
    // The CLI's containers, and anything labelled by either agent id that
    // the steps above missed (e.g. after a failed launch).
    let mut ids = std::mem::take(&mut c.cli_ids);
    for agent in [c.agent_id.clone(), c.direct_agent.to_string()] {
        ids.extend(docker_ids(&format!("label=agora.agent_id={agent}")).await?);
    }
    for chunk in ids.chunks(50) {
        let out = tokio::process::Command::new("docker")
            .args(["rm", "-f"])
            .args(chunk)
            .output()
            .await?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            note(Err(anyhow::anyhow!("docker rm: {err}")));
        }
    }
    for parent in [&c.cgroup_parent, &c.direct_parent] {
        remove_cgroup_parent(parent);
    }
    first_error.map_or(Ok(()), Err)
}

async fn docker_ids(filter: &str) -> anyhow::Result<Vec<String>> {
    let out = tokio::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", filter])
        .output()
        .await?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect())
}

/// Removes `<hierarchy>/<parent>/<agent>` and `<hierarchy>/<parent>` in
/// every cgroup hierarchy: the runtime removes task cgroups but leaves the
/// parents it created (empty by now, so rmdir is all it takes).
fn remove_cgroup_parent(parent: &str) {
    let root = Path::new("/sys/fs/cgroup");
    let hierarchies = std::fs::read_dir(root)
        .map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in hierarchies
        .iter()
        .map(|h| h.join(parent))
        .chain([root.join(parent)])
    {
        let children = std::fs::read_dir(&dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default();
        for child in children.iter().filter(|p| p.is_dir()) {
            let _ = std::fs::remove_dir(child);
        }
        let _ = std::fs::remove_dir(&dir);
    }
}
