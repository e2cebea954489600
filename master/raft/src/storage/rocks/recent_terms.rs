//! The terms of the newest log entries, in memory: raft-rs asks the store
//! for a term on every append response (`maybe_send_append`, `maybe_commit`)
//! and on every append a follower checks, and each of those was a RocksDB
//! read and a protobuf decode of the whole entry on the replica's thread
//! (about 5 % of a loaded leader's CPU; BENCHMARKS.md, fifth round). etcd
//! keeps its whole log in memory for the same lookups; the terms of the
//! newest entries are all that these lookups touch.

use std::collections::VecDeque;

use raft::eraftpb::Entry;

/// Terms kept: 512 KiB, far more than a follower lags by in steady state;
/// an older index falls back to reading the entry.
pub(super) const MAX_RECENT_TERMS: usize = 65_536;

/// A contiguous run of terms: `terms[i]` is the term of entry `first + i`.
/// It always ends at the store's last entry once something was appended
/// (appends replace the tail from their first index on, as the log does).
#[derive(Debug, Default)]
pub(super) struct RecentTerms {
    first: u64,
    terms: VecDeque<u64>,
}

impl RecentTerms {
    /// The term of entry `index`, if it is in the run. The caller checks
    /// that `index` is inside the log: a compaction does not trim the run.
    pub(super) fn get(&self, index: u64) -> Option<u64> {
        let offset = usize::try_from(index.checked_sub(self.first)?).ok()?;
        self.terms.get(offset).copied()
    }

    /// Records `entries` (contiguous, as the store checked) as written: they
    /// replace whatever the run held from their first index on.
    pub(super) fn appended(&mut self, entries: &[Entry]) {
        let Some(first_new) = entries.first().map(|e| e.index) else {
            return;
        };
        let end = self.first + self.terms.len() as u64;
        if self.terms.is_empty() || first_new < self.first || first_new > end {
            self.terms.clear();
            self.first = first_new;
        } else {
            self.terms.truncate((first_new - self.first) as usize);
        }
        self.terms.extend(entries.iter().map(|e| e.term));
        while self.terms.len() > MAX_RECENT_TERMS {
            self.terms.pop_front();
            self.first += 1;
        }
    }

    /// The log was replaced (a snapshot from the leader): nothing is known.
    pub(super) fn clear(&mut self) {
        self.terms.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::contract::entry;

    fn run(first: u64, terms: &[u64]) -> Vec<Entry> {
        (first..).zip(terms).map(|(i, t)| entry(i, *t)).collect()
    }

    #[test]
    fn appends_extend_and_overwrite_the_tail() {
        let mut recent = RecentTerms::default();
        recent.appended(&run(5, &[1, 1, 2]));
        assert_eq!(
            (4..9).map(|i| recent.get(i)).collect::<Vec<_>>(),
            [None, Some(1), Some(1), Some(2), None]
        );
        // A new leader's entries replace 6.. (and 7 goes).
        recent.appended(&run(6, &[3]));
        assert_eq!(
            (5..8).map(|i| recent.get(i)).collect::<Vec<_>>(),
            [Some(1), Some(3), None]
        );
        recent.appended(&run(7, &[3, 3]));
        assert_eq!(recent.get(8), Some(3));
    }

    #[test]
    fn an_append_outside_the_run_starts_a_new_one() {
        let mut recent = RecentTerms::default();
        recent.appended(&run(10, &[2, 2]));
        // Before the run (an overwrite further back than it reaches).
        recent.appended(&run(3, &[4]));
        assert_eq!((recent.get(3), recent.get(10)), (Some(4), None));
        // Past its end (cannot happen in a store, which refuses gaps).
        recent.appended(&run(20, &[5]));
        assert_eq!((recent.get(3), recent.get(20)), (None, Some(5)));
        recent.clear();
        assert_eq!(recent.get(20), None);
    }

    #[test]
    fn the_run_is_bounded_and_keeps_the_newest() {
        let mut recent = RecentTerms::default();
        let n = MAX_RECENT_TERMS as u64 + 10;
        let terms: Vec<u64> = (1..=n).collect();
        recent.appended(&run(1, &terms));
        assert_eq!(recent.get(10), None);
        assert_eq!(recent.get(11), Some(11));
        assert_eq!(recent.get(n), Some(n));
    }
}
