//! The agent crate's one error type.
use std::path::PathBuf;

use thiserror::Error;

/// Everything that can stop the agent from starting or make an internal
/// operation fail. Task-level failures are never errors: they become status
/// updates.
#[derive(Debug, Error)]
pub enum AgentError {
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A checkpoint file exists but cannot be parsed. Nothing is deleted: the
    /// operator decides what to do with it.
    #[error("damaged checkpoint {path}: {reason}")]
    DamagedCheckpoint {
        /// The file that could not be read.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The work dir's checkpoint was written by another agent (other
    /// hostname) or another checkpoint format version.
    #[error("work dir belongs to another agent: {path}: {reason}")]
    ForeignWorkDir {
        /// The identity file that did not match.
        path: PathBuf,
        /// Which field differed.
        reason: String,
    },
    /// Local IO (checkpoint, sandbox, work dir).
    #[error("io: {context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A container runtime failed in a way that concerns the agent itself
    /// (e.g. Docker required but unreachable).
    #[error("runtime: {0}")]
    Runtime(#[from] agora_runtime::RuntimeError),
    /// Building the agent's own Tokio runtime failed.
    #[error("tokio runtime: {0}")]
    Tokio(std::io::Error),
    /// The agent's event loop is gone (it crashed or was shut down).
    #[error("the agent is not running")]
    Stopped,
}

impl AgentError {
    /// Wraps an IO error with what we were doing.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        AgentError::Io {
            context: context.into(),
            source,
        }
    }
}
