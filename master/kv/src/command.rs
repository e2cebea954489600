//! The replicated log entry of the keyspace and its answers.
//!
//! A log entry outlives the binary that wrote it, so it is versioned:
//! [`LogEntry::V1`] wraps today's [`Command`]. A future change of meaning
//! adds `V2` and keeps decoding `V1` the old way.

use serde::{Deserialize, Serialize};

use crate::lease::Millis;
use crate::{AlarmAction, AlarmMember};
use crate::{
    CompactRequest, CompactResponse, DeleteRangeRequest, DeleteRangeResponse, ExpireLeasesResponse,
    KvError, LeaseGrantResponse, LeaseId, LeaseKeepAliveResponse, LeaseRevokeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, RequestOp, Revision, TxnRequest, TxnResponse,
};

/// Largest request, counted as the bytes of its keys, range ends and values:
/// etcd's default `--max-request-bytes` (1.5 MiB). Every member holds every
/// entry in memory and in the log, so one entry must stay small.
pub const MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// One change to the keyspace, as proposed to the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A linearizable read through the log (a txn with no writes does the same).
    Range(RangeRequest),
    /// Write one key.
    Put(PutRequest),
    /// Delete a range of keys.
    DeleteRange(DeleteRangeRequest),
    /// Compare-and-branch transaction.
    Txn(TxnRequest),
    /// Drop history below a revision.
    Compact(CompactRequest),
    /// Grant a lease; `id == 0` lets the state machine pick one.
    LeaseGrant {
        /// Requested id, or 0.
        id: LeaseId,
        /// Requested TTL in seconds.
        ttl_seconds: i64,
        /// The leader's clock when it proposed the grant.
        now_ms: Millis,
    },
    /// Revoke a lease and delete its keys, as one revision.
    LeaseRevoke {
        /// The lease.
        id: LeaseId,
    },
    /// Renew a lease for its TTL from `now_ms`.
    LeaseKeepAlive {
        /// The lease.
        id: LeaseId,
        /// The leader's clock when the keep-alive arrived.
        now_ms: Millis,
    },
    /// Revoke the listed leases that have expired by `now_ms` (the leader's
    /// [`crate::KvState::expired_leases`] at that instant). Re-checked on
    /// apply, so a keep-alive applied in between keeps its lease.
    ExpireLeases {
        /// Candidates, as the leader saw them.
        ids: Vec<LeaseId>,
        /// The leader's clock when it proposed.
        now_ms: Millis,
    },
    /// A new leader's first entry: every lease gets a full TTL from `now_ms`.
    LeasePromote {
        /// The new leader's clock.
        now_ms: Millis,
    },
    /// Raise or clear an alarm (etcd's Alarm request, and a member that
    /// finds a write would pass the space quota).
    Alarm {
        /// Raise or clear.
        action: AlarmAction,
        /// Which alarm, of which member.
        member: AlarmMember,
    },
}

/// A versioned log entry of the keyspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogEntry {
    /// Format 1.
    V1(Command),
}

impl LogEntry {
    /// Encodes for the log.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes a log entry written by [`LogEntry::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, KvError> {
        crate::from_postcard(bytes).map_err(|reason| KvError::Corrupt {
            what: "command",
            reason,
        })
    }

    /// The command, whatever its format version.
    pub fn into_command(self) -> Command {
        match self {
            LogEntry::V1(command) => command,
        }
    }
}

/// The answer to one applied [`Command`], in the same order of variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Command::Range`].
    Range(RangeResponse),
    /// Answer to [`Command::Put`].
    Put(PutResponse),
    /// Answer to [`Command::DeleteRange`].
    DeleteRange(DeleteRangeResponse),
    /// Answer to [`Command::Txn`].
    Txn(TxnResponse),
    /// Answer to [`Command::Compact`].
    Compact(CompactResponse),
    /// Answer to [`Command::LeaseGrant`].
    LeaseGrant(LeaseGrantResponse),
    /// Answer to [`Command::LeaseRevoke`].
    LeaseRevoke(LeaseRevokeResponse),
    /// Answer to [`Command::LeaseKeepAlive`].
    LeaseKeepAlive(LeaseKeepAliveResponse),
    /// Answer to [`Command::ExpireLeases`].
    ExpireLeases(ExpireLeasesResponse),
    /// Answer to [`Command::LeasePromote`]: the store's revision.
    LeasePromote {
        /// The store's current revision.
        revision: Revision,
    },
    /// Answer to [`Command::Alarm`]: the alarms it changed.
    Alarm {
        /// The store's current revision.
        revision: Revision,
        /// Raised or cleared by this command (none if already so).
        changed: Vec<AlarmMember>,
    },
}

impl Command {
    /// Bytes of keys, range ends and values the command carries, compared
    /// with [`MAX_REQUEST_BYTES`].
    pub(crate) fn payload_bytes(&self) -> usize {
        match self {
            Command::Range(r) => r.key.len().saturating_add(r.range_end.len()),
            Command::Put(p) => p.key.len().saturating_add(p.value.len()),
            Command::DeleteRange(d) => d.key.len().saturating_add(d.range_end.len()),
            Command::Txn(t) => txn_bytes(t),
            Command::ExpireLeases { ids, .. } => ids.len().saturating_mul(8),
            _ => 0,
        }
    }
}

pub(crate) fn txn_bytes(txn: &TxnRequest) -> usize {
    let compares = txn.compare.iter().map(|c| {
        let target = match &c.target {
            crate::CompareTarget::Value(v) => v.len(),
            _ => 8,
        };
        c.key
            .len()
            .saturating_add(c.range_end.len())
            .saturating_add(target)
    });
    let ops = txn.success.iter().chain(&txn.failure).map(|op| match op {
        RequestOp::Range(r) => r.key.len().saturating_add(r.range_end.len()),
        RequestOp::Put(p) => p.key.len().saturating_add(p.value.len()),
        RequestOp::DeleteRange(d) => d.key.len().saturating_add(d.range_end.len()),
        RequestOp::Txn(nested) => txn_bytes(nested),
    });
    compares.chain(ops).fold(0usize, usize::saturating_add)
}
