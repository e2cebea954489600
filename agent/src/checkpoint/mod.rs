//! The agent's checkpoint under `<work_dir>/meta`, written with atomic
//! renames after an fsync so a crash leaves either the old or the new file:
//!
//! ```text
//! <work_dir>/meta/agent.json                                AgentRecord
//! <work_dir>/meta/frameworks/<framework_id>.json            FrameworkInfo
//! <work_dir>/meta/tasks/<framework_id>/<task_id>/task.json  TaskRecord
//! <work_dir>/meta/tasks/<framework_id>/<task_id>/updates.json  unacknowledged updates, oldest first
//! <work_dir>/sandboxes/<framework_id>/<task_id>/<container_id>/{stdout,stderr}
//! ```
//!
//! Reading never deletes anything: a damaged or foreign checkpoint is an
//! error for the operator to look at. While the agent runs, every write
//! goes through the [`writer`] task, never the event loop.
mod records;
pub(crate) mod writer;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use agora_model::{FrameworkId, FrameworkInfo, TaskId, TaskStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use records::{AgentRecord, FORMAT_VERSION, KillCause, TaskRecord};

use crate::AgentError;

/// One task as recovered from disk.
#[derive(Debug, Clone)]
pub(crate) struct RecoveredTask {
    /// The task record.
    pub(crate) record: TaskRecord,
    /// Its unacknowledged updates.
    pub(crate) updates: Vec<TaskStatus>,
}

/// Everything recovered from a checkpoint.
#[derive(Debug, Clone)]
pub(crate) struct Recovered {
    /// The identity record.
    pub(crate) agent: AgentRecord,
    /// Frameworks by id.
    pub(crate) frameworks: BTreeMap<FrameworkId, FrameworkInfo>,
    /// Tasks with their pending updates.
    pub(crate) tasks: Vec<RecoveredTask>,
}

/// Paths and atomic IO of the checkpoint.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    work_dir: PathBuf,
}

impl Checkpoint {
    /// The checkpoint of `work_dir` (nothing is read or created yet).
    pub(crate) fn new(work_dir: &Path) -> Checkpoint {
        Checkpoint {
            work_dir: work_dir.to_path_buf(),
        }
    }

    /// `<work_dir>/meta`.
    pub(crate) fn meta_dir(&self) -> PathBuf {
        self.work_dir.join("meta")
    }

    /// `<work_dir>/sandboxes`.
    pub(crate) fn sandboxes_dir(&self) -> PathBuf {
        self.work_dir.join("sandboxes")
    }

    /// The sandbox of one container.
    pub(crate) fn sandbox(
        &self,
        framework: &FrameworkId,
        task: &TaskId,
        container_id: &str,
    ) -> PathBuf {
        self.sandboxes_dir()
            .join(framework.as_str())
            .join(task.as_str())
            .join(container_id)
    }

    fn agent_file(&self) -> PathBuf {
        self.meta_dir().join("agent.json")
    }

    fn framework_file(&self, id: &FrameworkId) -> PathBuf {
        self.meta_dir()
            .join("frameworks")
            .join(format!("{id}.json"))
    }

    fn task_dir(&self, framework: &FrameworkId, task: &TaskId) -> PathBuf {
        self.meta_dir()
            .join("tasks")
            .join(framework.as_str())
            .join(task.as_str())
    }

