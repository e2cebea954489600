//! The internal Forward service shares the etcd port with clients, so
//! anyone can call it: what it takes must be no more than a client could
//! ask through the etcd API, and nothing it is sent can crash the member.

use std::time::Duration;

use agora_etcd::pb::forward::ForwardRequest;
use agora_etcd::pb::forward::forward_client::ForwardClient;
use agora_kv::testkit::nested_txn_bytes;
use agora_kv::{Command, MAX_TXN_DEPTH};
use agora_raft::{KvHost, LogStore};
use tokio::time::timeout;

use crate::raft_harness::RaftCluster;

const WAIT: Duration = Duration::from_secs(10);

/// `Forwarded::Apply(command)` as a member encodes it: the variant's tag
/// (the first) before the command's own bytes.
fn forwarded_apply(command_bytes: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0];
    bytes.extend_from_slice(command_bytes);
    bytes
}

pub(crate) async fn forged_forwards_are_refused<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) {
    let leader = cluster.wait_for_leader().await;
    let url = format!("http://{}", cluster.endpoint(leader));
    let mut forward = ForwardClient::connect(url).await.unwrap();
    let promote = postcard::to_stdvec(&Command::LeasePromote { now_ms: 0 }).unwrap();
    let expire = postcard::to_stdvec(&Command::ExpireLeases {
        ids: vec![1],
        now_ms: 0,
    })
    .unwrap();
    // 200,000 levels in under a megabyte: decoding them recursively
    // would overflow a worker's stack and abort the whole master.
    let deep = nested_txn_bytes(200_000);
    for (what, command, says) in [
        ("LeasePromote", promote, "only the leader proposes"),
        ("ExpireLeases", expire, "only the leader proposes"),
        ("deep txn", deep, "nested deeper"),
    ] {
        let status = timeout(
            WAIT,
            forward.apply(ForwardRequest {
                command: forwarded_apply(&command),
            }),
        )
        .await
        .unwrap()
        .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status:?}"
        );
        assert!(status.message().contains(says), "{what}: {status:?}");
    }
    // Nested as deep as allowed, a txn is decoded and applied.
    let allowed = nested_txn_bytes(MAX_TXN_DEPTH);
    let answer = timeout(
        WAIT,
        forward.apply(ForwardRequest {
            command: forwarded_apply(&allowed),
        }),
    )
    .await
    .unwrap();
    assert!(answer.is_ok(), "{answer:?}");
    // Every member still serves.
    for id in cluster.nodes.keys() {
        let mut client = cluster.client(*id).await;
        let key = format!("after-forgeries-{id}");
        client.put(key.as_str(), "ok", None).await.unwrap();
    }
}
