//! The engine's one error type.

/// Why a request to a [`Replica`](crate::Replica) failed or will not complete.
///
/// A caller can tell from the variant what it may do next: `NotLeader` and
/// `Dropped` are safe to retry (the entry is known not to be in the log's
/// committed prefix), `Unknown` is not (it may or may not have been applied),
/// `Stopped`/`Removed`/`Storage` end this replica.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// This member is not the leader; `leader` is the member it believes leads, if any.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this member knows of, for redirection.
        leader: Option<u64>,
    },
    /// The request was not committed: it was refused before entering the log,
    /// or a different entry (of another term) was committed at its index; or
    /// a read lost its leader or its confirmation. Retrying is safe.
    #[error("request dropped (not committed)")]
    Dropped,
    /// The outcome is not known: the log around the proposal was replaced
    /// by a snapshot, or overwritten by a new leader before anything at its
    /// index committed, or this member was removed. It may or may not be applied.
    #[error("outcome unknown")]
    Unknown,
    /// A membership change was refused (already a member, not a member, the
    /// last voter, the leader itself, or another change still in flight).
    #[error("membership change rejected: {0}")]
    ConfChange(String),
    /// The replica stopped after a fatal error; restart it from its store.
    #[error("replica stopped")]
    Stopped,
    /// This member was removed from the group and will not serve again.
    #[error("member removed from the group")]
    Removed,
    /// The log store or raft-rs reported an error (fatal for this replica).
    #[error("storage: {0}")]
    Storage(#[from] raft::Error),
    /// A committed entry or a snapshot could not be decoded or applied (fatal).
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// Which kind of data was bad.
        what: &'static str,
        /// The decoder's or the state machine's message.
        reason: String,
    },
}
