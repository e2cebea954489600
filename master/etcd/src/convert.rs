//! Wire types <-> agora-kv types. Requests are decoded here once, at the
//! edge, and validated as etcd's API layer does before anything reaches
//! the backend; responses are encoded here with their headers.

use agora_kv as kv;
use agora_kv::{KvError, Revision};
use prost::Message;

use crate::backend::Header;
use crate::pb::etcdserverpb as pb;
use crate::pb::mvccpb;
use crate::{ApiError, Limits};

/// Refuses a request whose encoding exceeds the limit, as etcd does before
/// proposing it.
pub(crate) fn check_size(message: &impl Message, limits: &Limits) -> Result<(), ApiError> {
    if message.encoded_len() > limits.max_request_bytes {
        return Err(KvError::RequestTooLarge.into());
    }
    Ok(())
}

pub(crate) fn header(header: Header) -> pb::ResponseHeader {
    pb::ResponseHeader {
        cluster_id: header.cluster_id,
        member_id: header.member_id,
        revision: header.revision,
        raft_term: header.raft_term,
    }
}

/// A range request and whether it may be served without the log.
pub(crate) fn range_request(wire: pb::RangeRequest) -> Result<(kv::RangeRequest, bool), ApiError> {
    use pb::range_request::{SortOrder, SortTarget};
    let invalid_sort = || ApiError::InvalidArgument("etcdserver: invalid sort option".into());
    let sort_order = match SortOrder::try_from(wire.sort_order).map_err(|_| invalid_sort())? {
        SortOrder::None => kv::SortOrder::None,
        SortOrder::Ascend => kv::SortOrder::Ascend,
        SortOrder::Descend => kv::SortOrder::Descend,
    };
    let sort_target = match SortTarget::try_from(wire.sort_target).map_err(|_| invalid_sort())? {
        SortTarget::Key => kv::SortTarget::Key,
        SortTarget::Version => kv::SortTarget::Version,
        SortTarget::Create => kv::SortTarget::Create,
        SortTarget::Mod => kv::SortTarget::Mod,
        SortTarget::Value => kv::SortTarget::Value,
    };
    let request = kv::RangeRequest {
        key: wire.key,
        range_end: wire.range_end,
        limit: wire.limit,
        revision: wire.revision,
        sort_order,
        sort_target,
        keys_only: wire.keys_only,
        count_only: wire.count_only,
        min_mod_revision: wire.min_mod_revision,
        max_mod_revision: wire.max_mod_revision,
        min_create_revision: wire.min_create_revision,
        max_create_revision: wire.max_create_revision,
    };
    Ok((request, wire.serializable))
}

pub(crate) fn put_request(wire: pb::PutRequest) -> kv::PutRequest {
    kv::PutRequest {
        key: wire.key,
        value: wire.value,
        lease: wire.lease,
        prev_kv: wire.prev_kv,
        ignore_value: wire.ignore_value,
        ignore_lease: wire.ignore_lease,
    }
}

pub(crate) fn delete_request(wire: pb::DeleteRangeRequest) -> kv::DeleteRangeRequest {
    kv::DeleteRangeRequest {
        key: wire.key,
        range_end: wire.range_end,
        prev_kv: wire.prev_kv,
    }
}

/// A txn, checked as etcd's API layer checks one (`checkTxnRequest` in
/// etcd 3.4's `v3rpc/key.go`) before anything is proposed, in etcd's
/// order: no list longer than `max_txn_ops`; every compare names a key;
/// the ops of both branches, not only the one that will run, are valid on
/// their own. The keyspace itself checks only the path taken, against its
/// state (leases, `ignore_*` keys), and the duplicate-key rule.
pub(crate) fn txn_request(
    wire: pb::TxnRequest,
    limits: &Limits,
) -> Result<kv::TxnRequest, ApiError> {
    txn_within(wire, limits.max_txn_ops)
}

/// [`txn_request`] at a nesting level with `budget` operations per list
/// left: etcd gives a nested txn what its parent's longest list left.
fn txn_within(wire: pb::TxnRequest, budget: usize) -> Result<kv::TxnRequest, ApiError> {
    let longest = (wire.compare.len())
        .max(wire.success.len())
        .max(wire.failure.len());
    let Some(nested_budget) = budget.checked_sub(longest) else {
        return Err(KvError::TooManyOps.into());
    };
    if wire.compare.iter().any(|compare| compare.key.is_empty()) {
        return Err(KvError::EmptyKey.into());
    }
    let compare = (wire.compare.into_iter())
        .map(compare)
        .collect::<Result<_, _>>()?;
    let ops = |list: Vec<pb::RequestOp>| -> Result<Vec<kv::RequestOp>, ApiError> {
        (list.into_iter())
            .map(|op| request_op(op, nested_budget))
            .collect()
    };
    Ok(kv::TxnRequest {
        compare,
        success: ops(wire.success)?,
        failure: ops(wire.failure)?,
    })
}

