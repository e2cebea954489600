//! The checkpoint writer: the one task that touches the checkpoint (and
//! creates sandboxes) while the agent runs, so the event loop never waits
//! on a disk. The loop hands it [`WriteRequest`]s; it takes everything
//! queued as one batch (group commit), drops writes a later write of the
//! same file in the batch makes moot (latest wins), writes each file
//! atomically (temp file, fsync, rename), fsyncs each touched directory
//! once per batch, and only then answers every request with a
//! [`Persisted`], in request order. The loop acts on a write (sends an
//! update, starts a launch, kills) only after that answer.
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agora_model::{FrameworkId, FrameworkInfo, TaskId, TaskStatus};
use tokio::sync::mpsc;

use super::{AgentRecord, Checkpoint, TaskRecord, encode_json, write_bytes_atomically};
use crate::AgentError;

/// Capacity of the request channel. The loop keeps requests that do not
/// fit in its own outbox, so this only needs to hold one batch while the
/// previous one is written.
pub(crate) const WRITE_QUEUE: usize = MAX_BATCH;

/// Most requests written as one batch. Bounds the time the first request
/// of a batch waits for the last (each distinct file costs one fsync; the
/// directory fsyncs are shared), and the memory a batch holds.
pub(crate) const MAX_BATCH: usize = 512;

/// Pause after a batch in which something failed, so a full or failing
/// disk is not hammered by the retries of the loop.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// One thing to make durable.
#[derive(Debug)]
pub(crate) enum WriteOp {
    /// `meta/agent.json`.
    Agent(AgentRecord),
    /// `meta/frameworks/<id>.json`.
    Framework(FrameworkId, Box<FrameworkInfo>),
    /// `meta/tasks/<fw>/<task>/task.json`.
    Task(Box<TaskRecord>),
    /// `meta/tasks/<fw>/<task>/updates.json`: the whole queue.
    Updates {
        framework: FrameworkId,
        task: TaskId,
        updates: Vec<TaskStatus>,
    },
    /// Removes `meta/tasks/<fw>/<task>/`.
    RemoveTask {
        framework: FrameworkId,
        task: TaskId,
    },
    /// Creates a directory (a sandbox) and its parents.
    CreateDir(PathBuf),
}

/// A write and the ticket its answer carries.
#[derive(Debug)]
pub(crate) struct WriteRequest {
    pub(crate) ticket: u64,
    pub(crate) op: WriteOp,
}

/// The answer to one request: the file (or directory) is on disk, or why
/// not. A request dropped for a later write of the same file gets that
/// write's result.
#[derive(Debug)]
pub(crate) struct Persisted {
    pub(crate) ticket: u64,
    pub(crate) result: Result<(), Arc<AgentError>>,
}

/// What one request does to the file system, for coalescing.
enum Target {
    File(PathBuf),
    RemoveDir(PathBuf),
    CreateDir(PathBuf),
}

impl Checkpoint {
    fn target(&self, op: &WriteOp) -> Target {
        match op {
            WriteOp::Agent(_) => Target::File(self.agent_file()),
            WriteOp::Framework(id, _) => Target::File(self.framework_file(id)),
            WriteOp::Task(r) => {
                Target::File(self.task_dir(&r.framework_id, &r.spec.id).join("task.json"))
            }
            WriteOp::Updates {
                framework, task, ..
            } => Target::File(self.task_dir(framework, task).join("updates.json")),
            WriteOp::RemoveTask { framework, task } => {
                Target::RemoveDir(self.task_dir(framework, task))
            }
            WriteOp::CreateDir(p) => Target::CreateDir(p.clone()),
        }
    }
}

