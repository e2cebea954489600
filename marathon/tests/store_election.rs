//! The store and the leader election against a real etcd server: each test
//! spawns its own `etcd` (Debian's 3.4 at /usr/bin/etcd) on free loopback
//! ports with a temporary data dir, and kills it on drop. Without the
//! binary the tests skip with a note, except under `CI=true`, where a
//! missing etcd is a failure rather than a silent pass.

use std::time::Duration;

use agora_marathon::election::{self, ElectionConfig};
use agora_marathon::store::{MAX_VALUE_BYTES, StoreError, Write};
use anyhow::{Context, bail};
use tokio::time::Instant;

mod support;

use support::etcd::etcd_or_skip;

const TTL: Duration = Duration::from_secs(2);
/// Slack on top of a timing bound, for scheduling delays on a busy machine.
const SLACK: Duration = Duration::from_secs(4);

fn election_config(value: &str) -> ElectionConfig {
    ElectionConfig {
        name: "/marathon/leader".to_owned(),
        value: value.to_owned(),
        lease_ttl: TTL,
    }
}

/// Polls `check` every 100 ms until it holds or `within` has passed.
/// Campaigns with no way out and expects to win (a test's only candidate).
async fn elect(client: &etcd_client::Client, value: &str) -> anyhow::Result<election::Leadership> {
    election::campaign(
        client.clone(),
        &election_config(value),
        std::future::pending::<()>(),
    )
    .await?
    .context("elected")
}

