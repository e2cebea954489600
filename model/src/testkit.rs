//! Fixtures for tests: each returns a valid value with defaults; tests
//! override the fields they care about (`TaskSpec { resources: .., ..task("t1") }`),
//! in the manner of Nomad's `mock` package. Enabled by the `testkit` feature.
use std::collections::BTreeMap;

use crate::{
    AgentId, CommandSpec, FrameworkInfo, Resources, StatusSource, TaskId, TaskSpec, TaskState,
    TaskStatus,
};

/// `cpus:0.1;mem:32`: the smallest task the tests launch.
pub fn small() -> Resources {
    Resources::cpus_mem_disk(0.1, 32.0, 0.0)
}

/// An agent's worth: `cpus:4;mem:4096;disk:10000`.
pub fn agent_resources() -> Resources {
    Resources::cpus_mem_disk(4.0, 4096.0, 10_000.0)
}

/// A shell task `sleep 600` on agent `a1` with `small()` resources.
pub fn task(id: &str) -> TaskSpec {
    TaskSpec {
        id: TaskId::new_unchecked(id),
        name: id.to_string(),
        agent_id: AgentId::new_unchecked("a1"),
        resources: small(),
        command: Some(CommandSpec {
            shell: true,
            value: "sleep 600".into(),
            arguments: Vec::new(),
            env: BTreeMap::new(),
            user: None,
        }),
        docker: None,
        health_check: None,
        kill_grace: None,
        labels: BTreeMap::new(),
        port_names: Vec::new(),
    }
}

/// A framework named `name` with Mesos' defaults (role `*`, failover 0).
pub fn framework(name: &str) -> FrameworkInfo {
    FrameworkInfo::named(name)
}

/// An agent's update for `task` in `state`, with a fresh uuid.
pub fn update(task: &TaskId, state: TaskState) -> TaskStatus {
    let mut st = TaskStatus::new(task.clone(), state, StatusSource::Executor, 0.0);
    st.uuid = Some(uuid::Uuid::new_v4());
    st
}

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_are_valid() {
        super::task("t1").validate().unwrap();
        assert!(super::agent_resources().contains(&super::small()));
    }
}
