//! The `etcd-client` crate against the API: what a Rust framework does.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, LeaseTimeToLiveOptions, LockOptions,
    ProclaimOptions, PutOptions, ResignOptions, Txn, TxnOp, TxnOpResponse, WatchFilterType,
    WatchOptions,
};

use crate::harness::{ManualClock, TestServer, eventually, fast_expiry, next, watch};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn put_get_prefix_and_delete() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for (key, value) in [("app/a", "1"), ("app/b", "2"), ("other", "3")] {
        client.put(key, value, None).await.unwrap();
    }
    let got = client
        .get("app/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let pairs: Vec<_> = got
        .kvs()
        .iter()
        .map(|kv| {
            (
                kv.key_str().unwrap().to_string(),
                kv.value_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [("app/a", "1"), ("app/b", "2")].map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!(pairs, expected);
    assert_eq!(got.count(), 2);
    let header = got.header().unwrap();
    assert_eq!(header.revision(), 4);
    assert_eq!(header.member_id(), 1);
    assert_eq!(header.cluster_id(), 0x1000);

    // An overwrite bumps version and mod revision, keeps create revision.
    let put = client
        .put("app/a", "1b", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(put.prev_key().unwrap().value(), b"1");
    let a = client.get("app/a", None).await.unwrap();
    let kv = &a.kvs()[0];
    assert_eq!(
        (kv.create_revision(), kv.mod_revision(), kv.version()),
        (2, 5, 2)
    );

    // Reading the past, serializable reads.
    let old = client
        .get("app/a", Some(GetOptions::new().with_revision(2)))
        .await
        .unwrap();
    assert_eq!(old.kvs()[0].value(), b"1");
    let local = client
        .get("app/a", Some(GetOptions::new().with_serializable()))
        .await
        .unwrap();
    assert_eq!(local.kvs()[0].value(), b"1b");

    let deleted = client
        .delete(
            "app/",
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    assert_eq!(deleted.deleted(), 2);
    let left = client
        .get("", Some(GetOptions::new().with_all_keys()))
        .await
        .unwrap();
    assert_eq!(left.kvs().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn txn_compare_and_swap() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.put("k", "v1", None).await.unwrap();
    let swap = |from: &str, to: &str| {
        Txn::new()
            .when([Compare::value("k", CompareOp::Equal, from)])
            .and_then([TxnOp::put("k", to, None)])
            .or_else([TxnOp::get("k", None)])
    };
    let first = client.txn(swap("v1", "v2")).await.unwrap();
    assert!(first.succeeded());
    let second = client.txn(swap("v1", "v3")).await.unwrap();
    assert!(!second.succeeded());
    match &second.op_responses()[0] {
        TxnOpResponse::Get(get) => assert_eq!(get.kvs()[0].value(), b"v2"),
        _ => panic!("expected a get response"),
    }
    // A failed compare wrote nothing.
    assert_eq!(
        second.header().unwrap().revision(),
        first.header().unwrap().revision()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn watch_streams_events_in_order_with_prev_kv() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let options = WatchOptions::new().with_prefix().with_prev_key();
    let (mut stream, _) = watch(&mut client, "w/", Some(options)).await;
    client.put("w/a", "1", None).await.unwrap();
    client.put("w/a", "2", None).await.unwrap();
    client.put("elsewhere", "x", None).await.unwrap();
    client.delete("w/a", None).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let response = next(&mut stream).await;
        for event in response.events() {
            let kv = event.kv().unwrap();
            let prev = event.prev_kv().map(|p| p.value_str().unwrap().to_string());
            seen.push((
                event.event_type(),
                kv.mod_revision(),
                kv.value_str().unwrap().to_string(),
                prev,
            ));
        }
    }
    assert_eq!(
        seen,
        [
            (EventType::Put, 2, "1".to_string(), None),
            (EventType::Put, 3, "2".to_string(), Some("1".to_string())),
            (EventType::Delete, 5, String::new(), Some("2".to_string())),
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn watch_resumes_from_a_revision_and_filters() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for value in ["a", "b", "c"] {
        client.put("r", value, None).await.unwrap(); // revisions 2, 3, 4
    }
    client.delete("r", None).await.unwrap(); // 5
    let (mut stream, _) = watch(
        &mut client,
        "r",
        Some(WatchOptions::new().with_start_revision(3)),
    )
    .await;
    let mut revisions = Vec::new();
    while revisions.len() < 3 {
        let response = next(&mut stream).await;
        revisions.extend(
            response
                .events()
                .iter()
                .map(|e| e.kv().unwrap().mod_revision()),
        );
    }
    assert_eq!(revisions, [3, 4, 5]);

    // NOPUT: only the delete.
    let no_puts = WatchOptions::new()
        .with_start_revision(1)
        .with_filters([WatchFilterType::NoPut]);
    let (mut deletes, _) = watch(&mut client, "r", Some(no_puts)).await;
    let response = next(&mut deletes).await;
    let kinds: Vec<_> = response.events().iter().map(|e| e.event_type()).collect();
    assert_eq!(kinds, [EventType::Delete]);
    server.shutdown().await;
}

#[tokio::test]
async fn watch_from_a_compacted_revision_is_cancelled_with_the_compact_revision() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for value in ["a", "b", "c"] {
        client.put("c", value, None).await.unwrap();
    }
    client.compact(3, None).await.unwrap();
    let (mut stream, _) = watch(
        &mut client,
        "c",
        Some(WatchOptions::new().with_start_revision(1)),
    )
    .await;
    let response = next(&mut stream).await;
    assert!(response.canceled());
    assert_eq!(response.compact_revision(), 3);
    let error = client
        .get("c", Some(GetOptions::new().with_revision(2)))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("etcdserver: mvcc: required revision has been compacted")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn watch_cancel_and_progress() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (mut stream, id) = watch(&mut client, "p", None).await;
    client.put("p", "1", None).await.unwrap();
    let response = next(&mut stream).await;
    assert_eq!(response.events().len(), 1);
    stream.request_progress().await.unwrap();
    let progress = next(&mut stream).await;
    assert!(progress.events().is_empty());
    assert_eq!(progress.watch_id(), -1);
    assert_eq!(progress.header().unwrap().revision(), 2);
    stream.cancel(id).await.unwrap();
    let cancelled = next(&mut stream).await;
    assert!(cancelled.canceled());
    assert_eq!(cancelled.watch_id(), id);
    server.shutdown().await;
}

#[tokio::test]
async fn lease_keep_alive_and_expiry_delete_keys() {
    let clock = Arc::new(ManualClock::default());
    let server = TestServer::start_with(fast_expiry(), Default::default(), clock.clone()).await;
    let mut client = server.client().await;
    let lease = client.lease_grant(5, None).await.unwrap();
    assert_eq!(lease.ttl(), 5);
    let id = lease.id();
    client
        .put("leased", "v", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();
    let (mut keeper, mut answers) = client.lease_keep_alive(id).await.unwrap();
    clock.advance(Duration::from_secs(4));
    keeper.keep_alive().await.unwrap();
    let answer = tokio::time::timeout(WAIT, answers.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((answer.id(), answer.ttl()), (id, 5));
    // Renewed at 4 s: still alive at 8 s.
    clock.advance(Duration::from_secs(4));
    let ttl = client
        .lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    assert_eq!(ttl.keys(), [b"leased".to_vec()]);
    assert_eq!(ttl.granted_ttl(), 5);
    assert_eq!(client.leases().await.unwrap().leases()[0].id(), id);
    // Past its expiry the server revokes it and deletes its keys.
    clock.advance(Duration::from_secs(2));
    let mut reader = client.clone();
    eventually(WAIT, || {
        let mut reader = reader.clone();
        async move { reader.get("leased", None).await.unwrap().kvs().is_empty() }
    })
    .await;
    let ttl = reader.lease_time_to_live(id, None).await.unwrap();
    assert_eq!(ttl.ttl(), -1);
    keeper.keep_alive().await.unwrap();
    let answer = tokio::time::timeout(WAIT, answers.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(answer.ttl(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn lock_is_exclusive_and_passes_on_unlock() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let first = client.lease_grant(60, None).await.unwrap().id();
    let second = client.lease_grant(60, None).await.unwrap().id();
    let held = client
        .lock("jobs", Some(LockOptions::new().with_lease(first)))
        .await
        .unwrap();
    assert!(held.key().starts_with(b"jobs/"));
    let mut other = client.clone();
    let waiter = tokio::spawn(async move {
        other
            .lock("jobs", Some(LockOptions::new().with_lease(second)))
            .await
            .unwrap()
            .key()
            .to_vec()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "second locker got a held lock");
    client.unlock(held.key()).await.unwrap();
    let key = tokio::time::timeout(WAIT, waiter).await.unwrap().unwrap();
    assert_eq!(key, format!("jobs/{second:x}").into_bytes());
    server.shutdown().await;
}

#[tokio::test]
async fn election_campaign_proclaim_observe_resign() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let a = client.lease_grant(60, None).await.unwrap().id();
    let b = client.lease_grant(60, None).await.unwrap().id();
    let won = client.campaign("leader", "a", a).await.unwrap();
    let leader_key = won.leader().unwrap().clone();
    let mut observe = client.observe("leader").await.unwrap();
    let first = tokio::time::timeout(WAIT, observe.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.kv().unwrap().value(), b"a");

    client
        .proclaim(
            "a2",
            Some(ProclaimOptions::new().with_leader(leader_key.clone())),
        )
        .await
        .unwrap();
    let next = tokio::time::timeout(WAIT, observe.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.kv().unwrap().value(), b"a2");
    let now = client.leader("leader").await.unwrap();
    assert_eq!(now.kv().unwrap().value(), b"a2");

    let mut other = client.clone();
    let challenger = tokio::spawn(async move { other.campaign("leader", "b", b).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!challenger.is_finished(), "two leaders at once");
    client
        .resign(Some(ResignOptions::new().with_leader(leader_key)))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, challenger)
        .await
        .unwrap()
        .unwrap();
    let handed = tokio::time::timeout(WAIT, observe.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(handed.kv().unwrap().value(), b"b");
    server.shutdown().await;
}

#[tokio::test]
async fn member_list_and_status() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let members = client.member_list().await.unwrap();
    let member = &members.members()[0];
    assert_eq!(member.id(), 1);
    assert_eq!(member.name(), "agora");
    assert_eq!(member.client_urls(), [format!("http://{}", server.addr)]);
    client.put("x", "y", None).await.unwrap();
    let status = client.status().await.unwrap();
    assert_eq!(status.version(), "3.4.0");
    assert_eq!(status.leader(), 1);
    assert_eq!(status.raft_index(), 1);
    assert_eq!(status.header().unwrap().revision(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn an_abandoned_lock_call_leaves_the_queue() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let holder = client.lease_grant(60, None).await.unwrap().id();
    let quitter = client.lease_grant(60, None).await.unwrap().id();
    let held = client
        .lock("q", Some(LockOptions::new().with_lease(holder)))
        .await
        .unwrap();
    // The quitter gives up waiting: its call is dropped mid-wait.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        client.lock("q", Some(LockOptions::new().with_lease(quitter))),
    )
    .await;
    assert!(gave_up.is_err(), "a held lock was granted twice");
    let mut reader = client.clone();
    eventually(WAIT, || {
        let mut reader = reader.clone();
        async move {
            let queued = reader
                .get("q/", Some(GetOptions::new().with_prefix()))
                .await
                .unwrap();
            queued.kvs().len() == 1
        }
    })
    .await;
    // Nobody is left queued behind the holder, so the next caller gets it
    // as soon as the holder lets go.
    reader.unlock(held.key()).await.unwrap();
    let next = client.lease_grant(60, None).await.unwrap().id();
    let got = tokio::time::timeout(
        WAIT,
        client.lock("q", Some(LockOptions::new().with_lease(next))),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got.key(), format!("q/{next:x}").as_bytes());
    server.shutdown().await;
}

#[tokio::test]
async fn idle_watchers_that_ask_get_progress_notices() {
    let local = agora_etcd::LocalConfig {
        progress_interval: Duration::from_millis(100),
        ..agora_etcd::LocalConfig::default()
    };
    let clock = Arc::new(agora_etcd::SystemClock::new());
    let server = TestServer::start_with(local, Default::default(), clock).await;
    let mut client = server.client().await;
    client.put("idle", "1", None).await.unwrap();
    let options = WatchOptions::new().with_progress_notify();
    let (mut stream, id) = watch(&mut client, "idle", Some(options)).await;
    let notice = next(&mut stream).await;
    assert!(notice.events().is_empty() && !notice.canceled());
    assert_eq!(notice.watch_id(), id);
    assert_eq!(notice.header().unwrap().revision(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn watch_ids_are_per_stream_and_a_taken_one_is_refused() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (mut stream, first) = watch(&mut client, "a", None).await;
    assert_eq!(first, 0);
    stream
        .watch("b", Some(WatchOptions::new().with_watch_id(7)))
        .await
        .unwrap();
    let created = next(&mut stream).await;
    assert!(created.created() && !created.canceled());
    assert_eq!(created.watch_id(), 7);
    stream
        .watch("c", Some(WatchOptions::new().with_watch_id(7)))
        .await
        .unwrap();
    let refused = next(&mut stream).await;
    assert!(refused.created() && refused.canceled());
    assert_eq!(
        refused.cancel_reason(),
        "mvcc: duplicate watch ID provided on the WatchStream"
    );
    // etcd names no watcher in a refusal (watch id 7 is still the live one).
    assert_eq!(refused.watch_id(), -1);
    // Both live watchers still get their events, each under its own id.
    client.put("b", "1", None).await.unwrap();
    client.put("a", "1", None).await.unwrap();
    let ids = [
        next(&mut stream).await.watch_id(),
        next(&mut stream).await.watch_id(),
    ];
    assert_eq!(ids, [7, 0]);
    server.shutdown().await;
}

/// A range that ends at or before its start is refused as etcd 3.4 does
/// (created, then cancelled, under id -1, with etcd's reason) and uses up
/// no id; an empty key with an end starts at "\0" and is fine.
#[tokio::test]
async fn an_empty_watch_range_is_refused_as_etcd_does() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let backwards = WatchOptions::new().with_range("a");
    let mut stream = client.watch("b", Some(backwards)).await.unwrap();
    let mut refusals = vec![next(&mut stream).await];
    stream
        .watch("a", Some(WatchOptions::new().with_range("a")))
        .await
        .unwrap();
    refusals.push(next(&mut stream).await);
    for refused in refusals {
        assert!(refused.created() && refused.canceled(), "{refused:?}");
        assert_eq!(refused.watch_id(), -1);
        assert_eq!(refused.cancel_reason(), "mvcc: watcher range is empty");
    }
    stream
        .watch("", Some(WatchOptions::new().with_range("b")))
        .await
        .unwrap();
    let created = next(&mut stream).await;
    assert!(created.created() && !created.canceled(), "{created:?}");
    assert_eq!(created.watch_id(), 0, "the refusals used up no id");
    client.put("a", "1", None).await.unwrap();
    let event = next(&mut stream).await;
    assert_eq!((event.watch_id(), event.events().len()), (0, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_waiting_calls_and_open_streams() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let holder = client.lease_grant(60, None).await.unwrap().id();
    let waiter_lease = client.lease_grant(60, None).await.unwrap().id();
    client
        .lock("s", Some(LockOptions::new().with_lease(holder)))
        .await
        .unwrap();
    let mut other = client.clone();
    let waiter = tokio::spawn(async move {
        other
            .lock("s", Some(LockOptions::new().with_lease(waiter_lease)))
            .await
    });
    let (_stream, _) = watch(&mut client, "anything", None).await;
    let (_keeper, _answers) = client.lease_keep_alive(holder).await.unwrap();
    let _observe = client.observe("nobody-leads").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());
    // Graceful shutdown must not wait for the lock holder or the streams.
    server.shutdown().await;
    let refused = waiter.await.unwrap().unwrap_err();
    assert!(
        refused.to_string().contains("etcdserver: server stopped"),
        "{refused}"
    );
}
