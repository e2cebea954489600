//! The Cluster service. MemberList reports the backend's members;
//! membership changes belong to the Raft layer and are refused until it
//! exists (`Unimplemented`, so a client knows not to retry).

use tonic::{Request, Response, Status};

use crate::ApiError;
use crate::backend::Member;
use crate::context::Context;
use crate::pb::etcdserverpb as pb;

pub(crate) struct ClusterApi {
    pub(crate) ctx: Context,
}

fn member(member: Member) -> pb::Member {
    pb::Member {
        id: member.id,
        name: member.name,
        peer_ur_ls: member.peer_urls.into_iter().map(url).collect(),
        client_ur_ls: member.client_urls.into_iter().map(url).collect(),
        is_learner: member.is_learner,
    }
}

/// `address` as etcd reports a member's URLs: with a scheme, `http://`
/// when it has none (etcd's are URLs; etcdctl prints them, and its
/// `--cluster` commands dial them). etcdctl 3.4 dials `http://host:port`
/// with an HTTP/2 :authority of `host:port`, which this server accepts.
fn url(address: String) -> String {
    if address.contains("://") {
        address
    } else {
        format!("http://{address}")
    }
}

#[tonic::async_trait]
impl pb::cluster_server::Cluster for ClusterApi {
    async fn member_add(
        &self,
        _request: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        Err(ApiError::Unsupported("MemberAdd").into())
    }

    async fn member_remove(
        &self,
        _request: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        Err(ApiError::Unsupported("MemberRemove").into())
    }

    async fn member_update(
        &self,
        _request: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        Err(ApiError::Unsupported("MemberUpdate").into())
    }

    async fn member_list(
        &self,
        _request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let members = self.ctx.backend.members().await?;
        Ok(Response::new(pb::MemberListResponse {
            header: self.ctx.header_now(),
            members: members.into_iter().map(member).collect(),
        }))
    }

    async fn member_promote(
        &self,
        _request: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        Err(ApiError::Unsupported("MemberPromote").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_urls_carry_a_scheme_as_etcds_do() {
        let listed = member(Member {
            id: 1,
            name: "m1".to_string(),
            peer_urls: vec!["http://10.0.0.1:5050".to_string()],
            client_urls: vec!["10.0.0.1:2379".to_string(), "https://h:2379".to_string()],
            is_learner: false,
        });
        assert_eq!(listed.peer_ur_ls, ["http://10.0.0.1:5050"]);
        assert_eq!(
            listed.client_ur_ls,
            ["http://10.0.0.1:2379", "https://h:2379"]
        );
    }
}
