//! An in-memory [`LogStore`] for deterministic tests and single-process
//! simulations. "Durable" here means "survives a simulated crash": the
//! simulator keeps the store and drops everything else of the replica.

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

use super::{LogStore, store_error};

/// A log held in memory. Unlike raft-rs's `MemStorage` it keeps the
/// snapshot's data (so it can be sent to followers) and reports broken
/// invariants as errors instead of panicking.
#[derive(Debug, Clone, Default)]
pub struct MemLogStore {
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the entry just before `entries[0]`: the compaction
    /// point, or the index of the installed snapshot.
    offset_index: u64,
    offset_term: u64,
    /// `entries[i].index == offset_index + 1 + i`.
    entries: Vec<Entry>,
    /// The newest snapshot (received or taken); index 0 when there is none.
    snapshot: Snapshot,
}

impl MemLogStore {
    /// An empty, uninitialized store (a member that has not joined a group).
    pub fn new() -> Self {
        MemLogStore::default()
    }

    /// Every entry still in the log, oldest first (for tests and inspection).
    pub fn entries_in_log(&self) -> &[Entry] {
        &self.entries
    }

    fn first(&self) -> u64 {
        self.offset_index + 1
    }

    fn last(&self) -> u64 {
        self.offset_index + self.entries.len() as u64
    }

    fn position(&self, index: u64) -> usize {
        // Callers check `first() <= index <= last()`, so this fits in usize.
        (index - self.first()) as usize
    }
}

impl raft::Storage for MemLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let (start, end) = (self.position(low), self.position(high));
        let mut entries = self.entries[start..end].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        if index == self.offset_index {
            return Ok(self.offset_term);
        }
        if index < self.offset_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if index > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[self.position(index)].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let index = self.snapshot.get_metadata().index;
        if index == 0 || index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

impl LogStore for MemLogStore {
    fn append(&mut self, entries: &[Entry]) -> raft::Result<()> {
        let Some(first_new) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        if first_new < self.first() || first_new > self.last() + 1 {
            return Err(store_error(format!(
                "append at {first_new} outside [{}, {}]",
                self.first(),
                self.last() + 1
            )));
        }
        let keep = self.position(first_new);
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    fn set_hard_state(&mut self, hard_state: &HardState) -> raft::Result<()> {
        self.hard_state = hard_state.clone();
        Ok(())
    }

    fn set_commit(&mut self, commit: u64) -> raft::Result<()> {
        self.hard_state.commit = commit;
        Ok(())
    }

    fn set_conf_state(&mut self, conf_state: &ConfState) -> raft::Result<()> {
        self.conf_state = conf_state.clone();
        Ok(())
    }

    fn apply_snapshot(&mut self, snapshot: &Snapshot) -> raft::Result<()> {
        let meta = snapshot.get_metadata();
        if meta.index < self.offset_index {
            return Err(raft::Error::Store(StorageError::SnapshotOutOfDate));
        }
        self.entries.clear();
        self.offset_index = meta.index;
        self.offset_term = meta.term;
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.conf_state = meta.get_conf_state().clone();
        self.snapshot = snapshot.clone();
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> raft::Result<()> {
        let index = snapshot.get_metadata().index;
        if index > self.last() || index < self.offset_index {
            return Err(store_error(format!(
                "snapshot at {index} outside the log [{}, {}]",
                self.offset_index,
                self.last()
            )));
        }
        if index >= self.snapshot.get_metadata().index {
            self.snapshot = snapshot.clone();
        }
        Ok(())
    }

    fn compact(&mut self, index: u64) -> raft::Result<()> {
        if index <= self.offset_index {
            return Ok(());
        }
        if index > self.snapshot.get_metadata().index || index > self.last() {
            return Err(store_error(format!(
                "compact to {index} past the snapshot ({}) or the log ({})",
                self.snapshot.get_metadata().index,
                self.last()
            )));
        }
        let term = self.entries[self.position(index)].term;
        let drop = self.position(index) + 1;
        self.entries.drain(..drop);
        self.offset_index = index;
        self.offset_term = term;
        Ok(())
    }

    fn save_snapshot_and_compact(
        &mut self,
        snapshot: &Snapshot,
        compact_to: u64,
    ) -> raft::Result<()> {
        // Both checks first, so that a refused call changes nothing.
        let covered = (self.snapshot.get_metadata().index).max(snapshot.get_metadata().index);
        if compact_to > self.offset_index && (compact_to > covered || compact_to > self.last()) {
            return Err(store_error(format!(
                "compact to {compact_to} past the snapshot ({covered}) or the log ({})",
                self.last()
            )));
        }
        self.save_snapshot(snapshot)?;
        self.compact(compact_to)
    }

    fn hard_state(&self) -> HardState {
        self.hard_state.clone()
    }

    fn conf_state(&self) -> ConfState {
        self.conf_state.clone()
    }

    fn stored_snapshot(&self) -> Snapshot {
        self.snapshot.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::MemLogStore;

    crate::storage::contract::log_store_contract!((MemLogStore::new(), ()));
}