    /// Reads the checkpoint. `Ok(None)`: there is none (fresh work dir).
    /// A record of another hostname or format version is
    /// [`AgentError::ForeignWorkDir`]; an unparsable file is
    /// [`AgentError::DamagedCheckpoint`].
    pub(crate) fn load(&self, hostname: &str) -> Result<Option<Recovered>, AgentError> {
        let agent_file = self.agent_file();
        if !agent_file.exists() {
            return Ok(None);
        }
        let raw: serde_json::Value = read_json(&agent_file)?;
        let version = raw
            .get("format_version")
            .and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(FORMAT_VERSION)) {
            return Err(AgentError::ForeignWorkDir {
                path: agent_file,
                reason: format!("format_version {version:?}, this agent writes {FORMAT_VERSION}"),
            });
        }
        let agent: AgentRecord =
            serde_json::from_value(raw).map_err(|e| AgentError::DamagedCheckpoint {
                path: agent_file.clone(),
                reason: e.to_string(),
            })?;
        if agent.hostname != hostname {
            return Err(AgentError::ForeignWorkDir {
                path: agent_file,
                reason: format!(
                    "written by host {:?}, this agent is {hostname:?}",
                    agent.hostname
                ),
            });
        }
        let mut frameworks = BTreeMap::new();
        for path in list_dir(&self.meta_dir().join("frameworks"))? {
            if path.extension().is_some_and(|e| e == "json") {
                let fw: FrameworkInfo = read_json(&path)?;
                if let Some(id) = fw.id.clone() {
                    frameworks.insert(id, fw);
                }
            }
        }
        let mut tasks = Vec::new();
        for fw_dir in list_dir(&self.meta_dir().join("tasks"))? {
            for task_dir in list_dir(&fw_dir)? {
                let task_file = task_dir.join("task.json");
                if !task_file.exists() {
                    // A task dir whose task.json was never written: the
                    // agent died between mkdir and the first write.
                    continue;
                }
                let record: TaskRecord = read_json(&task_file)?;
                let updates_file = task_dir.join("updates.json");
                let updates = if updates_file.exists() {
                    read_json(&updates_file)?
                } else {
                    Vec::new()
                };
                tasks.push(RecoveredTask { record, updates });
            }
        }
        Ok(Some(Recovered {
            agent,
            frameworks,
            tasks,
        }))
    }

    /// Writes the identity record.
    pub(crate) fn write_agent(&self, record: &AgentRecord) -> Result<(), AgentError> {
        write_json(&self.agent_file(), record)
    }

    /// Writes a framework.
    #[cfg(test)]
    pub(crate) fn write_framework(
        &self,
        id: &FrameworkId,
        fw: &FrameworkInfo,
    ) -> Result<(), AgentError> {
        write_json(&self.framework_file(id), fw)
    }

    /// Writes a task record.
    #[cfg(test)]
    pub(crate) fn write_task(&self, record: &TaskRecord) -> Result<(), AgentError> {
        write_json(
            &self
                .task_dir(&record.framework_id, &record.spec.id)
                .join("task.json"),
            record,
        )
    }

    /// Writes a task's unacknowledged updates.
    #[cfg(test)]
    pub(crate) fn write_updates(
        &self,
        framework: &FrameworkId,
        task: &TaskId,
        updates: &[TaskStatus],
    ) -> Result<(), AgentError> {
        write_json(
            &self.task_dir(framework, task).join("updates.json"),
            &updates,
        )
    }

    /// Removes a task's checkpoint (terminal and acknowledged).
    #[cfg(test)]
    pub(crate) fn remove_task(
        &self,
        framework: &FrameworkId,
        task: &TaskId,
    ) -> Result<(), AgentError> {
        let dir = self.task_dir(framework, task);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AgentError::io(format!("removing {}", dir.display()), e)),
        }
    }
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, AgentError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AgentError::io(format!("listing {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| AgentError::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name();
        // Leftover temporary files of an interrupted atomic write.
        if name.to_string_lossy().ends_with(".tmp") {
            continue;
        }
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, AgentError> {
    let bytes =
        fs::read(path).map_err(|e| AgentError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_slice(&bytes).map_err(|e| AgentError::DamagedCheckpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes `value` as JSON to `path` atomically: a temporary file in the same
/// directory, fsync'd, renamed over `path`, then the directory fsync'd so
/// the rename itself survives a power loss. Used before the event loop runs;
/// the loop goes through the [`writer`].
pub(crate) fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), AgentError> {
    let bytes = encode_json(path, value)?;
    write_bytes_atomically(path, &bytes, true)
}

/// The checkpoint's JSON form of `value` (pretty, for operators).
pub(crate) fn encode_json<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
) -> Result<Vec<u8>, AgentError> {
    serde_json::to_vec_pretty(value).map_err(|e| {
        AgentError::io(
            format!("encoding {}", path.display()),
            std::io::Error::other(e),
        )
    })
}

/// Temporary file, fsync, rename over `path`; the directory is fsync'd too
/// when `sync_dir` (the writer fsyncs each directory once per batch
/// instead).
pub(crate) fn write_bytes_atomically(
    path: &Path,
    bytes: &[u8],
    sync_dir: bool,
) -> Result<(), AgentError> {
    let dir = path
        .parent()
        .ok_or_else(|| AgentError::Config(format!("{} has no parent", path.display())))?;
    fs::create_dir_all(dir)
        .map_err(|e| AgentError::io(format!("creating {}", dir.display()), e))?;
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let ctx = |what: &str| format!("{what} {}", tmp.display());
    let mut f = fs::File::create(&tmp).map_err(|e| AgentError::io(ctx("creating"), e))?;
    f.write_all(bytes)
        .map_err(|e| AgentError::io(ctx("writing"), e))?;
    f.sync_all()
        .map_err(|e| AgentError::io(ctx("syncing"), e))?;
    drop(f);
    fs::rename(&tmp, path)
        .map_err(|e| AgentError::io(format!("renaming {} into place", tmp.display()), e))?;
    if sync_dir && let Ok(d) = fs::File::open(dir) {
        // Best effort: some filesystems refuse fsync on directories.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_model::{AgentId, CommandSpec, Resources, StatusSource, TaskSpec, TaskState};

    fn record(fw: &str, task: &str) -> TaskRecord {
        TaskRecord {
            framework_id: FrameworkId::new_unchecked(fw),
            spec: TaskSpec {
                id: TaskId::new_unchecked(task),
                name: task.into(),
                agent_id: AgentId::new_unchecked("a"),
                resources: Resources::parse("cpus:1;mem:32").unwrap(),
                command: Some(CommandSpec::shell("true")),
                docker: None,
                health_check: None,
                kill_grace: None,
                labels: Default::default(),
                port_names: vec![],
            },
            container_id: "c1".into(),
            sandbox: PathBuf::from("/sb"),
            state: TaskState::Running,
            handle: None,
            healthy: Some(true),
            kill: None,
        }
    }

    #[test]
    fn round_trip_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::new(dir.path());
        assert!(cp.load("h").unwrap().is_none());
        cp.write_agent(&AgentRecord {
            format_version: FORMAT_VERSION,
            hostname: "h".into(),
            agent_id: None,
        })
        .unwrap();
        let mut fw = FrameworkInfo::named("f");
        fw.id = Some(FrameworkId::new_unchecked("f1"));
        cp.write_framework(&FrameworkId::new_unchecked("f1"), &fw)
            .unwrap();
        let r = record("f1", "t1");
        cp.write_task(&r).unwrap();
        let mut st = TaskStatus::new(
            TaskId::new_unchecked("t1"),
            TaskState::Running,
            StatusSource::Executor,
            1.0,
        );
        st.uuid = Some(uuid::Uuid::new_v4());
        cp.write_updates(&r.framework_id, &r.spec.id, std::slice::from_ref(&st))
            .unwrap();
        let got = cp.load("h").unwrap().unwrap();
        assert_eq!(got.frameworks.len(), 1);
        assert_eq!(got.tasks.len(), 1);
        assert_eq!(got.tasks[0].record, r);
        assert_eq!(got.tasks[0].updates, vec![st]);
        cp.remove_task(&r.framework_id, &r.spec.id).unwrap();
        assert!(cp.load("h").unwrap().unwrap().tasks.is_empty());
    }

    #[test]
    fn foreign_or_damaged_checkpoints_are_errors_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::new(dir.path());
        cp.write_agent(&AgentRecord {
            format_version: FORMAT_VERSION,
            hostname: "other".into(),
            agent_id: None,
        })
        .unwrap();
        assert!(matches!(
            cp.load("h"),
            Err(AgentError::ForeignWorkDir { .. })
        ));
        fs::write(
            cp.meta_dir().join("agent.json"),
            r#"{"format_version": 99}"#,
        )
        .unwrap();
        assert!(matches!(
            cp.load("h"),
            Err(AgentError::ForeignWorkDir { .. })
        ));
        cp.write_agent(&AgentRecord {
            format_version: FORMAT_VERSION,
            hostname: "h".into(),
            agent_id: None,
        })
        .unwrap();
        cp.write_task(&record("f", "t")).unwrap();
        let task_file = cp.meta_dir().join("tasks/f/t/task.json");
        fs::write(&task_file, "{not json").unwrap();
        match cp.load("h") {
            Err(AgentError::DamagedCheckpoint { path, .. }) => assert_eq!(path, task_file),
            other => panic!("{other:?}"),
        }
        assert!(task_file.exists());
    }
}
