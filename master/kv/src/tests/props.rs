//! Property tests: the store against the reference model, determinism and
//! snapshots, watch delivery, and no panics on any input.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::model::Model;
use crate::{
    Command, CompactRequest, Compare, CompareResult, CompareTarget, DeleteRangeRequest, Event,
    EventType, KvError, KvState, PutRequest, RangeRequest, RequestOp, SortOrder, SortTarget,
    TxnRequest, WatchHub, WatchRequest, WatchUpdate,
};

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        10 => prop::sample::select(vec!["a", "ab", "b", "c", "d"]).prop_map(|k| k.as_bytes().to_vec()),
        1 => Just(Vec::new()),
    ]
}

fn range_end() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec!["", "", "\0", "b", "c", "e", "a"]).prop_map(|k| k.as_bytes().to_vec())
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec!["", "x", "y", "z"]).prop_map(|v| v.as_bytes().to_vec())
}

fn range_request() -> impl Strategy<Value = RangeRequest> {
    let order = prop::sample::select(vec![SortOrder::None, SortOrder::Ascend, SortOrder::Descend]);
    let target = prop::sample::select(vec![
        SortTarget::Key,
        SortTarget::Version,
        SortTarget::Create,
        SortTarget::Mod,
        SortTarget::Value,
    ]);
    let filters = (0i64..10, 0i64..10, 0i64..10, 0i64..10);
    (
        (key(), range_end(), 0i64..4, -1i64..14),
        (order, target, any::<bool>(), any::<bool>()),
        filters,
    )
        .prop_map(
            |(
                (key, range_end, limit, revision),
                (sort_order, sort_target, keys_only, count_only),
                filters,
            )| {
                let (min_mod_revision, max_mod_revision, min_create_revision, max_create_revision) =
                    filters;
                let zero_most = |r: i64| if r < 6 { 0 } else { r - 5 };
                RangeRequest {
                    key,
                    range_end,
                    limit,
                    revision,
                    sort_order,
                    sort_target,
                    keys_only,
                    count_only: count_only && keys_only,
                    min_mod_revision: zero_most(min_mod_revision),
                    max_mod_revision: zero_most(max_mod_revision),
                    min_create_revision: zero_most(min_create_revision),
                    max_create_revision: zero_most(max_create_revision),
                }
            },
        )
}

fn put_request() -> impl Strategy<Value = PutRequest> {
    (key(), value(), any::<bool>(), prop::bool::weighted(0.15)).prop_map(
        |(key, value, prev_kv, ignore_value)| {
            let value = if ignore_value { Vec::new() } else { value };
            PutRequest {
                key,
                value,
                prev_kv,
                ignore_value,
                ..PutRequest::default()
            }
        },
    )
}

fn delete_request() -> impl Strategy<Value = DeleteRangeRequest> {
    (key(), range_end(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    })
}

fn compare() -> impl Strategy<Value = Compare> {
    let result = prop::sample::select(vec![
        CompareResult::Equal,
        CompareResult::Greater,
        CompareResult::Less,
        CompareResult::NotEqual,
    ]);
    let target = prop_oneof![
        (0i64..4).prop_map(CompareTarget::Version),
        (0i64..10).prop_map(CompareTarget::Create),
        (0i64..10).prop_map(CompareTarget::Mod),
        value().prop_map(CompareTarget::Value),
        (0i64..2).prop_map(CompareTarget::Lease),
    ];
    (result, target, key(), range_end()).prop_map(|(result, target, key, range_end)| Compare {
        result,
        target,
        key,
        range_end,
    })
}

fn flat_op() -> impl Strategy<Value = RequestOp> {
    prop_oneof![
        range_request().prop_map(RequestOp::Range),
        put_request().prop_map(RequestOp::Put),
        delete_request().prop_map(RequestOp::DeleteRange),
    ]
}

fn flat_txn() -> impl Strategy<Value = TxnRequest> {
    (
        prop::collection::vec(compare(), 0..3),
        prop::collection::vec(flat_op(), 0..4),
        prop::collection::vec(flat_op(), 0..4),
    )
        .prop_map(|(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        })
}

