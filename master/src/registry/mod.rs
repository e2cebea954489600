//! The registry: the part of the master's state that must survive a change
//! of master (Mesos keeps the same in its replicated log): admitted agents,
//! unreachable agents, agents in maintenance (draining), frameworks and
//! removed frameworks, role weights, and the utilisation history (downsampled capacity samples). Tasks
//! and offers are rebuilt from re-registering agents and re-subscribing
//! frameworks.
//!
//! Every change is a versioned `LogEntry` applied by the deterministic
//! `Registry::apply`, so the same log yields the same registry on every
//! replica. The core proposes an entry, the writer makes it durable (the
//! masters' Raft log, off the event loop), and only then is it applied and
//! the caller answered. Commands that would change nothing are never proposed.
mod writer;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use agora_capacity::{History, HistorySample};
use agora_model::{AgentId, Attributes, Drain, FrameworkId, FrameworkInfo, Resources, Role};

#[cfg(test)]
pub(crate) use writer::spawn_memory_writer;
pub(crate) use writer::{WriteOutcome, WriterHandle};

/// Removed framework ids remembered so they cannot re-subscribe; beyond this
/// the oldest removals are forgotten (Mesos keeps a bounded list too).
pub const MAX_REMOVED_FRAMEWORKS: usize = 100_000;

/// What the registry remembers about an admitted agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Hostname at admission.
    pub hostname: String,
    /// The agent's port.
    pub port: u16,
    /// Total resources.
    pub resources: Resources,
    /// Attributes.
    #[serde(default)]
    pub attributes: Attributes,
}

/// What the registry remembers about a framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkRecord {
    /// As last subscribed or updated (its `id` is set).
    pub info: FrameworkInfo,
    /// First subscription, ms since the Unix epoch.
    pub registered_unix_ms: u64,
}

/// A change to the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RegistryCommand {
    /// Admit (or re-admit with new info) an agent.
    AdmitAgent {
        /// Its id.
        id: AgentId,
        /// What it said about itself.
        record: AgentRecord,
    },
    /// The agent stopped answering pings at `at_unix_ms`.
    MarkUnreachable {
        /// Its id.
        id: AgentId,
        /// Wall-clock time, ms since the Unix epoch.
        at_unix_ms: u64,
    },
    /// The agent came back.
    MarkReachable {
        /// Its id.
        id: AgentId,
    },
    /// Forget an agent.
    RemoveAgent {
        /// Its id.
        id: AgentId,
    },
    /// Set a role's DRF weight.
    SetWeight {
        /// The role.
        role: Role,
        /// Weight, > 0.
        weight: f64,
    },
    /// Add a framework or replace its info.
    PutFramework {
        /// Its id.
        id: FrameworkId,
        /// Info and registration time.
        record: FrameworkRecord,
    },
    /// The framework was torn down or timed out; it may not come back.
    RemoveFramework {
        /// Its id.
        id: FrameworkId,
        /// Wall-clock time, ms since the Unix epoch.
        at_unix_ms: u64,
    },
    /// A capacity sample for the utilisation history (taken by the leader
    /// every 10 s; replicated so the history survives a change of leader).
    RecordCapacity {
        /// The sample.
        sample: Box<HistorySample>,
    },
    /// The operator drains the agent: no new offers from it. Draining an
    /// agent that already drains keeps its start and takes the new deadline.
    DrainAgent {
        /// Its id.
        id: AgentId,
        /// Since when and until when.
        drain: Drain,
    },
    /// The operator ends the agent's maintenance: offers from it again.
    UndrainAgent {
        /// Its id.
        id: AgentId,
    },
}

/// One entry of the registry's log. Versioned so that a newer master can read
/// what an older one wrote; a new shape becomes `V2` beside `V1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "v", content = "cmd")]
pub enum LogEntry {
    /// The first format.
    V1(RegistryCommand),
}

