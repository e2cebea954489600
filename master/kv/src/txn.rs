//! Transactions: compare, then run one branch, atomically as one revision.
//!
//! Order, as in etcd: validate the request's shape (operation limits,
//! duplicate keys); evaluate every compare, nested ones included, against
//! the state before the txn, which fixes the path taken; check the ops on
//! that path (leases exist, revisions readable); only then write. Reads
//! inside the txn see its earlier writes.

use crate::lease::Lessor;
use crate::mvcc::{KeyRange, MvccStore};
use crate::range;
use crate::write::{self, Writer};
use crate::{
    Compare, CompareResult, CompareTarget, KeyValue, KvError, RequestOp, ResponseOp, Revision,
    TxnRequest, TxnResponse,
};

/// Most operations in one list of a txn (its compares, its success ops or
/// its failure ops), as etcd's `--max-txn-ops` default. Bounds the work one
/// log entry can make every member do.
pub const MAX_TXN_OPS: usize = 128;

/// Checks the txn's shape: list lengths and duplicate keys, recursively.
pub(crate) fn validate(request: &TxnRequest) -> Result<(), KvError> {
    check_op_counts(request)?;
    check_intervals(&request.success)?;
    check_intervals(&request.failure)?;
    Ok(())
}

fn check_op_counts(request: &TxnRequest) -> Result<(), KvError> {
    let too_long = |len: usize| len > MAX_TXN_OPS;
    if too_long(request.compare.len())
        || too_long(request.success.len())
        || too_long(request.failure.len())
    {
        return Err(KvError::TooManyOps);
    }
    for op in request.success.iter().chain(&request.failure) {
        if let RequestOp::Txn(nested) = op {
            check_op_counts(nested)?;
        }
    }
    Ok(())
}

/// Keys a branch puts and ranges it deletes, nested txns included.
#[derive(Default)]
struct Touched {
    puts: Vec<Vec<u8>>,
    deletes: Vec<KeyRange>,
}

impl Touched {
    fn deleted(&self, key: &[u8]) -> bool {
        self.deletes.iter().any(|range| range.contains(key))
    }
    fn put(&self, key: &[u8]) -> bool {
        self.puts.iter().any(|put| put == key)
    }
}

/// etcd's duplicate-key rule: within what one execution can run, a key may
/// be put once and may not be both put and deleted. Deletes may overlap.
/// The success and failure branches of a nested txn exclude each other, so
/// they may put the same key.
fn check_intervals(ops: &[RequestOp]) -> Result<Touched, KvError> {
    let mut touched = Touched::default();
    for op in ops {
        if let RequestOp::DeleteRange(delete) = op {
            touched
                .deletes
                .push(KeyRange::new(&delete.key, &delete.range_end));
        }
    }
    for op in ops {
        let RequestOp::Txn(nested) = op else { continue };
        let then = check_intervals(&nested.success)?;
        let otherwise = check_intervals(&nested.failure)?;
        let before = touched.puts.len();
        for key in &then.puts {
            if touched.put(key) || touched.deleted(key) {
                return Err(KvError::DuplicateKey);
            }
            touched.puts.push(key.clone());
        }
        for key in &otherwise.puts {
            let clash = touched
                .puts
                .get(..before)
                .is_some_and(|older| older.contains(key));
            if clash || touched.deleted(key) || (touched.put(key) && !then.put(key)) {
                return Err(KvError::DuplicateKey);
            }
            touched.puts.push(key.clone());
        }
        // Later siblings may not put what this nested txn may delete.
        touched.deletes.extend(then.deletes);
        touched.deletes.extend(otherwise.deletes);
    }
    for op in ops {
        let RequestOp::Put(put) = op else { continue };
        if touched.put(&put.key) || touched.deleted(&put.key) {
            return Err(KvError::DuplicateKey);
        }
        touched.puts.push(put.key.clone());
    }
    Ok(touched)
}

/// Evaluates every compare on the path, depth first in op order: `true`
/// for a txn whose compares held. Read against the pre-txn state.
pub(crate) fn compare_path(store: &MvccStore, request: &TxnRequest, path: &mut Vec<bool>) {
    let at = store.current_revision();
    let succeeded = request
        .compare
        .iter()
        .all(|compare| compare_holds(store, compare, at));
    path.push(succeeded);
    for op in branch(request, succeeded) {
        if let RequestOp::Txn(nested) = op {
            compare_path(store, nested, path);
        }
    }
}

fn branch(request: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &request.success
    } else {
        &request.failure
    }
}

/// A compare over a range holds if every key in it satisfies it. With no
/// key in the range, a value compare fails and the others compare against
/// zero (etcd's rule, which makes `version == 0` mean "absent").
fn compare_holds(store: &MvccStore, compare: &Compare, at: Revision) -> bool {
    let kvs = store.live_in(&KeyRange::new(&compare.key, &compare.range_end), at);
    if kvs.is_empty() {
        return match compare.target {
            CompareTarget::Value(_) => false,
            _ => kv_satisfies(&KeyValue::default_for_compare(), compare),
        };
    }
    kvs.iter().all(|kv| kv_satisfies(kv, compare))
}

fn kv_satisfies(kv: &KeyValue, compare: &Compare) -> bool {
    let ordering = match &compare.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(r) => kv.create_revision.cmp(r),
        CompareTarget::Mod(r) => kv.mod_revision.cmp(r),
        CompareTarget::Value(v) => kv.value.as_slice().cmp(v.as_slice()),
        CompareTarget::Lease(l) => kv.lease.cmp(l),
    };
    match compare.result {
        CompareResult::Equal => ordering.is_eq(),
        CompareResult::NotEqual => ordering.is_ne(),
        CompareResult::Greater => ordering.is_gt(),
        CompareResult::Less => ordering.is_lt(),
    }
}

