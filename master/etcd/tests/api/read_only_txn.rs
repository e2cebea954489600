//! A txn that only reads is served as a read (ReadIndex, as etcd does):
//! it answers what the log would, and adds no entry to it.

use std::time::Duration;

use agora_raft::{KvHost, LogStore};
use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};

use crate::raft_harness::RaftCluster;

/// Read-only txns sent in a row.
const READS: u64 = 100;

pub(crate) async fn a_read_only_txn_adds_no_log_entry<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) {
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.others(leader)[0];
    let mut client = cluster.client(follower).await;
    let written = client.put("rot/a", "1", None).await.unwrap();
    let revision = written.header().unwrap().revision();
    // Let heartbeats and the put's commit settle before counting entries.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let commit_before = cluster.nodes[&leader].status.borrow().commit_index;
    let read = Txn::new()
        .when([Compare::value("rot/a", CompareOp::Equal, "1")])
        .and_then([
            TxnOp::get("rot/a", None),
            TxnOp::txn(Txn::new().and_then([TxnOp::get("rot/b", None)])),
        ])
        .or_else([TxnOp::get("rot/none", None)]);
    for _ in 0..READS {
        let answer = client.txn(read.clone()).await.unwrap();
        assert!(answer.succeeded());
        assert_eq!(answer.header().unwrap().revision(), revision);
        let Some(TxnOpResponse::Get(got)) = answer.op_responses().into_iter().next() else {
            panic!("the first answer is the get");
        };
        assert_eq!(got.kvs()[0].value(), b"1");
    }
    let commit_after = cluster.nodes[&leader].status.borrow().commit_index;
    // The leader's own duties (lease expiry, compaction) may add an entry
    // or two meanwhile; a txn through the log would add one each.
    assert!(
        commit_after - commit_before < READS / 10,
        "{READS} read-only txns moved the commit index from {commit_before} to {commit_after}"
    );
    // A txn that writes still goes through the log.
    let write = Txn::new().and_then([TxnOp::put("rot/b", "2", None)]);
    let answer = client.txn(write).await.unwrap();
    assert!(answer.header().unwrap().revision() > revision);
}
