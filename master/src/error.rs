//! The master crate's error type.
use thiserror::Error;

/// Errors the master reports to its callers.
#[derive(Debug, Error)]
pub enum MasterError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A socket or file operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The registry file is unreadable or damaged.
    #[error("registry {path}: {reason}")]
    Registry {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The event loop has stopped (shutting down).
    #[error("the master is shutting down")]
    Stopped,
}
