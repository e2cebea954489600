//! `StoreError`, the one error type of the store and the election, and the
//! one place where etcd-client's errors (and request timeouts) are mapped to
//! it. Callers branch on the variant, never on a message.

use std::future::Future;
use std::time::Duration;

/// What went wrong talking to the etcd keyspace. `Clone` because the writer
/// reports one failed Txn to every submitter whose batch it carried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// etcd could not be reached or did not answer in time; retrying may help.
    #[error("etcd unavailable: {0}")]
    Unavailable(String),
    /// A value over [`super::MAX_VALUE_BYTES`]; refused before anything was sent.
    #[error("value of {key:?} is {bytes} bytes, over the store's limit")]
    TooLarge { key: String, bytes: usize },
    /// A stored record cannot be read back (for example, a key that is not UTF-8).
    #[error("corrupt record {key:?}: {reason}")]
    Corrupt { key: String, reason: String },
    /// A key the store cannot address (empty, or with an empty path segment at its start).
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    /// etcd answered and refused the request; retrying the same request will not help.
    #[error("etcd refused the request: {0}")]
    Rejected(String),
    /// A fenced write found its fence key gone: this process no longer
    /// leads (not retried).
    #[error("fenced: the election key is gone, this process no longer leads")]
    Fenced,
    /// The configuration cannot work (no endpoints, a malformed endpoint URL).
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// The writer's queue is full; the batch was not queued.
    #[error("the store writer's queue is full")]
    Busy,
    /// The writer stopped (after a failed batch, or because its task ended).
    #[error("the store writer is closed")]
    Closed,
}

impl StoreError {
    /// Whether the same request may succeed later: only [`StoreError::Unavailable`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<etcd_client::Error> for StoreError {
    fn from(err: etcd_client::Error) -> Self {
        use etcd_client::Error as E;
        use tonic::Code;
        match err {
            E::GRpcStatus(status) => match status.code() {
                // The server understood the request and said no: not transient.
                Code::InvalidArgument
                | Code::FailedPrecondition
                | Code::OutOfRange
                | Code::PermissionDenied
                | Code::Unauthenticated
                | Code::NotFound
                | Code::AlreadyExists
                | Code::Unimplemented => {
                    StoreError::Rejected(format!("{:?}: {}", status.code(), status.message()))
                }
                // Unavailable, DeadlineExceeded, Cancelled, Aborted, ResourceExhausted,
                // Internal, DataLoss, Unknown (tonic's code for broken HTTP/2 streams)
                // and Ok (a stream that ended without a status).
                code => StoreError::Unavailable(format!("{code:?}: {}", status.message())),
            },
            E::TransportError(e) => StoreError::Unavailable(format!("transport: {e}")),
            E::IoError(e) => StoreError::Unavailable(format!("io: {e}")),
            // Both come from a request channel whose stream has gone away.
            E::WatchError(e) => StoreError::Unavailable(format!("watch: {e}")),
            E::LeaseKeepAliveError(e) => StoreError::Unavailable(format!("lease keep-alive: {e}")),
            E::Internal(e) => StoreError::Unavailable(format!("client: {e}")),
            E::ElectError(e) => StoreError::Rejected(format!("election: {e}")),
            E::Utf8Error(e) => StoreError::Corrupt {
                key: String::new(),
                reason: format!("not UTF-8: {e}"),
            },
            E::InvalidArgs(e) => StoreError::Config(e),
            E::InvalidUri(e) => StoreError::Config(format!("endpoint: {e}")),
            E::EndpointError(e) => StoreError::Config(format!("endpoint: {e}")),
            E::InvalidMetadataValue(e) => StoreError::Config(format!("metadata: {e}")),
            E::EndpointsNotManaged => StoreError::Config("endpoints not managed".to_owned()),
            // Variants behind etcd-client features this crate does not enable.
            #[allow(unreachable_patterns)]
            other => StoreError::Rejected(other.to_string()),
        }
    }
}

/// Runs one etcd request with a deadline; a timeout is [`StoreError::Unavailable`].
pub(crate) async fn within<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, request).await {
        Ok(answer) => answer.map_err(StoreError::from),
        Err(_) => Err(StoreError::Unavailable(format!(
            "no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}
