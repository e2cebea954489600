//! Requests etcd refuses are refused with etcd's errors, change nothing,
//! and leave the server serving.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, Error, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
};
use tonic::Code;

use agora_etcd::{LocalConfig, ServerConfig};

use crate::harness::{TestServer, watch};

/// The gRPC status of a failed call.
fn status(error: Error) -> (Code, String) {
    match error {
        Error::GRpcStatus(status) => (status.code(), status.message().to_string()),
        other => panic!("expected a gRPC status, got {other}"),
    }
}

async fn revision(client: &mut Client) -> i64 {
    client
        .get("any", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision()
}

#[tokio::test]
async fn oversize_requests_are_refused_with_etcds_error() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let before = revision(&mut client).await;
    // Over the 1.5 MiB request limit, within gRPC's message limit.
    let big = vec![b'x'; 1_700_000];
    let refused = client.put("big", big, None).await.unwrap_err();
    assert_eq!(
        status(refused),
        (
            Code::InvalidArgument,
            "etcdserver: request is too large".to_string()
        )
    );
    // Over gRPC's own message limit: refused by the transport (tonic says
    // OutOfRange where grpc-go says ResourceExhausted); the connection lives.
    let huge = vec![b'x'; 3_000_000];
    let (code, _) = status(client.put("huge", huge, None).await.unwrap_err());
    assert_eq!(code, Code::OutOfRange);
    assert_eq!(revision(&mut client).await, before);
    assert!(client.get("big", None).await.unwrap().kvs().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn too_many_txn_ops_unknown_lease_and_empty_key() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let before = revision(&mut client).await;
    let ops: Vec<_> = (0..129)
        .map(|i| TxnOp::put(format!("k{i}"), "v", None))
        .collect();
    let refused = client.txn(Txn::new().and_then(ops)).await.unwrap_err();
    assert_eq!(
        status(refused),
        (
            Code::InvalidArgument,
            "etcdserver: too many operations in txn request".to_string()
        )
    );
    let refused = client
        .put("k", "v", Some(PutOptions::new().with_lease(0x1234)))
        .await
        .unwrap_err();
    assert_eq!(
        status(refused),
        (
            Code::NotFound,
            "etcdserver: requested lease not found".to_string()
        )
    );
    let refused = client.lease_revoke(0x1234).await.unwrap_err();
    assert_eq!(status(refused).1, "etcdserver: requested lease not found");
    let refused = client.put("", "v", None).await.unwrap_err();
    assert_eq!(
        status(refused),
        (
            Code::InvalidArgument,
            "etcdserver: key is not provided".to_string()
        )
    );
    assert_eq!(revision(&mut client).await, before);
    server.shutdown().await;
}

/// Txns are checked as etcd 3.4's API layer checks them, before anything
/// runs: compares name a key, the ops of the branch that would not run are
/// checked too, and a nested txn may have only what its parent's longest
/// list left of the 128 operations.
#[tokio::test]
async fn txns_are_checked_as_etcd_checks_them() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let before = revision(&mut client).await;
    let invalid = |message: &str| (Code::InvalidArgument, message.to_string());
    let empty_key = invalid("etcdserver: key is not provided");
    let compare = Compare::version("", CompareOp::Equal, 0);
    let txn = Txn::new()
        .when([compare])
        .and_then([TxnOp::put("a", "1", None)]);
    assert_eq!(status(client.txn(txn).await.unwrap_err()), empty_key);
    // No compares: the success branch runs; the failure branch is checked.
    let ignore_value = PutOptions::new().with_ignore_value();
    let ignore_lease = PutOptions::new().with_ignore_lease().with_lease(5);
    let not_run = [
        (TxnOp::put("", "1", None), empty_key.clone()),
        (TxnOp::get("", None), empty_key.clone()),
        (TxnOp::delete("", None), empty_key.clone()),
        (
            TxnOp::put("b", "1", Some(ignore_value)),
            invalid("etcdserver: value is provided"),
        ),
        (
            TxnOp::put("b", "", Some(ignore_lease)),
            invalid("etcdserver: lease is provided"),
        ),
    ];
    for (op, refusal) in not_run {
        let txn = Txn::new()
            .and_then([TxnOp::put("a", "1", None)])
            .or_else([op]);
        assert_eq!(status(client.txn(txn).await.unwrap_err()), refusal);
    }
    // Two puts and a nested txn: 128 - 3 = 125 ops left for the nested one.
    let puts = |prefix: &str, n: usize| -> Vec<TxnOp> {
        let put = |i| TxnOp::put(format!("{prefix}{i}"), "v", None);
        (0..n).map(put).collect()
    };
    let nesting = |nested: usize| {
        let mut ops = puts("outer/", 2);
        ops.push(TxnOp::txn(Txn::new().and_then(puts("inner/", nested))));
        Txn::new().and_then(ops)
    };
    let too_many = invalid("etcdserver: too many operations in txn request");
    assert_eq!(
        status(client.txn(nesting(126)).await.unwrap_err()),
        too_many
    );
    assert_eq!(revision(&mut client).await, before, "nothing ran");
    assert!(client.txn(nesting(125)).await.unwrap().succeeded());
    server.shutdown().await;
}