/// A txn with flat txns nested in its branches (the model covers flat ones
/// only; the nesting rules have unit tests).
fn nested_txn() -> impl Strategy<Value = TxnRequest> {
    (
        flat_txn(),
        prop::collection::vec(flat_txn(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(mut outer, inner, in_success)| {
            let branch = if in_success {
                &mut outer.success
            } else {
                &mut outer.failure
            };
            branch.extend(inner.into_iter().map(RequestOp::Txn));
            outer
        })
}

/// Commands the reference model covers.
fn model_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => range_request().prop_map(Command::Range),
        6 => put_request().prop_map(Command::Put),
        2 => delete_request().prop_map(Command::DeleteRange),
        3 => flat_txn().prop_map(Command::Txn),
        1 => (0i64..14).prop_map(|revision| Command::Compact(CompactRequest { revision })),
    ]
}

/// Every command, leases included, with small ids and clock values.
fn any_command() -> impl Strategy<Value = Command> {
    let lease = 0i64..4;
    let now = 0i64..40_000;
    prop_oneof![
        6 => model_command(),
        1 => nested_txn().prop_map(Command::Txn),
        2 => (put_request(), lease.clone()).prop_map(|(mut p, lease)| {
            p.lease = lease;
            Command::Put(p)
        }),
        1 => (lease.clone(), -1i64..20, now.clone())
            .prop_map(|(id, ttl_seconds, now_ms)| Command::LeaseGrant { id, ttl_seconds, now_ms }),
        1 => lease.clone().prop_map(|id| Command::LeaseRevoke { id }),
        1 => (lease.clone(), now.clone()).prop_map(|(id, now_ms)| Command::LeaseKeepAlive { id, now_ms }),
        1 => (prop::collection::vec(lease, 0..3), now.clone())
            .prop_map(|(ids, now_ms)| Command::ExpireLeases { ids, now_ms }),
        1 => now.prop_map(|now_ms| Command::LeasePromote { now_ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) Same responses as the reference model, same history after.
    #[test]
    /// Compactions are trimmed by random budgets between commands (0:
    /// not at all): how far trimming got must never show.
    fn store_matches_reference_model(
        commands in prop::collection::vec(model_command(), 1..40),
        trims in prop::collection::vec(0usize..4, 40),
    ) {
        let mut kv = KvState::new();
        let mut model = Model::new();
        for (command, trim) in commands.iter().zip(&trims) {
            prop_assert_eq!(kv.apply(command), model.apply(command), "command {:?}", command);
            kv.trim_compacted(*trim);
        }
        prop_assert_eq!(kv.current_revision(), model.current());
        prop_assert_eq!(kv.compact_revision(), model.compact());
        prop_assert_eq!(kv.events_since(kv.compact_revision()).unwrap(), model.events_since(model.compact()));
        let everything = RangeRequest { key: vec![0], range_end: vec![0], ..RangeRequest::default() };
        for revision in model.compact().max(1)..=model.current() {
            let at = RangeRequest { revision, ..everything.clone() };
            prop_assert_eq!(kv.range(&at), model.apply(&Command::Range(at.clone())).map(|r| match r {
                crate::Response::Range(r) => r,
                other => panic!("{other:?}"),
            }));
        }
    }

    /// (b) Same commands give the same state; snapshot, restore and
    /// continue equals continuing. `first` trims every compaction at once,
    /// `second` by random budgets, the restored copy never: members trim
    /// on their own schedule, and must stay equal all the same.
    #[test]
    fn apply_is_deterministic_and_snapshots_resume(
        commands in prop::collection::vec(any_command(), 1..40),
        cut in any::<prop::sample::Index>(),
        trims in prop::collection::vec(0usize..4, 40),
    ) {
        let mut first = KvState::new();
        let mut second = KvState::new();
        let cut = cut.index(commands.len());
        let mut restored = None;
        for ((index, command), trim) in commands.iter().enumerate().zip(&trims) {
            if index == cut {
                restored = Some(KvState::restore(&first.snapshot()).unwrap());
            }
            let answer = first.apply(command);
            prop_assert!(!first.trim_compacted(usize::MAX));
            // Fully trimmed, it holds exactly what a restore of it holds.
            let fresh = KvState::restore(&first.snapshot()).unwrap();
            prop_assert_eq!(first.stored_bytes(), fresh.stored_bytes());
            prop_assert_eq!(&answer, &second.apply(command));
            second.trim_compacted(*trim);
            if let Some(restored) = restored.as_mut() {
                prop_assert_eq!(&answer, &restored.apply(command));
            }
        }
        prop_assert_eq!(first.snapshot(), second.snapshot());
        prop_assert_eq!(&first, &second);
        let restored = restored.unwrap();
        prop_assert_eq!(first.hash(), second.hash());
        prop_assert_eq!(first.hash(), restored.hash());
        prop_assert_eq!(first.snapshot(), restored.snapshot());
        prop_assert_eq!(&first, &restored);
        for id in first.leases() {
            prop_assert_eq!(first.lease_time_to_live(id, 0, true), restored.lease_time_to_live(id, 0, true));
        }
    }
}

/// A step of the watch scenario.
#[derive(Debug, Clone)]
enum WatchStep {
    Write(Command),
    Watch {
        key: Vec<u8>,
        range_end: Vec<u8>,
        start: i64,
        prev_kv: bool,
        no_put: bool,
        no_delete: bool,
    },
    Poll {
        acknowledge: bool,
    },
}

fn watch_step() -> impl Strategy<Value = WatchStep> {
    let write = prop_oneof![
        put_request().prop_map(Command::Put),
        delete_request().prop_map(Command::DeleteRange),
        flat_txn().prop_map(Command::Txn),
    ];
    let flags = (
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
    );
    prop_oneof![
        5 => write.prop_map(WatchStep::Write),
        2 => (key(), range_end(), 0i64..20, flags).prop_map(|(key, range_end, start, (prev_kv, no_put, no_delete))| {
            WatchStep::Watch { key, range_end, start, prev_kv, no_put, no_delete }
        }),
        3 => any::<bool>().prop_map(|acknowledge| WatchStep::Poll { acknowledge }),
    ]
}

/// One client's view: what it asked for and what it received, across the
/// re-watches a slow-consumer cancellation forces.
struct Client {
    request: WatchRequest,
    first_revision: i64,
    received: Vec<Event>,
}

/// Watch id → the client it serves and events handed out but not yet
/// acknowledged (a stream that has not sent them yet).
type Streams = BTreeMap<i64, (usize, usize)>;

fn deliver(
    hub: &mut WatchHub,
    kv: &KvState,
    clients: &mut [Client],
    ids: &mut Streams,
    acknowledge: bool,
) {
    if acknowledge {
        for (watch_id, (_, unsent)) in ids.iter_mut() {
            hub.acknowledge(*watch_id, std::mem::take(unsent));
        }
    }
    for update in hub.poll(kv) {
        match update {
            WatchUpdate::Events { watch_id, events } => {
                let Some((client, unsent)) = ids.get_mut(&watch_id) else {
                    panic!("unknown watch {watch_id}")
                };
                *unsent += events.len();
                clients[*client].received.extend(events);
            }
            WatchUpdate::Cancelled {
                watch_id,
                resume_revision,
                ..
            } => {
                let (client, _) = ids.remove(&watch_id).unwrap();
                let request = WatchRequest {
                    start_revision: resume_revision,
                    ..clients[client].request.clone()
                };
                ids.insert(hub.watch(kv, request).unwrap(), (client, 0));
            }
            WatchUpdate::Progress { .. } => {}
        }
    }
}

fn expected_events(kv: &KvState, client: &Client) -> Vec<Event> {
    let request = &client.request;
    let range = crate::mvcc::KeyRange::new(&request.key, &request.range_end);
    kv.events_since(client.first_revision)
        .unwrap()
        .into_iter()
        .filter(|e| range.contains(&e.kv.key))
        .filter(|e| !(request.no_put && e.kind == EventType::Put))
        .filter(|e| !(request.no_delete && e.kind == EventType::Delete))
        .map(|mut e| {
            if !request.prev_kv {
                e.prev_kv = None;
            }
            e
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (c) Each watcher receives exactly the matching events from its start
    /// revision on, in order, without duplicates, through slow-consumer
    /// cancellations and re-watches.
    #[test]
    fn watchers_get_exactly_their_events(steps in prop::collection::vec(watch_step(), 1..50), limit in 1usize..4) {
        let mut kv = KvState::new();
        let mut hub = WatchHub::with_buffer_limit(limit);
        let mut clients = Vec::new();
        let mut ids = BTreeMap::new();
        for step in steps {
            match step {
                WatchStep::Write(command) => {
                    let _ = kv.apply(&command);
                }
                WatchStep::Watch { key, range_end, start, prev_kv, no_put, no_delete } => {
                    let start_revision = start % (kv.current_revision() + 2);
                    let request = WatchRequest { key, range_end, start_revision, prev_kv, no_put, no_delete, progress_notify: false };
                    let first_revision = if start_revision <= 0 { kv.current_revision() + 1 } else { start_revision };
                    ids.insert(hub.watch(&kv, request.clone()).unwrap(), (clients.len(), 0));
                    clients.push(Client { request, first_revision, received: Vec::new() });
                }
                WatchStep::Poll { acknowledge } => deliver(&mut hub, &kv, &mut clients, &mut ids, acknowledge),
            }
        }
        for _ in 0..200 {
            deliver(&mut hub, &kv, &mut clients, &mut ids, true);
        }
        for client in &clients {
            prop_assert_eq!(&client.received, &expected_events(&kv, client), "{:?}", client.request);
        }
    }
}

fn wild_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(i64::MAX),
        Just(i64::MIN),
        Just(0),
        -3i64..30
    ]
}

fn wild_command() -> impl Strategy<Value = Command> {
    let range = (range_request(), wild_i64(), wild_i64(), wild_i64()).prop_map(
        |(mut r, revision, limit, min)| {
            r.revision = revision;
            r.limit = limit;
            r.min_mod_revision = min;
            r
        },
    );
    prop_oneof![
        any_command(),
        range.prop_map(Command::Range),
        wild_i64().prop_map(|revision| Command::Compact(CompactRequest { revision })),
        (wild_i64(), wild_i64(), wild_i64()).prop_map(|(id, ttl_seconds, now_ms)| {
            Command::LeaseGrant {
                id,
                ttl_seconds,
                now_ms,
            }
        }),
        (wild_i64(), wild_i64()).prop_map(|(id, now_ms)| Command::LeaseKeepAlive { id, now_ms }),
        (prop::collection::vec(wild_i64(), 0..3), wild_i64())
            .prop_map(|(ids, now_ms)| Command::ExpireLeases { ids, now_ms }),
        wild_i64().prop_map(|now_ms| Command::LeasePromote { now_ms }),
        (put_request(), wild_i64()).prop_map(|(mut p, lease)| {
            p.lease = lease;
            Command::Put(p)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (d) No input makes the crate panic: wild numbers, garbage log
    /// entries and snapshots, watches from any revision.
    #[test]
    fn no_input_panics(
        commands in prop::collection::vec(wild_command(), 1..30),
        garbage in prop::collection::vec(any::<u8>(), 0..64),
        starts in prop::collection::vec(wild_i64(), 0..4),
        now in wild_i64(),
    ) {
        let mut kv = KvState::new();
        let mut hub = WatchHub::new();
        for start_revision in &starts {
            let request = WatchRequest { key: vec![0], range_end: vec![0], start_revision: *start_revision, ..WatchRequest::default() };
            let _ = hub.watch(&kv, request);
        }
        for command in &commands {
            let _ = kv.apply(command);
            let _ = kv.apply_entry(&crate::LogEntry::V1(command.clone()).encode());
            let _ = hub.poll(&kv);
            let _ = kv.expired_leases(now);
            for id in kv.leases() {
                let _ = kv.lease_time_to_live(id, now, true);
            }
        }
        let _ = kv.apply_entry(&garbage);
        let _ = KvState::restore(&garbage);
        let _ = hub.progress(&kv);
    }
}

/// A txn that only reads: ranges, and txns of ranges nested in a branch.
fn read_only_txn() -> impl Strategy<Value = TxnRequest> {
    let reads = || prop::collection::vec(range_request().prop_map(RequestOp::Range), 0..4);
    (
        prop::collection::vec(compare(), 0..3),
        reads(),
        reads(),
        reads(),
        any::<bool>(),
    )
        .prop_map(|(compare, success, failure, inner, nest_in_success)| {
            let nested = RequestOp::Txn(TxnRequest {
                compare: Vec::new(),
                success: inner,
                failure: Vec::new(),
            });
            let mut txn = TxnRequest {
                compare,
                success,
                failure,
            };
            if nest_in_success {
                txn.success.push(nested);
            } else {
                txn.failure.push(nested);
            }
            txn
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A read-only txn answered from the state (what a member serves after
    /// ReadIndex) is what applying it through the log answers, and it
    /// changes nothing.
    #[test]
    fn read_only_txns_read_as_applying_them_would(
        commands in prop::collection::vec(model_command(), 0..30),
        txn in read_only_txn(),
    ) {
        let mut kv = KvState::new();
        for command in &commands {
            let _ = kv.apply(command);
        }
        let before = kv.clone();
        let Ok(read_only) = crate::ReadOnlyTxn::new(txn.clone()) else {
            return Err(TestCaseError::fail("the generator made a write"));
        };
        let read = kv.read_txn(&read_only);
        prop_assert_eq!(&kv, &before);
        let applied = kv.apply(&Command::Txn(txn)).map(|response| match response {
            crate::Response::Txn(response) => response,
            other => panic!("{other:?}"),
        });
        prop_assert_eq!(read, applied);
        prop_assert_eq!(&kv, &before, "a read-only txn through the log wrote nothing");
    }

    /// Any txn with a write is not read-only.
    #[test]
    fn txns_that_write_are_not_read_only(txn in nested_txn()) {
        let writes = txn.success.iter().chain(&txn.failure).any(|op| match op {
            RequestOp::Put(_) | RequestOp::DeleteRange(_) => true,
            RequestOp::Txn(nested) => nested
                .success
                .iter()
                .chain(&nested.failure)
                .any(|op| !matches!(op, RequestOp::Range(_))),
            RequestOp::Range(_) => false,
        });
        prop_assert_eq!(crate::ReadOnlyTxn::new(txn).is_err(), writes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// HashKV at a past revision is what a member that stopped at that
    /// revision answers for its current one, however far the other went
    /// and however much of its compacted history it trimmed; below the
    /// compaction it is `Compacted`, above the current `FutureRevision`.
    #[test]
    fn hash_kv_at_a_past_revision_is_the_hash_then(
        commands in prop::collection::vec(any_command(), 1..40),
        cut in any::<prop::sample::Index>(),
        trims in prop::collection::vec(0usize..4, 40),
    ) {
        let cut = cut.index(commands.len());
        let mut stopped = KvState::new();
        let mut went_on = KvState::new();
        for (index, (command, trim)) in commands.iter().zip(&trims).enumerate() {
            // A compaction after the cut would change what both hash.
            if index >= cut && matches!(command, Command::Compact(_)) {
                continue;
            }
            if index < cut {
                let _ = stopped.apply(command);
            }
            let _ = went_on.apply(command);
            went_on.trim_compacted(*trim);
        }
        let then = stopped.hash_kv(0).unwrap();
        prop_assert_eq!(then.revision, stopped.current_revision());
        let asked = went_on.hash_kv(then.revision);
        if then.revision > then.compact_revision {
            prop_assert_eq!(asked, Ok(then));
        } else {
            prop_assert_eq!(asked, Err(KvError::Compacted { compact_revision: then.compact_revision }));
        }
        let now = went_on.hash_kv(0).unwrap();
        prop_assert_eq!(now.revision, went_on.current_revision());
        prop_assert_eq!(went_on.hash_kv(now.revision + 1), Err(KvError::FutureRevision));
    }
}
