//! Unit tests of the store's pure parts: Txn planning and range ends. The
//! behaviour against a real etcd is tested in `tests/store_election.rs`.

use super::*;

fn put(key: &str, bytes: usize) -> Op {
    Op {
        key: key.to_owned(),
        value: Some(vec![7; bytes]),
    }
}

#[test]
fn plan_txns_keeps_a_small_batch_in_one_txn() {
    let txns = plan_txns(
        (0..MAX_TXN_OPS)
            .map(|i| put(&format!("k{i}"), 10))
            .collect(),
    );
    assert_eq!(txns.len(), 1);
    assert_eq!(txns[0].len(), MAX_TXN_OPS);
}

#[test]
fn plan_txns_splits_by_operation_count_in_order() {
    let txns = plan_txns((0..300).map(|i| put(&format!("k{i:03}"), 10)).collect());
    let sizes: Vec<usize> = txns.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![128, 128, 44]);
    let keys: Vec<&str> = txns.iter().flatten().map(|op| op.key.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "order of submission is kept");
}

#[test]
fn plan_txns_splits_by_bytes() {
    let txns = plan_txns(
        (0..3)
            .map(|i| put(&format!("k{i}"), MAX_VALUE_BYTES))
            .collect(),
    );
    assert_eq!(txns.len(), 3, "two 1 MiB values never share a Txn");
}

#[test]
fn plan_txns_keeps_only_the_last_write_of_a_key() {
    let ops = vec![
        put("a", 1),
        put("b", 1),
        Op {
            key: "a".to_owned(),
            value: None,
        },
    ];
    let txns = plan_txns(ops);
    assert_eq!(txns.len(), 1);
    let got: Vec<(&str, bool)> = txns[0]
        .iter()
        .map(|op| (op.key.as_str(), op.value.is_some()))
        .collect();
    assert_eq!(got, vec![("b", true), ("a", false)]);
}

#[test]
fn prefix_end_is_the_next_key_after_the_prefix() {
    assert_eq!(prefix_end(b"/m/"), b"/m0".to_vec());
    assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
    assert_eq!(prefix_end(b"\xff"), vec![0]);
}
