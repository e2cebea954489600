//! Copies a container's stdout/stderr from the Docker logs API into the
//! task's sandbox files, so both runtimes leave logs in the same place.
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::{debug, warn};

use crate::{STDERR_FILE, STDOUT_FILE};

/// A running copy task. Dropping it does not stop the task; `abort` does.
#[derive(Debug)]
pub(crate) struct LogFollower {
    /// Becomes true when the stream ended (container exited) or failed.
    done: watch::Receiver<bool>,
    abort: AbortHandle,
}

impl LogFollower {
    /// Waits up to `timeout` for the copy to reach the end of the logs;
    /// returns whether it did.
    pub(crate) async fn finished(&self, timeout: Duration) -> bool {
        let mut done = self.done.clone();
        tokio::time::timeout(timeout, done.wait_for(|d| *d))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops copying.
    pub(crate) fn abort(&self) {
        self.abort.abort();
    }
}

/// Where to resume copying after an agent restart: the last modification of
/// the sandbox log files, in Unix seconds (the resolution of Docker's
/// `since`). Lines from that very second may be copied twice; none are lost.
pub(crate) fn resume_since(sandbox: &Path) -> i32 {
    [STDOUT_FILE, STDERR_FILE]
        .iter()
        .filter_map(|f| std::fs::metadata(sandbox.join(f)).ok()?.modified().ok())
        .filter_map(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
        .max()
        .unwrap_or(0)
}

async fn open_append(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

/// Starts copying the logs of container `name` (from `since`, Unix seconds;
/// 0 = from the start) into `sandbox/stdout` and `sandbox/stderr` until the
/// container exits.
pub(crate) fn follow(
    docker: bollard::Docker,
    name: String,
    sandbox: PathBuf,
    since: i32,
) -> LogFollower {
    let (tx, done) = watch::channel(false);
    let task = tokio::spawn(async move {
        if let Err(e) = copy(&docker, &name, &sandbox, since).await {
            warn!(container = %name, error = %e, "copying container logs failed");
        }
        let _ = tx.send(true);
    });
    LogFollower {
        done,
        abort: task.abort_handle(),
    }
}

async fn copy(
    docker: &bollard::Docker,
    name: &str,
    sandbox: &Path,
    since: i32,
) -> std::io::Result<()> {
    let mut out = open_append(&sandbox.join(STDOUT_FILE)).await?;
    let mut err = open_append(&sandbox.join(STDERR_FILE)).await?;
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .since(since)
        .build();
    let mut stream = docker.logs(name, Some(options));
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogOutput::StdErr { message }) => {
                err.write_all(&message).await?;
                err.flush().await?;
            }
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                out.write_all(&message).await?;
                out.flush().await?;
            }
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
    debug!(container = %name, "container log stream ended");
    out.flush().await?;
    err.flush().await
}
