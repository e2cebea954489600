//! Revisions, versions, ranges and compaction.

use super::*;
use crate::{SortOrder, SortTarget, prefix_range_end};

#[test]
fn revisions_start_at_one_and_each_write_takes_one() {
    let mut kv = KvState::new();
    assert_eq!(kv.current_revision(), 1);
    assert_eq!(put(&mut kv, "a", "1").revision, 2);
    assert_eq!(put(&mut kv, "a", "2").revision, 3);
    assert_eq!(put(&mut kv, "b", "1").revision, 4);
    let a = get(&kv, "a").unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version), (2, 3, 2));
    assert_eq!(a.value, b("2"));
}

#[test]
fn delete_resets_version_and_create_revision() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1");
    put(&mut kv, "a", "2");
    let deleted = delete(
        &mut kv,
        DeleteRangeRequest {
            prev_kv: true,
            ..delete_request("a", "")
        },
    );
    assert_eq!((deleted.deleted, deleted.revision), (1, 4));
    assert_eq!(deleted.prev_kvs[0].value, b("2"));
    assert!(get(&kv, "a").is_none());
    put(&mut kv, "a", "3");
    let a = get(&kv, "a").unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version), (5, 5, 1));
}

#[test]
fn deleting_nothing_keeps_the_revision() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1");
    let response = delete(&mut kv, delete_request("zzz", ""));
    assert_eq!((response.deleted, response.revision), (0, 2));
    assert_eq!(kv.current_revision(), 2);
}

#[test]
fn range_end_conventions() {
    let mut kv = KvState::new();
    for key in ["a", "ab", "abc", "b", "c"] {
        put(&mut kv, key, "v");
    }
    let all = String::from_utf8(vec![0]).unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        ("ab", "", &["ab"]),
        ("zz", "", &[]),
        ("a", "b", &["a", "ab", "abc"]),
        ("ab", "ac", &["ab", "abc"]),
        ("b", &all, &["b", "c"]),
        (&all, &all, &["a", "ab", "abc", "b", "c"]),
        ("c", "a", &[]),
        ("b", "b", &[]),
    ];
    for (key, end, expected) in cases {
        let response = kv.range(&range_request(key, end)).unwrap();
        assert_eq!(keys_of(&response), *expected, "range {key:?}..{end:?}");
        assert_eq!(response.count, expected.len() as i64);
    }
}

#[test]
fn prefix_range_end_follows_etcd_clients() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"a", b"b"),
        (b"ab", b"ac"),
        (b"a\xff", b"b"),
        (b"\xff\xff", b"\0"),
        (b"", b"\0"),
    ];
    for (prefix, end) in cases {
        assert_eq!(prefix_range_end(prefix), end.to_vec(), "prefix {prefix:?}");
    }
}

#[test]
fn limit_more_count_and_projections() {
    let mut kv = KvState::new();
    for key in ["a", "b", "c", "d"] {
        put(&mut kv, key, "value");
    }
    let base = range_request("a", "z");
    let cases = [
        (
            RangeRequest {
                limit: 2,
                ..base.clone()
            },
            vec!["a", "b"],
            true,
            4,
        ),
        (
            RangeRequest {
                limit: 4,
                ..base.clone()
            },
            vec!["a", "b", "c", "d"],
            false,
            4,
        ),
        (
            RangeRequest {
                limit: 0,
                ..base.clone()
            },
            vec!["a", "b", "c", "d"],
            false,
            4,
        ),
        (
            RangeRequest {
                count_only: true,
                limit: 1,
                ..base.clone()
            },
            vec![],
            false,
            4,
        ),
    ];
    for (request, keys, more, count) in cases {
        let response = kv.range(&request).unwrap();
        assert_eq!(keys_of(&response), keys, "{request:?}");
        assert_eq!(
            (response.more, response.count),
            (more, count),
            "{request:?}"
        );
    }
    let keys_only = kv
        .range(&RangeRequest {
            keys_only: true,
            ..base
        })
        .unwrap();
    assert!(keys_only.kvs.iter().all(|kv| kv.value.is_empty()));
}

