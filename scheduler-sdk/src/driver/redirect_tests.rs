//! Standby masters answering "not the leading master" over real sockets:
//! fake standbys (the FakeMaster refusing with `not_leader_status`) in
//! front of a fake leader.
use std::time::Duration;

use agora_model::FrameworkInfo;
use agora_proto::leader::MAX_REDIRECT_HOPS;
use agora_proto::not_leader_status;

use super::*;
use crate::testing::{FakeMaster, Recording, next};

/// A driver whose backoff is far longer than any wait the tests allow,
/// so a test that passes did not wait for it.
fn slow_backoff(masters: Vec<String>) -> SchedulerDriver {
    SchedulerDriver::builder(masters, FrameworkInfo::named("t"))
        .backoff(Duration::from_secs(30), Duration::from_secs(60))
        .call_timeout(Duration::from_secs(2))
        .build()
        .expect("valid")
}

/// A fake master that refuses SUBSCRIBE as a standby naming `leader`.
async fn standby(leader: Option<&str>) -> (FakeMaster, String) {
    let (fake, addr) = FakeMaster::start(0.0).await;
    fake.lock().refuse = Some(not_leader_status(leader));
    (fake, addr)
}

#[tokio::test]
async fn a_standby_redirects_to_the_leader_at_once_even_one_not_listed() {
    let (leader, leader_addr) = FakeMaster::start(0.0).await;
    let (standby, standby_addr) = standby(Some(&leader_addr)).await;
    let (rec, mut rx) = Recording::new();
    // Only the standby is configured; the leader is known from its hint.
    let d = slow_backoff(vec![standby_addr]);
    let handle = d.driver();
    let t0 = tokio::time::Instant::now();
    let run = tokio::spawn(d.run(rec));
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}: waited for a backoff",
        t0.elapsed()
    );
    assert_eq!(standby.lock().refused, 1);
    assert_eq!(leader.lock().subscribes.len(), 1);
    // Calls go to the leader.
    handle.revive(vec![]).await.expect("revive at the leader");
    assert_eq!(leader.lock().calls.len(), 1);
    handle.stop();
    assert!(matches!(run.await, Ok(Ok(()))));
}

#[tokio::test]
async fn hints_pointing_at_each_other_back_off_instead_of_spinning() {
    let (a, a_addr) = FakeMaster::start(0.0).await;
    let (b, b_addr) = FakeMaster::start(0.0).await;
    a.lock().refuse = Some(not_leader_status(Some(&b_addr)));
    b.lock().refuse = Some(not_leader_status(Some(&a_addr)));
    let (rec, mut rx) = Recording::new();
    let d = SchedulerDriver::builder(vec![a_addr], FrameworkInfo::named("t"))
        .backoff(Duration::from_millis(200), Duration::from_millis(400))
        .build()
        .expect("valid");
    let handle = d.driver();
    let run = tokio::spawn(d.run(rec));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tries = a.lock().refused + b.lock().refused;
    // One round is 1 + MAX_REDIRECT_HOPS tries, then a backoff of at least
    // 100 ms: at most ~10 rounds in a second. A hot loop makes thousands.
    let per_round = 1 + MAX_REDIRECT_HOPS as usize;
    assert!(
        tries >= per_round && tries <= 12 * per_round,
        "{tries} tries in 1 s"
    );
    // Once one of them leads, the driver gets there.
    b.lock().refuse = None;
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    handle.stop();
    assert!(matches!(run.await, Ok(Ok(()))));
}

#[tokio::test]
async fn a_call_refused_by_a_demoted_master_resubscribes_at_the_named_leader() {
    let (old, old_addr) = FakeMaster::start(0.0).await;
    let (new, new_addr) = FakeMaster::start(0.0).await;
    // The new leader is still starting: it refuses without a hint.
    new.lock().refuse = Some(tonic::Status::unavailable("starting"));
    let (rec, mut rx) = Recording::new();
    let d = SchedulerDriver::builder(vec![old_addr], FrameworkInfo::named("t"))
        .backoff(Duration::from_millis(100), Duration::from_millis(200))
        .call_timeout(Duration::from_secs(30))
        .build()
        .expect("valid");
    let handle = d.driver();
    let run = tokio::spawn(d.run(rec));
    assert_eq!(next(&mut rx).await, "subscribed fw-1");

    // The old leader loses leadership but keeps the stream open.
    {
        let mut st = old.lock();
        st.refuse = Some(not_leader_status(Some(&new_addr)));
        st.refuse_calls = Some(not_leader_status(Some(&new_addr)));
    }
    let err = handle.revive(vec![]).await.expect_err("refused");
    assert!(matches!(err, SdkError::Disconnected(_)), "{err:?}");
    assert_eq!(next(&mut rx).await, "disconnected");

    // While re-subscribing, calls fail at once with Disconnected.
    let t0 = tokio::time::Instant::now();
    let err = handle.decline(vec![], None).await.expect_err("no session");
    assert!(matches!(err, SdkError::Disconnected(_)), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());

    new.wait_for("a try at the new leader", |s| s.refused >= 1)
        .await;
    new.lock().refuse = None;
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    let ids: Vec<String> = new
        .lock()
        .subscribes
        .iter()
        .map(|s| s.framework_info.clone().unwrap_or_default().framework_id)
        .collect();
    assert_eq!(ids, ["fw-1"], "fails over the same framework");
    handle
        .revive(vec![])
        .await
        .expect("revive at the new leader");
    handle.stop();
    assert!(matches!(run.await, Ok(Ok(()))));
}

#[tokio::test]
async fn a_standby_without_a_hint_and_a_dead_master_are_walked_past() {
    let (leader, leader_addr) = FakeMaster::start(0.0).await;
    let (_standby, standby_addr) = standby(None).await;
    let (rec, mut rx) = Recording::new();
    let d = SchedulerDriver::builder(
        vec!["127.0.0.1:1".to_string(), standby_addr, leader_addr],
        FrameworkInfo::named("t"),
    )
    .backoff(Duration::from_millis(5), Duration::from_millis(20))
    .build()
    .expect("valid");
    let handle = d.driver();
    let run = tokio::spawn(d.run(rec));
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    assert_eq!(leader.lock().subscribes.len(), 1);
    handle.stop();
    assert!(matches!(run.await, Ok(Ok(()))));
}
