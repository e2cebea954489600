//! The SDK's one error type, and how gRPC statuses from the master map onto it.
use agora_model::ModelError;

/// Everything that can go wrong in the SDK.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SdkError {
    /// The driver was configured wrongly (no masters, a master address that
    /// is not a URL, ...). Nothing was sent.
    #[error("configuration error: {0}")]
    Config(String),
    /// The master understood the call and refused it (gRPC `InvalidArgument`,
    /// `NotFound`, `AlreadyExists`, `OutOfRange`): unknown offer, resources
    /// beyond the offer, duplicate task id, malformed resources, ...
    /// Retrying the same call will fail the same way.
    #[error("rejected by the master: {0}")]
    Rejected(String),
    /// The master does not consider this driver subscribed (gRPC
    /// `FailedPrecondition`, `Unauthenticated`): a call
    /// before SUBSCRIBED, or with a stale stream id after a newer
    /// subscription of the same framework.
    #[error("not subscribed: {0}")]
    NotSubscribed(String),
    /// No usable connection to the master right now (gRPC `Unavailable`,
    /// `DeadlineExceeded`, `Cancelled`, or the driver is between
    /// subscriptions). The driver reconnects by itself; retry later.
    #[error("disconnected from the master: {0}")]
    Disconnected(String),
    /// The master removed this framework (TEARDOWN, or its failover timeout
    /// expired): it may not subscribe again under this id, and its tasks
    /// are being killed (gRPC `PermissionDenied`).
    #[error("framework removed: {0}")]
    Removed(String),
    /// The master sent an ERROR event or refused the subscription outright;
    /// the framework should abort (Mesos semantics). `run` returns this.
    #[error("fatal error from the master: {0}")]
    Fatal(String),
    /// A task description failed validation before anything was sent.
    #[error("invalid task: {0}")]
    InvalidTask(ModelError),
    /// An offer does not hold what a task asked for.
    #[error("insufficient resources in offer: {0}")]
    Insufficient(String),
    /// Any other gRPC failure, with its code.
    #[error("rpc failed ({code:?}): {message}")]
    Rpc {
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
}

impl SdkError {
    /// Could the same call succeed later without changing it? True for
    /// transient transport problems; false for rejections and fatal errors.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SdkError::Disconnected(_) | SdkError::NotSubscribed(_))
    }
}

impl From<tonic::Status> for SdkError {
    fn from(s: tonic::Status) -> Self {
        use tonic::Code;
        let message = s.message().to_string();
        match s.code() {
            Code::InvalidArgument | Code::NotFound | Code::AlreadyExists | Code::OutOfRange => {
                SdkError::Rejected(message)
            }
            Code::PermissionDenied => SdkError::Removed(message),
            Code::FailedPrecondition | Code::Unauthenticated => SdkError::NotSubscribed(message),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                SdkError::Disconnected(message)
            }
            code => SdkError::Rpc { code, message },
        }
    }
}

impl From<tonic::transport::Error> for SdkError {
    fn from(e: tonic::transport::Error) -> Self {
        SdkError::Disconnected(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_the_documented_variants() {
        let cases = [
            (tonic::Status::invalid_argument("bad"), "Rejected"),
            (tonic::Status::not_found("bad"), "Rejected"),
            (tonic::Status::failed_precondition("x"), "NotSubscribed"),
            (tonic::Status::permission_denied("x"), "Removed"),
            (tonic::Status::unavailable("x"), "Disconnected"),
            (tonic::Status::deadline_exceeded("x"), "Disconnected"),
            (tonic::Status::internal("x"), "Rpc"),
        ];
        for (status, want) in cases {
            let got = format!("{:?}", SdkError::from(status));
            assert!(got.starts_with(want), "{got} should be {want}");
        }
        assert!(SdkError::Disconnected("x".into()).is_retryable());
        assert!(!SdkError::Rejected("x".into()).is_retryable());
    }
}