#[test]
fn sort_orders_and_targets() {
    let mut kv = KvState::new();
    put(&mut kv, "c", "1"); // rev 2
    put(&mut kv, "a", "3"); // rev 3
    put(&mut kv, "b", "2"); // rev 4
    put(&mut kv, "c", "0"); // rev 5, version 2
    let sorted = |order, target| {
        let request = RangeRequest {
            sort_order: order,
            sort_target: target,
            ..range_request("a", "z")
        };
        keys_of(&kv.range(&request).unwrap())
    };
    use SortOrder::*;
    use SortTarget::*;
    let cases = [
        (None, Key, ["a", "b", "c"]),
        (Ascend, Key, ["a", "b", "c"]),
        (Descend, Key, ["c", "b", "a"]),
        (None, Value, ["c", "b", "a"]),
        (Descend, Value, ["a", "b", "c"]),
        (Ascend, Create, ["c", "a", "b"]),
        (Descend, Mod, ["c", "b", "a"]),
        // Ties (version 1 for a and b) stay in key order, both directions.
        (Descend, Version, ["c", "a", "b"]),
        (Ascend, Version, ["a", "b", "c"]),
    ];
    for (order, target, expected) in cases {
        assert_eq!(sorted(order, target), expected, "{order:?} {target:?}");
    }
}

#[test]
fn sort_then_limit_reports_more() {
    let mut kv = KvState::new();
    for (key, value) in [("a", "3"), ("b", "1"), ("c", "2")] {
        put(&mut kv, key, value);
    }
    let request = RangeRequest {
        sort_order: SortOrder::Ascend,
        sort_target: SortTarget::Value,
        limit: 2,
        ..range_request("a", "z")
    };
    let response = kv.range(&request).unwrap();
    assert_eq!(keys_of(&response), ["b", "c"]);
    assert!(response.more);
}

#[test]
fn revision_filters_do_not_change_count() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1"); // 2
    put(&mut kv, "b", "1"); // 3
    put(&mut kv, "c", "1"); // 4
    put(&mut kv, "a", "2"); // 5
    let base = range_request("a", "z");
    let cases = [
        (
            RangeRequest {
                min_mod_revision: 4,
                ..base.clone()
            },
            vec!["a", "c"],
        ),
        (
            RangeRequest {
                max_mod_revision: 3,
                ..base.clone()
            },
            vec!["b"],
        ),
        (
            RangeRequest {
                min_create_revision: 3,
                ..base.clone()
            },
            vec!["b", "c"],
        ),
        (
            RangeRequest {
                max_create_revision: 2,
                ..base.clone()
            },
            vec!["a"],
        ),
    ];
    for (request, expected) in cases {
        let response = kv.range(&request).unwrap();
        assert_eq!(keys_of(&response), expected, "{request:?}");
        assert_eq!(response.count, 3);
    }
}

#[test]
fn reads_at_past_future_and_compacted_revisions() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1"); // 2
    put(&mut kv, "a", "2"); // 3
    put(&mut kv, "b", "1"); // 4
    let at = |kv: &KvState, revision| {
        kv.range(&RangeRequest {
            revision,
            ..range_request("a", "z")
        })
    };
    assert_eq!(at(&kv, 2).unwrap().kvs[0].value, b("1"));
    assert_eq!(keys_of(&at(&kv, 3).unwrap()), ["a"]);
    assert_eq!(
        at(&kv, 3).unwrap().revision,
        4,
        "header carries the current revision"
    );
    assert_eq!(at(&kv, 5), Err(KvError::FutureRevision));
    kv.apply(&Command::Compact(crate::CompactRequest { revision: 3 }))
        .unwrap();
    assert_eq!(
        at(&kv, 2),
        Err(KvError::Compacted {
            compact_revision: 3
        })
    );
    assert_eq!(at(&kv, 3).unwrap().kvs[0].value, b("2"));
}

#[test]
fn compaction_keeps_latest_live_version_and_drops_deleted_keys() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1"); // 2
    put(&mut kv, "b", "1"); // 3
    delete(&mut kv, delete_request("b", "")); // 4
    put(&mut kv, "a", "2"); // 5
    put(&mut kv, "c", "1"); // 6
    kv.apply(&Command::Compact(crate::CompactRequest { revision: 5 }))
        .unwrap();
    let now = kv.range(&range_request("a", "z")).unwrap();
    assert_eq!(keys_of(&now), ["a", "c"]);
    let at5 = kv
        .range(&RangeRequest {
            revision: 5,
            ..range_request("a", "z")
        })
        .unwrap();
    assert_eq!(keys_of(&at5), ["a"]);
    assert_eq!(kv.store().histories().count(), 2, "b's history is gone");
    assert_eq!(kv.events_since(5).unwrap().len(), 2);
    // Logically gone at once; physically, batch by batch.
    let (hash, snapshot) = (kv.hash(), kv.snapshot());
    assert_eq!(kv.store().stored(), (5, 5), "nothing trimmed yet");
    assert!(kv.is_trimming());
    assert!(kv.trim_compacted(2), "two of three compacted changes");
    assert!(!kv.trim_compacted(2), "the third and the revisit of a at 5");
    assert!(!kv.is_trimming());
    // a's version 1 was replaced at revision 5, so it went (as etcd's
    // compaction); b is gone.
    assert_eq!(kv.store().stored(), (2, 2));
    assert_eq!((kv.hash(), kv.snapshot()), (hash, snapshot));
    assert_eq!(
        keys_of(&kv.range(&range_request("a", "z")).unwrap()),
        ["a", "c"]
    );
    assert_eq!(kv.events_since(5).unwrap().len(), 2);
}

