//! An agent's maintenance state as the operator set it (Mesos' agent
//! draining, `DRAIN_AGENT`): a draining agent gets no new offers and its
//! frameworks are asked to move their tasks away; the tasks keep running
//! until they are moved. Undraining ends it.
use serde::{Deserialize, Serialize};

/// The agent is draining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    /// When the drain began, ms since the Unix epoch.
    pub since_unix_ms: u64,
    /// When the operator wants the agent empty, if they said (Mesos'
    /// `max_grace_period`); advisory: frameworks see it, nothing is killed
    /// for it.
    #[serde(default)]
    pub deadline_unix_ms: Option<u64>,
}
