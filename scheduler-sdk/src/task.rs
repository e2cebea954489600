//! `TaskBuilder`: a validated `TaskSpec` in a few chained calls.
use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

use agora_model::{
    AgentId, CommandSpec, DockerNetwork, DockerSpec, HealthCheck, ModelError, PortMapping,
    Resources, TaskId, TaskSpec,
};

use crate::error::SdkError;

/// Builds a [`TaskSpec`]; [`build`](TaskBuilder::build) validates it the way
/// the master will (something to run, a Docker image if Docker, port mappings
/// on the task's own ports, some cpus or mem).
///
/// ```ignore
/// let task = TaskBuilder::new("web-1").shell("python3 -m http.server $PORT0")
///     .resources(carved).build(&offer.agent_id)?;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct TaskBuilder {
    id: String,
    name: Option<String>,
    command: Option<CommandSpec>,
    env: BTreeMap<String, String>,
    user: Option<String>,
    docker: Option<DockerSpec>,
    resources: Resources,
    health_check: Option<HealthCheck>,
    kill_grace: Option<Duration>,
    labels: BTreeMap<String, String>,
    port_names: Vec<(String, u32)>,
}

impl TaskBuilder {
    /// A task with this id (a `TaskId` or any string; checked in `build`).
    pub fn new(id: impl Display) -> TaskBuilder {
        TaskBuilder {
            id: id.to_string(),
            ..Default::default()
        }
    }

    /// Human-readable name (defaults to the id).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Runs `cmd` under `/bin/sh -c`.
    pub fn shell(mut self, cmd: impl Into<String>) -> Self {
        self.command = Some(CommandSpec::shell(cmd));
        self
    }

    /// Runs `program` with `args` directly, without a shell. For Docker tasks
    /// an empty `program` keeps the image's entrypoint and passes `args` to it.
    pub fn exec(
        mut self,
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.command = Some(CommandSpec {
            shell: false,
            value: program.into(),
            arguments: args.into_iter().map(Into::into).collect(),
            ..Default::default()
        });
        self
    }

    /// A full command description (replaces `shell`/`exec`).
    pub fn command(mut self, command: CommandSpec) -> Self {
        self.command = Some(command);
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Runs as this user instead of the framework's.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Runs in a Docker container from `image` (host networking unless
    /// [`network`](TaskBuilder::network) says otherwise).
    pub fn docker(mut self, image: impl Into<String>) -> Self {
        self.docker.get_or_insert_with(DockerSpec::default).image = image.into();
        self
    }

    /// A full Docker description (replaces `docker`/`network`/`port_mapping`).
    pub fn docker_spec(mut self, spec: DockerSpec) -> Self {
        self.docker = Some(spec);
        self
    }

    /// Docker network mode.
    pub fn network(mut self, network: DockerNetwork) -> Self {
        self.docker.get_or_insert_with(DockerSpec::default).network = network;
        self
    }

    /// Maps `host_port` (one of the task's ports) to `container_port` over
    /// TCP; switches the container to bridge networking.
    pub fn port_mapping(mut self, host_port: u16, container_port: u16) -> Self {
        let d = self.docker.get_or_insert_with(DockerSpec::default);
        d.network = DockerNetwork::Bridge;
        d.port_mappings.push(PortMapping {
            host_port,
            container_port,
            protocol: "tcp".into(),
            name: None,
        });
        self
    }

    /// The exact resources the task holds, normally carved from an offer
    /// with [`OfferResources`](crate::OfferResources).
    pub fn resources(mut self, resources: Resources) -> Self {
        self.resources = resources;
        self
    }

    /// An agent-side health check.
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.health_check = Some(check);
        self
    }

    /// Time between SIGTERM and SIGKILL when the task is killed.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = Some(grace);
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Names the task's `index`-th port (ascending), exported as `PORT_<NAME>`.
    pub fn port_name(mut self, name: impl Into<String>, index: u32) -> Self {
        self.port_names.push((name.into(), index));
        self
    }

