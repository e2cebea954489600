//! The space quota (etcd's `--quota-backend-bytes`). The keyspace lives in
//! every master's memory, so a client that writes without end would
//! otherwise grow it until the masters run out. Before a write that adds
//! data is proposed, the receiving member compares the bytes its keyspace
//! holds plus the write's cost with the quota; past it, the member raises
//! the replicated `NoSpace` alarm and refuses with etcd's "database space
//! exceeded". While the alarm stands every member refuses such writes (the
//! state machine checks it too), until an operator compacts, defragments
//! and disarms it (`etcdctl alarm disarm`), as with etcd.

use agora_kv::{
    AlarmAction, AlarmKind, AlarmMember, Command, KvError, PutRequest, RequestOp, TxnRequest,
};

use crate::ApiError;
use crate::context::Context;

/// etcd's default quota (2 GiB), used when none is configured.
pub const DEFAULT_QUOTA_BACKEND_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// What etcd charges a put beyond its key and value (`kvOverhead`).
const PUT_OVERHEAD_BYTES: u64 = 256;
/// What etcd charges a lease grant (`leaseOverhead`).
const LEASE_OVERHEAD_BYTES: u64 = 64;

/// The quota cost of one put.
pub(crate) fn put_cost(put: &PutRequest) -> u64 {
    let data = put.key.len().saturating_add(put.value.len());
    (data as u64).saturating_add(PUT_OVERHEAD_BYTES)
}

/// The quota cost of a txn: its puts in the costlier branch (only one
/// branch runs), nested txns included.
pub(crate) fn txn_cost(txn: &TxnRequest) -> u64 {
    let branch = |ops: &[RequestOp]| -> u64 {
        ops.iter()
            .map(|op| match op {
                RequestOp::Put(put) => put_cost(put),
                RequestOp::Txn(nested) => txn_cost(nested),
                RequestOp::Range(_) | RequestOp::DeleteRange(_) => 0,
            })
            .fold(0, u64::saturating_add)
    };
    branch(&txn.success).max(branch(&txn.failure))
}

/// The quota cost of a lease grant.
pub(crate) fn lease_cost() -> u64 {
    LEASE_OVERHEAD_BYTES
}

/// Refuses a write of `cost` bytes that would take this member's keyspace
/// to its quota, after raising the `NoSpace` alarm. As etcd's, a write
/// fits while held bytes plus its cost stay below the quota. Two
/// departures, neither of which lets more data in: a write that adds
/// nothing (a txn that only reads or deletes) is not checked, so reads
/// and freeing space go on past the quota (the state machine still
/// refuses writing txns under the alarm); and a member that sees the alarm
/// already raised refuses at once instead of raising it again through
/// the log for every write, as etcd does.
pub(crate) async fn check(ctx: &Context, cost: u64) -> Result<(), ApiError> {
    if cost == 0 {
        return Ok(());
    }
    let space = ctx.backend.space();
    if space.nospace {
        return Err(KvError::NoSpace.into());
    }
    let (held, quota) = (space.held_bytes, ctx.config.limits.quota_backend_bytes);
    if held.saturating_add(cost) < quota {
        return Ok(());
    }
    let member = AlarmMember {
        member_id: ctx.backend.header().member_id,
        alarm: AlarmKind::NoSpace,
    };
    tracing::warn!(
        held,
        cost,
        quota,
        "keyspace at its space quota: raising NOSPACE"
    );
    let raise = Command::Alarm {
        action: AlarmAction::Activate,
        member,
    };
    // The refusal stands whether or not the alarm got through: the next
    // write past the quota raises it again.
    if let Err(error) = ctx.backend.apply(raise).await {
        tracing::warn!(%error, "could not raise the NOSPACE alarm");
    }
    Err(KvError::NoSpace.into())
}

#[cfg(test)]
mod tests {
    use agora_kv::{DeleteRangeRequest, RangeRequest};

    use super::*;

    fn put(key: &str, value_bytes: usize) -> RequestOp {
        RequestOp::Put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: vec![b'v'; value_bytes],
            ..PutRequest::default()
        })
    }

    #[test]
    fn costs_are_etcds() {
        let RequestOp::Put(one) = put("k", 99) else {
            unreachable!("put builds a put")
        };
        assert_eq!(put_cost(&one), 1 + 99 + 256);
        let nested = TxnRequest {
            success: vec![put("a", 10), put("b", 10)],
            ..TxnRequest::default()
        };
        let txn = TxnRequest {
            compare: vec![],
            success: vec![
                put("x", 1000),
                RequestOp::Range(RangeRequest::default()),
                RequestOp::DeleteRange(DeleteRangeRequest::default()),
            ],
            failure: vec![RequestOp::Txn(nested), put("y", 1)],
        };
        // Only one branch runs: the costlier one counts.
        assert_eq!(txn_cost(&txn), 1 + 1000 + 256);
        let reads_only = TxnRequest {
            success: vec![RequestOp::Range(RangeRequest::default())],
            ..TxnRequest::default()
        };
        assert_eq!(txn_cost(&reads_only), 0);
        assert_eq!(lease_cost(), 64);
    }
}
