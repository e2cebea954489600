//! Domain request and response types, field for field with etcd's
//! `etcdserverpb` messages (minus response headers, which carry only the
//! revision here). The gRPC layer converts to and from the wire types.

use serde::{Deserialize, Serialize};

/// A main revision: the number of the write transaction that produced a
/// change. The empty store is at revision 1; every transaction that changes
/// the keyspace moves it up by one.
pub type Revision = i64;

/// A lease id. Zero ([`NO_LEASE`]) means "no lease".
pub type LeaseId = i64;

/// The lease id meaning "not attached to a lease".
pub const NO_LEASE: LeaseId = 0;

/// One version of a key, as etcd's `mvccpb.KeyValue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key.
    #[serde(with = "crate::bytes")]
    pub key: Vec<u8>,
    /// Revision of the put that created this generation of the key.
    pub create_revision: Revision,
    /// Revision of the last change to the key.
    pub mod_revision: Revision,
    /// Number of puts since the key was (re)created; reset by a delete.
    pub version: i64,
    /// The value.
    #[serde(with = "crate::bytes")]
    pub value: Vec<u8>,
    /// The lease the key is attached to, or [`NO_LEASE`].
    pub lease: LeaseId,
}

/// What happened to a key in a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// The key was written.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change to one key, as etcd's `mvccpb.Event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Put or delete.
    pub kind: EventType,
    /// The key after the change. For a delete only `key` and `mod_revision`
    /// are set, as in etcd.
    pub kv: KeyValue,
    /// The key before the change, if it existed.
    pub prev_kv: Option<KeyValue>,
}

impl Event {
    /// The main revision that produced this event.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// Ordering of range results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SortOrder {
    /// Key order (ascending by key).
    #[default]
    None,
    /// Ascending by the sort target.
    Ascend,
    /// Descending by the sort target.
    Descend,
}

/// Field a range is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SortTarget {
    /// The key.
    #[default]
    Key,
    /// The version.
    Version,
    /// The create revision.
    Create,
    /// The mod revision.
    Mod,
    /// The value.
    Value,
}

/// A read over `[key, range_end)`, as etcd's `RangeRequest`.
///
/// `range_end` conventions: empty means the single key `key`; `"\0"` means
/// every key `>= key`; otherwise the half-open interval (use
/// [`crate::prefix_range_end`] for "every key with this prefix").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RangeRequest {
    /// First key of the range.
    #[serde(with = "crate::bytes")]
    pub key: Vec<u8>,
    /// End of the range, see the type's doc.
    #[serde(with = "crate::bytes")]
    pub range_end: Vec<u8>,
    /// Maximum number of keys returned; 0 means no limit.
    pub limit: i64,
    /// Read the keyspace as it was at this revision; 0 or less means now.
    pub revision: Revision,
    /// Result ordering.
    pub sort_order: SortOrder,
    /// Field to sort by.
    pub sort_target: SortTarget,
    /// Return keys without values.
    pub keys_only: bool,
    /// Return only the count.
    pub count_only: bool,
    /// Drop keys whose mod revision is below this (0 = no filter).
    pub min_mod_revision: Revision,
    /// Drop keys whose mod revision is above this (0 = no filter).
    pub max_mod_revision: Revision,
    /// Drop keys whose create revision is below this (0 = no filter).
    pub min_create_revision: Revision,
    /// Drop keys whose create revision is above this (0 = no filter).
    pub max_create_revision: Revision,
}

/// Result of a range, as etcd's `RangeResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RangeResponse {
    /// The store's current revision (etcd's header revision).
    pub revision: Revision,
    /// The keys found, after filters, sorting and the limit.
    pub kvs: Vec<KeyValue>,
    /// More keys matched than `limit` allowed.
    pub more: bool,
    /// Number of keys in the range at the read revision. As in etcd this is
    /// counted before the min/max revision filters and the limit.
    pub count: i64,
}

/// A write of one key, as etcd's `PutRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PutRequest {
    /// The key (must not be empty).
    #[serde(with = "crate::bytes")]
    pub key: Vec<u8>,
    /// The value.
    #[serde(with = "crate::bytes")]
    pub value: Vec<u8>,
    /// Lease to attach the key to, or [`NO_LEASE`].
    pub lease: LeaseId,
    /// Return the previous version in the response.
    pub prev_kv: bool,
    /// Keep the current value (the key must exist; `value` must be empty).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist; `lease` must be 0).
    pub ignore_lease: bool,
}

/// Result of a put.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PutResponse {
    /// Revision after the write.
    pub revision: Revision,
    /// The previous version, if asked for and the key existed.
    pub prev_kv: Option<KeyValue>,
}