/// The registry record a command touches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    /// An agent's record (admission and reachability).
    Agent(AgentId),
    /// A framework's record (or its removal).
    Framework(FrameworkId),
    /// A role's weight.
    Weight(Role),
    /// The utilisation history.
    History,
}

impl RegistryCommand {
    /// The record this command touches.
    pub fn key(&self) -> RecordKey {
        match self {
            RegistryCommand::AdmitAgent { id, .. }
            | RegistryCommand::MarkUnreachable { id, .. }
            | RegistryCommand::MarkReachable { id }
            | RegistryCommand::RemoveAgent { id }
            | RegistryCommand::DrainAgent { id, .. }
            | RegistryCommand::UndrainAgent { id } => RecordKey::Agent(id.clone()),
            RegistryCommand::PutFramework { id, .. }
            | RegistryCommand::RemoveFramework { id, .. } => RecordKey::Framework(id.clone()),
            RegistryCommand::SetWeight { role, .. } => RecordKey::Weight(role.clone()),
            RegistryCommand::RecordCapacity { .. } => RecordKey::History,
        }
    }
}

/// Why a command could not be applied. Rejections leave the registry unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryReject {
    /// The agent is not admitted.
    #[error("agent {0} is not admitted")]
    UnknownAgent(AgentId),
    /// Weight must be positive and finite.
    #[error("weight {0} must be positive")]
    BadWeight(String),
}

/// The replicated part of the master's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    /// Admitted agents.
    pub agents: BTreeMap<AgentId, AgentRecord>,
    /// Unreachable agents and since when (Unix ms).
    pub unreachable: BTreeMap<AgentId, u64>,
    /// Role weights.
    pub weights: BTreeMap<Role, f64>,
    /// Frameworks that may subscribe again with their id.
    #[serde(default)]
    pub frameworks: BTreeMap<FrameworkId, FrameworkRecord>,
    /// Removed frameworks and when (Unix ms); bounded by `MAX_REMOVED_FRAMEWORKS`.
    #[serde(default)]
    pub removed_frameworks: BTreeMap<FrameworkId, u64>,
    /// Downsampled capacity samples (`/api/v1/capacity/history`).
    #[serde(default)]
    pub history: History,
    /// Agents the operator drains (admitted agents only).
    #[serde(default)]
    pub maintenance: BTreeMap<AgentId, Drain>,
}

impl Registry {
    /// Applies one entry. Deterministic: no clocks, no IO, no randomness.
    pub fn apply(&mut self, entry: &LogEntry) -> Result<(), RegistryReject> {
        let LogEntry::V1(cmd) = entry;
        match cmd {
            RegistryCommand::AdmitAgent { id, record } => {
                self.agents.insert(id.clone(), record.clone());
            }
            RegistryCommand::MarkUnreachable { id, at_unix_ms } => {
                if !self.agents.contains_key(id) {
                    return Err(RegistryReject::UnknownAgent(id.clone()));
                }
                self.unreachable.entry(id.clone()).or_insert(*at_unix_ms);
            }
            RegistryCommand::MarkReachable { id } => {
                if !self.agents.contains_key(id) {
                    return Err(RegistryReject::UnknownAgent(id.clone()));
                }
                self.unreachable.remove(id);
            }
            RegistryCommand::RemoveAgent { id } => {
                self.agents.remove(id);
                self.unreachable.remove(id);
                self.maintenance.remove(id);
            }
            RegistryCommand::DrainAgent { id, drain } => {
                if !self.agents.contains_key(id) {
                    return Err(RegistryReject::UnknownAgent(id.clone()));
                }
                self.maintenance.insert(id.clone(), self.drained(id, drain));
            }
            RegistryCommand::UndrainAgent { id } => {
                if !self.agents.contains_key(id) {
                    return Err(RegistryReject::UnknownAgent(id.clone()));
                }
                self.maintenance.remove(id);
            }
            RegistryCommand::SetWeight { role, weight } => {
                if !weight.is_finite() || *weight <= 0.0 {
                    return Err(RegistryReject::BadWeight(weight.to_string()));
                }
                self.weights.insert(role.clone(), *weight);
            }
            RegistryCommand::PutFramework { id, record } => {
                self.frameworks.insert(id.clone(), record.clone());
            }
            RegistryCommand::RemoveFramework { id, at_unix_ms } => {
                self.frameworks.remove(id);
                self.removed_frameworks
                    .entry(id.clone())
                    .or_insert(*at_unix_ms);
                if self.removed_frameworks.len() > MAX_REMOVED_FRAMEWORKS
                    && let Some(oldest) = self
                        .removed_frameworks
                        .iter()
                        .min_by_key(|(id, at)| (**at, (*id).clone()))
                        .map(|(id, _)| id.clone())
                {
                    self.removed_frameworks.remove(&oldest);
                }
            }
            RegistryCommand::RecordCapacity { sample } => {
                // An older sample (a new leader's clock behind the old
                // one's) is dropped by the history itself, alike everywhere.
                self.history.record(sample);
            }
        }
        Ok(())
    }

