//! etcd's require-leader (`hasleader` metadata, clientv3's
//! `WithRequireLeader`): on a member that lost its leader such calls fail
//! with "etcdserver: no leader" and such streams end with it, so the
//! client moves on; calls and streams without it are served as before.

use std::time::Duration;

use agora_raft::{KvHost, LogStore};
use etcd_client::{Client, ConnectOptions, GetOptions, WatchOptions};
use tokio::time::timeout;

use crate::harness::{eventually, watch};
use crate::raft_harness::RaftCluster;

const WAIT: Duration = Duration::from_secs(10);

fn no_leader(error: &etcd_client::Error) -> bool {
    error.to_string().contains("etcdserver: no leader")
}

/// Kills the leader of a two-member group: the one left never has a
/// leader again. Leaves one member.
pub(crate) async fn a_member_without_a_leader_ends_require_leader_streams<
    L: LogStore + Send + 'static,
    S: KvHost,
>(
    cluster: &mut RaftCluster<L, S>,
) {
    let leader = cluster.wait_for_leader().await;
    let others = cluster.others(leader);
    assert_eq!(others.len(), 1, "runs on a group of two");
    let lone = others[0];
    let strict_options = ConnectOptions::new().with_require_leader(true);
    let mut strict = Client::connect([cluster.endpoint(lone)], Some(strict_options))
        .await
        .unwrap();
    let mut plain = cluster.client(lone).await;
    let put = strict.put("rl/a", "1", None).await.unwrap();
    // From after the put: the leader acknowledged it, but this follower
    // may apply it only after the watches are created.
    let after = put.header().map_or(0, |h| h.revision()) + 1;
    let prefix = || Some(WatchOptions::new().with_prefix().with_start_revision(after));
    let (mut strict_stream, _) = watch(&mut strict, "rl/", prefix()).await;
    let (mut plain_stream, _) = watch(&mut plain, "rl/", prefix()).await;

    drop(cluster.kill(leader).await);
    let serializable = || Some(GetOptions::new().with_serializable());
    // Once the member knows no leader, require-leader calls are refused...
    eventually(WAIT, || {
        let mut strict = strict.clone();
        async move {
            match strict.get("rl/a", serializable()).await {
                Ok(_) => false,
                Err(error) => {
                    assert!(no_leader(&error), "{error}");
                    true
                }
            }
        }
    })
    .await;
    // ...and after the grace, the require-leader watch ends with etcd's error.
    let ended = timeout(WAIT, strict_stream.message()).await.unwrap();
    assert!(
        matches!(&ended, Err(error) if no_leader(error)),
        "{ended:?}"
    );
    // Without the requirement the member still serves what it can alone:
    // a serializable read, and a watch that stays open.
    let got = plain.get("rl/a", serializable()).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"1");
    assert!(
        timeout(Duration::from_secs(1), plain_stream.message())
            .await
            .is_err(),
        "the plain watch stayed open and quiet"
    );
}
