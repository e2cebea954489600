use std::time::Duration;

use agora_model::{FrameworkInfo, Role, StatusSource, TaskId, TaskState, TaskStatus};
use agora_proto::convert::status_to_wire;
use agora_proto::v1;

use super::*;
use crate::testing::{FakeMaster, Recording, next};

#[test]
fn master_addresses_are_normalized_or_rejected() {
    assert_eq!(
        normalize_master("127.0.0.1:5050").ok().as_deref(),
        Some("http://127.0.0.1:5050")
    );
    assert_eq!(
        normalize_master(" http://m1:5050/ ").ok().as_deref(),
        Some("http://m1:5050")
    );
    assert_eq!(
        normalize_master("[::1]:5050").ok().as_deref(),
        Some("http://[::1]:5050")
    );
    for bad in [
        "",
        "https://m:1",
        "m1",
        "m1:",
        ":5050",
        "m1:99999",
        "http://m1:5050/path",
        "ftp://m:1",
    ] {
        assert!(
            matches!(normalize_master(bad), Err(SdkError::Config(_))),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn builder_validates_masters() {
    let f = FrameworkInfo::named("t");
    assert!(matches!(
        SchedulerDriver::builder(Vec::<String>::new(), f.clone()).build(),
        Err(SdkError::Config(_))
    ));
    assert!(matches!(
        SchedulerDriver::builder(["nope"], f.clone()).build(),
        Err(SdkError::Config(_))
    ));
    let d = SchedulerDriver::builder(["127.0.0.1:1", "http://127.0.0.1:2"], f)
        .auto_acknowledge(false)
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .suppressed_roles([Role::star()])
        .build()
        .expect("valid");
    assert_eq!(d.masters, ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
    assert_eq!(d.driver().suppressed_roles(), vec![Role::star()]);
}

fn fast(masters: Vec<String>) -> SchedulerDriver {
    SchedulerDriver::builder(masters, FrameworkInfo::named("t"))
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .call_timeout(Duration::from_secs(2))
        .build()
        .expect("valid")
}

#[tokio::test]
async fn run_keeps_retrying_unreachable_masters_until_stopped() {
    struct Quiet;
    impl Scheduler for Quiet {}
    // Port 1 on loopback refuses connections at once.
    let d = fast(vec!["127.0.0.1:1".into()]);
    let handle = d.driver();
    let run = tokio::spawn(d.run(Quiet));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!run.is_finished(), "gave up on its own");
    handle.stop();
    let res = tokio::time::timeout(Duration::from_secs(5), run).await;
    assert!(matches!(res, Ok(Ok(Ok(())))), "{res:?}");
}

#[tokio::test]
async fn tries_masters_in_turn_and_resubscribes_with_the_same_id_after_a_break() {
    let (fake, addr) = FakeMaster::start(0.0).await;
    let (rec, mut rx) = Recording::new();
    // The first master is down: the driver must move on to the second.
    let d = fast(vec!["127.0.0.1:1".into(), addr]);
    let handle = d.driver();
    let run = tokio::spawn(d.run(rec));
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    assert_eq!(
        handle.framework_id().map(|f| f.to_string()).as_deref(),
        Some("fw-1")
    );
    assert!(handle.is_subscribed());
    fake.break_stream();
    assert_eq!(next(&mut rx).await, "disconnected");
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    {
        let st = fake.lock();
        let ids: Vec<String> = st
            .subscribes
            .iter()
            .map(|s| s.framework_info.clone().unwrap_or_default().framework_id)
            .collect();
        assert_eq!(
            ids,
            ["", "fw-1"],
            "re-subscription fails over the same framework"
        );
    }
    // Calls carry the new stream id (the fake refuses stale ones).
    handle
        .revive(vec![])
        .await
        .expect("revive on the new stream");
    handle.stop();
    assert!(matches!(run.await, Ok(Ok(()))));
}

#[tokio::test]
async fn missed_heartbeats_trigger_a_resubscription() {
    // 40 ms heartbeats that never come: the stream is declared dead after 200 ms.
    let (fake, addr) = FakeMaster::start(0.04).await;
    let (rec, mut rx) = Recording::new();
    let d = fast(vec![addr]);
    let handle = d.driver();
    let run = tokio::spawn(d.run(rec));
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    let t0 = tokio::time::Instant::now();
    assert_eq!(next(&mut rx).await, "disconnected");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(180),
        "declared dead after only {waited:?}"
    );
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    assert!(fake.lock().subscribes.len() >= 2);
    handle.stop();
    assert!(matches!(run.await, Ok(Ok(()))));
}

#[tokio::test]
async fn updates_with_uuid_are_acknowledged_after_the_callback() {
    let (fake, addr) = FakeMaster::start(0.0).await;
    let (rec, mut rx) = Recording::new();
    let d = fast(vec![addr]);
    let handle = d.driver();
    let run = tokio::spawn(d.run(rec));
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    let mut st = TaskStatus::new(
        TaskId::new_unchecked("t1"),
        TaskState::Running,
        StatusSource::Executor,
        1.0,
    );
    st.agent_id = Some(agora_model::AgentId::new_unchecked("a1"));
    st.uuid = Some(uuid::Uuid::new_v4());
    let mut no_uuid = st.clone();
    no_uuid.task_id = TaskId::new_unchecked("t2");
    no_uuid.uuid = None;
    for s in [&st, &no_uuid] {
        fake.push(v1::event::Event::Update(v1::event::Update {
            status: Some(status_to_wire(s)),
        }))
        .await;
    }
    assert_eq!(next(&mut rx).await, "update t1 TASK_RUNNING");
    assert_eq!(next(&mut rx).await, "update t2 TASK_RUNNING");
    fake.wait_for("the ack", |s| !s.calls.is_empty()).await;
    // Give a wrong ack for t2 a chance to show up before checking.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        fake.lock().calls,
        [r#"acknowledge stream-1 ("t1", "a1", 16)"#]
    );
    handle.stop();
    assert!(matches!(run.await, Ok(Ok(()))));
}

/// An update with a uuid, for acknowledgement tests.
fn running_update(task: &str) -> TaskStatus {
    let mut st = TaskStatus::new(
        TaskId::new_unchecked(task),
        TaskState::Running,
        StatusSource::Executor,
        1.0,
    );
    st.agent_id = Some(agora_model::AgentId::new_unchecked("a1"));
    st.uuid = Some(uuid::Uuid::new_v4());
    st
}

#[tokio::test]
async fn a_full_ack_queue_stops_reading_events_and_drops_no_ack() {
    const LIMIT: usize = 10;
    const UPDATES: usize = 60;
    let (fake, addr) = FakeMaster::start(0.0).await;
    fake.lock().hold_acks = true;
    let (rec, mut rx) = Recording::new();
    let d = SchedulerDriver::builder([addr], FrameworkInfo::named("t"))
        .max_unacknowledged(LIMIT)
        .build()
        .expect("valid");
    let handle = d.driver();
    let run = tokio::spawn(d.run(rec));
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    for i in 0..UPDATES {
        fake.push(v1::event::Event::Update(v1::event::Update {
            status: Some(status_to_wire(&running_update(&format!("t{i}")))),
        }))
        .await;
    }
    // The first updates go out one batch each while batches are free; then
    // the queue fills to LIMIT and the driver reads no further.
    let mut seen = 0;
    while tokio::time::timeout(Duration::from_millis(200), rx.recv())
        .await
        .is_ok_and(|r| r.is_some())
    {
        seen += 1;
    }
    assert!(seen < UPDATES, "read {seen} updates with every ack held");
    assert!(
        seen <= LIMIT + ACK_BATCHES_IN_FLIGHT,
        "read {seen} updates, past the limit"
    );
    fake.lock().hold_acks = false;
    fake.wait_for("every ack", |s| s.calls.len() == UPDATES)
        .await;
    let mut acked: Vec<String> = fake.lock().calls.clone();
    acked.sort();
    acked.dedup();
    assert_eq!(acked.len(), UPDATES, "an update acknowledged twice");
    handle.stop();
    assert!(matches!(run.await, Ok(Ok(()))));
}

#[tokio::test]
async fn manual_ack_mode_sends_no_acks() {
    let (fake, addr) = FakeMaster::start(0.0).await;
    let (rec, mut rx) = Recording::new();
    let d = SchedulerDriver::builder([addr], FrameworkInfo::named("t"))
        .auto_acknowledge(false)
        .build()
        .expect("ok");
    let handle = d.driver();
    let run = tokio::spawn(d.run(rec));
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    let mut st = TaskStatus::new(
        TaskId::new_unchecked("t1"),
        TaskState::Finished,
        StatusSource::Executor,
        1.0,
    );
    st.uuid = Some(uuid::Uuid::new_v4());
    fake.push(v1::event::Event::Update(v1::event::Update {
        status: Some(status_to_wire(&st)),
    }))
    .await;
    assert_eq!(next(&mut rx).await, "update t1 TASK_FINISHED");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(fake.lock().calls.is_empty());
    handle.acknowledge(&st).await.expect("manual ack");
    assert_eq!(fake.lock().calls.len(), 1);
    handle.stop();
    assert!(matches!(run.await, Ok(Ok(()))));
}

#[tokio::test]
async fn error_event_is_fatal() {
    let (fake, addr) = FakeMaster::start(0.0).await;
    let (rec, mut rx) = Recording::new();
    let run = tokio::spawn(fast(vec![addr]).run(rec));
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    fake.push(v1::event::Event::Error(v1::event::Error {
        message: "framework removed".into(),
    }))
    .await;
    assert_eq!(next(&mut rx).await, "error framework removed");
    let res = tokio::time::timeout(Duration::from_secs(5), run).await;
    assert!(
        matches!(res, Ok(Ok(Err(SdkError::Fatal(ref m)))) if m == "framework removed"),
        "{res:?}"
    );
}

#[tokio::test]
async fn refused_or_erroring_subscriptions_are_fatal() {
    let (fake, addr) = FakeMaster::start(0.0).await;
    fake.lock().refuse = Some(tonic::Status::invalid_argument(
        "framework_info.name: must not be empty",
    ));
    let (rec, mut rx) = Recording::new();
    let res = tokio::time::timeout(Duration::from_secs(5), fast(vec![addr.clone()]).run(rec)).await;
    assert!(matches!(res, Ok(Err(SdkError::Fatal(_)))), "{res:?}");
    assert!(next(&mut rx).await.starts_with("error framework_info.name"));

    let (fake, addr) = FakeMaster::start(0.0).await;
    fake.lock().error_on_subscribe = Some("failover timeout passed".into());
    let (rec, mut rx) = Recording::new();
    let res = tokio::time::timeout(Duration::from_secs(5), fast(vec![addr]).run(rec)).await;
    assert!(matches!(res, Ok(Err(SdkError::Fatal(_)))), "{res:?}");
    assert_eq!(next(&mut rx).await, "error failover timeout passed");
}

#[tokio::test]
async fn a_subscription_refused_for_a_passing_reason_is_retried() {
    let (fake, addr) = FakeMaster::start(0.0).await;
    fake.lock().refuse = Some(tonic::Status::failed_precondition("not the leader"));
    let (rec, mut rx) = Recording::new();
    let d = fast(vec![addr]);
    let handle = d.driver();
    let run = tokio::spawn(d.run(rec));
    fake.wait_for("a second SUBSCRIBE after a refusal", |s| s.refused >= 2)
        .await;
    assert!(!run.is_finished(), "gave up on a retryable refusal");
    fake.lock().refuse = None;
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    handle.stop();
    assert!(matches!(run.await, Ok(Ok(()))));
}

#[tokio::test]
async fn suppression_survives_resubscription_and_teardown_stops() {
    let (fake, addr) = FakeMaster::start(0.0).await;
    let (rec, mut rx) = Recording::new();
    let d = fast(vec![addr]);
    let handle = d.driver();
    let run = tokio::spawn(d.run(rec));
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    handle.suppress(vec![]).await.expect("suppress");
    assert_eq!(handle.suppressed_roles(), vec![Role::star()]);
    fake.break_stream();
    assert_eq!(next(&mut rx).await, "disconnected");
    assert_eq!(next(&mut rx).await, "subscribed fw-1");
    assert_eq!(fake.lock().subscribes[1].suppressed_roles, ["*"]);
    handle.revive(vec![]).await.expect("revive");
    assert!(handle.suppressed_roles().is_empty());
    // The fake, like the master, sends ERROR before answering TEARDOWN: that
    // must end `run` with Ok and without an error() callback.
    handle.teardown().await.expect("teardown");
    let res = tokio::time::timeout(Duration::from_secs(5), run).await;
    assert!(matches!(res, Ok(Ok(Ok(())))), "{res:?}");
    assert!(rx.try_recv().is_err(), "unexpected callback after teardown");
    let calls = fake.lock().calls.clone();
    assert_eq!(
        calls,
        [
            r#"suppress stream-1 []"#,
            r#"revive stream-2 []"#,
            "teardown stream-2 ()"
        ]
    );
}
