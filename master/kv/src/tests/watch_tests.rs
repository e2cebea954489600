//! The watch hub: replay, live events, filters, cancellation, progress.

use super::*;
use crate::{
    CancelReason, CompactRequest, Event, EventType, WatchHub, WatchId, WatchRequest, WatchUpdate,
};

fn watch_range(key: &str, end: &str, start_revision: i64) -> WatchRequest {
    WatchRequest {
        key: b(key),
        range_end: b(end),
        start_revision,
        ..WatchRequest::default()
    }
}

fn events_for(updates: &[WatchUpdate], id: WatchId) -> Vec<Event> {
    updates
        .iter()
        .filter_map(|u| match u {
            WatchUpdate::Events { watch_id, events } if *watch_id == id => Some(events.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn summary(events: &[Event]) -> Vec<(EventType, String, i64)> {
    events
        .iter()
        .map(|e| {
            (
                e.kind,
                String::from_utf8_lossy(&e.kv.key).into_owned(),
                e.revision(),
            )
        })
        .collect()
}

#[test]
fn replays_history_then_follows_live_writes() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1"); // 2
    put(&mut kv, "x", "1"); // 3
    put(&mut kv, "a", "2"); // 4
    let mut hub = WatchHub::new();
    let id = hub
        .watch(
            &kv,
            WatchRequest {
                prev_kv: true,
                ..watch_range("a", "b", 3)
            },
        )
        .unwrap();
    let replay = events_for(&hub.poll(&kv), id);
    assert_eq!(summary(&replay), [(EventType::Put, "a".into(), 4)]);
    assert_eq!(replay[0].prev_kv.as_ref().unwrap().value, b("1"));
    delete(&mut kv, delete_request("a", "")); // 5
    put(&mut kv, "ab", "1"); // 6
    let live = events_for(&hub.poll(&kv), id);
    assert_eq!(
        summary(&live),
        [
            (EventType::Delete, "a".into(), 5),
            (EventType::Put, "ab".into(), 6)
        ]
    );
    assert_eq!(live[0].prev_kv.as_ref().unwrap().value, b("2"));
    assert!(hub.poll(&kv).is_empty(), "nothing twice");
}

#[test]
fn start_zero_means_from_the_next_write_and_prev_kv_is_optional() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1");
    let mut hub = WatchHub::new();
    let id = hub.watch(&kv, watch_range("a", "", 0)).unwrap();
    assert!(hub.poll(&kv).is_empty());
    put(&mut kv, "a", "2");
    let events = events_for(&hub.poll(&kv), id);
    assert_eq!(summary(&events), [(EventType::Put, "a".into(), 3)]);
    assert_eq!(events[0].prev_kv, None);
}

#[test]
fn filters_drop_puts_or_deletes() {
    let mut kv = KvState::new();
    let mut hub = WatchHub::new();
    let no_put = hub
        .watch(
            &kv,
            WatchRequest {
                no_put: true,
                ..watch_range("a", "", 0)
            },
        )
        .unwrap();
    let no_delete = hub
        .watch(
            &kv,
            WatchRequest {
                no_delete: true,
                ..watch_range("a", "", 0)
            },
        )
        .unwrap();
    put(&mut kv, "a", "1");
    delete(&mut kv, delete_request("a", ""));
    let updates = hub.poll(&kv);
    assert_eq!(
        summary(&events_for(&updates, no_put)),
        [(EventType::Delete, "a".into(), 3)]
    );
    assert_eq!(
        summary(&events_for(&updates, no_delete)),
        [(EventType::Put, "a".into(), 2)]
    );
}

#[test]
fn compaction_refuses_or_cancels_old_watchers() {
    let mut kv = KvState::new();
    for value in ["1", "2", "3", "4"] {
        put(&mut kv, "a", value); // 2..=5
    }
    let mut hub = WatchHub::new();
    let lagging = hub.watch(&kv, watch_range("a", "", 2)).unwrap();
    kv.apply(&Command::Compact(CompactRequest { revision: 4 }))
        .unwrap();
    assert_eq!(
        hub.watch(&kv, watch_range("a", "", 3)),
        Err(KvError::Compacted {
            compact_revision: 4
        })
    );
    let at_compaction = hub.watch(&kv, watch_range("a", "", 4)).unwrap();
    let updates = hub.poll(&kv);
    let cancelled = WatchUpdate::Cancelled {
        watch_id: lagging,
        reason: CancelReason::Compacted {
            compact_revision: 4,
        },
        resume_revision: 2,
    };
    assert!(updates.contains(&cancelled), "{updates:?}");
    assert_eq!(summary(&events_for(&updates, at_compaction)).len(), 2);
    assert_eq!(hub.len(), 1);
}

#[test]
fn slow_caught_up_watcher_is_cancelled_with_its_resume_revision() {
    let mut kv = KvState::new();
    let mut hub = WatchHub::with_buffer_limit(2);
    let id = hub.watch(&kv, watch_range("a", "z", 0)).unwrap();
    put(&mut kv, "a", "1"); // 2
    put(&mut kv, "b", "1"); // 3
    put(&mut kv, "c", "1"); // 4
    let updates = hub.poll(&kv);
    assert_eq!(summary(&events_for(&updates, id)).len(), 2);
    let cancelled = WatchUpdate::Cancelled {
        watch_id: id,
        reason: CancelReason::SlowConsumer,
        resume_revision: 4,
    };
    assert_eq!(updates.last(), Some(&cancelled));
    assert!(hub.is_empty());
}

#[test]
fn acknowledged_watcher_keeps_up_and_replay_waits_instead_of_cancelling() {
    let mut kv = KvState::new();
    for key in ["a", "b", "c", "d", "e"] {
        put(&mut kv, key, "v"); // 2..=6
    }
    let mut hub = WatchHub::with_buffer_limit(2);
    let id = hub.watch(&kv, watch_range("a", "z", 2)).unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let updates = hub.poll(&kv);
        assert!(
            updates
                .iter()
                .all(|u| matches!(u, WatchUpdate::Events { .. })),
            "{updates:?}"
        );
        let events = events_for(&updates, id);
        hub.acknowledge(id, events.len());
        seen.extend(summary(&events).into_iter().map(|(_, _, rev)| rev));
    }
    assert_eq!(seen, [2, 3, 4, 5, 6]);
    put(&mut kv, "f", "v");
    let events = events_for(&hub.poll(&kv), id);
    assert_eq!(summary(&events), [(EventType::Put, "f".into(), 7)]);
}

#[test]
fn a_revision_larger_than_the_buffer_goes_alone() {
    let mut kv = KvState::new();
    let mut hub = WatchHub::with_buffer_limit(2);
    let id = hub.watch(&kv, watch_range("a", "z", 0)).unwrap();
    let puts = ["a", "b", "c"].map(|k| crate::RequestOp::Put(put_request(k, "v")));
    try_txn(
        &mut kv,
        TxnRequest {
            success: puts.to_vec(),
            ..TxnRequest::default()
        },
    )
    .unwrap();
    let events = events_for(&hub.poll(&kv), id);
    assert_eq!(events.len(), 3);
    assert!(hub.len() == 1);
}

#[test]
fn progress_only_for_caught_up_watchers_that_asked() {
    let mut kv = KvState::new();
    put(&mut kv, "a", "1");
    let mut hub = WatchHub::new();
    let asked = hub
        .watch(
            &kv,
            WatchRequest {
                progress_notify: true,
                ..watch_range("a", "", 0)
            },
        )
        .unwrap();
    let behind = hub
        .watch(
            &kv,
            WatchRequest {
                progress_notify: true,
                ..watch_range("a", "", 2)
            },
        )
        .unwrap();
    hub.watch(&kv, watch_range("a", "", 0)).unwrap();
    assert_eq!(
        hub.progress(&kv),
        [WatchUpdate::Progress {
            watch_id: asked,
            revision: 2
        }]
    );
    hub.poll(&kv);
    assert_eq!(hub.progress(&kv).len(), 2, "{behind} caught up");
    assert!(hub.cancel(asked));
    assert!(!hub.cancel(asked));
}
