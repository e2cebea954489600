//! Restoring a member's data dir from a backup, on real RocksDB stores:
//! a member started on it (with an empty state machine, as `agora master`
//! starts) holds the backed-up state, and every refusal leaves the data
//! dir and the file as they were.
use std::path::Path;

use agora_raft::{KvHost, LogStore, Replica, ReplicaConfig, RocksLogStore, StateMachine};

use super::machine::{MasterEntry, MasterMachine};
use super::machine_tests::{admit, member, put};
use super::restore::{RestoreError, restore_data_dir};
use agora_raft::BackupError;

/// A machine of an old group: two agents, three keys, a member record,
/// applied up to index 40.
fn old_group_state() -> MasterMachine {
    let mut machine = MasterMachine::new();
    machine.apply(
        10,
        &MasterEntry::Registry(vec![admit(1), admit(2)]).encode(),
    );
    for (index, key) in [(20, 1), (30, 2), (35, 3)] {
        machine.apply(index, &put(key, key * 10));
    }
    machine.apply(40, &member(7));
    machine
}

fn write_backup(dir: &Path, machine: &MasterMachine) -> std::path::PathBuf {
    let file = dir.join("backup.db");
    std::fs::write(&file, agora_raft::encode_backup(&machine.snapshot())).unwrap();
    file
}

/// Opens `data_dir` as a master does on start: its store, a fresh state
/// machine, no peers (the store holds the membership).
fn start_member(id: u64, data_dir: &Path) -> Replica<RocksLogStore, MasterMachine> {
    let store = RocksLogStore::open(data_dir.join("raft")).unwrap();
    Replica::new(
        id,
        &[],
        store,
        MasterMachine::new(),
        ReplicaConfig::default(),
    )
    .unwrap()
}

#[test]
fn a_member_started_on_a_restored_data_dir_holds_the_backed_up_state() {
    let tmp = tempfile::tempdir().unwrap();
    let old = old_group_state();
    let file = write_backup(tmp.path(), &old);
    for id in [1, 2, 3] {
        let data_dir = tmp.path().join(format!("m{id}"));
        let restored = restore_data_dir(&file, &data_dir, id, &[1, 2, 3]).unwrap();
        assert_eq!(restored.applied_index, 40);
        assert_eq!(restored.revision, 4);
        assert_eq!(restored.agents, 2);

        let replica = start_member(id, &data_dir);
        assert_eq!(replica.voters(), [1, 2, 3]);
        assert_eq!(replica.applied_index(), 40);
        let machine = replica.state_machine();
        assert_eq!(machine.registry(), old.registry());
        assert_eq!(machine.kv().state().hash(), old.kv().state().hash());
        assert_eq!(machine.kv().state().current_revision(), 4);
        // The old group's addresses are not the new group's.
        assert!(machine.members().is_empty(), "{:?}", machine.members());
    }
}

#[test]
fn refusals_leave_the_data_dir_and_the_file_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_backup(tmp.path(), &old_group_state());
    let original = std::fs::read(&file).unwrap();

    // A data dir that holds anything at all.
    let used = tmp.path().join("used");
    std::fs::create_dir_all(&used).unwrap();
    std::fs::write(used.join("keep"), b"x").unwrap();
    let err = restore_data_dir(&file, &used, 1, &[1]).unwrap_err();
    assert!(matches!(err, RestoreError::NotEmpty(_)), "{err}");
    let entries: Vec<_> = std::fs::read_dir(&used).unwrap().collect();
    assert_eq!(entries.len(), 1);

    // A member not in the peer list, or id 0.
    let fresh = tmp.path().join("fresh");
    for (id, peers) in [(4, vec![1, 2, 3]), (0, vec![0, 1])] {
        let err = restore_data_dir(&file, &fresh, id, &peers).unwrap_err();
        assert!(matches!(err, RestoreError::Peers(_)), "{err}");
    }

    // A damaged file, a cut one, another file, one that decodes to no state.
    let mut damaged = original.clone();
    damaged[20] ^= 0x10;
    let cut = original[..original.len() - 5].to_vec();
    let not_ours = b"some other database file, long enough to hold a checksum".to_vec();
    let no_state = agora_raft::encode_backup(b"\x01not a master state");
    let cases = [
        (damaged, "damaged"),
        (cut, "damaged"),
        (not_ours, "not an Agora backup"),
        (no_state, "master snapshot"),
    ];
    for (bytes, words) in cases {
        let bad = tmp.path().join("bad.db");
        std::fs::write(&bad, &bytes).unwrap();
        let err = restore_data_dir(&bad, &fresh, 1, &[1]).unwrap_err();
        assert!(err.to_string().contains(words), "{words:?} not in {err}");
        assert!(
            !fresh.exists(),
            "a refused restore created {}",
            fresh.display()
        );
    }
    let err = restore_data_dir(&tmp.path().join("missing.db"), &fresh, 1, &[1]).unwrap_err();
    assert!(matches!(err, RestoreError::Io { .. }), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), original);
    assert!(matches!(
        agora_raft::decode_backup(&original[..10]),
        Err(BackupError::Truncated(10))
    ));
}

#[test]
fn a_restored_data_dir_is_never_restored_over() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_backup(tmp.path(), &old_group_state());
    let data_dir = tmp.path().join("m1");
    restore_data_dir(&file, &data_dir, 1, &[1]).unwrap();
    let err = restore_data_dir(&file, &data_dir, 1, &[1]).unwrap_err();
    assert!(matches!(err, RestoreError::NotEmpty(_)), "{err}");
    let replica = start_member(1, &data_dir);
    assert_eq!(replica.store().conf_state().voters, [1]);
}
