//! Compares, branches, atomicity and the txn request rules.

use super::*;
use crate::{Compare, CompareResult, CompareTarget, MAX_TXN_OPS, RequestOp, ResponseOp};

fn compare(key: &str, result: CompareResult, target: CompareTarget) -> Compare {
    Compare {
        result,
        target,
        key: b(key),
        range_end: Vec::new(),
    }
}

fn guarded(compares: Vec<Compare>) -> TxnRequest {
    TxnRequest {
        compare: compares,
        success: vec![RequestOp::Put(put_request("ok", "yes"))],
        failure: vec![RequestOp::Put(put_request("ok", "no"))],
    }
}

fn holds(kv: &mut KvState, compares: Vec<Compare>) -> bool {
    try_txn(kv, guarded(compares)).unwrap().succeeded
}

#[test]
fn compare_targets_and_results() {
    use CompareResult::*;
    use CompareTarget::*;
    let mut kv = KvState::new();
    put(&mut kv, "k", "m"); // create 2
    put(&mut kv, "k", "m"); // mod 3, version 2
    let cases = [
        ("k", Equal, Version(2), true),
        ("k", Greater, Version(1), true),
        ("k", Less, Version(2), false),
        ("k", NotEqual, Version(2), false),
        ("k", Equal, Create(2), true),
        ("k", Equal, Mod(3), true),
        ("k", Less, Mod(4), true),
        ("k", Equal, Value(b("m")), true),
        ("k", Greater, Value(b("a")), true),
        ("k", Less, Value(b("z")), true),
        ("k", NotEqual, Value(b("m")), false),
        ("k", Equal, Lease(0), true),
        // A missing key compares as zero, except on its value.
        ("missing", Equal, Version(0), true),
        ("missing", Equal, Create(0), true),
        ("missing", Equal, Mod(0), true),
        ("missing", Equal, Lease(0), true),
        ("missing", Equal, Value(Vec::new()), false),
        ("missing", NotEqual, Value(b("x")), false),
    ];
    for (key, result, target, expected) in cases {
        let c = compare(key, result, target.clone());
        assert_eq!(
            holds(&mut kv, vec![c]),
            expected,
            "{key} {result:?} {target:?}"
        );
    }
}

#[test]
fn all_compares_must_hold() {
    let mut kv = KvState::new();
    put(&mut kv, "k", "v");
    let yes = compare("k", CompareResult::Equal, CompareTarget::Version(1));
    let no = compare("k", CompareResult::Equal, CompareTarget::Version(9));
    assert!(holds(&mut kv, vec![yes.clone(), yes.clone()]));
    assert!(!holds(&mut kv, vec![yes, no]));
    assert!(holds(&mut kv, vec![]), "no compares means success");
}

#[test]
fn compare_over_a_range_needs_every_key() {
    let mut kv = KvState::new();
    put(&mut kv, "a1", "x");
    put(&mut kv, "a2", "x");
    let over = |result, target| Compare {
        result,
        target,
        key: b("a"),
        range_end: b("b"),
    };
    assert!(holds(
        &mut kv,
        vec![over(CompareResult::Equal, CompareTarget::Value(b("x")))]
    ));
    put(&mut kv, "a3", "y");
    assert!(!holds(
        &mut kv,
        vec![over(CompareResult::Equal, CompareTarget::Value(b("x")))]
    ));
    assert!(holds(
        &mut kv,
        vec![over(CompareResult::Greater, CompareTarget::Create(1))]
    ));
}

#[test]
fn txn_is_one_revision_and_reads_its_own_writes() {
    let mut kv = KvState::new();
    put(&mut kv, "gone", "x"); // 2
    let request = TxnRequest {
        compare: vec![],
        success: vec![
            RequestOp::Put(put_request("a", "1")),
            RequestOp::Put(put_request("b", "1")),
            RequestOp::DeleteRange(delete_request("gone", "")),
            RequestOp::Range(range_request("a", "c")),
        ],
        failure: vec![],
    };
    let response = try_txn(&mut kv, request).unwrap();
    assert_eq!(response.revision, 3);
    assert_eq!(kv.current_revision(), 3);
    let ResponseOp::Range(read) = &response.responses[3] else {
        panic!("{response:?}")
    };
    assert_eq!(keys_of(read), ["a", "b"]);
    assert_eq!(read.revision, 3);
    let events = kv.events_since(3).unwrap();
    assert_eq!(events.len(), 3, "three changes share revision 3");
    assert!(events.iter().all(|e| e.kv.mod_revision == 3));
}

#[test]
fn read_only_txn_keeps_the_revision() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1");
    let request = TxnRequest {
        success: vec![RequestOp::Range(range_request("a", ""))],
        ..TxnRequest::default()
    };
    let response = try_txn(&mut kv, request).unwrap();
    assert_eq!((response.revision, kv.current_revision()), (2, 2));
}

#[test]
fn nested_compares_see_the_state_before_the_txn() {
    let mut kv = KvState::new();
    let missing = compare("k", CompareResult::Equal, CompareTarget::Version(0));
    let nested = TxnRequest {
        compare: vec![missing],
        success: vec![RequestOp::Put(put_request("saw", "absent"))],
        failure: vec![RequestOp::Put(put_request("saw", "present"))],
    };
    let outer = TxnRequest {
        success: vec![
            RequestOp::Put(put_request("k", "v")),
            RequestOp::Txn(nested),
        ],
        ..TxnRequest::default()
    };
    try_txn(&mut kv, outer).unwrap();
    assert_eq!(get(&kv, "saw").unwrap().value, b("absent"));
}

