//! The KV service: Range, Put, DeleteRange, Txn, Compact.

use agora_kv::{Command, CompactRequest, Response as KvResponse};
use tonic::{Request, Response, Status};

use crate::ApiError;
use crate::context::Context;
use crate::convert::{self, check_size};
use crate::pb::etcdserverpb as pb;

pub(crate) struct KvApi {
    pub(crate) ctx: Context,
}

#[tonic::async_trait]
impl pb::kv_server::Kv for KvApi {
    async fn range(
        &self,
        request: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        let wire = request.into_inner();
        check_size(&wire, &self.ctx.config.limits)?;
        let (range, serializable) = convert::range_request(wire)?;
        let result = if serializable {
            self.ctx.backend.read(range).await?
        } else {
            self.ctx.range(range).await?
        };
        let headers = self.ctx.headers();
        Ok(Response::new(convert::range_response(result, &headers)))
    }

    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutResponse>, Status> {
        let wire = request.into_inner();
        check_size(&wire, &self.ctx.config.limits)?;
        let result = self.ctx.put(convert::put_request(wire)).await?;
        let headers = self.ctx.headers();
        Ok(Response::new(convert::put_response(result, &headers)))
    }

    async fn delete_range(
        &self,
        request: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let wire = request.into_inner();
        check_size(&wire, &self.ctx.config.limits)?;
        let result = self.ctx.delete(convert::delete_request(wire)).await?;
        let headers = self.ctx.headers();
        Ok(Response::new(convert::delete_response(result, &headers)))
    }

    async fn txn(
        &self,
        request: Request<pb::TxnRequest>,
    ) -> Result<Response<pb::TxnResponse>, Status> {
        let wire = request.into_inner();
        check_size(&wire, &self.ctx.config.limits)?;
        let txn = convert::txn_request(wire, &self.ctx.config.limits)?;
        let result = self.ctx.txn(txn).await?;
        let headers = self.ctx.headers();
        Ok(Response::new(convert::txn_response(result, &headers)))
    }

    async fn compact(
        &self,
        request: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        let wire = request.into_inner();
        let command = Command::Compact(CompactRequest {
            revision: wire.revision,
        });
        let revision = match self.ctx.backend.apply(command).await? {
            KvResponse::Compact(response) => response.revision,
            _ => return Err(ApiError::WrongResponse("Compact").into()),
        };
        if wire.physical {
            self.ctx.backend.compacted_physically(wire.revision).await?;
        }
        Ok(Response::new(pb::CompactionResponse {
            header: self.ctx.headers().at(revision),
        }))
    }
}
