//! Durability for the registry until it is replicated: one file written whole
//! (temp file, fsync, rename, directory fsync) by a writer task, never by the
//! event loop. Entries queued while a write is in flight are committed by the
//! next write together (group commit), so a burst of N changes costs a few
//! writes, not N: the same batching Mesos' registrar does.
//!
//! The writer keeps its own copy of the registry and applies each entry with
//! the same deterministic `Registry::apply` as the loop, so it never needs the
//! loop's state; it reports `WriteOutcome`s back, and the loop applies the
//! entries only once they are durable.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::error;

use super::{AgentRecord, LogEntry, Registry};
use crate::error::MasterError;

/// Batches of proposals queued for the writer. Each message is one loop
/// iteration's proposals, so this bounds iterations, not entries; a full
/// queue makes the loop wait (back-pressure from a slow disk).
const WRITER_QUEUE: usize = 1024;

/// The file format this master writes. Format 1 (no `format` field, agent
/// resources as text) is still read.
const FORMAT: u32 = 2;

/// What the writer reports after each batch.
#[derive(Debug)]
pub(crate) enum WriteOutcome {
    /// Every proposal with a sequence number up to this one is durable.
    Durable { up_to: u64 },
    /// These proposals could not be written; they are not durable and must
    /// not be applied.
    Failed { seqs: Vec<u64>, reason: String },
}

#[derive(Serialize)]
struct FileOut<'a> {
    format: u32,
    registry: &'a Registry,
}

#[derive(Deserialize)]
struct FileIn {
    format: u32,
    registry: Registry,
}

/// Format 1, as the first master version wrote it.
#[derive(Deserialize)]
struct FileV1 {
    agents: std::collections::BTreeMap<agora_model::AgentId, AgentRecordV1>,
    #[serde(default)]
    unreachable: std::collections::BTreeMap<agora_model::AgentId, u64>,
    #[serde(default)]
    weights: std::collections::BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct AgentRecordV1 {
    hostname: String,
    port: u16,
    resources: String,
}

/// Where the registry lives: a file in the data dir, or nowhere (in memory).
#[derive(Debug, Clone)]
pub(crate) struct RegistryStore {
    path: Option<PathBuf>,
}

impl RegistryStore {
    /// A store in `dir`, or in memory only when `dir` is None.
    pub(crate) fn new(dir: Option<&Path>) -> Result<RegistryStore, MasterError> {
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
    /// file or record is an error naming it; the file is left in place.
    pub(crate) fn load(&self) -> Result<Registry, MasterError> {
        let Some(path) = &self.path else {
            return Ok(Registry::default());
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Registry::default()),
            Err(e) => return Err(e.into()),
        };
        decode(&bytes).map_err(|reason| MasterError::Registry {
            path: path.display().to_string(),
            reason,
        })
    }

    fn encode(&self, reg: &Registry) -> Result<Vec<u8>, String> {
        serde_json::to_vec(&FileOut {
            format: FORMAT,
            registry: reg,
        })
        .map_err(|e| e.to_string())
    }

