//! Framework descriptions as the master and agents use them.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::ids::{FrameworkId, Role};

/// Framework capabilities that change how the master treats a framework.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Capability {
    /// Gets TASK_UNREACHABLE/TASK_DROPPED/TASK_GONE instead of TASK_LOST.
    PartitionAware,
    /// Gets TASK_KILLING while a kill is in progress.
    TaskKillingState,
    /// May be offered agents with GPUs.
    GpuResources,
    /// Subscribes with several roles.
    MultiRole,
}

/// A framework's self-description (Mesos FrameworkInfo), validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    /// Set when re-subscribing.
    pub id: Option<FrameworkId>,
    /// Human-readable name.
    pub name: String,
    /// User tasks run as, by default.
    pub user: String,
    /// Roles the framework receives offers for; never empty (defaults to `*`).
    pub roles: Vec<Role>,
    /// Principal for authentication and accounting.
    pub principal: String,
    /// How long the master keeps the framework's tasks after it disconnects
    /// (Mesos default 0: killed at once).
    pub failover_timeout: Duration,
    /// Capabilities.
    pub capabilities: BTreeSet<Capability>,
    /// Whether agents checkpoint the framework's tasks.
    pub checkpoint: bool,
    /// Where the scheduler runs.
    pub hostname: String,
    /// Free-form labels.
    pub labels: BTreeMap<String, String>,
}

impl FrameworkInfo {
    /// A framework with defaults for everything but the name.
    pub fn named(name: &str) -> FrameworkInfo {
        FrameworkInfo {
            id: None,
            name: name.to_string(),
            user: "root".to_string(),
            roles: vec![Role::star()],
            principal: String::new(),
            failover_timeout: Duration::ZERO,
            capabilities: BTreeSet::new(),
            checkpoint: false,
            hostname: String::new(),
            labels: BTreeMap::new(),
        }
    }
    /// Has the capability?
    pub fn has(&self, c: Capability) -> bool {
        self.capabilities.contains(&c)
    }
}