/// One op of a txn, checked as etcd checks it whether or not its branch runs.
fn request_op(wire: pb::RequestOp, budget: usize) -> Result<kv::RequestOp, ApiError> {
    use pb::request_op::Request;
    let key_given = |key: &[u8]| {
        if key.is_empty() {
            Err(ApiError::Kv(KvError::EmptyKey))
        } else {
            Ok(())
        }
    };
    match wire.request {
        Some(Request::RequestRange(range)) => {
            key_given(&range.key)?;
            Ok(kv::RequestOp::Range(range_request(range)?.0))
        }
        Some(Request::RequestPut(put)) => {
            key_given(&put.key)?;
            if put.ignore_value && !put.value.is_empty() {
                return Err(KvError::ValueProvided.into());
            }
            if put.ignore_lease && put.lease != agora_kv::NO_LEASE {
                return Err(KvError::LeaseProvided.into());
            }
            Ok(kv::RequestOp::Put(put_request(put)))
        }
        Some(Request::RequestDeleteRange(delete)) => {
            key_given(&delete.key)?;
            Ok(kv::RequestOp::DeleteRange(delete_request(delete)))
        }
        Some(Request::RequestTxn(txn)) => Ok(kv::RequestOp::Txn(txn_within(txn, budget)?)),
        // etcd answers an empty operation this way too.
        None => Err(KvError::KeyNotFound.into()),
    }
}