    /// Writes bytes durably. Blocking: call from a blocking thread.
    fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("json.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

fn decode(bytes: &[u8]) -> Result<Registry, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    match value.get("format").and_then(|f| f.as_u64()) {
        Some(_) => {
            let f: FileIn = serde_json::from_value(value).map_err(|e| e.to_string())?;
            if f.format != FORMAT {
                return Err(format!(
                    "format {} is newer than this master ({FORMAT})",
                    f.format
                ));
            }
            Ok(f.registry)
        }
        None => upgrade_v1(serde_json::from_value(value).map_err(|e| e.to_string())?),
    }
}

/// Format 1 → current, naming the record that cannot be read.
fn upgrade_v1(old: FileV1) -> Result<Registry, String> {
    let mut reg = Registry::default();
    for (id, rec) in old.agents {
        let resources = agora_model::Resources::parse(&rec.resources)
            .map_err(|e| format!("agents.{id}.resources: {e}"))?;
        reg.agents.insert(
            id,
            AgentRecord {
                hostname: rec.hostname,
                port: rec.port,
                resources,
                attributes: Default::default(),
            },
        );
    }
    reg.unreachable = old.unreachable;
    for (role, w) in old.weights {
        let r =
            agora_model::Role::parse(role.clone()).map_err(|e| format!("weights.{role}: {e}"))?;
        reg.weights.insert(r, w);
    }
    Ok(reg)
}

/// The loop's end of the writer.
pub(crate) struct WriterHandle {
    pub(crate) proposals: mpsc::Sender<Vec<(u64, LogEntry)>>,
    pub(crate) outcomes: mpsc::Receiver<WriteOutcome>,
    pub(crate) task: JoinHandle<()>,
}

/// Starts the writer with the registry as loaded. It stops when the loop
/// drops its sender, after writing what was queued.
pub(crate) fn spawn_writer(store: RegistryStore, registry: Registry) -> WriterHandle {
    let (ptx, prx) = mpsc::channel(WRITER_QUEUE);
    let (otx, orx) = mpsc::channel(WRITER_QUEUE);
    let task = tokio::spawn(run_writer(store, registry, prx, otx));
    WriterHandle {
        proposals: ptx,
        outcomes: orx,
        task,
    }
}

async fn run_writer(
    store: RegistryStore,
    mut shadow: Registry,
    mut rx: mpsc::Receiver<Vec<(u64, LogEntry)>>,
    tx: mpsc::Sender<WriteOutcome>,
) {
    while let Some(mut batch) = rx.recv().await {
        // Group commit: everything queued by now rides on this write.
        while let Ok(more) = rx.try_recv() {
            batch.extend(more);
        }
        let Some(up_to) = batch.last().map(|(s, _)| *s) else {
            continue;
        };
        // Kept to go back to if the write fails; the write itself is O(size)
        // too, so the copy does not change the cost's order.
        let before = shadow.clone();
        for (_, entry) in &batch {
            // A rejected entry changes nothing here or in the loop.
            let _ = shadow.apply(entry);
        }
        let outcome = match persist(&store, &shadow).await {
            Ok(()) => WriteOutcome::Durable { up_to },
            Err(reason) => {
                error!(%reason, "could not persist the registry; the changes are refused");
                // Back to what is on disk, so a later write does not make the
                // refused changes durable after all.
                shadow = before;
                WriteOutcome::Failed {
                    seqs: batch.iter().map(|(s, _)| *s).collect(),
                    reason,
                }
            }
        };
        if tx.send(outcome).await.is_err() {
            return; // the loop is gone
        }
    }
}

async fn persist(store: &RegistryStore, reg: &Registry) -> Result<(), String> {
    let Some(path) = store.path.clone() else {
        return Ok(());
    };
    let bytes = store.encode(reg)?;
    tokio::task::spawn_blocking(move || RegistryStore::write(&path, &bytes))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryCommand;
    use agora_model::{AgentId, Resources};

    fn admit(name: &str) -> LogEntry {
        LogEntry::V1(RegistryCommand::AdmitAgent {
            id: AgentId::new_unchecked(name),
            record: AgentRecord {
                hostname: "h".into(),
                port: 5051,
                resources: Resources::cpus_mem_disk(1.0, 64.0, 0.0),
                attributes: Default::default(),
            },
        })
    }

    #[tokio::test]
    async fn the_writer_reports_durable_batches_and_the_file_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let store = RegistryStore::new(Some(dir.path())).unwrap();
        let mut w = spawn_writer(store.clone(), Registry::default());
        w.proposals
            .send(vec![(1, admit("a")), (2, admit("b"))])
            .await
            .unwrap();
        w.proposals.send(vec![(3, admit("c"))]).await.unwrap();
        let mut durable = 0;
        while durable < 3 {
            match w.outcomes.recv().await.unwrap() {
                WriteOutcome::Durable { up_to } => durable = up_to,
                WriteOutcome::Failed { reason, .. } => panic!("{reason}"),
            }
        }
        let reg = store.load().unwrap();
        assert_eq!(reg.agents.len(), 3);
        drop(w.proposals);
        w.task.await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_and_its_changes_are_not_written_later() {
        let dir = tempfile::tempdir().unwrap();
        let store = RegistryStore::new(Some(dir.path())).unwrap();
        // A directory where the file should be: the rename over it fails.
        std::fs::create_dir(dir.path().join("registry.json")).unwrap();
        std::fs::write(dir.path().join("registry.json").join("x"), b"x").unwrap();
        let mut w = spawn_writer(store.clone(), Registry::default());
        w.proposals.send(vec![(1, admit("a"))]).await.unwrap();
        match w.outcomes.recv().await.unwrap() {
            WriteOutcome::Failed { seqs, .. } => assert_eq!(seqs, vec![1]),
            WriteOutcome::Durable { .. } => panic!("a failed write reported durable"),
        }
        std::fs::remove_dir_all(dir.path().join("registry.json")).unwrap();
        w.proposals.send(vec![(2, admit("b"))]).await.unwrap();
        assert!(matches!(
            w.outcomes.recv().await.unwrap(),
            WriteOutcome::Durable { up_to: 2 }
        ));
        let reg = store.load().unwrap();
        let ids: Vec<String> = reg.agents.keys().map(ToString::to_string).collect();
        assert_eq!(ids, vec!["b"], "the refused admission of a is not on disk");
    }

    #[test]
    fn a_format_1_file_is_upgraded_and_a_bad_record_is_named() {
        let v1 = br#"{"agents":{"a":{"hostname":"h","port":5051,"resources":"cpus:2;mem:64"}},
                      "unreachable":{"a":7},"weights":{"web":2.0}}"#;
        let reg = decode(v1).unwrap();
        assert_eq!(
            reg.agents[&AgentId::new_unchecked("a")].resources,
            Resources::parse("cpus:2;mem:64").unwrap()
        );
        assert_eq!(reg.unreachable[&AgentId::new_unchecked("a")], 7);
        let bad = br#"{"agents":{"a":{"hostname":"h","port":5051,"resources":"cpus:x"}}}"#;
        let err = decode(bad).unwrap_err();
        assert!(err.contains("agents.a.resources"), "{err}");
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = RegistryStore::new(Some(dir.path())).unwrap();
        assert_eq!(store.load().unwrap(), Registry::default());
        std::fs::write(dir.path().join("registry.json"), b"{not json").unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("registry.json"), "{err}");
        assert!(dir.path().join("registry.json").exists());
    }
}
