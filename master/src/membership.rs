//! Membership changes as the leader makes them: a member's addresses are
//! published through the log (a `MasterEntry::Member`), and Raft's voters
//! change one at a time, as raft-rs allows. Both ways in go through here:
//! the HTTP `/members` endpoints behind `agora members` (`members.rs`), and
//! the etcd API's MemberAdd, MemberRemove and MemberUpdate (agora-etcd
//! routes those to the leader and calls [`agora_etcd::MemberChanges`]).
//!
//! Every member also publishes its own addresses once it is a voter
//! ([`publish_own_addresses`]), as an etcd member publishes its client
//! URLs when it starts: a member added by etcd's MemberAdd, which carries
//! only a peer URL, is then listed and reached at its real etcd port.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agora_etcd::{ApiError, Member, MemberUpdate};
use agora_raft::runner::{Access, Proposal};
use agora_raft::{MembershipChange, RaftError, Status as RaftStatus};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::replication::{Directory, MasterEntry, MasterMachine, MemberInfo, published_members};

/// How long a membership change may take before the caller is told it is
/// still pending (it may complete later).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a member looks whether the log has its own addresses yet.
const OWN_ADDRESSES_CHECK: Duration = Duration::from_secs(1);

/// The leader's means to change the group; cheap to clone.
#[derive(Clone)]
pub(crate) struct Membership {
    own_id: u64,
    status: watch::Receiver<RaftStatus>,
    directory: Arc<Directory>,
    proposals: mpsc::Sender<Proposal>,
    access: mpsc::Sender<Access<MasterMachine>>,
    /// Changes on this member one at a time: two adds must not pick the
    /// same new id, and raft-rs takes one membership change at a time.
    one_at_a_time: Arc<Mutex<()>>,
}

impl Membership {
    pub(crate) fn new(
        own_id: u64,
        status: watch::Receiver<RaftStatus>,
        directory: Arc<Directory>,
        proposals: mpsc::Sender<Proposal>,
        access: mpsc::Sender<Access<MasterMachine>>,
    ) -> Membership {
        Membership {
            own_id,
            status,
            directory,
            proposals,
            access,
            one_at_a_time: Arc::new(Mutex::new(())),
        }
    }

    fn voters(&self) -> Vec<u64> {
        self.status.borrow().voters.clone()
    }

    /// Publishes `info` through the log and into this member's directory.
    async fn publish(&self, info: MemberInfo) -> Result<(), RaftError> {
        let (reply, answer) = oneshot::channel();
        let entry = MasterEntry::Member(info.clone()).encode();
        (self.proposals.send((entry, reply)).await).map_err(|_| RaftError::Stopped)?;
        wait(answer).await?;
        self.directory.merge(&BTreeMap::from([(info.id, info)]));
        Ok(())
    }

    /// Removes voter `id` (raft-rs refuses the leader itself).
    pub(crate) async fn remove_voter(&self, id: u64) -> Result<(), RaftError> {
        let _one = self.one_at_a_time.lock().await;
        self.change(MembershipChange::RemoveVoter(id)).await
    }

    /// Makes one change of Raft's voters and waits (briefly) until this
    /// member's published status shows it.
    async fn change(&self, change: MembershipChange) -> Result<(), RaftError> {
        let (reply, answer) = oneshot::channel();
        (self
            .access
            .send(Access::ChangeMembership(change, reply))
            .await)
            .map_err(|_| RaftError::Stopped)?;
        wait(answer).await?;
        let mut status = self.status.clone();
        let shown = status.wait_for(|status| match change {
            MembershipChange::AddVoter(id) => status.voters.contains(&id),
            MembershipChange::RemoveVoter(id) => !status.voters.contains(&id),
        });
        let _ = tokio::time::timeout(CHANGE_TIMEOUT, shown).await;
        Ok(())
    }

    /// Adds voter `info.id`: its addresses first (so every member can
    /// reach and list it), then the Raft change.
    pub(crate) async fn add_voter(&self, info: MemberInfo) -> Result<(), RaftError> {
        let _one = self.one_at_a_time.lock().await;
        let id = info.id;
        self.publish(info).await?;
        self.change(MembershipChange::AddVoter(id)).await
    }

    /// The addresses members published through the log, as this member
    /// has applied them.
    async fn published(&self) -> Result<BTreeMap<u64, MemberInfo>, ApiError> {
        (published_members(&self.access).await).ok_or(ApiError::Stopped)
    }

    fn ensure_leader(&self) -> Result<(), ApiError> {
        if self.status.borrow().leadership.leader == Some(self.own_id) {
            Ok(())
        } else {
            Err(ApiError::NotLeader)
        }
    }

    /// The member at `address` other than `except`, among the voters.
    fn voter_at(&self, address: &str, except: u64) -> Option<u64> {
        self.voters()
            .into_iter()
            .find(|id| *id != except && self.directory.api_addr(*id).as_deref() == Some(address))
    }
}

/// An id no member has had: above every voter, every member this member
/// was configured with and every member that ever published addresses
/// (published addresses stay in the state when a member is removed).
/// Reusing a removed member's id would let its old process, if it came
/// back, speak for the new member.
fn fresh_id(voters: &[u64], published: &BTreeMap<u64, MemberInfo>, directory: &Directory) -> u64 {
    let highest = voters
        .iter()
        .chain(published.keys())
        .chain(directory.ids().iter())
        .max()
        .copied()
        .unwrap_or(0);
    highest + 1
}

