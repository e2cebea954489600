//! The masters' Raft group: what is replicated ([`MasterMachine`]: the
//! registry, the etcd keyspace, the members' addresses), the registry's
//! writer through the log, the leadership task that runs this member's
//! core while it leads, and the wiring of the replica (agora-raft) with
//! its store: RocksDB in the data dir, or memory when there is none (tests).
//!
//! Tasks and offers are not replicated: as in Mesos, a new leader rebuilds
//! them from agents' re-registrations and frameworks' re-subscriptions.
//! Replicating them would put every status update through a majority's
//! fsync, while the agents hold them durably (checkpointed) anyway.
mod config;
mod directory;
mod handoff;
mod machine;
#[cfg(test)]
mod machine_tests;
mod member;
mod restore;
#[cfg(test)]
mod restore_tests;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;

use agora_raft::runner::{self, Access, RunnerInputs, Status, access_channel, proposal_channel};
use agora_raft::transport::grpc::{GrpcTransport, Inbound, inbound_channel};
use agora_raft::{KvHost, LogStore, MemLogStore, Replica, ReplicaConfig, RocksLogStore};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use agora_etcd::AutoCompaction;
pub use config::{DEFAULT_ETCD_PORT, GroupConfig, PeerSpec, parse_member_id};
pub(crate) use directory::Directory;
pub use machine::{MachineSnapshotError, MasterEntry, MasterMachine, MemberInfo};
pub(crate) use member::{GroupHandles, lead_while_elected};
pub use restore::{RestoreError, Restored, restore_data_dir};

/// The etcd cluster id the masters report (one group per deployment).
pub(crate) const CLUSTER_ID: u64 = 0x4147_4f52_4100_0001;

use crate::error::MasterError;

/// The running replica of this member, as the rest of the master sees it.
pub(crate) struct Group {
    pub(crate) handles: GroupHandles,
    /// Raft messages from peers, for the peer service on the master's port.
    pub(crate) inbound: mpsc::Sender<Inbound>,
    pub(crate) directory: Arc<Directory>,
    /// The keyspace's revision, published by the state machine.
    pub(crate) revision: agora_raft::PublishedKv,
    /// Defragments the member's RocksDB store (etcd's Defragment); `None`
    /// for a member without a data dir.
    pub(crate) defragment: Option<agora_etcd::Defragment>,
    /// Stops the replica's thread.
    pub(crate) stop: CancellationToken,
    /// Waits for the replica's thread to end (its store closes with it).
    pub(crate) join: Option<Box<dyn FnOnce() + Send>>,
}

impl Group {
    /// Stops the replica and waits for its thread (its store is closed
    /// after this, so the data dir can be opened again).
    pub(crate) fn stop_and_join(&mut self) {
        self.stop.cancel();
        if let Some(join) = self.join.take() {
            join();
        }
    }
}

