//! Tasks: the validated launch description, states and reasons.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::ModelError;
use crate::ids::{AgentId, TaskId};
use crate::resources::Resources;

/// The 14 Mesos task states, including the partition-aware ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    /// Accepted by the master, not yet on the agent.
    #[serde(rename = "TASK_STAGING")]
    Staging,
    /// The agent is starting it.
    #[serde(rename = "TASK_STARTING")]
    Starting,
    /// Running.
    #[serde(rename = "TASK_RUNNING")]
    Running,
    /// Being killed (frameworks with TASK_KILLING_STATE).
    #[serde(rename = "TASK_KILLING")]
    Killing,
    /// Exited with status 0.
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    /// Exited non-zero, or could not run.
    #[serde(rename = "TASK_FAILED")]
    Failed,
    /// Killed on request.
    #[serde(rename = "TASK_KILLED")]
    Killed,
    /// The description was invalid.
    #[serde(rename = "TASK_ERROR")]
    Error,
    /// Lost (non-partition-aware frameworks).
    #[serde(rename = "TASK_LOST")]
    Lost,
    /// Never launched: transient failure.
    #[serde(rename = "TASK_DROPPED")]
    Dropped,
    /// The agent is out of contact; the task may come back.
    #[serde(rename = "TASK_UNREACHABLE")]
    Unreachable,
    /// The agent is gone for good.
    #[serde(rename = "TASK_GONE")]
    Gone,
    /// An operator marked the agent gone.
    #[serde(rename = "TASK_GONE_BY_OPERATOR")]
    GoneByOperator,
    /// The master knows nothing of it.
    #[serde(rename = "TASK_UNKNOWN")]
    Unknown,
}

impl TaskState {
    /// Every state, for metrics.
    pub const ALL: [TaskState; 14] = [
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Killing,
        TaskState::Finished,
        TaskState::Failed,
        TaskState::Killed,
        TaskState::Error,
        TaskState::Lost,
        TaskState::Dropped,
        TaskState::Unreachable,
        TaskState::Gone,
        TaskState::GoneByOperator,
        TaskState::Unknown,
    ];

    /// Terminal states free the task's resources (Mesos `isTerminalState`).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished
                | TaskState::Failed
                | TaskState::Killed
                | TaskState::Error
                | TaskState::Lost
                | TaskState::Dropped
                | TaskState::Gone
                | TaskState::GoneByOperator
        )
    }

    /// The Mesos name, e.g. `TASK_RUNNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Staging => "TASK_STAGING",
            TaskState::Starting => "TASK_STARTING",
            TaskState::Running => "TASK_RUNNING",
            TaskState::Killing => "TASK_KILLING",
            TaskState::Finished => "TASK_FINISHED",
            TaskState::Failed => "TASK_FAILED",
            TaskState::Killed => "TASK_KILLED",
            TaskState::Error => "TASK_ERROR",
            TaskState::Lost => "TASK_LOST",
            TaskState::Dropped => "TASK_DROPPED",
            TaskState::Unreachable => "TASK_UNREACHABLE",
            TaskState::Gone => "TASK_GONE",
            TaskState::GoneByOperator => "TASK_GONE_BY_OPERATOR",
            TaskState::Unknown => "TASK_UNKNOWN",
        }
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a status update happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatusReason {
    /// No particular reason.
    #[default]
    Unspecified,
    /// The command could not be run.
    CommandExecutorFailed,
    /// The container could not be created or started.
    ContainerLaunchFailed,
    /// Killed by the kernel for exceeding its memory limit.
    ContainerLimitationMemory,
    /// Preempted.
    ContainerPreempted,
    /// The executor ended.
    ExecutorTerminated,
    /// The framework was removed.
    FrameworkRemoved,
    /// ACCEPT named offers that were not valid.
    InvalidOffers,
    /// Answer to a reconciliation request.
    Reconciliation,
    /// The resources asked for are not available.
    ResourcesUnknown,
    /// The agent lost contact with the master.
    AgentDisconnected,
    /// The agent was removed.
    AgentRemoved,
    /// The agent restarted.
    AgentRestarted,
    /// The agent is not known.
    AgentUnknown,
    /// The task description is invalid.
    TaskInvalid,
    /// Killed before it started.
    TaskKilledDuringLaunch,
    /// The task is not known.
    TaskUnknown,
    /// Health changed.
    TaskHealthCheckStatusUpdated,
    /// Killed after failing health checks.
    TaskUnhealthy,
    /// The Docker image is not present and could not be pulled.
    ContainerImageNotFound,
    /// The command was not found.
    CommandNotFound,
    /// The agent could not reach the master.
    MasterDisconnected,
}

/// How to run a command.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CommandSpec {
    /// true: `value` runs under `/bin/sh -c`. false: `value` is argv[0].
    pub shell: bool,
    /// Shell command line or program.
    pub value: String,
    /// argv[1..] when not a shell command (Docker: arguments to the entrypoint).
    pub arguments: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// User to run as, if not the agent's.
    pub user: Option<String>,
}

impl CommandSpec {
    /// A shell command.
    pub fn shell(cmd: impl Into<String>) -> CommandSpec {
        CommandSpec {
            shell: true,
            value: cmd.into(),
            ..Default::default()
        }
    }
}

/// Docker network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerNetwork {
    /// Share the host's network.
    #[default]
    Host,
    /// Docker's bridge with port mappings.
    Bridge,
    /// No network.
    None,
}

