//! Garbage collection of terminated tasks' sandboxes and exited containers:
//! a periodic worker removes sandboxes no live task uses once they are
//! older than `max_age`, and sooner, oldest first, while the work dir's
//! filesystem is fuller than `disk_usage_threshold`. Exited containers of
//! removed sandboxes are cleaned up through their runtime.
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::config::GcConfig;
use crate::event_loop::{Command, Completed, Event};
use crate::runtimes::Runtimes;

/// What the event loop tells the GC.
pub(crate) struct GcView {
    /// Sandboxes of tasks the agent still holds: never touched.
    pub(crate) live_sandboxes: HashSet<PathBuf>,
    /// Recently completed containers (for runtime cleanup).
    pub(crate) completed: Vec<Completed>,
}

/// A sandbox that may be collected, with its age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The sandbox directory.
    pub(crate) path: PathBuf,
    /// Time since anything in it last changed.
    pub(crate) age: Duration,
}

/// Which candidates to remove by age, and the rest ordered oldest first
/// (to remove while the disk is under pressure). Pure.
pub(crate) fn plan(
    mut candidates: Vec<Candidate>,
    max_age: Duration,
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    candidates.sort_by_key(|c| std::cmp::Reverse(c.age));
    let (old, young): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|c| c.age >= max_age);
    (
        old.into_iter().map(|c| c.path).collect(),
        young.into_iter().map(|c| c.path).collect(),
    )
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = std::fs::metadata(dir).and_then(|m| m.modified()).ok()?;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                newest = newest.max(t);
            }
        }
    }
    Some(newest)
}

/// Sandboxes under `<sandboxes>/<framework>/<task>/<container>` not in `live`.
fn scan(sandboxes: &Path, live: &HashSet<PathBuf>) -> Vec<Candidate> {
    let now = SystemTime::now();
    let mut out = Vec::new();
    let dirs = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default()
    };
    for fw in dirs(sandboxes) {
        for task in dirs(&fw) {
            for container in dirs(&task) {
                if live.contains(&container) {
                    continue;
                }
                let age = newest_mtime(&container)
                    .and_then(|t| now.duration_since(t).ok())
                    .unwrap_or_default();
                out.push(Candidate {
                    path: container,
                    age,
                });
            }
        }
    }
    out
}

fn disk_pressure(work_dir: &Path, threshold: f64) -> bool {
    match crate::resources::filesystem_usage_mb(work_dir) {
        Ok((total, used)) if total > 0 => used as f64 / total as f64 > threshold,
        _ => false,
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_dir_all(path) {
        tracing::warn!(path = %path.display(), error = %e, "could not remove a sandbox");
        return;
    }
    // Drop the now empty task and framework directories.
    for parent in path.ancestors().skip(1).take(2) {
        if std::fs::remove_dir(parent).is_err() {
            break;
        }
    }
}

/// One collection pass. Returns the sandboxes removed.
pub(crate) async fn collect_once(
    config: &GcConfig,
    work_dir: &Path,
    events: &mpsc::Sender<Event>,
    runtimes: &Runtimes,
) -> Vec<PathBuf> {
    let (tx, rx) = oneshot::channel();
    if events
        .send(Event::Command(Command::GcView(tx)))
        .await
        .is_err()
    {
        return Vec::new();
    }
    let Ok(view) = rx.await else {
        return Vec::new();
    };
    let sandboxes = work_dir.join("sandboxes");
    let (work_dir2, max_age, threshold) = (
        work_dir.to_path_buf(),
        config.max_age,
        config.disk_usage_threshold,
    );
    let live = view.live_sandboxes;
    let removed = tokio::task::spawn_blocking(move || {
        let (old, young) = plan(scan(&sandboxes, &live), max_age);
        let mut removed = Vec::new();
        for p in old {
            remove(&p);
            removed.push(p);
        }
        for p in young {
            if !disk_pressure(&work_dir2, threshold) {
                break;
            }
            tracing::info!(path = %p.display(), "removing a sandbox early: disk pressure");
            remove(&p);
            removed.push(p);
        }
        removed
    })
    .await
    .unwrap_or_default();
    let mut forget = Vec::new();
    for c in view.completed {
        if !removed.contains(&c.sandbox) && c.sandbox.exists() {
            continue;
        }
        if let Some(h) = &c.handle
            && let Err(e) = runtimes.cleanup(h).await
        {
            tracing::warn!(container_id = c.container_id, error = %e, "container cleanup failed");
        }
        forget.push(c.container_id);
    }
    if !forget.is_empty() {
        let _ = events.send(Event::Command(Command::GcForget(forget))).await;
    }
    removed
}

/// The periodic worker.
pub(crate) async fn run(
    config: GcConfig,
    work_dir: PathBuf,
    events: mpsc::Sender<Event>,
    runtimes: Runtimes,
) {
    loop {
        tokio::time::sleep(config.interval).await;
        let removed = collect_once(&config, &work_dir, &events, &runtimes).await;
        if !removed.is_empty() {
            tracing::info!(count = removed.len(), "garbage-collected sandboxes");
        }
        if events.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_splits_by_age_oldest_first() {
        let c = |p: &str, s: u64| Candidate {
            path: PathBuf::from(p),
            age: Duration::from_secs(s),
        };
        let (old, young) = plan(
            vec![c("a", 10), c("b", 100), c("c", 50), c("d", 1)],
            Duration::from_secs(50),
        );
        assert_eq!(old, vec![PathBuf::from("b"), PathBuf::from("c")]);
        assert_eq!(young, vec![PathBuf::from("a"), PathBuf::from("d")]);
    }

    #[test]
    fn scan_skips_live_sandboxes() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("f/t1/c1");
        let dead = dir.path().join("f/t2/c2");
        std::fs::create_dir_all(&live).unwrap();
        std::fs::create_dir_all(&dead).unwrap();
        let found = scan(dir.path(), &HashSet::from([live]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, dead);
        remove(&dead);
        assert!(!dir.path().join("f/t2").exists());
        assert!(dir.path().join("f").exists());
    }
}