/// Runs until the request channel closes (the loop stopped), answering
/// every request it took.
pub(crate) async fn run(
    checkpoint: Checkpoint,
    mut requests: mpsc::Receiver<WriteRequest>,
    answers: mpsc::Sender<Persisted>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let taken = std::mem::take(&mut batch);
        let tickets: Vec<u64> = taken.iter().map(|r| r.ticket).collect();
        let cp = checkpoint.clone();
        let done = match tokio::task::spawn_blocking(move || write_batch(&cp, taken)).await {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(error = %e, "the checkpoint writer's batch panicked");
                let err = Arc::new(AgentError::io(
                    "writing a checkpoint batch",
                    std::io::Error::other(e.to_string()),
                ));
                tickets
                    .into_iter()
                    .map(|ticket| Persisted {
                        ticket,
                        result: Err(err.clone()),
                    })
                    .collect()
            }
        };
        let failed = done.iter().any(|p| p.result.is_err());
        for p in done {
            if answers.send(p).await.is_err() {
                return;
            }
        }
        if failed {
            tokio::time::sleep(RETRY_DELAY).await;
        }
    }
}

/// Writes one batch; answers in request order.
fn write_batch(cp: &Checkpoint, requests: Vec<WriteRequest>) -> Vec<Persisted> {
    let targets: Vec<Target> = requests.iter().map(|r| cp.target(&r.op)).collect();
    // Walk backwards: a file written later in the batch, or a task dir
    // removed later, makes an earlier write of it moot.
    let mut covered_by: Vec<Option<usize>> = vec![None; requests.len()];
    let mut last_write: HashMap<&Path, usize> = HashMap::new();
    let mut last_removal: HashMap<&Path, usize> = HashMap::new();
    for (i, target) in targets.iter().enumerate().rev() {
        match target {
            Target::File(f) => {
                let removed = f.parent().and_then(|d| last_removal.get(d)).copied();
                covered_by[i] = last_write.get(f.as_path()).copied().or(removed);
                last_write.entry(f).or_insert(i);
            }
            Target::RemoveDir(d) => {
                covered_by[i] = last_removal.get(d.as_path()).copied();
                last_removal.entry(d).or_insert(i);
            }
            Target::CreateDir(_) => {}
        }
    }
    let mut dirs_to_sync = BTreeSet::new();
    let mut results: Vec<Option<Result<(), Arc<AgentError>>>> = Vec::new();
    for (i, (req, target)) in requests.iter().zip(&targets).enumerate() {
        if covered_by[i].is_some() {
            results.push(None);
            continue;
        }
        let r = match target {
            Target::File(path) => write_file(path, &req.op, &mut dirs_to_sync),
            Target::RemoveDir(dir) => remove_dir(dir, &mut dirs_to_sync),
            Target::CreateDir(dir) => std::fs::create_dir_all(dir)
                .map_err(|e| AgentError::io(format!("creating {}", dir.display()), e)),
        };
        results.push(Some(r.map_err(Arc::new)));
    }
    for dir in dirs_to_sync {
        // Makes the renames and removals durable. Best effort: some
        // filesystems refuse fsync on directories.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    let result_of = |i: usize| -> Result<(), Arc<AgentError>> {
        let mut j = i;
        // Follow the chain to the write that was done (the last one).
        while let Some(k) = covered_by[j] {
            j = k;
        }
        results[j].clone().unwrap_or(Ok(()))
    };
    requests
        .iter()
        .enumerate()
        .map(|(i, r)| Persisted {
            ticket: r.ticket,
            result: result_of(i),
        })
        .collect()
}

fn write_file(
    path: &Path,
    op: &WriteOp,
    dirs_to_sync: &mut BTreeSet<PathBuf>,
) -> Result<(), AgentError> {
    let bytes = match op {
        WriteOp::Agent(r) => encode_json(path, r)?,
        WriteOp::Framework(_, f) => encode_json(path, f)?,
        WriteOp::Task(r) => encode_json(path, r)?,
        WriteOp::Updates { updates, .. } => encode_json(path, updates)?,
        WriteOp::RemoveTask { .. } | WriteOp::CreateDir(_) => return Ok(()),
    };
    let dir = path
        .parent()
        .ok_or_else(|| AgentError::Config(format!("{} has no parent", path.display())))?;
    // A directory created now needs its parent fsync'd to survive a crash.
    let mut missing = dir;
    while !missing.exists() {
        let Some(parent) = missing.parent() else {
            break;
        };
        dirs_to_sync.insert(parent.to_path_buf());
        missing = parent;
    }
    write_bytes_atomically(path, &bytes, false)?;
    dirs_to_sync.insert(dir.to_path_buf());
    Ok(())
}

