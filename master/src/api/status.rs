//! The one mapping from the core's errors to gRPC status codes.
use tonic::Status;

use crate::error::CallError;

impl From<CallError> for Status {
    fn from(e: CallError) -> Status {
        match e {
            CallError::InvalidArgument(m) => Status::invalid_argument(m),
            CallError::FailedPrecondition(m) => Status::failed_precondition(m),
            CallError::NotFound(m) => Status::not_found(m),
            CallError::PermissionDenied(m) => Status::permission_denied(m),
            CallError::Unavailable(m) => Status::unavailable(m),
        }
    }
}
