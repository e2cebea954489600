//! A group founded from a backup: every member starts from the same
//! restored state machine, whose applied index belongs to the old group.

use super::*;
use crate::{decode_backup, encode_backup};

/// Entries the old group had applied, at these (sparse) indexes.
const OLD_INDEXES: [u64; 3] = [120, 250, 300];

/// A register restored from a backup of a group that applied three
/// entries, the last at index 300.
fn restored_register() -> Register {
    let mut old = Register::new();
    for (n, index) in (0u64..).zip(OLD_INDEXES) {
        old.apply(index, &payload(n));
    }
    let backup = encode_backup(&old.snapshot());
    let mut restored = Register::new();
    let snapshot = decode_backup(&backup).unwrap();
    restored.restore(snapshot).unwrap();
    restored
}

#[test]
fn a_group_founded_from_a_backup_keeps_its_state_and_applies_new_entries() {
    for seed in 0..5 {
        let mut cluster = SimCluster::new(&ids(3), seed, config(seed), restored_register).unwrap();
        for n in 3..8 {
            let applied = commit(&mut cluster, payload(n));
            // Positions continue the old history: nothing was skipped as
            // "already applied" below the old group's index.
            assert_eq!(Register::position(&applied.response), Some(n + 1));
            assert!(applied.index > 300, "seed {seed}: index {}", applied.index);
        }
        converge(&mut cluster, 100);
        let expected: Vec<Vec<u8>> = (0..8).map(payload).collect();
        for (id, history) in histories(&cluster) {
            assert_eq!(history, expected, "seed {seed} member {id}");
        }
        // A member restarted from its store rebuilds the same state (the
        // masters' own restart, with an empty machine, is tested in
        // agora-master's `restore_tests.rs` on RocksDB).
        cluster.crash(2);
        cluster.restart(2).unwrap();
        commit(&mut cluster, payload(8));
        converge(&mut cluster, 100);
        assert_same_state(&cluster);
        assert!(
            cluster.violations().is_empty(),
            "{:?}",
            cluster.violations()
        );
    }
}
