//! Tests of the keyspace state machine: unit tests per behaviour (table
//! style) and property tests against a reference model.

mod alarm_tests;
mod command_tests;
mod lease_tests;
mod model;

mod mvcc_tests;
mod props;
mod tidy;

mod txn_tests;
mod watch_tests;

use crate::{
    Command, DeleteRangeRequest, DeleteRangeResponse, KeyValue, KvError, KvState, PutRequest,
    PutResponse, RangeRequest, RangeResponse, Response, TxnRequest, TxnResponse,
};

pub(super) fn b(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

pub(super) fn put_request(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: b(key),
        value: b(value),
        ..PutRequest::default()
    }
}

pub(super) fn range_request(key: &str, range_end: &str) -> RangeRequest {
    RangeRequest {
        key: b(key),
        range_end: b(range_end),
        ..RangeRequest::default()
    }
}

pub(super) fn delete_request(key: &str, range_end: &str) -> DeleteRangeRequest {
    DeleteRangeRequest {
        key: b(key),
        range_end: b(range_end),
        prev_kv: false,
    }
}

pub(super) fn try_put(kv: &mut KvState, request: PutRequest) -> Result<PutResponse, KvError> {
    match kv.apply(&Command::Put(request))? {
        Response::Put(response) => Ok(response),
        other => panic!("put answered {other:?}"),
    }
}

pub(super) fn put(kv: &mut KvState, key: &str, value: &str) -> PutResponse {
    try_put(kv, put_request(key, value)).unwrap()
}

pub(super) fn delete(kv: &mut KvState, request: DeleteRangeRequest) -> DeleteRangeResponse {
    match kv.apply(&Command::DeleteRange(request)).unwrap() {
        Response::DeleteRange(response) => response,
        other => panic!("delete answered {other:?}"),
    }
}

pub(super) fn try_txn(kv: &mut KvState, request: TxnRequest) -> Result<TxnResponse, KvError> {
    match kv.apply(&Command::Txn(request))? {
        Response::Txn(response) => Ok(response),
        other => panic!("txn answered {other:?}"),
    }
}

pub(super) fn get(kv: &KvState, key: &str) -> Option<KeyValue> {
    kv.range(&range_request(key, ""))
        .unwrap()
        .kvs
        .into_iter()
        .next()
}

pub(super) fn keys_of(response: &RangeResponse) -> Vec<String> {
    response
        .kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}