/// etcd reads the compared value from `target_union` by `target`; a union
/// holding another field reads as that type's zero value, as in Go.
fn compare(wire: pb::Compare) -> Result<kv::Compare, ApiError> {
    use pb::compare::{CompareResult, CompareTarget, TargetUnion};
    let invalid =
        |what: &str| ApiError::InvalidArgument(format!("etcdserver: invalid compare {what}"));
    let result = match CompareResult::try_from(wire.result).map_err(|_| invalid("result"))? {
        CompareResult::Equal => kv::CompareResult::Equal,
        CompareResult::Greater => kv::CompareResult::Greater,
        CompareResult::Less => kv::CompareResult::Less,
        CompareResult::NotEqual => kv::CompareResult::NotEqual,
    };
    let union = wire.target_union;
    let int = |pick: fn(&TargetUnion) -> Option<i64>| union.as_ref().and_then(pick).unwrap_or(0);
    let target = match CompareTarget::try_from(wire.target).map_err(|_| invalid("target"))? {
        CompareTarget::Version => kv::CompareTarget::Version(int(|u| match u {
            TargetUnion::Version(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Create => kv::CompareTarget::Create(int(|u| match u {
            TargetUnion::CreateRevision(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Mod => kv::CompareTarget::Mod(int(|u| match u {
            TargetUnion::ModRevision(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Lease => kv::CompareTarget::Lease(int(|u| match u {
            TargetUnion::Lease(v) => Some(*v),
            _ => None,
        })),
        CompareTarget::Value => kv::CompareTarget::Value(match union {
            Some(TargetUnion::Value(value)) => value,
            _ => Vec::new(),
        }),
    };
    Ok(kv::Compare {
        result,
        target,
        key: wire.key,
        range_end: wire.range_end,
    })
}

pub(crate) fn watch_request(wire: pb::WatchCreateRequest) -> kv::WatchRequest {
    use pb::watch_create_request::FilterType;
    let has = |filter: FilterType| wire.filters.contains(&(filter as i32));
    kv::WatchRequest {
        no_put: has(FilterType::Noput),
        no_delete: has(FilterType::Nodelete),
        key: wire.key,
        range_end: wire.range_end,
        start_revision: wire.start_revision,
        prev_kv: wire.prev_kv,
        progress_notify: wire.progress_notify,
    }
}

pub(crate) fn key_value(kv: kv::KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

pub(crate) fn event(event: kv::Event) -> mvccpb::Event {
    let kind = match event.kind {
        kv::EventType::Put => mvccpb::event::EventType::Put,
        kv::EventType::Delete => mvccpb::event::EventType::Delete,
    };
    mvccpb::Event {
        r#type: kind as i32,
        kv: Some(key_value(event.kv)),
        prev_kv: event.prev_kv.map(key_value),
    }
}

/// Builds headers: the backend's identity with a given revision.
pub(crate) struct Headers {
    pub(crate) base: Header,
}

impl Headers {
    pub(crate) fn at(&self, revision: Revision) -> Option<pb::ResponseHeader> {
        Some(header(Header {
            revision,
            ..self.base
        }))
    }
}

pub(crate) fn range_response(response: kv::RangeResponse, headers: &Headers) -> pb::RangeResponse {
    pb::RangeResponse {
        header: headers.at(response.revision),
        kvs: response.kvs.into_iter().map(key_value).collect(),
        more: response.more,
        count: response.count,
    }
}

pub(crate) fn put_response(response: kv::PutResponse, headers: &Headers) -> pb::PutResponse {
    pb::PutResponse {
        header: headers.at(response.revision),
        prev_kv: response.prev_kv.map(key_value),
    }
}

pub(crate) fn delete_response(
    response: kv::DeleteRangeResponse,
    headers: &Headers,
) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header: headers.at(response.revision),
        deleted: response.deleted,
        prev_kvs: response.prev_kvs.into_iter().map(key_value).collect(),
    }
}

pub(crate) fn txn_response(response: kv::TxnResponse, headers: &Headers) -> pb::TxnResponse {
    use pb::response_op::Response;
    let op = |op: kv::ResponseOp| pb::ResponseOp {
        response: Some(match op {
            kv::ResponseOp::Range(r) => Response::ResponseRange(range_response(r, headers)),
            kv::ResponseOp::Put(r) => Response::ResponsePut(put_response(r, headers)),
            kv::ResponseOp::DeleteRange(r) => {
                Response::ResponseDeleteRange(delete_response(r, headers))
            }
            kv::ResponseOp::Txn(r) => Response::ResponseTxn(txn_response(r, headers)),
        }),
    };
    pb::TxnResponse {
        header: headers.at(response.revision),
        succeeded: response.succeeded,
        responses: response.responses.into_iter().map(op).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_ops_over_the_limit_are_refused_at_any_depth() {
        let limits = Limits {
            max_txn_ops: 2,
            ..Limits::default()
        };
        let put = || pb::RequestOp {
            request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                key: b"k".to_vec(),
                ..Default::default()
            })),
        };
        let nested = pb::TxnRequest {
            success: vec![put(), put(), put()],
            ..Default::default()
        };
        let outer = pb::TxnRequest {
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestTxn(nested)),
            }],
            ..Default::default()
        };
        assert_eq!(
            txn_request(outer, &limits),
            Err(ApiError::Kv(KvError::TooManyOps))
        );
    }

    #[test]
    fn a_nested_txn_gets_what_its_parents_longest_list_left() {
        let limits = Limits {
            max_txn_ops: 4,
            ..Limits::default()
        };
        let put = |key: &str| pb::RequestOp {
            request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })),
        };
        let version_is_0 = |key: &str| pb::Compare {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        };
        // Three compares are the longest list: 4 - 3 = 1 op left below.
        let outer = |nested: Vec<pb::RequestOp>| pb::TxnRequest {
            compare: vec![version_is_0("a"), version_is_0("b"), version_is_0("c")],
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestTxn(pb::TxnRequest {
                    failure: nested,
                    ..Default::default()
                })),
            }],
            ..Default::default()
        };
        assert!(txn_request(outer(vec![put("x")]), &limits).is_ok());
        assert_eq!(
            txn_request(outer(vec![put("x"), put("y")]), &limits),
            Err(ApiError::Kv(KvError::TooManyOps))
        );
    }

    #[test]
    fn compares_and_ops_of_either_branch_must_name_a_key() {
        let limits = Limits::default();
        let put = |key: &str| pb::RequestOp {
            request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })),
        };
        let compare = pb::TxnRequest {
            compare: vec![pb::Compare::default()],
            ..Default::default()
        };
        assert_eq!(
            txn_request(compare, &limits),
            Err(ApiError::Kv(KvError::EmptyKey))
        );
        let failure = pb::TxnRequest {
            success: vec![put("a")],
            failure: vec![put("")],
            ..Default::default()
        };
        assert_eq!(
            txn_request(failure, &limits),
            Err(ApiError::Kv(KvError::EmptyKey))
        );
    }

    #[test]
    fn compare_reads_the_union_by_target() {
        let wire = pb::Compare {
            result: pb::compare::CompareResult::Equal as i32,
            target: pb::compare::CompareTarget::Create as i32,
            key: b"k".to_vec(),
            target_union: Some(pb::compare::TargetUnion::Version(7)),
            range_end: Vec::new(),
        };
        let compare = compare(wire).unwrap();
        assert_eq!(compare.target, kv::CompareTarget::Create(0));
    }

    #[test]
    fn unknown_sort_order_is_refused() {
        let wire = pb::RangeRequest {
            key: b"k".to_vec(),
            sort_order: 9,
            ..Default::default()
        };
        assert!(matches!(
            range_request(wire),
            Err(ApiError::InvalidArgument(_))
        ));
    }
}
