//! The crate's one error type. Display strings are etcd's own messages (from
//! etcd's `api/v3rpc/rpctypes/error.go`) so that clients which match on them,
//! as etcd's Go client does, behave the same against Agora.

use thiserror::Error;

use crate::Revision;

/// Everything that can make a keyspace request fail.
///
/// A failed [`crate::KvState::apply`] leaves the state untouched, on every
/// member alike, so an error is as deterministic as a success.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KvError {
    /// A put, range, delete or compare named the empty key.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// `ignore_value`/`ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// `ignore_value` together with a non-empty value.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// `ignore_lease` together with a non-zero lease.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// One list of a txn (compares, success or failure) exceeds [`crate::MAX_TXN_OPS`].
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// A txn puts one key twice, or puts a key it also deletes.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// The requested revision is below the compaction point. `compact_revision`
    /// is where history now starts, so a watcher knows where it may resume.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted {
        /// The store's compaction revision when the request was refused.
        compact_revision: Revision,
    },
    /// The requested revision has not been written yet.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    /// The lease does not exist (never granted, revoked, or expired).
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A grant named a lease id that is already in use.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// A grant asked for more than [`crate::MAX_LEASE_TTL_SECONDS`].
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    /// The request's keys and values exceed [`crate::MAX_REQUEST_BYTES`].
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// The keyspace reached its space quota (or a `NoSpace` alarm is
    /// raised): writes that add data are refused until an operator frees
    /// space and disarms the alarm.
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    /// A log entry or snapshot could not be decoded. Not an etcd error: it
    /// means a corrupt or incompatible replica, never bad client input.
    #[error("agora-kv: cannot decode {what}: {reason}")]
    Corrupt {
        /// What was being decoded ("command", "snapshot").
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
}

/// The gRPC status category etcd returns for each error, as a plain enum so
/// this crate does not depend on tonic; the API layer maps it to a gRPC status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    /// The request itself is malformed (`codes.InvalidArgument`).
    InvalidArgument,
    /// A revision outside the stored history or a TTL out of bounds (`codes.OutOfRange`).
    OutOfRange,
    /// The named lease does not exist (`codes.NotFound`).
    NotFound,
    /// The request conflicts with existing state (`codes.FailedPrecondition`).
    FailedPrecondition,
    /// A quota is exhausted (`codes.ResourceExhausted`).
    ResourceExhausted,
    /// The replica itself is broken (`codes.Internal`).
    Internal,
}

/// The variants that are their text alone (no field), so a text names one.
const TEXT_ONLY: [KvError; 12] = [
    KvError::EmptyKey,
    KvError::KeyNotFound,
    KvError::ValueProvided,
    KvError::LeaseProvided,
    KvError::TooManyOps,
    KvError::DuplicateKey,
    KvError::FutureRevision,
    KvError::LeaseNotFound,
    KvError::LeaseExists,
    KvError::LeaseTtlTooLarge,
    KvError::RequestTooLarge,
    KvError::NoSpace,
];

impl KvError {
    /// The error whose etcd text `message` is, for variants with no field
    /// (their texts are distinct). An error crosses members (the state
    /// machine's answer bytes, a forwarded request's answer) as code and
    /// text only; this gives the proposer the typed error back, so it
    /// answers as a single member would (a keep-alive of a lost lease is
    /// TTL 0, not an error). The caller checks the code still matches.
    pub fn from_text(message: &str) -> Option<KvError> {
        TEXT_ONLY
            .into_iter()
            .find(|error| error.to_string() == message)
    }

    /// The gRPC code category etcd uses for this error.
    pub fn category(&self) -> ErrorCategory {
        match self {
            KvError::EmptyKey
            | KvError::KeyNotFound
            | KvError::ValueProvided
            | KvError::LeaseProvided
            | KvError::TooManyOps
            | KvError::DuplicateKey
            | KvError::RequestTooLarge => ErrorCategory::InvalidArgument,
            KvError::Compacted { .. } | KvError::FutureRevision | KvError::LeaseTtlTooLarge => {
                ErrorCategory::OutOfRange
            }
            KvError::LeaseNotFound => ErrorCategory::NotFound,
            KvError::LeaseExists => ErrorCategory::FailedPrecondition,
            KvError::NoSpace => ErrorCategory::ResourceExhausted,
            KvError::Corrupt { .. } => ErrorCategory::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_only_errors_come_back_from_their_text() {
        for error in TEXT_ONLY {
            assert_eq!(KvError::from_text(&error.to_string()), Some(error));
        }
        let compacted = KvError::Compacted {
            compact_revision: 3,
        };
        assert_eq!(KvError::from_text(&compacted.to_string()), None);
        assert_eq!(KvError::from_text("etcdserver: something else"), None);
    }
}