/// A compaction answers at once however long the history (etcd's
/// `compactionBatchLimit` idea): its cost lands in `trim_compacted`
/// batches, each bounded by its budget.
#[test]
fn compaction_defers_its_work_to_bounded_trims() {
    let mut kv = KvState::new();
    for i in 0..3_000 {
        put(&mut kv, &format!("k{}", i % 100), "v");
    }
    let revision = kv.current_revision();
    kv.apply(&Command::Compact(crate::CompactRequest { revision }))
        .unwrap();
    assert_eq!(
        kv.store().stored(),
        (3_000, 3_000),
        "compact only moved the line"
    );
    let held = kv.stored_bytes();
    let mut batches = 0;
    while kv.trim_compacted(1_000) {
        batches += 1;
    }
    assert_eq!(batches, 2, "3,000 changes below the line: three batches");
    // Each key keeps its last version; k99's, written at the line, replaced
    // the one before it, which goes too (as etcd's compaction).
    assert_eq!(kv.store().stored(), (100, 1));
    let trimmed = kv.stored_bytes();
    assert!(trimmed * 10 < held, "{trimmed} of {held} bytes still held");
    assert_eq!(
        trimmed,
        KvState::restore(&kv.snapshot()).unwrap().stored_bytes()
    );
}

/// A version replaced at exactly the compact revision is gone, as in
/// etcd, even when an earlier compaction kept it (its own change was
/// trimmed then, so only the revisit of the compact revision frees it).
/// The event at the compact revision then has no prev_kv, as etcd's.
#[test]
fn compaction_drops_what_the_compact_revision_replaced() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1"); // 2
    put(&mut kv, "b", "1"); // 3
    compact(&mut kv, 3);
    assert!(!kv.trim_compacted(usize::MAX));
    assert_eq!(kv.store().stored(), (2, 1), "a@2 is a's value at 3: kept");
    put(&mut kv, "a", "2"); // 4
    let events = kv.events_since(4).unwrap();
    assert_eq!(
        events[0].prev_kv.as_ref().map(|kv| kv.value.clone()),
        Some(b("1"))
    );

    compact(&mut kv, 4);
    let events = kv.events_since(4).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].prev_kv, None, "replaced at the compact revision");
    let (hash, snapshot) = (kv.hash(), kv.snapshot());
    assert!(kv.is_trimming(), "a@2 awaits the revisit of revision 4");
    assert!(kv.trim_compacted(1), "b's change at 3 first (b@3 stays)");
    assert!(
        !kv.trim_compacted(1),
        "then the revisit of a at 4, and no more"
    );
    assert_eq!(kv.store().stored(), (2, 1), "a@4 and b@3 are left");
    assert_eq!((kv.hash(), kv.snapshot()), (hash, snapshot));
    assert_eq!(get(&kv, "a").unwrap().value, b("2"));
}

/// What a quota's operator does: delete everything, compact at the
/// delete, trim. Every value is freed; only the tombstones, which the
/// watch from the compact revision still replays, are left until the next
/// compaction.
#[test]
fn deleting_everything_then_compacting_at_the_delete_frees_the_values() {
    let mut kv = KvState::new();
    let value = "v".repeat(4096);
    for i in 0..100 {
        put(&mut kv, &format!("k{i:03}"), &value);
    }
    let last_put = kv.current_revision();
    compact(&mut kv, last_put);
    while kv.trim_compacted(10) {}
    let full = kv.stored_bytes();
    delete(&mut kv, delete_request("k", "l"));
    let revision = kv.current_revision();
    compact(&mut kv, revision);
    while kv.trim_compacted(10) {}
    let emptied = kv.stored_bytes();
    assert!(emptied * 10 < full, "{emptied} of {full} bytes still held");
    assert_eq!(
        kv.store().stored(),
        (100, 100),
        "the tombstones at the compact revision"
    );
    assert_eq!(kv.events_since(revision).unwrap().len(), 100);
    let other = put(&mut kv, "other", "x").revision;
    compact(&mut kv, other);
    while kv.trim_compacted(10) {}
    assert_eq!(
        kv.store().stored(),
        (1, 1),
        "the tombstones went at the next compaction"
    );
}

