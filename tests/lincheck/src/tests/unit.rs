//! Hand-made histories: each names the anomaly or the overlap it shows.

use super::*;
use crate::check::{Verdict, check};
use crate::history::Ret;

fn linearizable(ops: Vec<Operation>) -> bool {
    let h = history(ops);
    let result = check(&h);
    assert_ne!(result.verdict, Verdict::TimedOut);
    assert_eq!(
        result.is_linearizable(),
        oracle(&h),
        "checker and oracle disagree on {h:#?}"
    );
    result.is_linearizable()
}

/// Checks `ops` expecting a violation on `key`; returns its text.
fn violation(ops: Vec<Operation>, key: &str) -> String {
    let h = history(ops);
    assert!(!oracle(&h), "oracle accepts {h:#?}");
    match check(&h).verdict {
        Verdict::NotLinearizable(v) => {
            assert_eq!(v.key, key);
            v.to_string()
        }
        other => panic!("expected a violation on {key}, got {other:?}"),
    }
}

#[test]
fn empty_history_is_linearizable() {
    assert!(linearizable(vec![]));
}

#[test]
fn sequential_put_get_delete_is_linearizable() {
    assert!(linearizable(vec![
        ok(0, 1, get("a"), Ret::Get(None)),
        ok(2, 3, put("a", "1"), Ret::PutPrev(None)),
        ok(4, 5, get("a"), Ret::Get(some("1"))),
        ok(6, 7, put("a", "2"), Ret::Put),
        ok(8, 9, del("a"), Ret::Delete(1)),
        ok(10, 11, del("a"), Ret::Delete(0)),
        ok(12, 13, get("a"), Ret::Get(None)),
    ]));
}

#[test]
fn stale_read_is_rejected() {
    let text = violation(
        vec![
            ok(0, 1, put("a", "1"), Ret::Put),
            ok(2, 3, put("a", "2"), Ret::Put),
            ok(4, 5, get("a"), Ret::Get(some("1"))),
        ],
        "a",
    );
    assert!(text.contains("get(a)"), "{text}");
    assert!(
        text.contains("read Some(\"1\") but the value is Some(\"2\")"),
        "{text}"
    );
}

#[test]
fn lost_write_is_rejected() {
    violation(
        vec![
            ok(0, 1, put("a", "1"), Ret::Put),
            ok(2, 3, get("a"), Ret::Get(None)),
        ],
        "a",
    );
}

#[test]
fn read_of_a_never_written_value_is_rejected() {
    violation(
        vec![
            ok(0, 1, put("a", "1"), Ret::Put),
            ok(0, 3, get("a"), Ret::Get(some("x"))),
        ],
        "a",
    );
}

#[test]
fn reads_concurrent_with_a_write_may_see_old_then_new() {
    assert!(linearizable(vec![
        ok(0, 1, put("a", "1"), Ret::Put),
        ok(2, 9, put("a", "2"), Ret::Put),
        ok(3, 4, get("a"), Ret::Get(some("1"))),
        ok(5, 6, get("a"), Ret::Get(some("2"))),
        // Concurrent with the write but after a read of the new value.
        ok(7, 8, get("a"), Ret::Get(some("2"))),
    ]));
}

#[test]
fn new_then_old_read_during_one_write_is_rejected() {
    violation(
        vec![
            ok(0, 1, put("a", "1"), Ret::Put),
            ok(2, 9, put("a", "2"), Ret::Put),
            ok(3, 4, get("a"), Ret::Get(some("2"))),
            ok(5, 6, get("a"), Ret::Get(some("1"))),
        ],
        "a",
    );
}

#[test]
fn concurrent_writes_may_land_in_either_order() {
    assert!(linearizable(vec![
        ok(0, 5, put("a", "1"), Ret::Put),
        ok(1, 6, put("a", "2"), Ret::Put),
        ok(7, 8, get("a"), Ret::Get(some("1"))),
    ]));
    assert!(linearizable(vec![
        ok(0, 5, put("a", "1"), Ret::Put),
        ok(1, 6, put("a", "2"), Ret::Put),
        ok(7, 8, get("a"), Ret::Get(some("2"))),
    ]));
}

#[test]
fn ops_touching_in_time_count_as_concurrent() {
    // The put returns at 5 and the read starts at 5: either order is fine.
    assert!(linearizable(vec![
        ok(0, 5, put("a", "1"), Ret::Put),
        ok(5, 6, get("a"), Ret::Get(None))
    ]));
}