/// One bridge-mode port mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host port (one of the task's offered ports).
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// "tcp" or "udp".
    pub protocol: String,
    /// Optional name.
    pub name: Option<String>,
}

/// A Docker container to run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DockerSpec {
    /// Image reference.
    pub image: String,
    /// Network mode.
    pub network: DockerNetwork,
    /// Port mappings (bridge mode).
    pub port_mappings: Vec<PortMapping>,
    /// Pull even when present locally.
    pub force_pull: bool,
    /// Privileged container.
    pub privileged: bool,
    /// Overrides the image's entrypoint when not empty.
    pub entrypoint: Vec<String>,
    /// Extra container labels.
    pub labels: BTreeMap<String, String>,
}

/// What a health check probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckKind {
    /// GET on 127.0.0.1:port/path; 200-399 is healthy.
    Http {
        /// Host-side port.
        port: u16,
        /// Path.
        path: String,
    },
    /// A TCP connect to 127.0.0.1:port.
    Tcp {
        /// Host-side port.
        port: u16,
    },
    /// `/bin/sh -c value` (inside the container for Docker tasks); exit 0 is healthy.
    Command {
        /// Command line.
        value: String,
    },
}

/// A health check run by the agent (Mesos-style, agent side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// What to probe.
    pub kind: HealthCheckKind,
    /// Wait before the first check.
    pub delay: Duration,
    /// Between checks.
    pub interval: Duration,
    /// A check that takes longer fails.
    pub timeout: Duration,
    /// Kill after this many failures in a row.
    pub consecutive_failures: u32,
    /// Failures are ignored until the first success or this much time.
    pub grace_period: Duration,
    /// Report health only; never kill.
    pub never_kill: bool,
}

impl HealthCheck {
    /// Mesos defaults: delay 15 s, interval 10 s, timeout 20 s, 3 failures, grace 10 s.
    pub fn with_defaults(kind: HealthCheckKind) -> HealthCheck {
        HealthCheck {
            kind,
            delay: Duration::from_secs(15),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(20),
            consecutive_failures: 3,
            grace_period: Duration::from_secs(10),
            never_kill: false,
        }
    }
}

/// A validated task description, as launched on an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Framework-chosen id.
    pub id: TaskId,
    /// Human-readable name.
    pub name: String,
    /// Where it runs.
    pub agent_id: AgentId,
    /// Exactly what it holds (carved from an offer).
    pub resources: Resources,
    /// The command (required for the process runtime; optional for Docker).
    pub command: Option<CommandSpec>,
    /// Present: run in Docker.
    pub docker: Option<DockerSpec>,
    /// Optional health check.
    pub health_check: Option<HealthCheck>,
    /// SIGTERM → SIGKILL gap; the agent's default if absent.
    pub kill_grace: Option<Duration>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `PORT_<NAME>` names by port index.
    pub port_names: Vec<(String, u32)>,
}

/// A task as a framework describes it in ACCEPT, validated at the API edge
/// but not yet placed: the master binds it to the offers' agent when it
/// accepts. The inner spec's agent id is a placeholder that cannot escape,
/// since `bind` is the only way to a `TaskSpec`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTemplate {
    /// The agent the framework named, if any; it must be the offers' agent.
    pub requested_agent: Option<AgentId>,
    spec: TaskSpec,
}

impl TaskTemplate {
    /// Wraps a validated spec whose `agent_id` is not yet meaningful.
    pub fn new(requested_agent: Option<AgentId>, mut spec: TaskSpec) -> TaskTemplate {
        spec.agent_id = AgentId::new_unchecked("");
        TaskTemplate {
            requested_agent,
            spec,
        }
    }
    /// The framework's task id.
    pub fn id(&self) -> &TaskId {
        &self.spec.id
    }
    /// What the task asks for.
    pub fn resources(&self) -> &Resources {
        &self.spec.resources
    }
    /// The task placed on `agent`.
    pub fn bind(mut self, agent: AgentId) -> TaskSpec {
        self.spec.agent_id = agent;
        self.spec
    }
}

impl TaskSpec {
    /// Structural checks that do not need an offer: something to run, a
    /// Docker image if Docker, bridge mappings on the task's own ports.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.command.is_none() && self.docker.is_none() {
            return Err(ModelError::invalid(
                "command",
                "a task needs a command or a Docker container",
            ));
        }
        if let Some(cmd) = &self.command
            && self.docker.is_none()
            && cmd.value.trim().is_empty()
        {
            return Err(ModelError::invalid("command.value", "must not be empty"));
        }
        if let Some(d) = &self.docker {
            if d.image.trim().is_empty() {
                return Err(ModelError::invalid(
                    "container.docker.image",
                    "must not be empty",
                ));
            }
            let ports = self.resources.ports();
            for (i, m) in d.port_mappings.iter().enumerate() {
                if !ports.contains_value(u64::from(m.host_port)) {
                    return Err(ModelError::invalid(
                        format!("container.docker.port_mappings[{i}].host_port"),
                        format!("{} is not one of the task's ports {ports}", m.host_port),
                    ));
                }
                if m.protocol != "tcp" && m.protocol != "udp" {
                    return Err(ModelError::invalid(
                        format!("container.docker.port_mappings[{i}].protocol"),
                        format!("{:?} is not tcp or udp", m.protocol),
                    ));
                }
            }
        }
        self.resources.validate()?;
        if self.resources.cpus().is_zero() && self.resources.mem().is_zero() {
            return Err(ModelError::invalid(
                "resources",
                "a task needs some cpus or mem",
            ));
        }
        Ok(())
    }
}