impl KeyValue {
    fn default_for_compare() -> KeyValue {
        KeyValue {
            key: Vec::new(),
            create_revision: 0,
            mod_revision: 0,
            version: 0,
            value: Vec::new(),
            lease: 0,
        }
    }
}

/// Checks every op on the path against the pre-txn state. `path` is
/// consumed in the order [`compare_path`] produced it.
pub(crate) fn check_path(
    store: &MvccStore,
    leases: &Lessor,
    request: &TxnRequest,
    path: &mut std::slice::Iter<'_, bool>,
) -> Result<(), KvError> {
    let succeeded = path.next().copied().unwrap_or(false);
    for op in branch(request, succeeded) {
        match op {
            RequestOp::Range(r) => range::check(store, r)?,
            RequestOp::Put(p) => write::check_put(store, leases, p)?,
            RequestOp::DeleteRange(d) => write::check_delete(d)?,
            RequestOp::Txn(nested) => check_path(store, leases, nested, path)?,
        }
    }
    Ok(())
}

/// Runs the checked path. Response revisions are stamped by the caller once
/// the txn's final revision is known.
pub(crate) fn execute(
    writer: &mut Writer<'_>,
    request: &TxnRequest,
    path: &mut std::slice::Iter<'_, bool>,
) -> TxnResponse {
    let succeeded = path.next().copied().unwrap_or(false);
    let mut responses = Vec::new();
    for op in branch(request, succeeded) {
        let response = match op {
            RequestOp::Range(r) => {
                // Checked already; an error here cannot happen, but a read
                // must not abort a txn that may have written.
                let read = range::range(writer.store, r, writer.read_revision());
                ResponseOp::Range(read.unwrap_or_default())
            }
            RequestOp::Put(p) => ResponseOp::Put(writer.put(p)),
            RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(writer.delete_range(d)),
            RequestOp::Txn(nested) => ResponseOp::Txn(execute(writer, nested, path)),
        };
        responses.push(response);
    }
    TxnResponse {
        revision: 0,
        succeeded,
        responses,
    }
}

/// A txn whose every op, in both branches and nested txns, only reads:
/// answerable from a member's state without the log (etcd serves these
/// through ReadIndex, as a range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyTxn(TxnRequest);

impl ReadOnlyTxn {
    /// The txn, if it only reads; else it back.
    pub fn new(request: TxnRequest) -> Result<ReadOnlyTxn, TxnRequest> {
        if only_reads(&request) {
            Ok(ReadOnlyTxn(request))
        } else {
            Err(request)
        }
    }
}

impl ReadOnlyTxn {
    /// As [`crate::Command::payload_bytes`] of the txn.
    pub(crate) fn payload_bytes(&self) -> usize {
        crate::command::txn_bytes(&self.0)
    }
}

pub(crate) fn only_reads(request: &TxnRequest) -> bool {
    (request.success.iter().chain(&request.failure)).all(|op| match op {
        RequestOp::Range(_) => true,
        RequestOp::Txn(nested) => only_reads(nested),
        RequestOp::Put(_) | RequestOp::DeleteRange(_) => false,
    })
}

/// Answers a read-only txn exactly as applying it would (same checks, same
/// responses, the revision unchanged), without changing anything.
pub(crate) fn read(
    store: &MvccStore,
    leases: &Lessor,
    request: &ReadOnlyTxn,
) -> Result<TxnResponse, KvError> {
    let request = &request.0;
    validate(request)?;
    let mut path = Vec::new();
    compare_path(store, request, &mut path);
    check_path(store, leases, request, &mut path.iter())?;
    let at = store.current_revision();
    // `ReadOnlyTxn` holds only reads, so every op has its response.
    let mut response = read_path(store, request, &mut path.iter(), at).unwrap_or_default();
    stamp_revision(&mut response, at);
    Ok(response)
}

/// [`execute`] for a txn of reads; `None` at a write.
fn read_path(
    store: &MvccStore,
    request: &TxnRequest,
    path: &mut std::slice::Iter<'_, bool>,
    at: Revision,
) -> Option<TxnResponse> {
    let succeeded = path.next().copied().unwrap_or(false);
    let mut responses = Vec::new();
    for op in branch(request, succeeded) {
        responses.push(match op {
            // Checked already, as `execute` reads.
            RequestOp::Range(r) => {
                ResponseOp::Range(range::range(store, r, at).unwrap_or_default())
            }
            RequestOp::Txn(nested) => ResponseOp::Txn(read_path(store, nested, path, at)?),
            RequestOp::Put(_) | RequestOp::DeleteRange(_) => return None,
        });
    }
    Some(TxnResponse {
        revision: 0,
        succeeded,
        responses,
    })
}

/// Sets the header revision of every (nested) response.
pub(crate) fn stamp_revision(response: &mut TxnResponse, revision: Revision) {
    response.revision = revision;
    for op in &mut response.responses {
        match op {
            ResponseOp::Range(r) => r.revision = revision,
            ResponseOp::Put(p) => p.revision = revision,
            ResponseOp::DeleteRange(d) => d.revision = revision,
            ResponseOp::Txn(t) => stamp_revision(t, revision),
        }
    }
}
