//! The Cluster service: MemberList, and MemberAdd, MemberRemove and
//! MemberUpdate made through the backend (the masters' Raft group changes
//! its voters; a backend without one answers `Unimplemented`). Agora's
//! members are all voters: adding a learner is refused, and promoting a
//! member answers etcd's "can only promote a learner member".

use tonic::{Request, Response, Status};

use crate::ApiError;
use crate::backend::{Member, MemberUpdate};
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

/// The one peer address (`host:port`) a member is reached at, from
/// etcd's list of peer URLs. Agora's peer traffic is plain HTTP/2, so an
/// `https` URL is refused as etcd refuses URLs it cannot use.
fn peer_address(urls: &[String]) -> Result<String, ApiError> {
    let [url] = urls else {
        return Err(ApiError::MemberBadUrls);
    };
    let address = url.strip_prefix("http://").unwrap_or(url);
    let valid = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !valid || address.contains("://") || address.contains('/') {
        return Err(ApiError::MemberBadUrls);
    }
    Ok(address.to_string())
}

impl ClusterApi {
    async fn member_list_now(&self) -> Result<Vec<pb::Member>, ApiError> {
        let members = self.ctx.backend.members().await?;
        Ok(members.into_iter().map(member).collect())
    }
}

#[tonic::async_trait]
impl pb::cluster_server::Cluster for ClusterApi {
    async fn member_add(
        &self,
        request: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        let request = request.into_inner();
        if request.is_learner {
            return Err(ApiError::Unsupported("adding a learner").into());
        }
        let address = peer_address(&request.peer_ur_ls)?;
        let added = self.ctx.backend.add_member(address).await?;
        Ok(Response::new(pb::MemberAddResponse {
            header: self.ctx.header_now(),
            member: Some(member(added)),
            members: self.member_list_now().await?,
        }))
    }

    async fn member_remove(
        &self,
        request: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        let id = request.into_inner().id;
        self.ctx.backend.remove_member(id).await?;
        Ok(Response::new(pb::MemberRemoveResponse {
            header: self.ctx.header_now(),
            members: self.member_list_now().await?,
        }))
    }

    async fn member_update(
        &self,
        request: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        let request = request.into_inner();
        let update = MemberUpdate {
            id: request.id,
            peer_address: Some(peer_address(&request.peer_ur_ls)?),
            client_address: None,
        };
        self.ctx.backend.update_member(update).await?;
        Ok(Response::new(pb::MemberUpdateResponse {
            header: self.ctx.header_now(),
            members: self.member_list_now().await?,
        }))
    }

    async fn member_list(
        &self,
        _request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        Ok(Response::new(pb::MemberListResponse {
            header: self.ctx.header_now(),
            members: self.member_list_now().await?,
        }))
    }

    async fn member_promote(
        &self,
        request: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        let id = request.into_inner().id;
        let members = self.ctx.backend.members().await?;
        // Every member is a voter: there is no learner to promote.
        if members.iter().any(|m| m.id == id) {
            Err(ApiError::MemberNotLearner.into())
        } else {
            Err(ApiError::MemberNotFound.into())
        }
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

    #[test]
    fn a_member_has_one_plain_http_peer_address() {
        let urls = |list: &[&str]| list.iter().map(|u| u.to_string()).collect::<Vec<_>>();
        assert_eq!(
            peer_address(&urls(&["http://10.0.0.4:5050"])),
            Ok("10.0.0.4:5050".to_string())
        );
        assert_eq!(
            peer_address(&urls(&["m4.example:5050"])),
            Ok("m4.example:5050".to_string())
        );
        assert_eq!(
            peer_address(&urls(&["http://[::1]:5050"])),
            Ok("[::1]:5050".to_string())
        );
        for bad in [
            &[][..],
            &["http://a:1", "http://b:2"][..],
            &["https://10.0.0.4:5050"][..],
            &["http://10.0.0.4"][..],
            &["http://10.0.0.4:0"][..],
            &["http://10.0.0.4:99999"][..],
            &["http://:5050"][..],
            &["http://10.0.0.4:5050/path"][..],
            &["unix://sock:1"][..],
        ] {
            assert_eq!(
                peer_address(&urls(bad)),
                Err(ApiError::MemberBadUrls),
                "{bad:?}"
            );
        }
    }
}
