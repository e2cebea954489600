//! The recorder without a server: it must end on its own, with nothing
//! recorded, since no request can have reached anybody.

use std::time::{Duration, Instant};

use agora_lincheck::{RecordConfig, check, record};

#[tokio::test]
async fn an_unreachable_cluster_gives_an_empty_history_by_the_deadline() {
    // Port 1 on loopback: nothing listens there, connects are refused.
    let endpoints = vec![
        "http://127.0.0.1:1".to_string(),
        "http://127.0.0.1:1".to_string(),
    ];
    let config = RecordConfig {
        clients: 4,
        max_duration: Duration::from_millis(700),
        op_timeout: Duration::from_millis(200),
        ..RecordConfig::default()
    };
    let started = Instant::now();
    let history = record(&endpoints, config).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(history.ops.is_empty(), "{history:?}");
    assert!(check(&history).is_linearizable());
}

#[tokio::test]
async fn no_endpoints_give_an_empty_history() {
    assert!(record(&[], RecordConfig::default()).await.ops.is_empty());
}