#[test]
fn duplicate_key_rule() {
    let put_op = |key: &str| RequestOp::Put(put_request(key, "v"));
    let delete_op = |key: &str, end: &str| RequestOp::DeleteRange(delete_request(key, end));
    let nested = |success: Vec<RequestOp>, failure: Vec<RequestOp>| {
        RequestOp::Txn(TxnRequest {
            compare: vec![],
            success,
            failure,
        })
    };
    let cases: Vec<(&str, Vec<RequestOp>, bool)> = vec![
        ("same key put twice", vec![put_op("a"), put_op("a")], false),
        ("different keys", vec![put_op("a"), put_op("b")], true),
        (
            "put inside deleted range",
            vec![delete_op("a", "c"), put_op("b")],
            false,
        ),
        (
            "put outside deleted range",
            vec![delete_op("a", "c"), put_op("c")],
            true,
        ),
        (
            "overlapping deletes",
            vec![delete_op("a", "c"), delete_op("b", "d")],
            true,
        ),
        (
            "then and else may share a key",
            vec![nested(vec![put_op("a")], vec![put_op("a")])],
            true,
        ),
        (
            "nested put clashes with outer put",
            vec![nested(vec![put_op("a")], vec![]), put_op("a")],
            false,
        ),
        (
            "nested delete covers outer put",
            vec![nested(vec![delete_op("a", "")], vec![]), put_op("a")],
            false,
        ),
        (
            "outer delete covers nested put",
            vec![delete_op("a", ""), nested(vec![], vec![put_op("a")])],
            false,
        ),
        (
            "sibling nested txns put one key",
            vec![
                nested(vec![put_op("a")], vec![]),
                nested(vec![put_op("a")], vec![]),
            ],
            false,
        ),
    ];
    for (name, ops, allowed) in cases {
        let mut kv = KvState::new();
        let result = try_txn(
            &mut kv,
            TxnRequest {
                success: ops,
                ..TxnRequest::default()
            },
        );
        match allowed {
            true => assert!(result.is_ok(), "{name}: {result:?}"),
            false => assert_eq!(result, Err(KvError::DuplicateKey), "{name}"),
        }
    }
}

#[test]
fn too_many_ops() {
    let many = |n: usize| {
        (0..n)
            .map(|i| RequestOp::Put(put_request(&format!("k{i}"), "v")))
            .collect::<Vec<_>>()
    };
    let mut kv = KvState::new();
    let at_limit = TxnRequest {
        success: many(MAX_TXN_OPS),
        ..TxnRequest::default()
    };
    assert!(try_txn(&mut kv, at_limit).is_ok());
    let over = TxnRequest {
        failure: many(MAX_TXN_OPS + 1),
        ..TxnRequest::default()
    };
    assert_eq!(try_txn(&mut kv, over), Err(KvError::TooManyOps));
    let compares =
        vec![compare("a", CompareResult::Equal, CompareTarget::Version(0)); MAX_TXN_OPS + 1];
    assert_eq!(
        try_txn(&mut kv, guarded(compares)),
        Err(KvError::TooManyOps)
    );
    let inner = TxnRequest {
        success: many(MAX_TXN_OPS + 1),
        ..TxnRequest::default()
    };
    let nested = TxnRequest {
        failure: vec![RequestOp::Txn(inner)],
        ..TxnRequest::default()
    };
    assert_eq!(try_txn(&mut kv, nested), Err(KvError::TooManyOps));
}

#[test]
fn a_failing_op_fails_the_whole_txn() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1");
    let before = (kv.hash(), kv.current_revision());
    let bad_ops = [
        RequestOp::Put(PutRequest {
            lease: 99,
            ..put_request("c", "v")
        }),
        RequestOp::Put(PutRequest {
            ignore_value: true,
            ..put_request("missing", "")
        }),
        RequestOp::Range(RangeRequest {
            revision: 50,
            ..range_request("a", "")
        }),
        RequestOp::DeleteRange(delete_request("", "")),
    ];
    let errors = [
        KvError::LeaseNotFound,
        KvError::KeyNotFound,
        KvError::FutureRevision,
        KvError::EmptyKey,
    ];
    for (bad, error) in bad_ops.into_iter().zip(errors) {
        let request = TxnRequest {
            success: vec![RequestOp::Put(put_request("b", "2")), bad],
            ..TxnRequest::default()
        };
        assert_eq!(try_txn(&mut kv, request), Err(error.clone()), "{error}");
        assert_eq!(
            (kv.hash(), kv.current_revision()),
            before,
            "{error}: nothing written"
        );
    }
}

#[test]
fn ops_on_the_branch_not_taken_are_not_checked() {
    let mut kv = KvState::new();
    let request = TxnRequest {
        compare: vec![compare(
            "a",
            CompareResult::Equal,
            CompareTarget::Version(0),
        )],
        success: vec![RequestOp::Put(put_request("a", "1"))],
        failure: vec![RequestOp::Put(PutRequest {
            lease: 99,
            ..put_request("a", "1")
        })],
    };
    assert!(try_txn(&mut kv, request).unwrap().succeeded);
}
