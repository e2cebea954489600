//! etcd's MemberAdd, MemberRemove and MemberUpdate on the Raft backend.
//!
//! What a change means for the group (which log entries, which new id) is
//! the host's: [`MemberChanges`], implemented by the master, which keeps
//! the members' addresses in its state machine. This module runs a change
//! on the leader from whichever member the client reached, as etcd does
//! (a follower forwards it over the same pipe as writes), and moves
//! leadership off a leader that is to be removed before removing it.

use serde::{Deserialize, Serialize};

use super::forward::{Answer, Forwarded};
use super::{Attempt, Inner, RaftBackend, Retry};
use crate::ApiError;
use crate::backend::{Member, MemberUpdate};
use agora_raft::{Access, KvHost, RaftError};
use tokio::sync::oneshot;

/// Membership changes as the host makes them. Called on the leader only;
/// a host that finds it does not lead answers [`ApiError::NotLeader`]
/// before changing anything, and the request is retried on the leader.
#[tonic::async_trait]
pub trait MemberChanges: Send + Sync + 'static {
    /// Adds a voter reachable at `peer_address` (`host:port`) under an id
    /// no member has had, and answers it. [`ApiError::PeerUrlExists`] if a
    /// member already has that address.
    async fn add(&self, peer_address: String) -> Result<Member, ApiError>;

    /// Removes voter `id`, which is not the leader itself.
    /// [`ApiError::MemberNotFound`] if it is not a member.
    async fn remove(&self, id: u64) -> Result<(), ApiError>;

    /// Publishes new addresses for member `update.id`.
    /// [`ApiError::MemberNotFound`] if it is not a member.
    async fn update(&self, update: MemberUpdate) -> Result<(), ApiError>;
}

/// A membership request, as forwarded to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum MemberRequest {
    /// MemberAdd.
    Add {
        /// The new member's `host:port`.
        peer_address: String,
    },
    /// MemberRemove.
    Remove {
        /// The member to remove.
        id: u64,
    },
    /// MemberUpdate, or a member publishing its own addresses.
    Update(MemberUpdate),
}

impl MemberRequest {
    fn rpc(&self) -> &'static str {
        match self {
            MemberRequest::Add { .. } => "MemberAdd",
            MemberRequest::Remove { .. } => "MemberRemove",
            MemberRequest::Update(_) => "MemberUpdate",
        }
    }
}

impl<S: KvHost> Inner<S> {
    /// Serves `request` as the leader.
    pub(super) async fn change_members(&self, request: MemberRequest) -> Attempt<Answer> {
        let Some(changes) = self.member_changes.clone() else {
            return Ok(Err(ApiError::Unsupported(request.rpc())));
        };
        let result = match request {
            MemberRequest::Add { peer_address } => changes.add(peer_address).await.map(Some),
            MemberRequest::Remove { id } if id == self.member_id => {
                // raft-rs lets a leader remove itself, but the rest then
                // sit out an election timeout with nobody leading. Hand
                // leadership over first; the request is then retried on
                // the new leader, which removes this member.
                return match self.hand_off_leadership().await {
                    Ok(()) => Err(Retry),
                    Err(error) => Ok(Err(error)),
                };
            }
            MemberRequest::Remove { id } => changes.remove(id).await.map(|()| None),
            MemberRequest::Update(update) => changes.update(update).await.map(|()| None),
        };
        match result {
            // Refused before anything was proposed: ask the leader.
            Err(ApiError::NotLeader) => Err(Retry),
            other => Ok(other.map(Answer::Member)),
        }
    }

    /// Hands leadership to another voter and waits until it leads.
    async fn hand_off_leadership(&self) -> Result<(), ApiError> {
        let status = self.status();
        let Some(target) = status.voters.iter().copied().find(|v| *v != self.member_id) else {
            return Err(ApiError::InvalidArgument(
                "agora: the group's last member cannot be removed".to_string(),
            ));
        };
        self.transfer_leadership(target).await
    }

    /// Asks the runner to hand leadership to `target` (this member must
    /// lead) and waits until this member sees `target` lead.
    pub(super) async fn transfer_leadership(&self, target: u64) -> Result<(), ApiError> {
        let (reply, started) = oneshot::channel();
        (self.access)
            .send(Access::TransferLeadership(target, reply))
            .await
            .map_err(|_| ApiError::Stopped)?;
        match started.await {
            Ok(Ok(())) => {}
            Ok(Err(RaftError::NotLeader { .. })) => return Err(ApiError::NotLeader),
            Ok(Err(_)) | Err(_) => return Err(ApiError::Stopped),
        }
        let mut watching = self.status.clone();
        let moved = watching.wait_for(|status| status.leadership.leader == Some(target));
        match tokio::time::timeout(self.timings.request_timeout, moved).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ApiError::Stopped),
            Err(_) => Err(ApiError::LeaderTransferTimeout),
        }
    }

    /// Waits (up to the request timeout) until this member's voters pass
    /// `done`, so that a MemberList after a change answers on this member
    /// shows it. A member whose replica stopped (it was the one removed)
    /// has nothing more to wait for.
    async fn until_voters(&self, done: impl Fn(&[u64]) -> bool) {
        let mut status = self.status.clone();
        let changed = status.wait_for(|status| done(&status.voters));
        let _ = tokio::time::timeout(self.timings.request_timeout, changed).await;
    }
}

impl<S: KvHost> RaftBackend<S> {
    async fn route_members(&self, request: MemberRequest) -> Result<Option<Member>, ApiError> {
        let rpc = request.rpc();
        match self.inner.route(Forwarded::Members(request)).await? {
            Answer::Member(member) => Ok(member),
            Answer::Response(_) | Answer::TimeToLive(_) => Err(ApiError::WrongResponse(rpc)),
        }
    }

    pub(super) async fn add(&self, peer_address: String) -> Result<Member, ApiError> {
        let member = (self
            .route_members(MemberRequest::Add { peer_address })
            .await?)
            .ok_or(ApiError::WrongResponse("MemberAdd"))?;
        let id = member.id;
        self.inner.directory.learn(&member);
        self.inner.until_voters(|voters| voters.contains(&id)).await;
        Ok(member)
    }

    pub(super) async fn remove(&self, id: u64) -> Result<(), ApiError> {
        self.route_members(MemberRequest::Remove { id }).await?;
        self.inner
            .until_voters(|voters| !voters.contains(&id))
            .await;
        Ok(())
    }

    pub(super) async fn update(&self, update: MemberUpdate) -> Result<(), ApiError> {
        self.route_members(MemberRequest::Update(update)).await?;
        Ok(())
    }
}