fn compact(kv: &mut KvState, revision: crate::Revision) {
    kv.apply(&Command::Compact(crate::CompactRequest { revision }))
        .unwrap();
}

#[test]
fn compact_errors() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1");
    put(&mut kv, "a", "2");
    let compact = |kv: &mut KvState, revision| {
        kv.apply(&Command::Compact(crate::CompactRequest { revision }))
    };
    assert_eq!(compact(&mut kv, 4), Err(KvError::FutureRevision));
    assert!(compact(&mut kv, 2).is_ok());
    assert_eq!(
        compact(&mut kv, 2),
        Err(KvError::Compacted {
            compact_revision: 2
        })
    );
    assert_eq!(
        compact(&mut kv, 1),
        Err(KvError::Compacted {
            compact_revision: 2
        })
    );
    assert!(compact(&mut kv, 3).is_ok());
    assert_eq!(kv.compact_revision(), 3);
}

#[test]
fn put_options_and_errors() {
    let mut kv = KvState::new();
    let first = try_put(
        &mut kv,
        PutRequest {
            prev_kv: true,
            ..put_request("a", "1")
        },
    )
    .unwrap();
    assert_eq!(first.prev_kv, None);
    let second = try_put(
        &mut kv,
        PutRequest {
            prev_kv: true,
            ..put_request("a", "2")
        },
    )
    .unwrap();
    assert_eq!(second.prev_kv.unwrap().value, b("1"));
    try_put(
        &mut kv,
        PutRequest {
            ignore_value: true,
            ..put_request("a", "")
        },
    )
    .unwrap();
    assert_eq!(get(&kv, "a").unwrap().value, b("2"));
    assert_eq!(get(&kv, "a").unwrap().version, 3);
    let cases = [
        (put_request("", "v"), KvError::EmptyKey),
        (
            PutRequest {
                ignore_value: true,
                ..put_request("a", "x")
            },
            KvError::ValueProvided,
        ),
        (
            PutRequest {
                ignore_lease: true,
                lease: 7,
                ..put_request("a", "")
            },
            KvError::LeaseProvided,
        ),
        (
            PutRequest {
                ignore_value: true,
                ..put_request("missing", "")
            },
            KvError::KeyNotFound,
        ),
        (
            PutRequest {
                ignore_lease: true,
                ..put_request("missing", "v")
            },
            KvError::KeyNotFound,
        ),
        (
            PutRequest {
                lease: 42,
                ..put_request("a", "v")
            },
            KvError::LeaseNotFound,
        ),
    ];
    let before = kv.hash();
    for (request, error) in cases {
        assert_eq!(try_put(&mut kv, request.clone()), Err(error), "{request:?}");
    }
    assert_eq!(kv.hash(), before, "failed puts change nothing");
}

#[test]
fn empty_keys_are_refused_for_reads_and_deletes() {
    let mut kv = KvState::new();
    assert_eq!(kv.range(&range_request("", "")), Err(KvError::EmptyKey));
    assert_eq!(
        kv.apply(&Command::DeleteRange(delete_request("", "z"))),
        Err(KvError::EmptyKey)
    );
}

/// A copy (what a background snapshot encodes) shares the store's nodes;
/// writes, deletes and a compaction of the original after the copy must
/// leave the copy exactly as it was, and the other way round.
#[test]
fn a_copy_is_unaffected_by_later_writes_and_compaction() {
    let mut kv = KvState::new();
    // Enough keys for the persistent maps to have inner nodes to share.
    for i in 0..500 {
        put(&mut kv, &format!("k{i:03}"), "v1");
    }
    put(&mut kv, "k007", "v2");
    let copy = kv.clone();
    let (bytes, hash) = (copy.snapshot(), copy.hash());
    for i in (0..500).step_by(3) {
        put(&mut kv, &format!("k{i:03}"), "v3");
    }
    delete(&mut kv, delete_request("k100", "k200"));
    kv.apply(&Command::Compact(crate::CompactRequest { revision: 450 }))
        .unwrap();
    while kv.trim_compacted(7) {}
    assert_eq!(copy.snapshot(), bytes, "the copy's snapshot is unchanged");
    assert_eq!(copy.hash(), hash);
    assert_eq!(get(&copy, "k150").unwrap().value, b("v1"));
    assert_eq!(get(&copy, "k007").unwrap().value, b("v2"));
    assert_eq!(get(&kv, "k150"), None);
    assert_eq!(get(&kv, "k009").unwrap().value, b("v3"));
    // And the original restored from its own snapshot is itself again.
    let restored = KvState::restore(&kv.snapshot()).unwrap();
    assert_eq!(restored.hash(), kv.hash());
    assert_ne!(restored.hash(), hash);
}
