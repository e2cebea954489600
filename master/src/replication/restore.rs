//! Founding a group from a backup (`agora snapshot restore`): the offline
//! step that turns a backup file into a member's data dir, as etcd's
//! `etcdctl snapshot restore` does. Every member of the new group is
//! restored from the same file with the same peer list, then started as
//! usual; the group's log starts after the backup's applied index.
//!
//! What comes back: the registry (agents, frameworks and their failover
//! timeouts, weights, maintenance, utilisation history) and the keyspace
//! with its revisions and leases. Leases get a fresh TTL when the new
//! group elects its leader, as after any election. What does not: the old
//! members' published addresses (the new group's come from its peer list)
//! and the old membership.
use std::path::{Path, PathBuf};

use agora_raft::{BackupError, KvHost, LogStore, Replica, ReplicaConfig, RocksLogStore};
use agora_raft::{StateMachine, decode_backup};

use super::machine::{MachineSnapshotError, MasterMachine};

/// Why a data dir could not be restored from a backup.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The file is not a backup, or is damaged.
    #[error("{path}: {source}")]
    Backup {
        /// The backup file.
        path: PathBuf,
        /// What is wrong with it.
        source: BackupError,
    },
    /// The backup's checksum matches but its state does not decode (a
    /// backup of another version or product).
    #[error("{path}: {source}")]
    State {
        /// The backup file.
        path: PathBuf,
        /// What did not decode.
        source: MachineSnapshotError,
    },
    /// The data dir exists and is not empty: a restore never writes over
    /// a member's state.
    #[error("data dir {0} is not empty: restore into a new or empty directory")]
    NotEmpty(PathBuf),
    /// The peer list does not name this member (or names id 0).
    #[error("peers must include member {0} and not 0")]
    Peers(u64),
    /// Reading the file or writing the data dir failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The member's Raft store could not be written.
    #[error("raft store {path}: {reason}")]
    Storage {
        /// The store's directory.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// What a restored data dir holds, for the operator to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The old group's applied index; the new log starts after it.
    pub applied_index: u64,
    /// The keyspace's revision.
    pub revision: i64,
    /// Admitted agents in the registry.
    pub agents: usize,
    /// Frameworks that may re-subscribe with their ids.
    pub frameworks: usize,
}

/// Writes member `member_id`'s data dir for a new group of `peers` from
/// the backup at `backup`. The data dir must not exist or be empty.
pub fn restore_data_dir(
    backup: &Path,
    data_dir: &Path,
    member_id: u64,
    peers: &[u64],
) -> Result<Restored, RestoreError> {
    if member_id == 0 || !peers.contains(&member_id) || peers.contains(&0) {
        return Err(RestoreError::Peers(member_id));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RestoreError::Io { path, source }
    };
    let bytes = std::fs::read(backup).map_err(io(backup))?;
    let machine = restored_machine(backup, &bytes)?;
    if std::fs::read_dir(data_dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(RestoreError::NotEmpty(data_dir.to_path_buf()));
    }
    let restored = Restored {
        applied_index: machine.applied_index(),
        revision: machine.kv().state().current_revision(),
        agents: machine.registry().agents.len(),
        frameworks: machine.registry().frameworks.len(),
    };
    let path = data_dir.join("raft");
    let storage = |reason: String| RestoreError::Storage {
        path: path.clone(),
        reason,
    };
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let store = RocksLogStore::open(&path).map_err(|e| storage(e.to_string()))?;
    // Founding writes the restored state as the group's first snapshot
    // (fsynced) before `new` returns; the replica is not run here.
    let replica = Replica::new(member_id, peers, store, machine, ReplicaConfig::default())
        .map_err(|e| storage(e.to_string()))?;
    if replica.store().conf_state().voters.is_empty() {
        return Err(storage("the founding snapshot was not stored".to_string()));
    }
    Ok(restored)
}

/// The state in `bytes` (a backup file's content), without the old
/// group's member addresses.
fn restored_machine(path: &Path, bytes: &[u8]) -> Result<MasterMachine, RestoreError> {
    let snapshot = decode_backup(bytes).map_err(|source| RestoreError::Backup {
        path: path.to_path_buf(),
        source,
    })?;
    let mut machine = MasterMachine::new();
    machine
        .restore(snapshot)
        .map_err(|source| RestoreError::State {
            path: path.to_path_buf(),
            source,
        })?;
    machine.forget_published_members();
    Ok(machine)
}
