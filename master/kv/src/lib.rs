//! Agora's coordination keyspace: etcd v3's data model (MVCC key-value
//! store, transactions, leases, watches) as a deterministic state machine
//! that the masters' Raft group replicates beside the registry.
//!
//! # Layout
//! - `lib.rs`: [`KvState`], `apply` of one [`Command`] and the reads.
//! - `types.rs`: request and response types with etcd's field meanings.
//! - `mvcc.rs`: the versioned store (per-key histories, revision index,
//!   compaction); `range.rs`: range reads (filters, sort, limit).
//! - `write.rs`: one write transaction (one revision, sub-revisions).
//! - `txn.rs`: compares, the duplicate-key rule, branch execution.
//! - `lease.rs`: leases, with time passed in as data.
//! - `watch.rs`: [`WatchHub`], watchers fed from the store's history.
//! - `command.rs`: the versioned log entry and the responses.
//! - `snapshot.rs`: snapshot, restore and the state hash.
//! - `bytes.rs`: keys and values serialized as byte strings, not per byte.
//! - `error.rs`: [`KvError`] with etcd's messages and gRPC categories.
//!
//! Architecture invariant: this crate does no IO, reads no clock, spawns
//! no thread and uses no randomness. The same commands applied in the same
//! order give the same state, responses and [`KvState::hash`] on every
//! member; time enters only as `now_ms` fields of commands or arguments.
//!
//! API boundary: plain data in and out. The gRPC layer converts etcd's
//! protobuf types to these and maps [`KvError::category`] to a status code.
#![forbid(unsafe_code)]

mod alarm;
mod bytes;
mod command;
mod error;
mod lease;
mod mvcc;
mod nesting;
mod range;
mod snapshot;
pub use snapshot::KeyspaceHash;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
mod txn;
mod types;
mod watch;
mod write;

#[cfg(test)]
mod tests;

pub use alarm::{AlarmAction, AlarmKind, AlarmMember};
pub use command::{Command, LogEntry, MAX_REQUEST_BYTES, Response};
pub use error::{ErrorCategory, KvError};
pub use lease::{MAX_LEASE_TTL_SECONDS, MIN_LEASE_TTL_SECONDS, Millis};
pub use nesting::{MAX_TXN_DEPTH, from_postcard};
pub use txn::{MAX_TXN_OPS, ReadOnlyTxn};
pub use types::*;
pub use watch::{CancelReason, WATCHER_BUFFER_LIMIT, WatchHub, WatchId, WatchRequest, WatchUpdate};

use alarm::Alarms;
use lease::Lessor;
use mvcc::MvccStore;
use write::Writer;

/// The keyspace state machine: the versioned store, the leases and the
/// raised alarms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvState {
    store: MvccStore,
    leases: Lessor,
    alarms: Alarms,
}

impl KvState {
    /// An empty keyspace at revision 1.
    pub fn new() -> Self {
        KvState::default()
    }

    /// The revision of the last write.
    pub fn current_revision(&self) -> Revision {
        self.store.current_revision()
    }

    /// History below this revision is gone (0 before any compaction).
    pub fn compact_revision(&self) -> Revision {
        self.store.compact_revision()
    }

