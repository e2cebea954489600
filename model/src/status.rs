//! Task status updates and offers as domain values.
use serde::{Deserialize, Serialize};

use crate::attributes::Attributes;
use crate::ids::{AgentId, FrameworkId, OfferId, Role, TaskId};
use crate::resources::Resources;
use crate::task::{TaskState, TaskStatusReason};

/// Who produced a status update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusSource {
    /// The master (reconciliation, agent loss, invalid launches).
    #[default]
    Master,
    /// The agent.
    Agent,
    /// The task's executor (our agent's runtimes count as executors).
    Executor,
}

/// One task status update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The task.
    pub task_id: TaskId,
    /// Its framework.
    pub framework_id: Option<FrameworkId>,
    /// Its agent, if known.
    pub agent_id: Option<AgentId>,
    /// New state.
    pub state: TaskState,
    /// Human-readable detail.
    pub message: String,
    /// Who produced it.
    pub source: StatusSource,
    /// Why.
    pub reason: TaskStatusReason,
    /// Set on updates that must be acknowledged (at-least-once delivery).
    pub uuid: Option<uuid::Uuid>,
    /// Seconds since the Unix epoch.
    pub timestamp: f64,
    /// Health, on RUNNING updates of tasks with a health check.
    pub healthy: Option<bool>,
    /// Exit code of a task that exited.
    pub exit_code: Option<i32>,
}

impl TaskStatus {
    /// A status with no uuid (not acknowledged), empty message, unspecified reason.
    pub fn new(
        task_id: TaskId,
        state: TaskState,
        source: StatusSource,
        timestamp: f64,
    ) -> TaskStatus {
        TaskStatus {
            task_id,
            framework_id: None,
            agent_id: None,
            state,
            message: String::new(),
            source,
            reason: TaskStatusReason::Unspecified,
            uuid: None,
            timestamp,
            healthy: None,
            exit_code: None,
        }
    }
}

/// Resources on one agent offered to one framework for one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// Offer id.
    pub id: OfferId,
    /// Who it is for.
    pub framework_id: FrameworkId,
    /// Where.
    pub agent_id: AgentId,
    /// The agent's hostname.
    pub hostname: String,
    /// What.
    pub resources: Resources,
    /// The agent's attributes.
    pub attributes: Attributes,
    /// The role the resources are allocated to.
    pub role: Role,
}
