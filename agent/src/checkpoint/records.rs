//! What the checkpoint holds, as serde records. Changing these shapes means
//! bumping `FORMAT_VERSION`.
use std::path::PathBuf;

use agora_model::{AgentId, FrameworkId, TaskSpec, TaskState, TaskStatusReason};
use agora_runtime::ContainerHandle;
use serde::{Deserialize, Serialize};

/// Version of the on-disk format; a work dir with another version is refused.
pub const FORMAT_VERSION: u32 = 1;

/// `meta/agent.json`: whose work dir this is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Hostname of the agent that owns the work dir.
    pub hostname: String,
    /// Set once the master assigned one.
    pub agent_id: Option<AgentId>,
}

/// Why a kill was asked for; decides the reason of the final TASK_KILLED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KillCause {
    /// The framework (through the master) asked.
    Requested,
    /// Too many failed health checks.
    Unhealthy,
    /// The agent was shut down by its master. No code path asks for it any
    /// more (masters never send Shutdown); kept so that checkpoints that
    /// hold it still load.
    AgentShutdown,
}

impl KillCause {
    /// The reason carried by the TASK_KILLED update.
    pub fn reason(self) -> TaskStatusReason {
        match self {
            KillCause::Requested => TaskStatusReason::Unspecified,
            KillCause::Unhealthy => TaskStatusReason::TaskUnhealthy,
            KillCause::AgentShutdown => TaskStatusReason::AgentRemoved,
        }
    }
}

/// `meta/tasks/<framework>/<task>/task.json`: one task and its container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task's framework.
    pub framework_id: FrameworkId,
    /// The validated task description.
    pub spec: TaskSpec,
    /// Our id of its container (sandbox and cgroup directory name).
    pub container_id: String,
    /// The sandbox directory.
    pub sandbox: PathBuf,
    /// Last state the agent reported.
    pub state: TaskState,
    /// Set once the runtime launched the container.
    pub handle: Option<ContainerHandle>,
    /// Last health reported on a RUNNING update.
    pub healthy: Option<bool>,
    /// Set when a kill was asked for.
    pub kill: Option<KillCause>,
}