#[test]
fn two_successful_cas_from_the_same_value_are_rejected() {
    violation(
        vec![
            ok(0, 5, cas("a", None, "x"), Ret::CasOk),
            ok(1, 6, cas("a", None, "y"), Ret::CasOk),
        ],
        "a",
    );
}

#[test]
fn one_winner_among_concurrent_cas_is_linearizable() {
    assert!(linearizable(vec![
        ok(0, 5, cas("a", None, "x"), Ret::CasOk),
        ok(1, 6, cas("a", None, "y"), Ret::CasFailed(some("x"))),
        ok(7, 8, cas("a", Some("x"), "z"), Ret::CasOk),
        ok(9, 10, get("a"), Ret::Get(some("z"))),
    ]));
}

#[test]
fn cas_success_on_a_mismatched_value_is_rejected() {
    let text = violation(
        vec![
            ok(0, 1, put("a", "1"), Ret::Put),
            ok(2, 3, cas("a", Some("0"), "2"), Ret::CasOk),
        ],
        "a",
    );
    assert!(
        text.contains("succeeded but the value is Some(\"1\")"),
        "{text}"
    );
}

#[test]
fn cas_failure_on_a_matching_value_is_rejected() {
    violation(
        vec![
            ok(0, 1, put("a", "1"), Ret::Put),
            ok(2, 3, cas("a", Some("1"), "2"), Ret::CasFailed(some("1"))),
        ],
        "a",
    );
}

#[test]
fn cas_failure_must_read_the_current_value() {
    violation(
        vec![
            ok(0, 1, put("a", "1"), Ret::Put),
            ok(2, 3, cas("a", Some("0"), "2"), Ret::CasFailed(None)),
        ],
        "a",
    );
}

#[test]
fn cas_expecting_absence_fails_on_an_existing_key() {
    assert!(linearizable(vec![
        ok(0, 1, put("a", "1"), Ret::Put),
        ok(2, 3, cas("a", None, "2"), Ret::CasFailed(some("1"))),
    ]));
}

#[test]
fn delete_count_must_match_existence() {
    violation(vec![ok(0, 1, del("a"), Ret::Delete(1))], "a");
    violation(
        vec![
            ok(0, 1, put("a", "1"), Ret::Put),
            ok(2, 3, del("a"), Ret::Delete(0)),
        ],
        "a",
    );
}

#[test]
fn put_prev_value_must_match() {
    violation(
        vec![
            ok(0, 1, put("a", "1"), Ret::Put),
            ok(2, 3, put("a", "2"), Ret::PutPrev(some("0"))),
        ],
        "a",
    );
}

#[test]
fn unknown_write_may_take_effect_later() {
    assert!(linearizable(vec![
        unknown(0, put("a", "1")),
        ok(10, 11, get("a"), Ret::Get(None)),
        ok(20, 21, get("a"), Ret::Get(some("1"))),
    ]));
}

#[test]
fn unknown_write_may_never_take_effect() {
    assert!(linearizable(vec![
        unknown(0, put("a", "1")),
        ok(10, 11, get("a"), Ret::Get(None))
    ]));
}

#[test]
fn unknown_write_cannot_take_effect_before_its_invocation() {
    violation(
        vec![
            ok(0, 1, get("a"), Ret::Get(some("1"))),
            unknown(2, put("a", "1")),
        ],
        "a",
    );
}

#[test]
fn unknown_write_takes_effect_at_most_once() {
    violation(
        vec![
            ok(0, 1, put("a", "0"), Ret::Put),
            unknown(2, put("a", "1")),
            ok(10, 11, get("a"), Ret::Get(some("1"))),
            ok(12, 13, put("a", "2"), Ret::Put),
            ok(14, 15, get("a"), Ret::Get(some("1"))),
        ],
        "a",
    );
}

#[test]
fn unknown_cas_applies_by_the_model() {
    // It can only succeed where the value is None; a read of "x" means it did.
    assert!(linearizable(vec![
        unknown(0, cas("a", None, "x")),
        ok(5, 6, get("a"), Ret::Get(some("x")))
    ]));
    // After the key holds "1" it can no longer succeed.
    violation(
        vec![
            ok(0, 1, put("a", "1"), Ret::Put),
            unknown(2, cas("a", None, "x")),
            ok(5, 6, get("a"), Ret::Get(some("x"))),
        ],
        "a",
    );
}

#[test]
fn unknown_delete_may_or_may_not_take_effect() {
    assert!(linearizable(vec![
        ok(0, 1, put("a", "1"), Ret::Put),
        unknown(2, del("a")),
        ok(5, 6, get("a"), Ret::Get(some("1"))),
        ok(7, 8, get("a"), Ret::Get(None)),
    ]));
}

