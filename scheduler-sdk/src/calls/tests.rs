use super::*;

fn driver() -> Driver {
    Driver::new(
        FrameworkInfo::named("t"),
        BTreeSet::new(),
        Duration::from_secs(1),
    )
}

#[tokio::test]
async fn calls_before_subscription_fail_fast_without_io() {
    let d = driver();
    let err = d
        .decline(vec![OfferId::new_unchecked("o")], None)
        .await
        .expect_err("no session");
    assert!(matches!(err, SdkError::NotSubscribed(_)), "{err:?}");
    assert!(!d.is_subscribed());
    assert_eq!(d.framework_id(), None);
    // Nothing to acknowledge: Ok without a session.
    let st = TaskStatus::new(
        TaskId::new_unchecked("t"),
        agora_model::TaskState::Running,
        Default::default(),
        0.0,
    );
    assert!(d.acknowledge(&st).await.is_ok());
}

#[tokio::test]
async fn after_a_lost_session_calls_say_disconnected() {
    let d = driver();
    let channel = Channel::from_static("http://127.0.0.1:9").connect_lazy();
    let fid = FrameworkId::new_unchecked("f1");
    d.install(Session {
        client: SchedulerClient::new(channel),
        framework_id: fid.clone(),
        stream_id: "s".into(),
        refused: std::sync::Arc::new(tokio::sync::watch::channel(None).0),
    });
    assert!(d.is_subscribed());
    assert_eq!(d.framework_id(), Some(fid.clone()));
    d.clear_session();
    let err = d.revive(vec![]).await.expect_err("no session");
    assert!(matches!(err, SdkError::Disconnected(_)), "{err:?}");
    // The id survives for the re-subscription.
    let req = d.subscribe_request();
    assert_eq!(
        req.framework_info.map(|f| f.framework_id),
        Some("f1".to_string())
    );
}

#[test]
fn stop_is_observable_and_idempotent() {
    let d = driver();
    let rx = d.stop_receiver();
    assert!(!d.is_stopped());
    d.stop();
    d.stop();
    assert!(d.is_stopped());
    assert!(*rx.borrow());
}