    /// Whether applying `cmd` would change anything. The core proposes only
    /// commands that do, so a mass re-registration of known agents writes
    /// nothing.
    pub fn changes(&self, cmd: &RegistryCommand) -> bool {
        match cmd {
            RegistryCommand::AdmitAgent { id, record } => self.agents.get(id) != Some(record),
            RegistryCommand::MarkUnreachable { id, .. } => {
                self.agents.contains_key(id) && !self.unreachable.contains_key(id)
            }
            RegistryCommand::MarkReachable { id } => self.unreachable.contains_key(id),
            RegistryCommand::RemoveAgent { id } => self.agents.contains_key(id),
            RegistryCommand::SetWeight { role, weight } => {
                weight.is_finite() && *weight > 0.0 && self.weights.get(role) != Some(weight)
            }
            RegistryCommand::PutFramework { id, record } => self.frameworks.get(id) != Some(record),
            RegistryCommand::RemoveFramework { id, .. } => {
                self.frameworks.contains_key(id) || !self.removed_frameworks.contains_key(id)
            }
            RegistryCommand::RecordCapacity { .. } => true,
            RegistryCommand::DrainAgent { id, drain } => {
                self.agents.contains_key(id)
                    && self.maintenance.get(id) != Some(&self.drained(id, drain))
            }
            RegistryCommand::UndrainAgent { id } => self.maintenance.contains_key(id),
        }
    }

    /// The drain `DrainAgent` records: a drain already under way keeps its
    /// start (the operator asking twice does not restart the clock).
    fn drained(&self, id: &AgentId, drain: &Drain) -> Drain {
        match self.maintenance.get(id) {
            Some(cur) => Drain {
                since_unix_ms: cur.since_unix_ms,
                deadline_unix_ms: drain.deadline_unix_ms,
            },
            None => *drain,
        }
    }

    /// The agent's drain, if the operator drains it.
    pub fn drain_of(&self, id: &AgentId) -> Option<&Drain> {
        self.maintenance.get(id)
    }

    /// Unreachable agents to forget at `now_unix_ms`: those unreachable for
    /// longer than `max_age_ms`, then the oldest beyond `max_count`.
    /// Deterministic, so every replica forgets the same agents.
    pub fn expired_unreachable(
        &self,
        now_unix_ms: u64,
        max_age_ms: u64,
        max_count: usize,
    ) -> Vec<AgentId> {
        let mut by_age: Vec<(&u64, &AgentId)> =
            self.unreachable.iter().map(|(id, at)| (at, id)).collect();
        by_age.sort();
        let excess = by_age.len().saturating_sub(max_count);
        by_age
            .iter()
            .enumerate()
            .filter(|(i, (at, _))| *i < excess || now_unix_ms.saturating_sub(**at) > max_age_ms)
            .map(|(_, (_, id))| (*id).clone())
            .collect()
    }
}

#[cfg(test)]
mod tests;