fn remove_dir(dir: &Path, dirs_to_sync: &mut BTreeSet<PathBuf>) -> Result<(), AgentError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(AgentError::io(format!("removing {}", dir.display()), e)),
    }
    if let Some(parent) = dir.parent() {
        dirs_to_sync.insert(parent.to_path_buf());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_model::{StatusSource, TaskState};

    fn status(task: &str, state: TaskState) -> TaskStatus {
        let mut s = TaskStatus::new(
            TaskId::new_unchecked(task),
            state,
            StatusSource::Executor,
            1.0,
        );
        s.uuid = Some(uuid::Uuid::new_v4());
        s
    }

    fn updates(task: &str, list: Vec<TaskStatus>) -> WriteOp {
        WriteOp::Updates {
            framework: FrameworkId::new_unchecked("f"),
            task: TaskId::new_unchecked(task),
            updates: list,
        }
    }

    fn req(ticket: u64, op: WriteOp) -> WriteRequest {
        WriteRequest { ticket, op }
    }

    #[test]
    fn latest_write_of_a_file_wins_and_every_request_is_answered_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::new(dir.path());
        let a = status("t", TaskState::Starting);
        let b = status("t", TaskState::Running);
        let other = status("u", TaskState::Running);
        let sandbox = dir.path().join("sandboxes/f/t/c1");
        let done = write_batch(
            &cp,
            vec![
                req(1, updates("t", vec![a.clone()])),
                req(2, WriteOp::CreateDir(sandbox.clone())),
                req(3, updates("u", vec![other.clone()])),
                req(4, updates("t", vec![a.clone(), b.clone()])),
            ],
        );
        let tickets: Vec<u64> = done.iter().map(|p| p.ticket).collect();
        assert_eq!(tickets, vec![1, 2, 3, 4]);
        assert!(done.iter().all(|p| p.result.is_ok()));
        assert!(sandbox.is_dir());
        let t: Vec<TaskStatus> = super::super::read_json(
            &cp.task_dir(
                &FrameworkId::new_unchecked("f"),
                &TaskId::new_unchecked("t"),
            )
            .join("updates.json"),
        )
        .unwrap();
        assert_eq!(t, vec![a, b]);
    }

    #[test]
    fn a_removal_later_in_the_batch_wins_and_a_write_after_it_recreates() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::new(dir.path());
        let remove = || WriteOp::RemoveTask {
            framework: FrameworkId::new_unchecked("f"),
            task: TaskId::new_unchecked("t"),
        };
        let done = write_batch(
            &cp,
            vec![
                req(1, updates("t", vec![status("t", TaskState::Finished)])),
                req(2, remove()),
            ],
        );
        assert!(done.iter().all(|p| p.result.is_ok()));
        let task_dir = cp.task_dir(
            &FrameworkId::new_unchecked("f"),
            &TaskId::new_unchecked("t"),
        );
        assert!(!task_dir.exists());
        let done = write_batch(
            &cp,
            vec![
                req(3, remove()),
                req(4, updates("t", vec![status("t", TaskState::Running)])),
            ],
        );
        assert!(done.iter().all(|p| p.result.is_ok()));
        assert!(task_dir.join("updates.json").exists());
    }

    #[test]
    fn a_failed_write_is_reported_to_every_request_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        // meta is a file, so nothing can be created below it.
        std::fs::write(dir.path().join("meta"), b"").unwrap();
        let cp = Checkpoint::new(dir.path());
        let done = write_batch(
            &cp,
            vec![
                req(1, updates("t", vec![status("t", TaskState::Running)])),
                req(2, updates("t", vec![status("t", TaskState::Running)])),
            ],
        );
        assert_eq!(done.len(), 2);
        assert!(done.iter().all(|p| p.result.is_err()));
    }
}
