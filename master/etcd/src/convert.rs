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

/// A txn, with etcd's per-list operation limit checked at every level.
pub(crate) fn txn_request(
    wire: pb::TxnRequest,
    limits: &Limits,
) -> Result<kv::TxnRequest, ApiError> {
    let too_long = |len: usize| len > limits.max_txn_ops;
    if too_long(wire.compare.len()) || too_long(wire.success.len()) || too_long(wire.failure.len())
    {
        return Err(KvError::TooManyOps.into());
    }
    let ops = |list: Vec<pb::RequestOp>| -> Result<Vec<kv::RequestOp>, ApiError> {
        list.into_iter().map(|op| request_op(op, limits)).collect()
    };
    Ok(kv::TxnRequest {
        compare: wire
            .compare
            .into_iter()
            .map(compare)
            .collect::<Result<_, _>>()?,
        success: ops(wire.success)?,
        failure: ops(wire.failure)?,
    })
}

fn request_op(wire: pb::RequestOp, limits: &Limits) -> Result<kv::RequestOp, ApiError> {
    use pb::request_op::Request;
    match wire.request {
        Some(Request::RequestRange(range)) => Ok(kv::RequestOp::Range(range_request(range)?.0)),
        Some(Request::RequestPut(put)) => Ok(kv::RequestOp::Put(put_request(put))),
        Some(Request::RequestDeleteRange(delete)) => {
            Ok(kv::RequestOp::DeleteRange(delete_request(delete)))
        }
        Some(Request::RequestTxn(txn)) => Ok(kv::RequestOp::Txn(txn_request(txn, limits)?)),
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
