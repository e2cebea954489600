//! A leader that is told to stop hands leadership to a follower first, as
//! etcd's leader does: agents, frameworks and etcd clients then find a
//! new leader at once instead of waiting out an election timeout, which
//! is what a rolling restart of the masters should cost.

use std::time::Duration;

use agora_raft::runner::Access;
use tokio::sync::oneshot;

use super::{GroupHandles, MasterMachine};

/// Longest a stopping leader waits for a follower to take over before it
/// stops anyway (the group then elects, as after a crash). raft-rs gives up
/// a transfer after an election timeout; this leaves room for two tries.
pub(crate) const HANDOFF_TIMEOUT: Duration = Duration::from_secs(2);

impl GroupHandles {
    /// If this member (`own_id`) leads a group with other voters, hands
    /// leadership to one of them and waits until it leads; the new
    /// leader's id, or `None` if this member did not lead or no follower
    /// took over within [`HANDOFF_TIMEOUT`].
    pub(crate) async fn hand_off_leadership(&self, own_id: u64) -> Option<u64> {
        let status = self.status.borrow().clone();
        if !status.is_leader() {
            return None;
        }
        let followers: Vec<u64> = (status.voters.iter().copied())
            .filter(|voter| *voter != own_id)
            .collect();
        if followers.is_empty() {
            return None;
        }
        let per_try = HANDOFF_TIMEOUT / u32::try_from(followers.len()).ok()?;
        for target in followers {
            if self.transfer_to(target, per_try).await {
                tracing::info!(member = own_id, to = target, "leadership handed off");
                return Some(target);
            }
        }
        tracing::warn!(member = own_id, "no follower took over; stopping as leader");
        None
    }

    /// Asks the replica to transfer leadership to `target` and waits up to
    /// `wait` for it to lead.
    async fn transfer_to(&self, target: u64, wait: Duration) -> bool {
        let (reply, started) = oneshot::channel();
        let access: Access<MasterMachine> = Access::TransferLeadership(target, reply);
        if self.access.send(access).await.is_err() || !matches!(started.await, Ok(Ok(()))) {
            return false;
        }
        let mut status = self.status.clone();
        let moved = status.wait_for(|status| status.leadership.leader == Some(target));
        matches!(tokio::time::timeout(wait, moved).await, Ok(Ok(_)))
    }
}
