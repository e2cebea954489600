//! A task's environment, Marathon/Mesos style (pure).
use std::collections::BTreeMap;

use agora_model::TaskSpec;

/// `PATH` for process tasks: the process runtime clears the agent's
/// environment, and without a PATH `sh -c` would not find common programs.
/// Docker tasks keep their image's PATH.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `PORT_<NAME>` for a port name: upper case, anything but `[A-Z0-9_]`
/// becomes `_` so the result is a valid shell variable name.
pub fn port_var_name(name: &str) -> String {
    let mut out = String::from("PORT_");
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    out
}

/// The environment of a task: `HOST`, `PORT0..N` and `PORT` (the task's
/// ports in ascending order), `PORTS` (comma list), `PORT_<NAME>`,
/// `AGORA_TASK_ID`, `AGORA_SANDBOX`, `MESOS_TASK_ID`, `MESOS_SANDBOX`, a
/// `PATH` for process tasks, then the task's own environment, which wins.
pub fn task_env(spec: &TaskSpec, host: &str, sandbox: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if spec.docker.is_none() {
        env.insert("PATH".to_string(), DEFAULT_PATH.to_string());
    }
    env.insert("HOST".to_string(), host.to_string());
    let ports: Vec<u64> = spec.resources.ports().values().collect();
    for (i, p) in ports.iter().enumerate() {
        env.insert(format!("PORT{i}"), p.to_string());
    }
    if let Some(first) = ports.first() {
        env.insert("PORT".to_string(), first.to_string());
    }
    env.insert(
        "PORTS".to_string(),
        ports
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(","),
    );
    for (name, index) in &spec.port_names {
        if let Some(p) = usize::try_from(*index).ok().and_then(|i| ports.get(i)) {
            env.insert(port_var_name(name), p.to_string());
        }
    }
    let id = spec.id.to_string();
    env.insert("AGORA_TASK_ID".to_string(), id.clone());
    env.insert("MESOS_TASK_ID".to_string(), id);
    env.insert("AGORA_SANDBOX".to_string(), sandbox.to_string());
    env.insert("MESOS_SANDBOX".to_string(), sandbox.to_string());
    if let Some(cmd) = &spec.command {
        env.extend(cmd.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_model::{AgentId, CommandSpec, Resources, TaskId};

    fn spec() -> TaskSpec {
        let mut cmd = CommandSpec::shell("true");
        cmd.env.insert("HOST".into(), "override".into());
        cmd.env.insert("X".into(), "1".into());
        TaskSpec {
            id: TaskId::new_unchecked("t1"),
            name: "t1".into(),
            agent_id: AgentId::new_unchecked("a"),
            resources: Resources::parse("cpus:1;mem:32;ports:[31005-31006,31001-31001]").unwrap(),
            command: Some(cmd),
            docker: None,
            health_check: None,
            kill_grace: None,
            labels: Default::default(),
            port_names: vec![
                ("http".into(), 1),
                ("admin-ui".into(), 2),
                ("nope".into(), 9),
            ],
        }
    }

    #[test]
    fn ports_are_ascending_and_named() {
        let env = task_env(&spec(), "h", "/sb");
        assert_eq!(env["PORT0"], "31001");
        assert_eq!(env["PORT1"], "31005");
        assert_eq!(env["PORT2"], "31006");
        assert_eq!(env["PORT"], "31001");
        assert_eq!(env["PORTS"], "31001,31005,31006");
        assert_eq!(env["PORT_HTTP"], "31005");
        assert_eq!(env["PORT_ADMIN_UI"], "31006");
        assert!(!env.contains_key("PORT_NOPE"));
    }

    #[test]
    fn task_env_wins_and_ids_are_set() {
        let env = task_env(&spec(), "h", "/sb");
        assert_eq!(env["HOST"], "override");
        assert_eq!(env["X"], "1");
        assert_eq!(env["MESOS_TASK_ID"], "t1");
        assert_eq!(env["AGORA_SANDBOX"], "/sb");
        assert_eq!(env["PATH"], DEFAULT_PATH);
    }
}
