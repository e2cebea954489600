//! The registry: the part of the master's state that must survive a master
//! restart (Mesos keeps the same in its replicated log): admitted agents,
//! unreachable agents and role weights. Frameworks, tasks and offers are
//! rebuilt from re-registering agents and re-subscribing frameworks.
//!
//! Every change is a `RegistryCommand` applied by the deterministic
//! `Registry::apply`, so the same log of commands yields the same registry
//! on every replica once replication arrives.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agora_model::AgentId;

use crate::error::MasterError;

/// What the registry remembers about an admitted agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Hostname at admission.
    pub hostname: String,
    /// The agent's port.
    pub port: u16,
    /// Total resources, Mesos text form.
    pub resources: String,
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
        /// Role name.
        role: String,
        /// Weight, > 0.
        weight: f64,
    },
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
    pub weights: BTreeMap<String, f64>,
}

impl Registry {
    /// Applies one command. Deterministic: no clocks, no IO, no randomness.
    pub fn apply(&mut self, cmd: &RegistryCommand) -> Result<(), RegistryReject> {
        match cmd {
            RegistryCommand::AdmitAgent { id, record } => {
                self.agents.insert(id.clone(), record.clone());
                Ok(())
            }
            RegistryCommand::MarkUnreachable { id, at_unix_ms } => {
                if !self.agents.contains_key(id) {
                    return Err(RegistryReject::UnknownAgent(id.clone()));
                }
                self.unreachable.entry(id.clone()).or_insert(*at_unix_ms);
                Ok(())
            }
            RegistryCommand::MarkReachable { id } => {
                if !self.agents.contains_key(id) {
                    return Err(RegistryReject::UnknownAgent(id.clone()));
                }
                self.unreachable.remove(id);
                Ok(())
            }
            RegistryCommand::RemoveAgent { id } => {
                self.agents.remove(id);
                self.unreachable.remove(id);
                Ok(())
            }
            RegistryCommand::SetWeight { role, weight } => {
                if !weight.is_finite() || *weight <= 0.0 {
                    return Err(RegistryReject::BadWeight(weight.to_string()));
                }
                self.weights.insert(role.clone(), *weight);
                Ok(())
            }
        }
    }
}

impl Registry {
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

/// Keeps the registry in a file: written whole after each change with
/// write-to-temp, fsync, rename, so a crash leaves the old or the new file,
/// never a torn one. (The Raft issue replaces this with a replicated log.)
#[derive(Debug)]
pub struct RegistryStore {
    path: Option<PathBuf>,
}

impl RegistryStore {
    /// A store in `dir`, or in memory only when `dir` is None.
    pub fn new(dir: Option<&Path>) -> Result<RegistryStore, MasterError> {
        match dir {
            None => Ok(RegistryStore { path: None }),
            Some(d) => {
                std::fs::create_dir_all(d)?;
                Ok(RegistryStore {
                    path: Some(d.join("registry.json")),
                })
            }
        }
    }

    /// Loads the registry, or an empty one if there is no file yet. A damaged
    /// file is an error naming it, and is left in place for inspection.
    pub fn load(&self) -> Result<Registry, MasterError> {
        let Some(path) = &self.path else {
            return Ok(Registry::default());
        };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| MasterError::Registry {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the registry durably.
    pub fn save(&self, reg: &Registry) -> Result<(), MasterError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(reg).map_err(|e| MasterError::Registry {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> AgentRecord {
        AgentRecord {
            hostname: "h".into(),
            port: 5051,
            resources: "cpus:1".into(),
        }
    }

    #[test]
    fn apply_is_deterministic_and_rejects_without_change() {
        let a = AgentId::new_unchecked("a");
        let log = vec![
            RegistryCommand::AdmitAgent {
                id: a.clone(),
                record: rec(),
            },
            RegistryCommand::MarkUnreachable {
                id: a.clone(),
                at_unix_ms: 7,
            },
            RegistryCommand::MarkUnreachable {
                id: a.clone(),
                at_unix_ms: 9,
            },
            RegistryCommand::SetWeight {
                role: "web".into(),
                weight: 2.0,
            },
        ];
        let mut r1 = Registry::default();
        let mut r2 = Registry::default();
        for c in &log {
            r1.apply(c).unwrap();
            r2.apply(c).unwrap();
        }
        assert_eq!(r1, r2);
        assert_eq!(r1.unreachable[&a], 7, "first unreachable time is kept");
        let before = r1.clone();
        assert!(
            r1.apply(&RegistryCommand::MarkReachable {
                id: AgentId::new_unchecked("zz")
            })
            .is_err()
        );
        assert!(
            r1.apply(&RegistryCommand::SetWeight {
                role: "x".into(),
                weight: f64::NAN
            })
            .is_err()
        );
        assert_eq!(r1, before);
        r1.apply(&RegistryCommand::MarkReachable { id: a.clone() })
            .unwrap();
        assert!(r1.unreachable.is_empty());
    }

    #[test]
    fn unreachable_agents_expire_by_age_then_by_count() {
        let mut r = Registry::default();
        for (name, at) in [("a", 100), ("b", 200), ("c", 300)] {
            let id = AgentId::new_unchecked(name);
            r.apply(&RegistryCommand::AdmitAgent {
                id: id.clone(),
                record: rec(),
            })
            .unwrap();
            r.apply(&RegistryCommand::MarkUnreachable { id, at_unix_ms: at })
                .unwrap();
        }
        let names = |v: Vec<AgentId>| v.into_iter().map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(names(r.expired_unreachable(1000, 750, 10)), vec!["a", "b"]);
        assert_eq!(names(r.expired_unreachable(300, 10_000, 1)), vec!["a", "b"]);
        assert!(r.expired_unreachable(300, 10_000, 3).is_empty());
    }

    #[test]
    fn store_survives_reload_and_reports_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store = RegistryStore::new(Some(dir.path())).unwrap();
        assert_eq!(store.load().unwrap(), Registry::default());
        let mut r = Registry::default();
        r.apply(&RegistryCommand::AdmitAgent {
            id: AgentId::new_unchecked("a"),
            record: rec(),
        })
        .unwrap();
        store.save(&r).unwrap();
        assert_eq!(
            RegistryStore::new(Some(dir.path()))
                .unwrap()
                .load()
                .unwrap(),
            r
        );
        std::fs::write(dir.path().join("registry.json"), b"{not json").unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("registry.json"), "{err}");
        assert!(dir.path().join("registry.json").exists());
    }
}
