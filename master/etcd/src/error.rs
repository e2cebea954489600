//! The API layer's one error type and its mapping to gRPC statuses.
//!
//! Messages are etcd's own (`api/v3rpc/rpctypes/error.go`, and the
//! concurrency package's for Lock and Election): etcd's Go client turns a
//! status back into its typed error by matching the message, and etcdctl
//! prints it, so the text is part of the wire contract.

use agora_kv::{ErrorCategory, KvError};
use thiserror::Error;
use tonic::{Code, Status};

/// Everything a request can fail with above the keyspace.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiError {
    /// The keyspace refused the command (its `Display` is etcd's text).
    #[error(transparent)]
    Kv(#[from] KvError),
    /// A request field etcd would also refuse (bad enum value, missing part).
    #[error("{0}")]
    InvalidArgument(String),
    /// The backend is shutting down or gone.
    #[error("etcdserver: server stopped")]
    Stopped,
    /// No leader to propose to (the Raft backend, during an election).
    #[error("etcdserver: no leader")]
    NoLeader,
    /// A proposal was not committed in time.
    #[error("etcdserver: request timed out")]
    Timeout,
    /// The backend's queue is full; the client should back off and retry.
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    /// Election: the caller does not hold the leadership it named.
    #[error("election: not leader")]
    ElectionNotLeader,
    /// Election: nobody leads the election.
    #[error("election: no leader")]
    ElectionNoLeader,
    /// Election: Proclaim or Resign without the `leader` field.
    #[error("\"leader\" field must be provided")]
    MissingLeaderKey,
    /// Lock: the caller's key vanished while it waited (its lease expired).
    #[error("session expired")]
    SessionExpired,
    /// MoveLeader asked of a member that does not lead.
    #[error("etcdserver: not leader")]
    NotLeader,
    /// MoveLeader to a member that is not a voter of the group.
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    /// MoveLeader: the transferee did not take over in time.
    #[error("etcdserver: request timed out, leader transfer took too long")]
    LeaderTransferTimeout,
    /// A membership request named a member the group does not have.
    #[error("etcdserver: member not found")]
    MemberNotFound,
    /// MemberAdd or MemberUpdate with a peer URL another member has.
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    /// MemberAdd or MemberUpdate without one usable peer URL.
    #[error("etcdserver: given member URLs are invalid")]
    MemberBadUrls,
    /// MemberPromote of a voter (Agora's members are all voters).
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    /// The RPC exists in etcd but Agora does not serve it (yet).
    #[error("agora: {0} is not supported")]
    Unsupported(&'static str),
    /// The backend answered a command with another command's response: a bug.
    #[error("agora: the backend answered {0} with another kind of response")]
    WrongResponse(&'static str),
    /// An error the replicated keyspace or the leader answered with, as
    /// code and etcd's text (the error itself stayed on the member that
    /// applied the command).
    #[error("{message}")]
    Remote {
        /// The gRPC code to answer with.
        code: Code,
        /// etcd's error text.
        message: String,
    },
}

/// The gRPC code etcd answers a keyspace error category with.
pub fn category_code(category: ErrorCategory) -> Code {
    match category {
        ErrorCategory::InvalidArgument => Code::InvalidArgument,
        ErrorCategory::OutOfRange => Code::OutOfRange,
        ErrorCategory::NotFound => Code::NotFound,
        ErrorCategory::FailedPrecondition => Code::FailedPrecondition,
        ErrorCategory::Internal => Code::Internal,
        ErrorCategory::ResourceExhausted => Code::ResourceExhausted,
    }
}

impl ApiError {
    /// The gRPC code etcd answers this error with.
    pub fn code(&self) -> Code {
        match self {
            ApiError::Kv(e) => category_code(e.category()),
            ApiError::InvalidArgument(_) => Code::InvalidArgument,
            ApiError::Stopped
            | ApiError::NoLeader
            | ApiError::Timeout
            | ApiError::LeaderTransferTimeout => Code::Unavailable,
            ApiError::NotLeader
            | ApiError::BadLeaderTransferee
            | ApiError::PeerUrlExists
            | ApiError::MemberNotLearner => Code::FailedPrecondition,
            ApiError::MemberNotFound => Code::NotFound,
            ApiError::MemberBadUrls => Code::InvalidArgument,
            ApiError::TooManyRequests => Code::ResourceExhausted,
            // etcd's lock and election servers return the concurrency
            // package's plain Go errors, which gRPC sends as Unknown.
            ApiError::ElectionNotLeader
            | ApiError::ElectionNoLeader
            | ApiError::MissingLeaderKey
            | ApiError::SessionExpired => Code::Unknown,
            ApiError::Unsupported(_) => Code::Unimplemented,
            ApiError::WrongResponse(_) => Code::Internal,
            ApiError::Remote { code, .. } => *code,
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        Status::new(error.code(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_errors_keep_etcds_text_and_code() {
        let status = Status::from(ApiError::from(KvError::Compacted {
            compact_revision: 5,
        }));
        assert_eq!(status.code(), Code::OutOfRange);
        assert_eq!(
            status.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        let status = Status::from(ApiError::from(KvError::LeaseNotFound));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "etcdserver: requested lease not found");
        let status = Status::from(ApiError::from(KvError::TooManyOps));
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    #[test]
    fn unavailable_errors_are_retryable_codes() {
        assert_eq!(ApiError::Stopped.code(), Code::Unavailable);
        assert_eq!(ApiError::Stopped.to_string(), "etcdserver: server stopped");
    }
}
