//! What one [`Replica::drive`](crate::Replica::drive) hands back: plain
//! data for the owner to act on (send, answer, announce).

use raft::eraftpb::{ConfState, Message, Snapshot};

use crate::RaftError;
use crate::state_machine::SnapshotTask;
use crate::storage::SnapshotStager;

/// The caller's handle for a proposal or a read, echoed back in its
/// completion. The engine never interprets it; it must be unique among the
/// caller's outstanding requests on one replica.
pub type Token = u64;

/// A member's role as raft-rs names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader, or waits for one.
    Follower,
    /// Asking peers whether it could win an election (pre-vote).
    PreCandidate,
    /// Campaigning in a new term.
    Candidate,
    /// Leads its term: the only member that accepts proposals.
    Leader,
}

impl From<raft::StateRole> for Role {
    fn from(role: raft::StateRole) -> Self {
        match role {
            raft::StateRole::Follower => Role::Follower,
            raft::StateRole::PreCandidate => Role::PreCandidate,
            raft::StateRole::Candidate => Role::Candidate,
            raft::StateRole::Leader => Role::Leader,
        }
    }
}

/// Who leads, as this member sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    /// This member's role.
    pub role: Role,
    /// This member's current term.
    pub term: u64,
    /// The leader it follows (itself when leading), if it knows one.
    pub leader: Option<u64>,
}

/// A proposal's committed entry, applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Log index of the entry.
    pub index: u64,
    /// Term of the entry (the proposer's term).
    pub term: u64,
    /// What the state machine answered (empty for membership changes).
    pub response: Vec<u8>,
}

/// The end of one proposal made on this replica.
#[derive(Debug)]
pub struct Completion {
    /// The proposal's token.
    pub token: Token,
    /// The applied entry, or why it was not (or may not have been) applied.
    pub result: Result<Applied, RaftError>,
}

/// The end of one ReadIndex request made on this replica.
#[derive(Debug)]
pub struct ReadCompletion {
    /// The request's token.
    pub token: Token,
    /// On success the read index, which this replica has applied: reading
    /// the state machine now is linearizable.
    pub result: Result<u64, RaftError>,
}

/// Everything one `drive` produced. Handle it whole, in field order:
/// send the messages, answer the completions and reads, then react to a
/// role change.
#[derive(Debug, Default)]
pub struct Output {
    /// Raft messages for peers (`to` says which), in sending order.
    pub messages: Vec<Message>,
    /// Proposals whose fate is now known.
    pub completions: Vec<Completion>,
    /// Reads that may now be served, or that failed.
    pub reads: Vec<ReadCompletion>,
    /// Set when role, term or leader changed since the previous `drive`.
    pub leadership: Option<Leadership>,
    /// The replica's applied index after this `drive`.
    pub applied_index: u64,
    /// This member applied its own removal: stop driving it (it keeps
    /// answering `Removed`). Messages above should still be sent.
    pub removed: bool,
    /// A periodic snapshot to encode off the replica's thread (only with
    /// `background_snapshots`): run it, then hand the result to
    /// [`Replica::finish_snapshot`](crate::Replica::finish_snapshot).
    pub snapshot_job: Option<SnapshotJob>,
}

/// What [`Replica::drive_sending_early`](crate::Replica::drive_sending_early)
/// hands over before the member's log write.
#[derive(Debug)]
pub enum Early {
    /// A leader's message that may leave before its own fsync.
    Message(Message),
    /// A proposal whose entry is committed and applied.
    Completion(Completion),
}

/// A snapshot of the state machine at `index`, not yet encoded.
pub struct SnapshotJob {
    pub(crate) index: u64,
    pub(crate) term: u64,
    pub(crate) conf_state: ConfState,
    pub(crate) task: SnapshotTask,
    /// Stores the encoded data from the encoding thread, when the log
    /// store can (`LogStore::snapshot_stager`).
    pub(crate) stager: Option<SnapshotStager>,
}

impl std::fmt::Debug for SnapshotJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotJob")
            .field("index", &self.index)
            .field("term", &self.term)
            .finish_non_exhaustive()
    }
}

impl SnapshotJob {
    /// The index the snapshot covers.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Encodes the snapshot and, if the store gave a stager, stores its
    /// data (CPU- and IO-bound: run it on a blocking thread). A failed
    /// stage is logged and leaves the data to `finish_snapshot` to write.
    pub fn run(self) -> EncodedSnapshot {
        let mut snapshot = Snapshot::default();
        snapshot.set_data((self.task)().into());
        let meta = snapshot.mut_metadata();
        meta.index = self.index;
        meta.term = self.term;
        meta.set_conf_state(self.conf_state);
        let staged = match self.stager {
            None => false,
            Some(stage) => match stage(&snapshot) {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(index = self.index, %error, "staging a snapshot failed; it is written inline");
                    false
                }
            },
        };
        EncodedSnapshot { snapshot, staged }
    }
}

/// A [`SnapshotJob`]'s result, for [`Replica::finish_snapshot`](crate::Replica::finish_snapshot).
#[derive(Debug)]
pub struct EncodedSnapshot {
    pub(crate) snapshot: Snapshot,
    /// Whether the job's stager stored the data already.
    pub(crate) staged: bool,
}

impl Output {
    /// Moves `other`'s messages, completions and reads to the end of ours.
    pub(crate) fn absorb(&mut self, other: &mut Output) {
        self.messages.append(&mut other.messages);
        self.completions.append(&mut other.completions);
        self.reads.append(&mut other.reads);
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.completions.is_empty()
            && self.reads.is_empty()
            && self.leadership.is_none()
            && !self.removed
            && self.snapshot_job.is_none()
    }
}
