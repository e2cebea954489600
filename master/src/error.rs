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
    /// The member's Raft store (data dir) cannot be opened or is damaged.
    #[error("raft store {path}: {reason}")]
    Storage {
        /// The store's directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The event loop has stopped (shutting down).
    #[error("the master is shutting down")]
    Stopped,
}

/// Why the master refused a call from a framework or an agent. Mapped to a
/// gRPC status in one place (`api/status.rs`); the core never sees tonic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    /// The request is malformed; names the field.
    #[error("{0}")]
    InvalidArgument(String),
    /// The caller is in the wrong state for the call (not subscribed, stale
    /// stream or session, unreachable agent).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller or thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The framework was removed and may not come back.
    #[error("{0}")]
    PermissionDenied(String),
    /// The master cannot make the change durable, or is stopping.
    #[error("{0}")]
    Unavailable(String),
}