async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await.unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not within {within:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- store ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_write_get_load_and_delete_round_trip() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let store = etcd.store().await?;
    store
        .write(vec![
            Write::put("apps/b", "B"),
            Write::put("apps/a", "A"),
            Write::put("deployments/d1", "D"),
        ])
        .await?;
    assert_eq!(store.get("apps/a").await?, Some(b"A".to_vec()));
    assert_eq!(store.get("apps/zzz").await?, None);
    assert_eq!(
        store.load("apps/").await?,
        vec![
            ("apps/a".to_owned(), b"A".to_vec()),
            ("apps/b".to_owned(), b"B".to_vec())
        ],
        "load returns the keys under apps/, relative to the prefix, sorted"
    );
    assert_eq!(store.load("").await?.len(), 3);

    store
        .write(vec![Write::delete("apps/a"), Write::put("apps/b", "B2")])
        .await?;
    assert_eq!(store.get("apps/a").await?, None, "deleted");
    assert_eq!(
        store.load("apps/").await?,
        vec![("apps/b".to_owned(), b"B2".to_vec())]
    );

    // Keys are `{prefix}/{key}` with exactly one slash between.
    let mut raw = etcd.client().await?;
    let got = raw.get("/marathon/apps/b", None).await?;
    assert_eq!(got.kvs().len(), 1);
    assert!(matches!(
        store.get("/apps/b").await,
        Err(StoreError::InvalidKey { .. })
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_load_paginates_over_1200_keys_sorted_and_relative() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let store = etcd.store().await?;
    // Written in a scrambled order, in Txns of 100.
    let mut keys: Vec<String> = (0..1200)
        .map(|i| format!("tasks/{:05}", (i * 7919) % 1200))
        .collect();
    for chunk in keys.chunks(100) {
        store
            .write(
                chunk
                    .iter()
                    .map(|k| Write::put(k.clone(), k.as_bytes()))
                    .collect(),
            )
            .await?;
    }
    // A key just outside the range must not leak in.
    store.write(vec![Write::put("tasks0", "x")]).await?;
    let loaded = store.load("tasks/").await?;
    keys.sort();
    let loaded_keys: Vec<String> = loaded.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(loaded_keys, keys, "all 1200 keys, sorted, relative");
    assert!(loaded.iter().all(|(k, v)| k.as_bytes() == v.as_slice()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_batch_of_300_writes_lands_fully() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let store = etcd.store().await?;
    let batch: Vec<Write> = (0..300)
        .map(|i| Write::put(format!("b/{i:03}"), vec![1; 100]))
        .collect();
    store.write(batch).await?;
    assert_eq!(store.load("b/").await?.len(), 300);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_too_large_value_is_refused_with_nothing_written() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let store = etcd.store().await?;
    let result = store
        .write(vec![
            Write::put("small", "ok"),
            Write::put("big", vec![0; MAX_VALUE_BYTES + 1]),
        ])
        .await;
    assert_eq!(
        result,
        Err(StoreError::TooLarge {
            key: "big".to_owned(),
            bytes: MAX_VALUE_BYTES + 1
        })
    );
    assert!(store.load("").await?.is_empty(), "nothing written");
    // The writer refuses it at submit, with nothing queued.
    let writer = store.writer(4);
    assert!(matches!(
        writer.submit(vec![Write::put("big", vec![0; MAX_VALUE_BYTES + 1])]),
        Err(StoreError::TooLarge { .. })
    ));
    // The limit itself is writable.
    store
        .write(vec![Write::put("max", vec![0; MAX_VALUE_BYTES])])
        .await?;
    assert_eq!(
        store.get("max").await?.map(|v| v.len()),
        Some(MAX_VALUE_BYTES)
    );
    Ok(())
}

// ---- writer ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_acknowledges_1000_submissions_in_order() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let store = etcd.store().await?;
    let writer = store.writer(128);
    let mut outcomes = Vec::new();
    for i in 0..1000 {
        let batch = vec![
            Write::put(format!("w/{i:04}"), i.to_string()),
            Write::put("last", i.to_string()),
        ];
        loop {
            match writer.submit(batch.clone()) {
                Ok(outcome) => break outcomes.push(outcome),
                Err(StoreError::Busy) => tokio::time::sleep(Duration::from_millis(1)).await,
                Err(e) => bail!("submit {i}: {e}"),
            }
        }
    }
    let mut outcomes = outcomes.into_iter();
    let last = outcomes.next_back().context("no outcomes")?;
    tokio::time::timeout(Duration::from_secs(60), last).await???;
    // Outcomes are reported in submission order: once the last is in, every
    // earlier one has already arrived.
    for (i, mut outcome) in outcomes.enumerate() {
        assert_eq!(outcome.try_recv(), Ok(Ok(())), "submission {i}");
    }
    assert_eq!(store.load("w/").await?.len(), 1000);
    assert_eq!(
        store.get("last").await?,
        Some(b"999".to_vec()),
        "batches applied in submission order"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_queue_of_one_returns_busy_under_a_burst() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let store = etcd.store().await?;
    let writer = store.writer(1);
    let mut busy = 0;
    let mut accepted = Vec::new();
    for i in 0..200 {
        match writer.submit(vec![Write::put(format!("burst/{i:03}"), "x")]) {
            Ok(outcome) => accepted.push((i, outcome)),
            Err(StoreError::Busy) => busy += 1,
            Err(e) => bail!("unexpected {e}"),
        }
    }
    assert!(busy > 0, "a burst into a queue of one is refused with Busy");
    for (_, outcome) in &mut accepted {
        tokio::time::timeout(Duration::from_secs(30), outcome).await???;
    }
    let stored = store.load("burst/").await?;
    let expected: Vec<String> = accepted
        .iter()
        .map(|(i, _)| format!("burst/{i:03}"))
        .collect();
    let got: Vec<String> = stored.into_iter().map(|(k, _)| k).collect();
    assert_eq!(got, expected, "exactly the accepted batches were written");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_fails_unavailable_when_etcd_dies_and_keeps_every_acknowledged_write()
-> anyhow::Result<()> {
    let mut etcd = etcd_or_skip!();
    let store = etcd.store().await?;
    let deadline = Duration::from_secs(2);
    let writer = store.writer_with_deadline(16, deadline);
    for i in 0..50 {
        let outcome = writer.submit(vec![Write::put(format!("acked/{i:02}"), "v")])?;
        tokio::time::timeout(Duration::from_secs(30), outcome).await???;
    }

    etcd.kill();
    let killed_at = Instant::now();
    let doomed = writer.submit(vec![Write::put("doomed", "v")])?;
    let queued_behind = writer.submit(vec![Write::put("doomed2", "v")]);
    let outcome = tokio::time::timeout(deadline + Duration::from_secs(10), doomed).await??;
    let took = killed_at.elapsed();
    eprintln!("writer failed {took:?} after etcd was killed (deadline {deadline:?})");
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(_))),
        "got {outcome:?}"
    );
    // Retries up to the deadline, plus at most one request timeout.
    assert!(
        took >= deadline,
        "gave up after {took:?}, before the deadline"
    );
    assert!(
        took < deadline + Duration::from_secs(2) + SLACK,
        "took {took:?}"
    );
    if let Ok(behind) = queued_behind {
        assert!(matches!(behind.await?, Err(StoreError::Unavailable(_))));
    }
    assert_eq!(
        writer.submit(vec![Write::put("after", "v")]).err(),
        Some(StoreError::Closed),
        "the writer is fail-stop"
    );

    etcd.spawn().await?;
    let store = etcd.store().await?;
    let writer = store.writer(16);
    let outcome = writer.submit(vec![Write::put("after-restart", "v")])?;
    tokio::time::timeout(Duration::from_secs(30), outcome).await???;
    let acked = store.load("acked/").await?;
    assert_eq!(acked.len(), 50, "nothing acknowledged was lost");
    assert_eq!(store.get("after-restart").await?, Some(b"v".to_vec()));
    Ok(())
}

// ---- election ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_first_leads_second_waits_and_takes_over_on_resign() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let client = etcd.client().await?;
    assert_eq!(
        election::current_leader(client.clone(), "/marathon/leader").await?,
        None,
        "nobody leads before any campaign"
    );
    let first = election::campaign(
        client.clone(),
        &election_config("a:8080"),
        std::future::pending::<()>(),
    )
    .await?
    .context("first candidate elected")?;
    assert_eq!(first.value(), "a:8080");
    assert_eq!(
        election::current_leader(client.clone(), "/marathon/leader").await?,
        Some("a:8080".to_owned())
    );

    let second_client = client.clone();
    let second = tokio::spawn(async move {
        election::campaign(
            second_client,
            &election_config("b:8080"),
            std::future::pending::<()>(),
        )
        .await
    });
    // The second waits while the first holds it (several TTLs, so keep-alives work).
    tokio::time::sleep(TTL * 2).await;
    assert!(!second.is_finished(), "second candidate waits");
    assert!(!*first.lost().borrow(), "first still leads");

    let lost = first.lost();
    first.resign().await?;
    assert!(*lost.borrow(), "resigning marks leadership lost");
    let second = tokio::time::timeout(Duration::from_secs(20), second)
        .await???
        .context("second elected")?;
    assert_eq!(
        election::current_leader(client.clone(), "/marathon/leader").await?,
        Some("b:8080".to_owned())
    );
    assert!(!*second.lost().borrow());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_lease_revoked_from_outside_sets_lost_within_ttl() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let mut client = etcd.client().await?;
    let leader = elect(&client, "a:8080").await?;
    let mut lost = leader.lost();
    client.lease_revoke(leader.lease_id()).await?;
    let revoked_at = Instant::now();
    tokio::time::timeout(TTL + SLACK, lost.wait_for(|l| *l)).await??;
    let took = revoked_at.elapsed();
    eprintln!("lost {took:?} after the lease was revoked");
    assert!(took <= TTL + SLACK);
    assert_eq!(
        election::current_leader(client.clone(), "/marathon/leader").await?,
        None
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_key_deleted_from_outside_sets_lost() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let mut client = etcd.client().await?;
    let leader = elect(&client, "a:8080").await?;
    let mut lost = leader.lost();
    client.delete(leader.key(), None).await?;
    tokio::time::timeout(SLACK, lost.wait_for(|l| *l)).await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_frozen_etcd_makes_the_leader_observe_lost() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let client = etcd.client().await?;
    let leader = elect(&client, "a:8080").await?;
    let mut lost = leader.lost();
    // Keep-alives work while etcd runs.
    tokio::time::sleep(TTL * 2).await;
    assert!(!*lost.borrow(), "no false loss while etcd answers");

    etcd.signal("STOP")?;
    let stopped_at = Instant::now();
    let observed = tokio::time::timeout(TTL + SLACK, lost.wait_for(|l| *l)).await;
    let took = stopped_at.elapsed();
    etcd.signal("CONT")?;
    observed??;
    eprintln!("lost {took:?} after etcd was frozen (TTL {TTL:?})");
    assert!(took <= TTL + SLACK, "lost after {took:?}");
    drop(leader);

    // After etcd resumes, the election recovers: a new candidate wins.
    let next = tokio::time::timeout(
        Duration::from_secs(30),
        election::campaign(
            client.clone(),
            &election_config("b:8080"),
            std::future::pending::<()>(),
        ),
    )
    .await??
    .context("elected after resume")?;
    assert_eq!(next.value(), "b:8080");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_stop_cancels_a_waiting_campaign() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let client = etcd.client().await?;
    let first = elect(&client, "a:8080").await?;
    let started = Instant::now();
    let second = tokio::time::timeout(
        Duration::from_secs(20),
        election::campaign(
            client.clone(),
            &election_config("b:8080"),
            tokio::time::sleep(Duration::from_secs(1)),
        ),
    )
    .await??;
    assert!(second.is_none(), "stop fired before election");
    assert!(started.elapsed() >= Duration::from_secs(1));
    // The withdrawn candidacy leaves no key behind.
    eventually(SLACK, "only the leader's key remains", || {
        let mut client = client.clone();
        async move {
            let keys = client
                .get(
                    "/marathon/leader/",
                    Some(etcd_client::GetOptions::new().with_prefix()),
                )
                .await?;
            Ok(keys.kvs().len() == 1)
        }
    })
    .await?;
    assert!(!*first.lost().borrow());
    assert_eq!(
        election::current_leader(client.clone(), "/marathon/leader").await?,
        Some("a:8080".to_owned())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_store_stops_writing_once_its_leadership_is_gone() -> anyhow::Result<()> {
    let etcd = etcd_or_skip!();
    let store = etcd.store().await?;
    let mut client = etcd.client().await?;
    let leader = elect(&client, "a:8080").await?;
    let fenced = store.fenced(leader.key());
    fenced.write(vec![Write::put("apps/x", "1")]).await?;
    client.lease_revoke(leader.lease_id()).await?;
    let refused = fenced.write(vec![Write::put("apps/x", "2")]).await;
    assert_eq!(refused, Err(marathon_store_fenced()));
    // Through the writer too, and the value is the one written while leading.
    let writer = fenced.writer(4);
    let outcome = writer.submit(vec![Write::put("apps/x", "3")])?.await?;
    assert_eq!(outcome, Err(marathon_store_fenced()));
    assert_eq!(store.get("apps/x").await?, Some(b"1".to_vec()));
    Ok(())
}

fn marathon_store_fenced() -> agora_marathon::store::StoreError {
    agora_marathon::store::StoreError::Fenced
}