    /// Applies one committed command. Deterministic; on error nothing changed.
    pub fn apply(&mut self, command: &Command) -> Result<Response, KvError> {
        if command.payload_bytes() > MAX_REQUEST_BYTES {
            return Err(KvError::RequestTooLarge);
        }
        self.alarms.check(command)?;
        match command {
            Command::Range(request) => self.range(request).map(Response::Range),
            Command::Put(request) => self.put(request).map(Response::Put),
            Command::DeleteRange(request) => self.delete_range(request).map(Response::DeleteRange),
            Command::Txn(request) => self.txn(request).map(Response::Txn),
            Command::Compact(request) => self.compact(request.revision).map(Response::Compact),
            Command::LeaseGrant {
                id,
                ttl_seconds,
                now_ms,
            } => {
                let lease = self.leases.grant(*id, *ttl_seconds, *now_ms)?;
                let (id, ttl) = (lease.id, lease.ttl_seconds);
                Ok(Response::LeaseGrant(LeaseGrantResponse {
                    revision: self.current_revision(),
                    id,
                    ttl,
                }))
            }
            Command::LeaseRevoke { id } => self.revoke(*id).map(Response::LeaseRevoke),
            Command::LeaseKeepAlive { id, now_ms } => {
                let ttl = self.leases.keep_alive(*id, *now_ms)?;
                Ok(Response::LeaseKeepAlive(LeaseKeepAliveResponse {
                    revision: self.current_revision(),
                    id: *id,
                    ttl,
                }))
            }
            Command::ExpireLeases { ids, now_ms } => {
                Ok(Response::ExpireLeases(self.expire(ids, *now_ms)))
            }
            Command::LeasePromote { now_ms } => {
                self.promote_all(*now_ms);
                Ok(Response::LeasePromote {
                    revision: self.current_revision(),
                })
            }
            Command::Alarm { action, member } => Ok(Response::Alarm {
                revision: self.current_revision(),
                changed: self.alarms.change(*action, *member),
            }),
        }
    }

    /// Decodes and applies one log entry.
    pub fn apply_entry(&mut self, entry: &[u8]) -> Result<Response, KvError> {
        let command = LogEntry::decode(entry)?.into_command();
        self.apply(&command)
    }

    /// Physically removes up to `budget` changes that compactions left
    /// behind (see [`KvState::is_trimming`]); returns whether any are left.
    /// Compaction is O(1) and this does its work in bounded batches, so a
    /// member calls it between other work until it returns `false`. Never
    /// changes what a read, snapshot or [`KvState::hash`] gives.
    pub fn trim_compacted(&mut self, budget: usize) -> bool {
        self.store.trim(budget)
    }

    /// Whether a compaction's versions are still held in memory, waiting
    /// for [`KvState::trim_compacted`] (what etcd's `physical` compaction
    /// waits for).
    pub fn is_trimming(&self) -> bool {
        self.store.is_trimming()
    }

    /// Approximate bytes the keyspace's stored versions hold in memory,
    /// compacted ones not yet trimmed included: what etcd reports as
    /// `dbSize`. Not replicated state: members may differ while trimming.
    pub fn stored_bytes(&self) -> u64 {
        self.store.held_bytes()
    }

    /// The raised alarms, in (member, kind) order.
    pub fn alarms(&self) -> Vec<AlarmMember> {
        self.alarms.iter().copied().collect()
    }

    /// Whether a NOSPACE alarm is raised (by any member): writes that add
    /// data are refused.
    pub fn nospace(&self) -> bool {
        self.alarms.raised(AlarmKind::NoSpace)
    }

    /// Reads a range at the current or a past revision.
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResponse, KvError> {
        range::range(&self.store, request, self.store.current_revision())
    }

    /// Answers a txn that only reads as applying it would, without the log.
    pub fn read_txn(&self, request: &ReadOnlyTxn) -> Result<TxnResponse, KvError> {
        if request.payload_bytes() > MAX_REQUEST_BYTES {
            return Err(KvError::RequestTooLarge);
        }
        txn::read(&self.store, &self.leases, request)
    }

    fn put(&mut self, request: &PutRequest) -> Result<PutResponse, KvError> {
        write::check_put(&self.store, &self.leases, request)?;
        let mut writer = Writer::begin(&mut self.store, &mut self.leases);
        let mut response = writer.put(request);
        response.revision = writer.finish();
        Ok(response)
    }