#[tokio::test]
async fn compacted_and_future_revisions() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for value in ["a", "b", "c"] {
        client.put("k", value, None).await.unwrap();
    }
    client.compact(3, None).await.unwrap();
    let refused = client
        .get("k", Some(GetOptions::new().with_revision(1)))
        .await
        .unwrap_err();
    assert_eq!(
        status(refused),
        (
            Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted".to_string()
        )
    );
    let refused = client
        .get("k", Some(GetOptions::new().with_revision(99)))
        .await
        .unwrap_err();
    assert_eq!(
        status(refused).1,
        "etcdserver: mvcc: required revision is a future revision"
    );
    let refused = client.compact(2, None).await.unwrap_err();
    assert_eq!(status(refused).0, Code::OutOfRange);
    assert_eq!(client.get("k", None).await.unwrap().kvs()[0].value(), b"c");
    server.shutdown().await;
}

/// A client that stops reading its watch stream is cancelled with a reason
/// once its buffer is full, instead of making the server buffer forever.
#[tokio::test]
async fn a_slow_watcher_is_cancelled_with_a_reason() {
    let local = LocalConfig {
        watcher_buffer: 8,
        ..LocalConfig::default()
    };
    let config = ServerConfig {
        stream_buffer: 1,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(
        local,
        config,
        std::sync::Arc::new(agora_etcd::SystemClock::new()),
    )
    .await;
    let mut client = server.client().await;
    let (mut stream, _) = watch(
        &mut client,
        "slow/",
        Some(WatchOptions::new().with_prefix()),
    )
    .await;
    // Enough bytes to fill HTTP/2's flow-control window while nobody reads.
    let value = vec![b'v'; 16 * 1024];
    for i in 0..200 {
        client
            .put(format!("slow/{i}"), value.clone(), None)
            .await
            .unwrap();
    }
    let mut cancelled = None;
    while cancelled.is_none() {
        let response = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if response.canceled() {
            cancelled = Some(response.cancel_reason().to_string());
        }
    }
    assert!(cancelled.unwrap().contains("too slow"));
    // The server is fine and the data is all there.
    let count = client
        .get(
            "slow/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap()
        .count();
    assert_eq!(count, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn election_errors_are_etcds() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (code, message) = status(client.leader("nobody").await.unwrap_err());
    assert_eq!(
        (code, message.as_str()),
        (Code::Unknown, "election: no leader")
    );

    let lease = client.lease_grant(60, None).await.unwrap().id();
    let won = client.campaign("e", "v", lease).await.unwrap();
    let stale = won.leader().unwrap().clone();
    client
        .resign(Some(
            etcd_client::ResignOptions::new().with_leader(stale.clone()),
        ))
        .await
        .unwrap();
    let proclaim = etcd_client::ProclaimOptions::new().with_leader(stale.clone());
    let (_, message) = status(client.proclaim("late", Some(proclaim)).await.unwrap_err());
    assert_eq!(message, "election: not leader");
    // A campaign on a lease that does not exist fails like a put would.
    let (code, _) = status(client.campaign("e", "v", 0x777).await.unwrap_err());
    assert_eq!(code, Code::NotFound);
    assert!(
        client
            .get(stale.key(), None)
            .await
            .unwrap()
            .kvs()
            .is_empty()
    );
    server.shutdown().await;
}
