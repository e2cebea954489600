//! The log store: raft-rs's read-only [`raft::Storage`] plus the writes the
//! Ready loop performs, in the order `node.rs` documents.
//!
//! Durability contract: when a write method returns `Ok`, the data survives
//! a crash of the process (the in-memory store fakes this by surviving a
//! simulated crash; [`RocksLogStore`] writes one fsynced batch per call).
//! Each call is atomic: after a crash either all of it is stored or none.
//! The engine never reads back what it did not write through these methods.

#[cfg(test)]
pub(crate) mod contract;
mod mem;
#[cfg(feature = "rocksdb")]
mod rocks;

pub use mem::MemLogStore;
#[cfg(feature = "rocksdb")]
pub use rocks::{Defragmented, Defragmenter, RocksLogStore, StorageError};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};

/// Stores a snapshot's data durably from another thread (the one that
/// encoded it), so that [`LogStore::save_staged_snapshot_and_compact`] on the
/// replica's thread only records it. See [`LogStore::snapshot_stager`].
pub type SnapshotStager = Box<dyn FnOnce(&Snapshot) -> raft::Result<()> + Send>;

/// A durable Raft log: entries, hard state, conf state and the newest snapshot.
///
/// Invariants every implementation keeps (the engine relies on them):
/// - entries are contiguous from `first_index()` to `last_index()`;
/// - `term(first_index() - 1)` is known (the compaction point's term);
/// - the stored snapshot's index is at least `first_index() - 1`, so a
///   follower that needs entries before `first_index()` can be sent the
///   snapshot and continue from the log.
///
/// Writes return `raft::Result` so that raft-rs's own storage errors and
/// the engine's share one type; a write error is fatal for the replica.
pub trait LogStore: raft::Storage {
    /// Appends entries, first removing any existing entries at or after the
    /// first new index (a new leader overwrote them). Entries must start at
    /// most one past `last_index()` and not before `first_index()`.
    fn append(&mut self, entries: &[Entry]) -> raft::Result<()>;

    /// Stores term, vote and commit index.
    fn set_hard_state(&mut self, hard_state: &HardState) -> raft::Result<()>;

    /// A Ready's log write: [`LogStore::append`] then, if given,
    /// [`LogStore::set_hard_state`], as one atomic write. A crash must not
    /// keep a new leader's entries without the term that came with them
    /// (the member could then vote a second time in that term). The default
    /// makes two writes; a durable store overrides it.
    fn persist_ready(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> raft::Result<()> {
        self.append(entries)?;
        if let Some(hard_state) = hard_state {
            self.set_hard_state(hard_state)?;
        }
        Ok(())
    }

    /// Stores only the commit index (raft-rs's `LightReady::commit_index`).
    fn set_commit(&mut self, commit: u64) -> raft::Result<()>;

    /// Stores the membership that was applied most recently.
    fn set_conf_state(&mut self, conf_state: &ConfState) -> raft::Result<()>;

    /// Installs a snapshot received from the leader: it replaces the whole
    /// log, the conf state and the stored snapshot, and raises the commit
    /// index (and term) to the snapshot's.
    fn apply_snapshot(&mut self, snapshot: &Snapshot) -> raft::Result<()>;

    /// Keeps a snapshot this member took of its own state machine, to send
    /// to lagging followers. Does not touch the log; see [`LogStore::compact`].
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> raft::Result<()>;

    /// Discards entries up to and including `index`, which must not be past
    /// the stored snapshot's index (callers compact only what a snapshot covers).
    fn compact(&mut self, index: u64) -> raft::Result<()>;

    /// [`LogStore::save_snapshot`] then [`LogStore::compact`] to
    /// `compact_to`, as one atomic write (the default makes two).
    fn save_snapshot_and_compact(
        &mut self,
        snapshot: &Snapshot,
        compact_to: u64,
    ) -> raft::Result<()> {
        self.save_snapshot(snapshot)?;
        self.compact(compact_to)
    }

    /// A [`SnapshotStager`] for a snapshot being encoded off the replica's
    /// thread, if this store can take a snapshot's data ahead of recording
    /// it. Then the replica's thread never writes the (possibly large)
    /// data itself. `None`, the default: `save_snapshot_and_compact` does.
    fn snapshot_stager(&self) -> Option<SnapshotStager> {
        None
    }

    /// [`LogStore::save_snapshot_and_compact`] for a snapshot whose data a
    /// [`LogStore::snapshot_stager`] stager already stored: only the
    /// metadata and the compaction are written. Takes the snapshot by value
    /// so the store can keep it without a copy.
    fn save_staged_snapshot_and_compact(
        &mut self,
        snapshot: Snapshot,
        compact_to: u64,
    ) -> raft::Result<()> {
        self.save_snapshot_and_compact(&snapshot, compact_to)
    }

    /// The stored hard state.
    fn hard_state(&self) -> HardState;

    /// The stored conf state (empty for a member that has not joined yet).
    fn conf_state(&self) -> ConfState;

    /// The stored snapshot (index 0 and no data if there is none).
    fn stored_snapshot(&self) -> Snapshot;
}

/// A raft-rs "other" storage error with a message, for writes that break
/// the store's invariants (the engine treats it as fatal).
pub(crate) fn store_error(message: String) -> raft::Error {
    raft::Error::Store(raft::StorageError::Other(message.into()))
}