/// A delete of `[key, range_end)`, same range conventions as [`RangeRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeleteRangeRequest {
    /// First key.
    #[serde(with = "crate::bytes")]
    pub key: Vec<u8>,
    /// End of the range.
    #[serde(with = "crate::bytes")]
    pub range_end: Vec<u8>,
    /// Return the deleted versions.
    pub prev_kv: bool,
}

/// Result of a delete.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeleteRangeResponse {
    /// Revision after the delete (unchanged if nothing was deleted).
    pub revision: Revision,
    /// Number of keys deleted.
    pub deleted: i64,
    /// The deleted versions, if asked for.
    pub prev_kvs: Vec<KeyValue>,
}

/// How a compare relates the stored field to the given one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    /// Stored == given.
    Equal,
    /// Stored > given.
    Greater,
    /// Stored < given.
    Less,
    /// Stored != given.
    NotEqual,
}

/// The field a compare looks at, with the value to compare against (etcd's
/// `target` plus `target_union` in one enum).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    /// The key's version (0 if missing).
    Version(i64),
    /// The key's create revision (0 if missing).
    Create(Revision),
    /// The key's mod revision (0 if missing).
    Mod(Revision),
    /// The key's value (a missing key never matches).
    Value(#[serde(with = "crate::bytes")] Vec<u8>),
    /// The key's lease (0 if missing or unleased).
    Lease(LeaseId),
}

/// One guard of a txn, as etcd's `Compare`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    /// The relation that must hold.
    pub result: CompareResult,
    /// Field and value.
    pub target: CompareTarget,
    /// The key compared.
    #[serde(with = "crate::bytes")]
    pub key: Vec<u8>,
    /// If set, every key in `[key, range_end)` must satisfy the compare.
    #[serde(with = "crate::bytes")]
    pub range_end: Vec<u8>,
}

/// One operation of a txn branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestOp {
    /// A read.
    Range(RangeRequest),
    /// A write.
    Put(PutRequest),
    /// A delete.
    DeleteRange(DeleteRangeRequest),
    /// A nested txn (decoding refuses nesting past `MAX_TXN_DEPTH`).
    #[serde(deserialize_with = "crate::nesting::bounded_txn")]
    Txn(TxnRequest),
}

/// Result of one txn operation, in the order of the branch's operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseOp {
    /// Result of a read.
    Range(RangeResponse),
    /// Result of a write.
    Put(PutResponse),
    /// Result of a delete.
    DeleteRange(DeleteRangeResponse),
    /// Result of a nested txn.
    Txn(TxnResponse),
}

/// If all compares hold run `success`, else `failure`; atomically, as one
/// revision. As etcd's `TxnRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TxnRequest {
    /// Guards, all of which must hold.
    pub compare: Vec<Compare>,
    /// Operations run when every compare holds.
    pub success: Vec<RequestOp>,
    /// Operations run otherwise.
    pub failure: Vec<RequestOp>,
}

/// Result of a txn.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TxnResponse {
    /// Revision after the txn (unchanged for a read-only txn).
    pub revision: Revision,
    /// Whether the compares held.
    pub succeeded: bool,
    /// One response per operation of the branch that ran.
    pub responses: Vec<ResponseOp>,
}

/// Drop history below `revision`, as etcd's `CompactionRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompactRequest {
    /// New start of history.
    pub revision: Revision,
}

/// Result of a compaction.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompactResponse {
    /// The store's current revision.
    pub revision: Revision,
}

/// Result of a lease grant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LeaseGrantResponse {
    /// The store's current revision.
    pub revision: Revision,
    /// The lease id (assigned if the request said 0).
    pub id: LeaseId,
    /// The TTL granted, after raising it to the minimum.
    pub ttl: i64,
}

/// Result of a lease revoke.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LeaseRevokeResponse {
    /// Revision after deleting the lease's keys.
    pub revision: Revision,
}

/// Result of a keep-alive.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LeaseKeepAliveResponse {
    /// The store's current revision.
    pub revision: Revision,
    /// The lease renewed.
    pub id: LeaseId,
    /// Its TTL in seconds from now.
    pub ttl: i64,
}

/// Result of expiring leases.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExpireLeasesResponse {
    /// Revision after deleting the expired leases' keys.
    pub revision: Revision,
    /// The leases actually revoked (expired at the command's `now`), in id order.
    pub revoked: Vec<LeaseId>,
}

/// Answer to a lease time-to-live query, as etcd's `LeaseTimeToLiveResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LeaseTimeToLive {
    /// The lease.
    pub id: LeaseId,
    /// Remaining whole seconds; -1 once expired (awaiting revocation).
    pub ttl: i64,
    /// The TTL granted (or last renewed with).
    pub granted_ttl: i64,
    /// Attached keys, in key order, if asked for.
    pub keys: Vec<Vec<u8>>,
}