/// Opens this member's store and starts its replica on its own thread.
/// `own_api_addr` is where this master serves (used when no peers are
/// configured: a group of one).
pub(crate) fn start_group(
    cfg: &crate::MasterConfig,
    own_api_addr: String,
    own_etcd_addr: String,
) -> Result<Group, MasterError> {
    let group = &cfg.group;
    group.validate()?;
    let peers: BTreeMap<u64, PeerSpec> = if group.peers.is_empty() {
        BTreeMap::from([(
            group.member_id,
            PeerSpec {
                api_addr: own_api_addr,
                etcd_addr: own_etcd_addr,
            },
        )])
    } else {
        group.peers.clone()
    };
    let members = peers
        .iter()
        .map(|(id, spec)| {
            let info = MemberInfo {
                id: *id,
                name: format!("master-{id}"),
                api_addr: spec.api_addr.clone(),
                etcd_addr: spec.etcd_addr.clone(),
            };
            (*id, info)
        })
        .collect();
    let directory = Arc::new(Directory::new(group.member_id, members));
    match &cfg.data_dir {
        Some(dir) => {
            let path = dir.join("raft");
            let store = RocksLogStore::open(&path).map_err(|e| MasterError::Storage {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let defragment = Some(defragment_with(store.defragmenter()));
            spawn(group, &peers, (store, defragment), directory)
        }
        None => spawn(group, &peers, (MemLogStore::new(), None), directory),
    }
}

/// etcd's Defragment over `defragmenter`, saying in the log what it freed.
fn defragment_with(defragmenter: agora_raft::Defragmenter) -> agora_etcd::Defragment {
    Arc::new(move || {
        let done = defragmenter.run().map_err(|e| e.to_string())?;
        tracing::info!(
            before = done.bytes_before,
            after = done.bytes_after,
            "defragmented the member's store (live table bytes)"
        );
        Ok(())
    })
}

fn spawn<L: LogStore + Send + 'static>(
    group: &GroupConfig,
    peers: &BTreeMap<u64, PeerSpec>,
    (store, defragment): (L, Option<agora_etcd::Defragment>),
    directory: Arc<Directory>,
) -> Result<Group, MasterError> {
    // A joining member starts without a membership: the leader sends it one.
    let ids: Vec<u64> = if group.join {
        Vec::new()
    } else {
        peers.keys().copied().collect()
    };
    let config = ReplicaConfig {
        seed: rand::random(),
        snapshot_interval: group.snapshot_entries,
        log_tail_kept: group.log_tail_entries,
        // The runner encodes periodic snapshots on a blocking thread.
        background_snapshots: true,
        ..ReplicaConfig::default()
    };
    let machine = MasterMachine::new();
    let revision = machine.kv().published_revision();
    let mut replica = Replica::new(group.member_id, &ids, store, machine, config).map_err(|e| {
        MasterError::Storage {
            path: "raft".to_string(),
            reason: e.to_string(),
        }
    })?;
    if replica.voters() == [group.member_id] {
        // A group of one need not wait an election timeout to lead.
        let _ = replica.campaign();
    }
    let addresses: BTreeMap<u64, String> = peers
        .iter()
        .map(|(id, spec)| (*id, spec.api_addr.clone()))
        .collect();
    let (inbound, inbound_rx) = inbound_channel();
    let (proposals, proposals_rx) = proposal_channel();
    let (access, access_rx) = access_channel();
    let (status_tx, status) = watch::channel(Status::of(&replica));
    let stop = CancellationToken::new();
    let inputs = RunnerInputs {
        inbound: inbound_rx,
        proposals: proposals_rx,
        access: access_rx,
    };
    let stopped = stop.clone();
    let id = group.member_id;
    let resolver = directory.clone();
    // The peer tasks run on the master's runtime, not the replica's thread:
    // messages then leave while the replica waits for its fsync.
    let runtime = tokio::runtime::Handle::current();
    let thread = runner::spawn_replica_thread(
        replica,
        move || {
            let resolve = move |peer: u64| resolver.api_addr(peer);
            GrpcTransport::with_resolver(runtime, id, &addresses, Arc::new(resolve))
        },
        inputs,
        group.tick,
        status_tx,
        async move { stopped.cancelled().await },
    )
    .map_err(MasterError::Io)?;
    Ok(Group {
        handles: GroupHandles {
            proposals,
            access,
            status,
        },
        inbound,
        directory,
        revision,
        defragment,
        stop,
        join: Some(Box::new(move || {
            // A panicked replica thread has nothing left to close.
            let _ = thread.join();
        })),
    })
}

/// Keeps `directory` up to date with members published through the log.
pub(crate) async fn refresh_directory(
    access: mpsc::Sender<Access<MasterMachine>>,
    directory: Arc<Directory>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        match published_members(&access).await {
            Some(published) => directory.merge(&published),
            None => return,
        }
    }
}

/// The members' addresses as this member's state machine has applied
/// them; `None` once the replica has stopped.
pub(crate) async fn published_members(
    access: &mpsc::Sender<Access<MasterMachine>>,
) -> Option<BTreeMap<u64, MemberInfo>> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let read = Access::Local(Box::new(move |machine: &mut MasterMachine| {
        let _ = reply.send(machine.members().clone());
    }));
    access.send(read).await.ok()?;
    answer.await.ok()
}
