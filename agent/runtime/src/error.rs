//! The crate's one error type.
use thiserror::Error;

/// Everything that can go wrong in a runtime. The agent maps these to task
/// states: `ImageNotFound`/`CommandNotFound` are the task's fault (TASK_FAILED
/// with a reason), the rest are agent/host trouble.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The image is not present locally and could not be pulled.
    #[error("image {image:?} not found: {reason}")]
    ImageNotFound {
        /// The image reference from the task.
        image: String,
        /// Why it could not be found or pulled.
        reason: String,
    },
    /// The program to run does not exist or is not executable.
    #[error("command not found: {0}")]
    CommandNotFound(String),
    /// The launch spec is unusable (e.g. neither command nor docker set).
    #[error("invalid launch spec: {0}")]
    InvalidSpec(String),
    /// Launching failed for another reason.
    #[error("launch failed: {0}")]
    Launch(String),
    /// The Docker daemon returned an error.
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    /// Docker is not reachable (no socket, daemon down, version refused).
    #[error("docker unavailable: {0}")]
    DockerUnavailable(String),
    /// Creating, configuring or removing a cgroup failed.
    #[error("cgroup {path}: {reason}")]
    Cgroup {
        /// Cgroup path relative to the hierarchy root.
        path: String,
        /// What failed.
        reason: String,
    },
    /// Local IO (sandbox files, /proc).
    #[error("io: {context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The container/process is unknown (already removed, never existed).
    #[error("container not found: {0}")]
    NotFound(String),
    /// The handle belongs to the other runtime kind or lacks a needed field.
    #[error("invalid handle for {runtime} runtime: {reason}")]
    InvalidHandle {
        /// Which runtime rejected it.
        runtime: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An operation with a deadline did not finish in time.
    #[error("timed out after {0:?}: {1}")]
    Timeout(std::time::Duration, String),
    /// Sending a signal failed.
    #[error("signal: {0}")]
    Signal(#[from] nix::Error),
}

impl RuntimeError {
    /// Wraps an IO error with what we were doing.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }

    /// A cgroup error.
    pub(crate) fn cgroup(path: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        RuntimeError::Cgroup {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