    /// The validated task, to run on `agent_id` (the agent of the offer its
    /// resources came from).
    pub fn build(self, agent_id: &AgentId) -> Result<TaskSpec, SdkError> {
        let id = TaskId::parse(self.id.clone()).map_err(SdkError::InvalidTask)?;
        let command = match self.command {
            Some(mut c) => {
                c.env.extend(self.env);
                c.user = self.user.or(c.user);
                Some(c)
            }
            // A Docker task may run its image's entrypoint with only extra
            // environment; that still needs a CommandSpec to carry it.
            None if self.docker.is_some() && (!self.env.is_empty() || self.user.is_some()) => {
                Some(CommandSpec {
                    env: self.env,
                    user: self.user,
                    ..Default::default()
                })
            }
            None => None,
        };
        for (i, (name, _)) in self.port_names.iter().enumerate() {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(SdkError::InvalidTask(ModelError::invalid(
                    format!("port_names[{i}]"),
                    format!("{name:?} is not a valid environment variable suffix"),
                )));
            }
        }
        let spec = TaskSpec {
            name: self.name.unwrap_or_else(|| id.to_string()),
            id,
            agent_id: agent_id.clone(),
            resources: self.resources,
            command,
            docker: self.docker,
            health_check: self.health_check,
            kill_grace: self.kill_grace,
            labels: self.labels,
            port_names: self.port_names,
        };
        spec.validate().map_err(SdkError::InvalidTask)?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_model::HealthCheckKind;

    fn agent() -> AgentId {
        AgentId::new_unchecked("a1")
    }

    fn res(s: &str) -> Resources {
        Resources::parse(s).expect("fixture parses")
    }

    #[test]
    fn shell_task_builds_with_defaults() {
        let t = TaskBuilder::new("t1")
            .shell("sleep 1")
            .env("A", "1")
            .resources(res("cpus:0.1;mem:32"))
            .label("k", "v")
            .kill_grace(Duration::from_secs(2))
            .build(&agent())
            .expect("valid");
        assert_eq!(t.id.as_str(), "t1");
        assert_eq!(t.name, "t1");
        assert_eq!(t.agent_id, agent());
        let cmd = t.command.expect("command");
        assert!(cmd.shell);
        assert_eq!(cmd.value, "sleep 1");
        assert_eq!(cmd.env.get("A").map(String::as_str), Some("1"));
        assert_eq!(t.labels.get("k").map(String::as_str), Some("v"));
        assert_eq!(t.kill_grace, Some(Duration::from_secs(2)));
    }

    #[test]
    fn docker_task_with_entrypoint_only_and_port_mapping() {
        let t = TaskBuilder::new("web")
            .docker("nginx:alpine")
            .port_mapping(31000, 80)
            .env("X", "y")
            .resources(res("cpus:0.5;mem:64;ports:[31000-31000]"))
            .health_check(HealthCheck::with_defaults(HealthCheckKind::Tcp {
                port: 31000,
            }))
            .port_name("http", 0)
            .build(&agent())
            .expect("valid");
        let d = t.docker.expect("docker");
        assert_eq!(d.network, DockerNetwork::Bridge);
        assert_eq!(d.port_mappings[0].container_port, 80);
        let cmd = t.command.expect("env needs a command spec");
        assert!(cmd.value.is_empty());
        assert_eq!(t.port_names, vec![("http".to_string(), 0)]);
    }

    #[test]
    fn validation_rejects_bad_tasks() {
        let ok_res = res("cpus:0.1;mem:32");
        let cases: Vec<(TaskBuilder, &str)> = vec![
            (
                TaskBuilder::new("").shell("x").resources(ok_res.clone()),
                "task_id",
            ),
            (
                TaskBuilder::new("a b").shell("x").resources(ok_res.clone()),
                "task_id",
            ),
            (TaskBuilder::new("t").resources(ok_res.clone()), "command"),
            (
                TaskBuilder::new("t").shell("  ").resources(ok_res.clone()),
                "command.value",
            ),
            (TaskBuilder::new("t").shell("x"), "resources"),
            (
                TaskBuilder::new("t").docker("").resources(ok_res.clone()),
                "container.docker.image",
            ),
            (
                TaskBuilder::new("t")
                    .docker("img")
                    .port_mapping(31000, 80)
                    .resources(ok_res.clone()),
                "container.docker.port_mappings[0].host_port",
            ),
            (
                TaskBuilder::new("t")
                    .shell("x")
                    .resources(ok_res)
                    .port_name("a-b", 0),
                "port_names[0]",
            ),
        ];
        for (builder, field) in cases {
            match builder.build(&agent()) {
                Err(SdkError::InvalidTask(ModelError::Invalid { field: f, .. })) => {
                    assert_eq!(f, field)
                }
                other => panic!("expected invalid {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn exec_and_task_id_values_are_accepted() {
        let t = TaskBuilder::new(TaskId::new_unchecked("t2"))
            .exec("/bin/echo", ["hi", "there"])
            .user("nobody")
            .name("echo")
            .resources(res("cpus:0.1"))
            .build(&agent())
            .expect("valid");
        let cmd = t.command.expect("command");
        assert!(!cmd.shell);
        assert_eq!(cmd.arguments, ["hi", "there"]);
        assert_eq!(cmd.user.as_deref(), Some("nobody"));
        assert_eq!(t.name, "echo");
    }
}