    fn delete_range(
        &mut self,
        request: &DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, KvError> {
        write::check_delete(request)?;
        let mut writer = Writer::begin(&mut self.store, &mut self.leases);
        let mut response = writer.delete_range(request);
        response.revision = writer.finish();
        Ok(response)
    }

    fn txn(&mut self, request: &TxnRequest) -> Result<TxnResponse, KvError> {
        txn::validate(request)?;
        let mut path = Vec::new();
        txn::compare_path(&self.store, request, &mut path);
        txn::check_path(&self.store, &self.leases, request, &mut path.iter())?;
        let mut writer = Writer::begin(&mut self.store, &mut self.leases);
        let mut response = txn::execute(&mut writer, request, &mut path.iter());
        let revision = writer.finish();
        txn::stamp_revision(&mut response, revision);
        Ok(response)
    }

    fn compact(&mut self, revision: Revision) -> Result<CompactResponse, KvError> {
        self.store.compact(revision)?;
        Ok(CompactResponse {
            revision: self.current_revision(),
        })
    }

    fn revoke(&mut self, id: LeaseId) -> Result<LeaseRevokeResponse, KvError> {
        let lease = self.leases.remove(id).ok_or(KvError::LeaseNotFound)?;
        let mut writer = Writer::begin(&mut self.store, &mut self.leases);
        writer.delete_keys(lease.keys.iter().map(Vec::as_slice));
        Ok(LeaseRevokeResponse {
            revision: writer.finish(),
        })
    }

    /// Revokes the candidates still expired at `now_ms`, all their keys in
    /// one revision (one command, one revision; etcd spends one each).
    fn expire(&mut self, ids: &[LeaseId], now_ms: Millis) -> ExpireLeasesResponse {
        let mut candidates = ids.to_vec();
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|id| self.leases.is_expired(*id, now_ms));
        let removed: Vec<_> = candidates
            .iter()
            .filter_map(|id| self.leases.remove(*id))
            .collect();
        let mut writer = Writer::begin(&mut self.store, &mut self.leases);
        for lease in &removed {
            writer.delete_keys(lease.keys.iter().map(Vec::as_slice));
        }
        ExpireLeasesResponse {
            revision: writer.finish(),
            revoked: candidates,
        }
    }

    /// Leases expired at `now_ms`, for the leader to propose in
    /// [`Command::ExpireLeases`]. Pure: reads no clock, changes nothing.
    pub fn expired_leases(&self, now_ms: Millis) -> Vec<LeaseId> {
        self.leases.expired(now_ms)
    }

    /// Gives every lease a full TTL from `now_ms` (what etcd does when a
    /// leader takes over). Replicated through [`Command::LeasePromote`] so
    /// every member keeps the same expiries.
    pub fn promote_all(&mut self, now_ms: Millis) {
        self.leases.promote_all(now_ms);
    }

    /// A lease's remaining and granted TTL, and optionally its keys.
    pub fn lease_time_to_live(
        &self,
        id: LeaseId,
        now_ms: Millis,
        with_keys: bool,
    ) -> Result<LeaseTimeToLive, KvError> {
        self.leases.time_to_live(id, now_ms, with_keys)
    }

    /// Every lease id, ascending.
    pub fn leases(&self) -> Vec<LeaseId> {
        self.leases.ids()
    }

    /// Events of revisions `from..=current`, for watch replay. Errors if
    /// `from` is below the compaction point.
    pub fn events_since(&self, from: Revision) -> Result<Vec<Event>, KvError> {
        self.check_watchable(from)?;
        Ok(self.store.events(from, self.current_revision()))
    }

    pub(crate) fn check_watchable(&self, from: Revision) -> Result<(), KvError> {
        let compact_revision = self.compact_revision();
        if from < compact_revision {
            return Err(KvError::Compacted { compact_revision });
        }
        Ok(())
    }

    pub(crate) fn store(&self) -> &MvccStore {
        &self.store
    }
}

/// The `range_end` that selects every key starting with `prefix` (etcd
/// clients' `GetPrefixRangeEnd`): the prefix with its last byte below 0xff
/// incremented and what follows dropped; `"\0"` (all keys) if every byte is
/// 0xff or the prefix is empty.
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