#[test]
fn unknown_reads_are_dropped() {
    let h = history(vec![
        unknown(0, get("a")),
        ok(1, 2, put("a", "1"), Ret::Put),
    ]);
    let r = check(&h);
    assert!(r.is_linearizable());
    assert_eq!(
        (r.stats.ops, r.stats.unknown, r.stats.dropped_unknown_reads),
        (2, 1, 1)
    );
}

#[test]
fn keys_are_independent_and_the_bad_key_is_named() {
    // Across keys, real-time order would not matter to a per-key check.
    let text = violation(
        vec![
            ok(0, 1, put("a", "1"), Ret::Put),
            ok(0, 1, put("b", "1"), Ret::Put),
            ok(2, 3, get("a"), Ret::Get(some("1"))),
            ok(2, 3, put("b", "2"), Ret::Put),
            ok(4, 5, get("b"), Ret::Get(some("1"))),
        ],
        "b",
    );
    assert!(!text.contains("get(a)"), "{text}");
}

#[test]
fn a_result_of_the_wrong_kind_is_rejected() {
    let text = violation(vec![ok(0, 1, get("a"), Ret::CasOk)], "a");
    assert!(text.contains("does not belong"), "{text}");
}

#[test]
fn duplicate_values_are_compared_by_value() {
    assert!(linearizable(vec![
        ok(0, 1, put("a", "1"), Ret::Put),
        ok(2, 3, put("a", "2"), Ret::Put),
        ok(4, 5, put("a", "1"), Ret::PutPrev(some("2"))),
        ok(6, 7, cas("a", Some("1"), "3"), Ret::CasOk),
    ]));
}

#[test]
fn an_observed_unknown_write_is_bounded_by_its_first_observer() {
    let h = history(vec![
        unknown(0, put("a", "1")),
        unknown(0, put("a", "2")),
        ok(5, 6, get("a"), Ret::Get(some("1"))),
        ok(7, 8, put("a", "3"), Ret::Put),
    ]);
    let r = check(&h);
    assert!(r.is_linearizable());
    // "2" was never observed: it stays open-ended.
    assert_eq!(r.stats.bounded_unknown_writes, 1);
    // Bounded, the write can no longer land after the put of "3".
    let mut late = h.clone();
    late.ops.push(ok(9, 10, get("a"), Ret::Get(some("1"))));
    assert!(!oracle(&late));
    assert!(!check(&late).is_linearizable());
}

#[test]
fn a_value_written_twice_does_not_bound_an_unknown_write() {
    let h = history(vec![
        unknown(0, put("a", "1")),
        ok(0, 1, put("a", "1"), Ret::Put),
        ok(2, 3, get("a"), Ret::Get(some("1"))),
        ok(4, 5, put("a", "2"), Ret::Put),
        // The unknown put of "1" may land after the put of "2".
        ok(6, 7, get("a"), Ret::Get(some("1"))),
    ]);
    assert!(oracle(&h));
    let r = check(&h);
    assert!(r.is_linearizable());
    assert_eq!(r.stats.bounded_unknown_writes, 0);
}

#[test]
fn the_explanation_shows_the_deepest_linearization_and_the_stuck_ops() {
    let h = history(vec![
        ok(0, 1, put("a", "1"), Ret::Put),
        ok(2, 3, put("a", "2"), Ret::Put),
        ok(4, 9, put("a", "3"), Ret::Put),
        ok(5, 6, get("a"), Ret::Get(some("1"))),
    ]);
    let Verdict::NotLinearizable(v) = check(&h).verdict else {
        panic!("accepted")
    };
    // The search got furthest by placing the concurrent put of "3" too.
    assert_eq!(v.linearized, 3);
    assert_eq!(v.linearized_tail, h.ops[..3].to_vec());
    assert_eq!(v.state, some("3"));
    assert_eq!(v.stuck.len(), 1);
    assert_eq!(v.stuck[0].0, h.ops[3]);
    assert!(
        v.stuck[0]
            .1
            .contains("read Some(\"1\") but the value is Some(\"3\")"),
        "{v}"
    );
}

#[test]
fn a_return_before_the_invocation_is_read_as_instantaneous() {
    assert!(linearizable_unchecked(vec![
        ok(5, 1, put("a", "1"), Ret::Put),
        ok(6, 7, get("a"), Ret::Get(some("1")))
    ]));
}

fn linearizable_unchecked(ops: Vec<Operation>) -> bool {
    check(&history(ops)).is_linearizable()
}
