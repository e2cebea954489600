//! Range reads: etcd's order of operations is read, filter by revision
//! bounds, sort, then truncate to the limit; `count` is taken from the read,
//! before filters and limit (etcd reports it that way too).

use std::cmp::Ordering;

use crate::mvcc::{KeyRange, MvccStore};
use crate::{KeyValue, KvError, RangeRequest, RangeResponse, Revision, SortOrder, SortTarget};

/// Runs `request` against `store`. `now` is the revision "current" means:
/// the store's revision, or inside a write txn its pending revision so the
/// txn sees its own writes.
pub(crate) fn range(
    store: &MvccStore,
    request: &RangeRequest,
    now: Revision,
) -> Result<RangeResponse, KvError> {
    if request.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    let at = if request.revision <= 0 {
        now
    } else {
        store.read_revision(request.revision)?
    };
    let mut kvs = store.live_in(&KeyRange::new(&request.key, &request.range_end), at);
    let count = i64::try_from(kvs.len()).unwrap_or(i64::MAX);
    if request.count_only {
        return Ok(RangeResponse {
            revision: store.current_revision(),
            kvs: Vec::new(),
            more: false,
            count,
        });
    }
    kvs.retain(|kv| passes_filters(request, kv));
    sort(&mut kvs, request.sort_order, request.sort_target);
    let limit = usize::try_from(request.limit).unwrap_or(0);
    let more = limit > 0 && kvs.len() > limit;
    if more {
        kvs.truncate(limit);
    }
    if request.keys_only {
        kvs.iter_mut().for_each(|kv| kv.value.clear());
    }
    Ok(RangeResponse {
        revision: store.current_revision(),
        kvs,
        more,
        count,
    })
}

/// Checks a range nested in a txn before anything is written, so a bad
/// revision fails the whole txn rather than half of it.
pub(crate) fn check(store: &MvccStore, request: &RangeRequest) -> Result<(), KvError> {
    if request.key.is_empty() {
        return Err(KvError::EmptyKey);
    }
    store.read_revision(request.revision).map(|_| ())
}

fn passes_filters(request: &RangeRequest, kv: &KeyValue) -> bool {
    let at_least = |bound: Revision, value: Revision| bound == 0 || value >= bound;
    let at_most = |bound: Revision, value: Revision| bound == 0 || value <= bound;
    at_least(request.min_mod_revision, kv.mod_revision)
        && at_most(request.max_mod_revision, kv.mod_revision)
        && at_least(request.min_create_revision, kv.create_revision)
        && at_most(request.max_create_revision, kv.create_revision)
}

/// Sorts in place. Results arrive in key order, and the sort is stable, so
/// ties on the target stay in key order: deterministic on every member
/// (etcd's own tie order is unspecified).
fn sort(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    // etcd: a target other than the key with no order means ascending.
    let order = match (order, target) {
        (SortOrder::None, SortTarget::Key) => return,
        (SortOrder::None, _) => SortOrder::Ascend,
        (order, _) => order,
    };
    let by_target = |a: &KeyValue, b: &KeyValue| -> Ordering {
        match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        }
    };
    match order {
        SortOrder::Descend => kvs.sort_by(|a, b| by_target(b, a)),
        _ => kvs.sort_by(by_target),
    }
}
