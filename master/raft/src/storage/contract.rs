//! The [`LogStore`] contract as tests every store must pass. A store's test
//! module instantiates them with `log_store_contract!(expr)`, where `expr`
//! makes a fresh, empty store and a guard to keep alive with it (its
//! directory, or `()`).

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, StorageError};

use super::LogStore;

/// Expands to one `#[test]` per contract case, each on a fresh store.
macro_rules! log_store_contract {
    ($new:expr) => {
        $crate::storage::contract::log_store_contract!(@cases $new;
            an_empty_store_is_uninitialized,
            append_overwrites_the_conflicting_tail,
            entries_respect_max_size_but_return_at_least_one,
            persist_ready_stores_entries_then_hard_state,
            conf_state_is_stored,
            compaction_keeps_the_term_of_the_compaction_point,
            snapshot_and_compaction_in_one_write,
            an_installed_snapshot_replaces_the_log_and_raises_commit,
        );
    };
    (@cases $new:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let (store, _guard) = $new;
                $crate::storage::contract::$case(store);
            }
        )*
    };
}
pub(crate) use log_store_contract;

pub(crate) fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Entry::default()
    }
}

pub(crate) fn entry_with(index: u64, term: u64, data: &[u8]) -> Entry {
    let mut entry = entry(index, term);
    entry.set_data(data.to_vec().into());
    entry
}

pub(crate) fn snapshot(index: u64, term: u64, voters: Vec<u64>) -> Snapshot {
    let mut snapshot = Snapshot::default();
    snapshot.mut_metadata().index = index;
    snapshot.mut_metadata().term = term;
    snapshot.mut_metadata().mut_conf_state().voters = voters;
    snapshot.set_data(format!("state at {index}").into_bytes().into());
    snapshot
}

pub(crate) fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..HardState::default()
    }
}

fn all(store: &impl LogStore, low: u64, high: u64) -> raft::Result<Vec<Entry>> {
    store.entries(low, high, None::<u64>, GetEntriesContext::empty(false))
}

pub(crate) fn an_empty_store_is_uninitialized(store: impl LogStore) {
    assert_eq!(store.first_index().unwrap(), 1);
    assert_eq!(store.last_index().unwrap(), 0);
    assert_eq!(store.term(0).unwrap(), 0);
    assert_eq!(all(&store, 1, 1).unwrap(), Vec::<Entry>::new());
    assert_eq!(
        all(&store, 1, 2),
        Err(raft::Error::Store(StorageError::Unavailable))
    );
    let state = store.initial_state().unwrap();
    assert_eq!(state.hard_state, HardState::default());
    assert_eq!(state.conf_state, ConfState::default());
    assert_eq!(store.conf_state(), ConfState::default());
    assert_eq!(store.stored_snapshot().get_metadata().index, 0);
    assert_eq!(
        store.snapshot(0, 2),
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable
        ))
    );
}

pub(crate) fn append_overwrites_the_conflicting_tail(mut store: impl LogStore) {
    store.apply_snapshot(&snapshot(1, 1, vec![1])).unwrap();
    store
        .append(&[entry(2, 1), entry(3, 1), entry(4, 1)])
        .unwrap();
    store.append(&[entry(3, 2)]).unwrap();
    assert_eq!(store.last_index().unwrap(), 3);
    assert_eq!(store.term(3).unwrap(), 2);
    assert_eq!(store.term(1).unwrap(), 1);
    assert_eq!(
        store.term(4),
        Err(raft::Error::Store(StorageError::Unavailable))
    );
    assert_eq!(all(&store, 2, 4).unwrap(), vec![entry(2, 1), entry(3, 2)]);
    assert!(store.append(&[entry(9, 2)]).is_err(), "gap refused");
    assert!(
        store.append(&[entry(1, 2)]).is_err(),
        "before the log refused"
    );
    // Appending in the middle and growing again.
    store.append(&[entry(4, 2), entry(5, 2)]).unwrap();
    store.append(&[entry(3, 3)]).unwrap();
    store.append(&[entry(4, 3)]).unwrap();
    assert_eq!(store.last_index().unwrap(), 4);
    assert_eq!(
        all(&store, 2, 5).unwrap(),
        vec![entry(2, 1), entry(3, 3), entry(4, 3)]
    );
}

pub(crate) fn entries_respect_max_size_but_return_at_least_one(mut store: impl LogStore) {
    let entries: Vec<Entry> = (1..=5).map(|i| entry_with(i, 1, &[7; 100])).collect();
    store.append(&entries).unwrap();
    let size = |n: usize| -> u64 {
        use protobuf::Message as _;
        entries[..n]
            .iter()
            .map(|e| u64::from(e.compute_size()))
            .sum()
    };
    let get = |max: Option<u64>| {
        store
            .entries(1, 6, max, GetEntriesContext::empty(false))
            .unwrap()
    };
    assert_eq!(get(None), entries);
    assert_eq!(get(Some(raft::NO_LIMIT)), entries);
    assert_eq!(get(Some(0)), entries[..1]);
    assert_eq!(get(Some(size(2))), entries[..2]);
    assert_eq!(get(Some(size(3) - 1)), entries[..2]);
    assert_eq!(all(&store, 3, 5).unwrap(), entries[2..4]);
    assert_eq!(
        all(&store, 4, 7),
        Err(raft::Error::Store(StorageError::Unavailable))
    );
    assert_eq!(
        all(&store, 0, 2),
        Err(raft::Error::Store(StorageError::Compacted))
    );
}