#[tonic::async_trait]
impl agora_etcd::MemberChanges for Membership {
    async fn add(&self, peer_address: String) -> Result<Member, ApiError> {
        let _one = self.one_at_a_time.lock().await;
        self.ensure_leader()?;
        if self.voter_at(&peer_address, 0).is_some() {
            return Err(ApiError::PeerUrlExists);
        }
        let published = self.published().await?;
        let id = fresh_id(&self.voters(), &published, &self.directory);
        let (host, _) = peer_address.rsplit_once(':').unwrap_or((&peer_address, ""));
        let info = MemberInfo {
            id,
            name: format!("master-{id}"),
            // Until the member starts and publishes its own: etcd's port
            // on its host, as `agora members add` assumes.
            etcd_addr: format!("{host}:{}", crate::replication::DEFAULT_ETCD_PORT),
            api_addr: peer_address,
        };
        self.publish(info.clone()).await.map_err(api_error)?;
        self.change(MembershipChange::AddVoter(id))
            .await
            .map_err(api_error)?;
        Ok(
            agora_etcd::MemberDirectory::member(&*self.directory, id).unwrap_or(Member {
                id,
                ..Member::default()
            }),
        )
    }

    async fn remove(&self, id: u64) -> Result<(), ApiError> {
        self.ensure_leader()?;
        if !self.voters().contains(&id) {
            return Err(ApiError::MemberNotFound);
        }
        self.remove_voter(id).await.map_err(api_error)
    }

    async fn update(&self, update: MemberUpdate) -> Result<(), ApiError> {
        let _one = self.one_at_a_time.lock().await;
        self.ensure_leader()?;
        if !self.voters().contains(&update.id) {
            return Err(ApiError::MemberNotFound);
        }
        if let Some(address) = &update.peer_address
            && self.voter_at(address, update.id).is_some()
        {
            return Err(ApiError::PeerUrlExists);
        }
        let published = self.published().await?;
        let current = (published.get(&update.id).cloned())
            .or_else(|| self.directory.member(update.id))
            .unwrap_or_else(|| MemberInfo {
                id: update.id,
                name: format!("master-{}", update.id),
                api_addr: String::new(),
                etcd_addr: String::new(),
            });
        let info = MemberInfo {
            api_addr: update.peer_address.unwrap_or(current.api_addr.clone()),
            etcd_addr: update.client_address.unwrap_or(current.etcd_addr.clone()),
            ..current
        };
        if published.get(&update.id) == Some(&info) {
            return Ok(());
        }
        self.publish(info).await.map_err(api_error)
    }
}

/// `error` of a proposal or membership change as the etcd API answers it.
fn api_error(error: RaftError) -> ApiError {
    match error {
        // Known not to have taken effect: the backend retries on the leader.
        RaftError::NotLeader { .. } | RaftError::Dropped => ApiError::NotLeader,
        RaftError::Unknown => ApiError::Timeout,
        RaftError::ConfChange(reason) => ApiError::Remote {
            code: Code::FailedPrecondition,
            message: format!("agora: membership change rejected: {reason}"),
        },
        RaftError::Stopped
        | RaftError::Removed
        | RaftError::Storage(_)
        | RaftError::Corrupt { .. } => ApiError::Stopped,
    }
}

async fn wait<T>(answer: oneshot::Receiver<Result<T, RaftError>>) -> Result<T, RaftError> {
    match tokio::time::timeout(CHANGE_TIMEOUT, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(RaftError::Stopped),
        Err(_) => Err(RaftError::Unknown),
    }
}

/// Publishes this member's own addresses (`own`, from its configuration)
/// through the leader once it is a voter and a leader is known, unless the
/// log already has them; then ends. Retried until it succeeds or `stop`.
pub(crate) async fn publish_own_addresses(
    own: MemberInfo,
    backend: Arc<dyn agora_etcd::Backend>,
    access: mpsc::Sender<Access<MasterMachine>>,
    status: watch::Receiver<RaftStatus>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(OWN_ADDRESSES_CHECK);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let ready = {
            let now = status.borrow();
            now.voters.contains(&own.id) && now.leadership.leader.is_some()
        };
        if !ready {
            continue;
        }
        let Some(published) = published_members(&access).await else {
            return;
        };
        let id = own.id;
        if published.get(&id) == Some(&own) {
            return;
        }
        let update = MemberUpdate {
            id,
            peer_address: Some(own.api_addr.clone()),
            client_address: Some(own.etcd_addr.clone()),
        };
        match backend.update_member(update).await {
            Ok(()) => tracing::info!(member = id, "published this member's addresses"),
            Err(error) => tracing::debug!(%error, "publishing this member's addresses"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u64) -> MemberInfo {
        MemberInfo {
            id,
            name: format!("master-{id}"),
            api_addr: format!("10.0.0.{id}:5050"),
            etcd_addr: format!("10.0.0.{id}:2379"),
        }
    }

    #[test]
    fn a_fresh_id_was_never_a_members() {
        let directory = Directory::new(1, BTreeMap::from([(1, info(1)), (2, info(2))]));
        assert_eq!(fresh_id(&[1, 2], &BTreeMap::new(), &directory), 3);
        // Member 7 joined and was removed: its published addresses remain.
        let published = BTreeMap::from([(7, info(7))]);
        assert_eq!(fresh_id(&[1, 2], &published, &directory), 8);
        assert_eq!(fresh_id(&[1, 2, 9], &published, &directory), 10);
    }
}
