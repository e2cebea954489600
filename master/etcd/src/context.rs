//! What every handler holds: the backend, the configuration and the
//! server's stop signal, plus typed helpers over `Backend::apply`.

use std::sync::Arc;

use agora_kv::{
    Command, DeleteRangeRequest, DeleteRangeResponse, LeaseGrantResponse, LeaseId, PutRequest,
    PutResponse, RangeRequest, RangeResponse, Response, TxnRequest, TxnResponse,
};
use tokio::sync::watch;

use crate::convert::{self, Headers};
use crate::pb::etcdserverpb as pb;
use crate::{ApiError, Backend, ServerConfig, quota};

#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) config: ServerConfig,
    /// Becomes true when the server shuts down; long-lived streams end then,
    /// or graceful shutdown would wait for them forever.
    pub(crate) stop: watch::Receiver<bool>,
}

impl Context {
    /// Headers with the backend's identity.
    pub(crate) fn headers(&self) -> Headers {
        Headers {
            base: self.backend.header(),
        }
    }

    /// A header at the latest applied revision (etcd fills the revision of
    /// non-keyspace answers the same way).
    pub(crate) fn header_now(&self) -> Option<pb::ResponseHeader> {
        Some(convert::header(self.backend.header()))
    }

    /// Resolves when the server stops (or is gone).
    pub(crate) async fn stopped(&self) {
        let mut stop = self.stop.clone();
        // An error means the sender is gone: the server has stopped too.
        let _ = stop.wait_for(|stopped| *stopped).await;
    }

    /// A lease grant (`id` 0: the state machine picks one), after the
    /// space quota's check.
    pub(crate) async fn lease_grant(
        &self,
        id: LeaseId,
        ttl_seconds: i64,
    ) -> Result<LeaseGrantResponse, ApiError> {
        quota::check(self, quota::lease_cost()).await?;
        let command = Command::LeaseGrant {
            id,
            ttl_seconds,
            now_ms: 0,
        };
        match self.backend.apply(command).await? {
            Response::LeaseGrant(granted) => Ok(granted),
            _ => Err(ApiError::WrongResponse("LeaseGrant")),
        }
    }

    pub(crate) async fn range(&self, request: RangeRequest) -> Result<RangeResponse, ApiError> {
        match self.backend.apply(Command::Range(request)).await? {
            Response::Range(response) => Ok(response),
            _ => Err(ApiError::WrongResponse("Range")),
        }
    }

    /// A put, after the space quota's check.
    pub(crate) async fn put(&self, request: PutRequest) -> Result<PutResponse, ApiError> {
        quota::check(self, quota::put_cost(&request)).await?;
        match self.backend.apply(Command::Put(request)).await? {
            Response::Put(response) => Ok(response),
            _ => Err(ApiError::WrongResponse("Put")),
        }
    }

    pub(crate) async fn delete(
        &self,
        request: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, ApiError> {
        match self.backend.apply(Command::DeleteRange(request)).await? {
            Response::DeleteRange(response) => Ok(response),
            _ => Err(ApiError::WrongResponse("DeleteRange")),
        }
    }

    /// A txn, after the space quota's check (even one that writes nothing,
    /// as etcd's).
    pub(crate) async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, ApiError> {
        quota::check(self, quota::txn_cost(&request)).await?;
        match self.backend.apply(Command::Txn(request)).await? {
            Response::Txn(response) => Ok(response),
            _ => Err(ApiError::WrongResponse("Txn")),
        }
    }
}