pub(crate) fn persist_ready_stores_entries_then_hard_state(mut store: impl LogStore) {
    store.apply_snapshot(&snapshot(1, 1, vec![1, 2])).unwrap();
    let hs = hard_state(2, 2, 2);
    store
        .persist_ready(&[entry(2, 2), entry(3, 2)], Some(&hs))
        .unwrap();
    assert_eq!(store.last_index().unwrap(), 3);
    assert_eq!(store.hard_state(), hs);
    store.persist_ready(&[entry(4, 2)], None).unwrap();
    assert_eq!(store.hard_state(), hs);
    store.set_commit(4).unwrap();
    assert_eq!(store.hard_state(), hard_state(2, 2, 4));
    assert_eq!(
        store.initial_state().unwrap().hard_state,
        hard_state(2, 2, 4)
    );
    store.set_hard_state(&hard_state(3, 0, 4)).unwrap();
    assert_eq!(store.hard_state(), hard_state(3, 0, 4));
    assert!(
        store
            .persist_ready(&[entry(9, 3)], Some(&hard_state(4, 1, 4)))
            .is_err(),
        "a gap is refused"
    );
    assert_eq!(
        store.hard_state(),
        hard_state(3, 0, 4),
        "nothing of it stored"
    );
    assert_eq!(store.last_index().unwrap(), 4);
}

pub(crate) fn conf_state_is_stored(mut store: impl LogStore) {
    let conf_state = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        ..ConfState::default()
    };
    store.set_conf_state(&conf_state).unwrap();
    assert_eq!(store.conf_state(), conf_state);
    assert_eq!(store.initial_state().unwrap().conf_state, conf_state);
}

pub(crate) fn compaction_keeps_the_term_of_the_compaction_point(mut store: impl LogStore) {
    store.apply_snapshot(&snapshot(1, 1, vec![1])).unwrap();
    store
        .append(&[entry(2, 1), entry(3, 2), entry(4, 2)])
        .unwrap();
    assert!(store.compact(3).is_err(), "nothing covers index 3 yet");
    store.save_snapshot(&snapshot(3, 2, vec![1])).unwrap();
    store.compact(3).unwrap();
    assert_eq!(store.first_index().unwrap(), 4);
    assert_eq!(store.term(3).unwrap(), 2);
    assert_eq!(
        store.term(2),
        Err(raft::Error::Store(StorageError::Compacted))
    );
    let low = store.entries(2, 4, None::<u64>, GetEntriesContext::empty(false));
    assert_eq!(low, Err(raft::Error::Store(StorageError::Compacted)));
    assert_eq!(store.snapshot(0, 2).unwrap().get_metadata().index, 3);
    store.compact(2).unwrap();
    assert_eq!(
        store.first_index().unwrap(),
        4,
        "compacting backwards is a no-op"
    );
}

pub(crate) fn snapshot_and_compaction_in_one_write(mut store: impl LogStore) {
    store.apply_snapshot(&snapshot(1, 1, vec![1])).unwrap();
    let entries: Vec<Entry> = (2..=10).map(|i| entry(i, 1 + i / 5)).collect();
    store.append(&entries).unwrap();
    store
        .save_snapshot_and_compact(&snapshot(8, 2, vec![1]), 6)
        .unwrap();
    assert_eq!(store.first_index().unwrap(), 7);
    assert_eq!(store.term(6).unwrap(), 2);
    assert_eq!(store.stored_snapshot(), snapshot(8, 2, vec![1]));
    assert_eq!(all(&store, 7, 11).unwrap(), entries[5..]);
    assert!(
        (store.save_snapshot_and_compact(&snapshot(9, 2, vec![1]), 10)).is_err(),
        "compaction past the snapshot refused"
    );
    assert_eq!(
        store.stored_snapshot(),
        snapshot(8, 2, vec![1]),
        "nothing of it stored"
    );
    assert!(
        store.save_snapshot(&snapshot(11, 2, vec![1])).is_err(),
        "a snapshot past the log refused"
    );
    store.save_snapshot(&snapshot(7, 2, vec![1])).unwrap();
    assert_eq!(
        store.stored_snapshot(),
        snapshot(8, 2, vec![1]),
        "an older snapshot does not replace a newer one"
    );
    assert_eq!(
        store.snapshot(9, 2),
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable
        ))
    );
}

pub(crate) fn an_installed_snapshot_replaces_the_log_and_raises_commit(mut store: impl LogStore) {
    store.append(&[entry(1, 1), entry(2, 1)]).unwrap();
    store.apply_snapshot(&snapshot(10, 3, vec![1, 2])).unwrap();
    assert_eq!(store.first_index().unwrap(), 11);
    assert_eq!(store.last_index().unwrap(), 10);
    assert_eq!(store.term(10).unwrap(), 3);
    assert_eq!(store.hard_state().commit, 10);
    assert_eq!(store.hard_state().term, 3);
    assert_eq!(store.conf_state().voters, vec![1, 2]);
    assert_eq!(store.snapshot(10, 2).unwrap(), snapshot(10, 3, vec![1, 2]));
    assert!(
        store.apply_snapshot(&snapshot(5, 3, vec![1])).is_err(),
        "an older snapshot is refused"
    );
    store.append(&[entry(11, 3), entry(12, 3)]).unwrap();
    assert_eq!(store.last_index().unwrap(), 12);
}
