//! The Maintenance calls operators use on a group: HashKV to compare the
//! members' keyspaces (`etcdctl endpoint hashkv`), MoveLeader to hand
//! leadership over before restarting the leader (`etcdctl move-leader`).

use std::collections::BTreeMap;
use std::time::Duration;

use agora_raft::{KvHost, LogStore};

use crate::harness::eventually;
use crate::raft_harness::RaftCluster;

const WAIT: Duration = Duration::from_secs(10);

/// Each member's (header revision, hash).
async fn hashes<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) -> BTreeMap<u64, (i64, u32)> {
    let mut hashes = BTreeMap::new();
    for id in cluster.nodes.keys() {
        let mut client = cluster.client(*id).await;
        let hashed = client.hash_kv(0).await.unwrap();
        let revision = hashed.header().unwrap().revision();
        hashes.insert(*id, (revision, hashed.hash()));
    }
    hashes
}

/// HashKV at `revision` on `client`'s member, once it has applied that far.
async fn eventually_hash(client: &mut etcd_client::Client, revision: i64) -> u32 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match client.hash_kv(revision).await {
            Ok(hashed) => return hashed.hash(),
            Err(error) if tokio::time::Instant::now() < deadline => {
                assert!(error.to_string().contains("future revision"), "{error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("HashKV at {revision}: {error}"),
        }
    }
}

pub(crate) async fn hashes_agree_and_leadership_moves<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) {
    let leader = cluster.wait_for_leader().await;
    let target = cluster.others(leader)[0];
    let mut on_leader = cluster.client(leader).await;
    let before = on_leader.put("mo/a", "1", None).await.unwrap();
    let revision = before.header().unwrap().revision();
    // Once every member applied as far, all hash alike (the leader's
    // duties may write meanwhile: compare at one revision).
    eventually(WAIT, || async {
        let hashes = hashes(cluster).await;
        let first = hashes.values().next().copied();
        hashes
            .values()
            .all(|h| Some(*h) == first && h.0 >= revision)
    })
    .await;
    let (_, hash_before) = hashes(cluster).await[&leader];
    on_leader.put("mo/a", "2", None).await.unwrap();
    let (after, hash_after) = hashes(cluster).await[&leader];
    assert_ne!(hash_before, hash_after, "a write changes the hash");
    // At a past revision, every member answers the hash it had then.
    on_leader.put("mo/c", "1", None).await.unwrap();
    let at = on_leader.hash_kv(after).await.unwrap();
    assert_eq!(at.hash(), hash_after);
    assert_ne!(hashes(cluster).await[&leader].1, hash_after);
    for id in cluster.others(leader) {
        let mut client = cluster.client(id).await;
        let hashed = eventually_hash(&mut client, after).await;
        assert_eq!(hashed, hash_after, "member {id} at revision {after}");
    }
    let future = on_leader.hash_kv(i64::MAX).await.unwrap_err();
    assert!(future.to_string().contains("future revision"), "{future}");

    let mut on_target = cluster.client(target).await;
    let refused = on_target.move_leader(target).await.unwrap_err();
    assert!(
        refused.to_string().contains("etcdserver: not leader"),
        "{refused}"
    );
    let refused = on_leader.move_leader(42).await.unwrap_err();
    assert!(
        refused.to_string().contains("bad leader transferee"),
        "{refused}"
    );
    on_leader.move_leader(target).await.unwrap();
    assert_eq!(
        cluster.leader(),
        Some(target),
        "the target leads once answered"
    );
    // Writes go on through the new leader, from any member.
    let after = on_leader.put("mo/b", "1", None).await.unwrap();
    assert!(after.header().unwrap().revision() > revision);
}
