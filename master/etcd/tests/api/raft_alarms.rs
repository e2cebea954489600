//! Alarms on a 3-member Raft group: raised through one member, they are in
//! the replicated state, so every member lists them and refuses the writes
//! they forbid, and they outlive the leader.

use std::time::Duration;

use agora_raft::{KvMachine, MemLogStore};
use etcd_client::{AlarmAction, AlarmOptions, AlarmType};
use tokio::time::timeout;
use tonic::Code;

use crate::harness::eventually;
use crate::raft_harness::RaftCluster;

const WAIT: Duration = Duration::from_secs(10);

async fn nospace_alarms(client: &mut etcd_client::Client) -> Vec<u64> {
    let listed = client
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .unwrap();
    (listed.alarms().iter())
        .filter(|alarm| alarm.alarm() == AlarmType::Nospace)
        .map(|alarm| alarm.member_id())
        .collect()
}

/// Alarm options naming `member`.
fn of(member: u64) -> AlarmOptions {
    let mut options = AlarmOptions::new();
    options.with_member(member);
    options
}

fn refused_for_space(result: Result<etcd_client::PutResponse, etcd_client::Error>) -> bool {
    match result {
        Err(etcd_client::Error::GRpcStatus(status)) => {
            status.code() == Code::ResourceExhausted
                && status.message() == "etcdserver: mvcc: database space exceeded"
        }
        _ => false,
    }
}

async fn scenario(mut cluster: RaftCluster<MemLogStore, KvMachine>) {
    let leader = cluster.wait_for_leader().await;
    let raiser = cluster.others(leader)[0];
    let mut client = cluster.client(raiser).await;
    client.put("before", "1", None).await.unwrap();
    let raised = client
        .alarm(AlarmAction::Activate, AlarmType::Nospace, Some(of(raiser)))
        .await
        .unwrap();
    assert_eq!(raised.alarms().len(), 1);

    for id in [leader, raiser, cluster.others(leader)[1]] {
        let mut client = cluster.client(id).await;
        eventually(WAIT, || {
            let mut client = client.clone();
            async move { nospace_alarms(&mut client).await == [raiser] }
        })
        .await;
        assert!(
            refused_for_space(client.put("after", "1", None).await),
            "member {id}"
        );
        let read = client.get("before", None).await.unwrap();
        assert_eq!(read.kvs()[0].value(), b"1");
    }

    cluster.kill(leader).await;
    let survivor = cluster.wait_for_leader().await;
    let mut client = cluster.client(survivor).await;
    assert_eq!(nospace_alarms(&mut client).await, [raiser]);
    assert!(refused_for_space(client.put("after", "1", None).await));
    let cleared = client
        .alarm(
            AlarmAction::Deactivate,
            AlarmType::Nospace,
            Some(of(raiser)),
        )
        .await
        .unwrap();
    assert_eq!(cleared.alarms().len(), 1);
    assert!(nospace_alarms(&mut client).await.is_empty());
    client.put("after", "1", None).await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_is_replicated_and_outlives_the_leader() {
    let cluster = RaftCluster::start(|_| MemLogStore::new(), KvMachine::new).await;
    timeout(Duration::from_secs(60), scenario(cluster))
        .await
        .expect("scenario timed out");
}
