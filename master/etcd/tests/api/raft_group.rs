//! The etcd API on a 3-member Raft group (RaftBackend over agora-raft's
//! runner, gRPC transport and a real log store), driven by `etcd-client`
//! and etcdctl: writes on followers, linearizable reads anywhere, txns,
//! watches on followers, leases (keep-alive on a follower, expiry, TTL
//! refreshed by a new leader), member list, garbage on the internal
//! forward service, and a killed leader.

use std::collections::BTreeSet;
use std::time::Duration;

use agora_etcd::AutoCompaction;
use agora_etcd::pb::etcdserverpb::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
use agora_etcd::pb::forward::forward_client::ForwardClient;
use agora_etcd::pb::forward::{ForwardBatch, ForwardItem, ForwardRequest};
use agora_kv::{KvError, LogEntry};
use agora_raft::{KvHost, KvMachine, LogStore, MemLogStore, RocksLogStore, StateMachine};
use etcd_client::{
    CompactionOptions, Compare, CompareOp, EventType, GetOptions, PutOptions, Txn, TxnOp,
    WatchOptions,
};
use tokio::time::{Instant, sleep, timeout};
use tonic::codegen::http::uri::PathAndQuery;

use crate::etcdctl::etcdctl_available;
use crate::harness::{eventually, next, watch};
use crate::raft_harness::RaftCluster;

const WAIT: Duration = Duration::from_secs(10);

/// A put retried across a leader change; answers its revision. Errors
/// are unknown outcomes (the write may or may not be in): retrying is
/// what a client does, and the test only counts acknowledged writes.
async fn put_retrying(client: &mut etcd_client::Client, key: &str, value: &str) -> i64 {
    let deadline = Instant::now() + WAIT;
    loop {
        match client.put(key, value, None).await {
            Ok(put) => return put.header().unwrap().revision(),
            Err(error) => {
                assert!(Instant::now() < deadline, "put {key} kept failing: {error}");
                sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// (key, revision) of every put event from `stream` until `want` were
/// seen, or one at revision `until` or later.
async fn collect_puts(
    stream: &mut etcd_client::WatchStream,
    want: usize,
    until: i64,
) -> Vec<(String, i64)> {
    let mut seen: Vec<(String, i64)> = Vec::new();
    while seen.len() < want && seen.last().is_none_or(|(_, r)| *r < until) {
        let response = next(stream).await;
        assert!(!response.canceled(), "watch cancelled: {response:?}");
        for event in response.events() {
            assert_eq!(event.event_type(), EventType::Put);
            let kv = event.kv().unwrap();
            seen.push((kv.key_str().unwrap().to_string(), kv.mod_revision()));
        }
    }
    seen
}

async fn writes_and_reads_on_any_member<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) {
    let leader = cluster.wait_for_leader().await;
    let followers = cluster.others(leader);
    let (f1, f2) = (followers[0], followers[1]);
    let mut on_f1 = cluster.client(f1).await;
    let mut on_f2 = cluster.client(f2).await;
    let put = on_f1.put("k1", "v1", None).await.unwrap();
    assert_eq!(put.header().unwrap().member_id(), f1);
    let got = on_f2.get("k1", None).await.unwrap();
    assert_eq!(
        got.kvs()[0].value(),
        b"v1",
        "linearizable get on another follower"
    );
    assert_eq!(got.header().unwrap().member_id(), f2);
    assert!(got.header().unwrap().raft_term() >= 1);
    let txn = Txn::new()
        .when([Compare::version("k1", CompareOp::Greater, 0)])
        .and_then([TxnOp::put("k2", "from-txn", None)])
        .or_else([TxnOp::put("k2", "wrong-branch", None)]);
    assert!(on_f2.txn(txn).await.unwrap().succeeded());
    let mut on_leader = cluster.client(leader).await;
    let got = on_leader.get("k2", None).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"from-txn");
    // A serializable read answers from the member's own state; eventually current.
    eventually(WAIT, || {
        let mut client = on_f1.clone();
        async move {
            let options = GetOptions::new().with_serializable();
            let got = client.get("k2", Some(options)).await.unwrap();
            got.kvs()
                .first()
                .is_some_and(|kv| kv.value() == b"from-txn")
        }
    })
    .await;
    let members = on_f1.member_list().await.unwrap();
    let mut names: Vec<&str> = members.members().iter().map(|m| m.name()).collect();
    names.sort_unstable();
    assert_eq!(names, ["m1", "m2", "m3"]);
    let status = on_f2.status().await.unwrap();
    assert_eq!(status.leader(), leader);
    assert!(status.raft_index() >= 1);
}

async fn watch_on_a_follower_sees_writes_in_order<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) {
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.others(leader)[0];
    let mut watcher = cluster.client(follower).await;
    let (mut stream, id) = watch(&mut watcher, "w/", Some(WatchOptions::new().with_prefix())).await;
    let mut on_leader = cluster.client(leader).await;
    let mut expected = Vec::new();
    for n in 0..10 {
        let key = format!("w/{n}");
        let revision = on_leader.put(key.as_str(), "x", None).await.unwrap();
        expected.push((key, revision.header().unwrap().revision()));
    }
    assert_eq!(collect_puts(&mut stream, 10, i64::MAX).await, expected);
    // Progress and cancel go to the follower's own watchers too.
    stream.request_progress().await.unwrap();
    let progress = next(&mut stream).await;
    assert!(progress.events().is_empty());
    let last = expected.last().unwrap().1;
    assert!(progress.header().unwrap().revision() >= last);
    stream.cancel(id).await.unwrap();
    assert!(next(&mut stream).await.canceled());
}

async fn leases_work_from_a_follower<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) {
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.others(leader)[0];
    let mut client = cluster.client(follower).await;
    let lease = client.lease_grant(2, None).await.unwrap();
    assert_eq!(lease.ttl(), 2);
    let id = lease.id();
    let options = PutOptions::new().with_lease(id);
    client.put("leased", "v", Some(options)).await.unwrap();
    let (mut keeper, mut answers) = client.lease_keep_alive(id).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let answer = timeout(WAIT, answers.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((answer.id(), answer.ttl()), (id, 2));
    let ttl = client.lease_time_to_live(id, None).await.unwrap();
    assert!(ttl.ttl() > 0 && ttl.ttl() <= 2, "ttl {}", ttl.ttl());
    drop((keeper, answers));
    // Not kept alive: the leader expires it and its key goes, everywhere;
    // asked of the other follower (not the leader), TimeToLive is etcd's -1.
    let other_follower = followers_of(cluster, leader)[1];
    let mut other = cluster.client(other_follower).await;
    eventually(WAIT, || {
        let mut other = other.clone();
        async move { other.get("leased", None).await.unwrap().kvs().is_empty() }
    })
    .await;
    assert_eq!(other.lease_time_to_live(id, None).await.unwrap().ttl(), -1);
    assert_eq!(cluster.leader(), Some(leader), "asked of a follower");
}

/// A LeaseKeepAlive stream to `endpoint` that has sent a keep-alive of
/// `id`: the sender for more, and the answers.
async fn raw_keep_alive(
    endpoint: String,
    id: i64,
) -> (
    tokio::sync::mpsc::Sender<LeaseKeepAliveRequest>,
    tonic::Streaming<LeaseKeepAliveResponse>,
) {
    let url = format!("http://{endpoint}");
    let channel = tonic::transport::Endpoint::from_shared(url).unwrap();
    let mut grpc = tonic::client::Grpc::new(channel.connect().await.unwrap());
    grpc.ready().await.unwrap();
    let (requests, outgoing) = tokio::sync::mpsc::channel(2);
    requests.send(LeaseKeepAliveRequest { id }).await.unwrap();
    let outgoing = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(outgoing));
    let path = PathAndQuery::from_static("/etcdserverpb.Lease/LeaseKeepAlive");
    let codec = tonic_prost::ProstCodec::default();
    let answers = grpc.streaming(outgoing, path, codec).await.unwrap();
    (requests, answers.into_inner())
}

/// The members that follow `leader`; fails if it no longer leads, so a
/// test that means to go through a follower does.
fn followers_of<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
    leader: u64,
) -> Vec<u64> {
    assert_eq!(cluster.leader(), Some(leader), "leadership moved");
    cluster.others(leader)
}

/// A lease that is gone, asked about on each follower and on the leader:
/// a keep-alive answers TTL 0 and the stream stays open for the next one,
/// TimeToLive answers -1 (etcd's answers, not errors), and etcdctl reports
/// what it reports against etcd.
async fn a_lost_lease_on_every_member<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) {
    let leader = cluster.wait_for_leader().await;
    let mut members = followers_of(cluster, leader);
    members.push(leader);
    let mut granter = cluster.client(leader).await;
    let id = granter.lease_grant(60, None).await.unwrap().id();
    granter.lease_revoke(id).await.unwrap();
    for member in members {
        let mut client = cluster.client(member).await;
        let ttl = client.lease_time_to_live(id, None).await.unwrap();
        assert_eq!((ttl.id(), ttl.ttl()), (id, -1), "member {member}");
        // The raw stream: etcd-client refuses a keeper whose first answer
        // is TTL 0, which is what this checks.
        let (requests, mut answers) = raw_keep_alive(cluster.endpoint(member), id).await;
        for round in 0..2 {
            let answer = timeout(WAIT, answers.message()).await.unwrap();
            let answer = answer.unwrap_or_else(|e| panic!("member {member}: {e}"));
            let answer = answer.unwrap_or_else(|| panic!("member {member}: stream ended"));
            assert_eq!((answer.id, answer.ttl), (id, 0), "member {member}");
            if round == 0 {
                requests.send(LeaseKeepAliveRequest { id }).await.unwrap();
            }
        }
        if etcdctl_available() {
            let hex = format!("{id:016x}");
            let endpoint = cluster.endpoint(member);
            let ttl = etcdctl(&endpoint, &["lease", "timetolive", &hex]).await;
            assert_eq!(ttl, format!("lease {hex} already expired\n"));
            let kept = etcdctl(&endpoint, &["lease", "keep-alive", &hex]).await;
            assert_eq!(kept, format!("lease {hex} expired or revoked.\n"));
        }
    }
    assert_eq!(cluster.leader(), Some(leader), "leadership moved");
}

async fn garbage_on_the_forward_service_is_refused<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) {
    for id in cluster.nodes.keys() {
        let url = format!("http://{}", cluster.endpoint(*id));
        let mut forward = ForwardClient::connect(url).await.unwrap();
        for garbage in [
            b"\xff\x00junk".to_vec(),
            b"{\"Apply\":{\"op\":\"Nope\"}}".to_vec(),
            Vec::new(),
        ] {
            let status = forward
                .apply(ForwardRequest { command: garbage })
                .await
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        }
    }
    // The same garbage as items of one Pipe batch: each is answered by its
    // id with the refusal, and the stream keeps serving.
    let leader = cluster.wait_for_leader().await;
    let url = format!("http://{}", cluster.endpoint(leader));
    let mut forward = ForwardClient::connect(url).await.unwrap();
    let items = [b"\xff\x00junk".to_vec(), Vec::new()]
        .into_iter()
        .enumerate()
        .map(|(n, command)| ForwardItem {
            id: 10 + n as u64,
            command,
        })
        .collect();
    let (batches, outgoing) = tokio::sync::mpsc::channel(1);
    batches.send(ForwardBatch { items }).await.unwrap();
    let call = forward.pipe(tokio_stream::wrappers::ReceiverStream::new(outgoing));
    let mut answers = timeout(WAIT, call).await.unwrap().unwrap().into_inner();
    let mut answered = BTreeSet::new();
    while answered.len() < 2 {
        let batch = timeout(WAIT, answers.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for item in batch.items {
            let text = String::from_utf8_lossy(&item.answer).into_owned();
            assert!(text.contains("bad forwarded request"), "{text:?}");
            answered.insert(item.id);
        }
    }
    assert_eq!(answered, BTreeSet::from([10, 11]));
    drop(batches);
    assert!(
        timeout(WAIT, answers.message())
            .await
            .unwrap()
            .unwrap()
            .is_none()
    );
    let mut client = cluster.client(leader).await;
    client.put("after-garbage", "ok", None).await.unwrap();
}

/// Many concurrent writes through one follower share its pipe to the
/// leader: every one is acknowledged with its own revision and is there.
async fn a_burst_through_a_follower<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) {
    const BURST: usize = 300;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.others(leader)[0];
    let client = cluster.client(follower).await;
    let puts = (0..BURST).map(|n| {
        let mut client = client.clone();
        async move {
            let key = format!("burst/{n:03}");
            let put = client.put(key.as_str(), n.to_string(), None).await.unwrap();
            (key, put.header().unwrap().revision())
        }
    });
    let acked = futures_util::future::join_all(puts).await;
    let revisions: BTreeSet<i64> = acked.iter().map(|(_, revision)| *revision).collect();
    assert_eq!(
        revisions.len(),
        BURST,
        "two puts answered with one revision"
    );
    let mut reader = cluster.client(leader).await;
    let all = reader
        .get("burst/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(all.kvs().len(), BURST);
    for kv in all.kvs() {
        let key = kv.key_str().unwrap();
        let at = acked.iter().find(|(k, _)| k == key).unwrap().1;
        assert_eq!(kv.mod_revision(), at, "{key}");
    }
}

/// A physical compaction asked of a follower: answered once that member
/// applied it and trimmed the versions (a batch at a time), so its status
/// shows the memory freed; history below it is refused everywhere, what is
/// current stays.
async fn a_physical_compaction_on_a_follower<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) {
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.others(leader)[1];
    let mut on_follower = cluster.client(follower).await;
    let puts = (0..agora_raft::TRIM_BATCH + 200).map(|n| {
        let mut client = on_follower.clone();
        async move {
            let put = client.put(format!("churn/{}", n % 5), n.to_string(), None);
            put.await.unwrap().header().unwrap().revision()
        }
    });
    let revisions = futures_util::future::join_all(puts).await;
    let revision = revisions.into_iter().max().unwrap();
    let held = on_follower.status().await.unwrap().db_size();
    let physical = CompactionOptions::new().with_physical();
    on_follower.compact(revision, Some(physical)).await.unwrap();
    // Answered once this member freed the old versions (etcd's dbSize).
    let left = on_follower.status().await.unwrap().db_size();
    assert!(
        left > 0 && left * 2 < held,
        "{left} of {held} bytes still held"
    );
    let mut on_leader = cluster.client(leader).await;
    let before = GetOptions::new().with_prefix().with_revision(revision - 1);
    let refused = on_leader.get("churn/", Some(before)).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("required revision has been compacted"),
        "{refused}"
    );
    let now = on_follower
        .get("churn/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(now.kvs().len(), 5);
    let burst = on_leader
        .get(
            "burst/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!(burst.count(), 300, "the compaction kept every live key");
}

/// Kills the leader mid-stream: a new leader takes over, writes continue,
/// every acknowledged write is there, a watch resumed on another member
/// from the next revision misses and repeats nothing, and a lease granted
/// before gets a full TTL from the new leader.
async fn the_leader_dies<L: LogStore + Send + 'static, S: KvHost>(cluster: &mut RaftCluster<L, S>) {
    let old_leader = cluster.wait_for_leader().await;
    let survivors = cluster.others(old_leader);
    let mut on_old = cluster.client(old_leader).await;
    let (mut stream, _) = watch(&mut on_old, "fo/", Some(WatchOptions::new().with_prefix())).await;
    let mut writer = cluster.client(survivors[0]).await;
    let lease = writer.lease_grant(6, None).await.unwrap().id();
    let granted = Instant::now();
    let mut acked = Vec::new();
    for n in 0..10 {
        let key = format!("fo/{n:02}");
        acked.push((key.clone(), put_retrying(&mut writer, &key, "x").await));
    }
    let before = collect_puts(&mut stream, 5, i64::MAX).await;
    // Let the lease age, so a refresh is visible.
    sleep(Duration::from_secs(2).saturating_sub(granted.elapsed())).await;
    drop(cluster.kill(old_leader).await);
    // A write right after the crash waits for the election instead of
    // failing: the survivor's forward to the dead leader is refused before
    // anything is sent, so it is safely retried on the new leader.
    let put = writer.put("fo/first-after-crash", "x", None).await.unwrap();
    acked.push((
        "fo/first-after-crash".to_string(),
        put.header().unwrap().revision(),
    ));
    let new_leader = cluster.wait_for_leader().await;
    assert_ne!(new_leader, old_leader);
    for n in 10..20 {
        let key = format!("fo/{n:02}");
        acked.push((key.clone(), put_retrying(&mut writer, &key, "x").await));
    }
    let mut reader = cluster.client(survivors[1]).await;
    let all = reader
        .get("fo/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let present: BTreeSet<String> = (all.kvs().iter())
        .map(|kv| kv.key_str().unwrap().to_string())
        .collect();
    for (key, _) in &acked {
        assert!(present.contains(key), "acknowledged write {key} lost");
    }
    let resume = before.last().unwrap().1 + 1;
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(resume);
    let (mut resumed, _) = watch(&mut reader, "fo/", Some(options)).await;
    let last = acked.iter().map(|(_, r)| *r).max().unwrap();
    let after = collect_puts(&mut resumed, usize::MAX, last).await;
    let mut history = before.clone();
    history.extend(after);
    // A retried put may be applied twice (its first answer was lost), so
    // count events by revision: strictly increasing means no duplicate and
    // no reordering; every acknowledged revision present means no gap.
    assert!(
        history.windows(2).all(|w| w[0].1 < w[1].1),
        "a duplicate or reordered event: {history:?}"
    );
    let seen: BTreeSet<(String, i64)> = history.iter().cloned().collect();
    for write in &acked {
        assert!(seen.contains(write), "missed {write:?}: {history:?}");
    }
    // The new leader promoted the lease: a full TTL on its clock again.
    eventually(WAIT, || {
        let mut reader = reader.clone();
        async move { reader.lease_time_to_live(lease, None).await.unwrap().ttl() >= 5 }
    })
    .await;
}

/// etcdctl pointed at followers: put on one, get on another, member list.
async fn etcdctl_on_followers<L: LogStore + Send + 'static, S: KvHost>(
    cluster: &RaftCluster<L, S>,
) {
    if !etcdctl_available() {
        return;
    }
    let leader = cluster.wait_for_leader().await;
    let followers = cluster.others(leader);
    // The URL form etcd documents works as `host:port` does.
    let url = format!("http://{}", cluster.endpoint(followers[0]));
    let put = etcdctl(&url, &["put", "ctl/a", "1"]).await;
    assert_eq!(put, "OK\n");
    let got = etcdctl(&cluster.endpoint(followers[1]), &["get", "ctl/a"]).await;
    assert_eq!(got, "ctl/a\n1\n");
    let members = etcdctl(&cluster.endpoint(followers[1]), &["member", "list"]).await;
    assert_eq!(members.lines().count(), 3, "{members}");
    // What an operator compares members with: one line per member, and
    // (with nothing written meanwhile) one hash.
    let hashes = etcdctl(&url, &["endpoint", "hashkv", "--cluster"]).await;
    assert_eq!(hashes.lines().count(), 3, "{hashes}");
    // Hand leadership to the first follower, as before restarting a leader.
    let target = format!("{:x}", followers[0]);
    let leader_url = format!("http://{}", cluster.endpoint(leader));
    let moved = etcdctl(&leader_url, &["move-leader", &target]).await;
    assert!(moved.contains("Leadership transferred"), "{moved}");
    assert_eq!(cluster.wait_for_leader().await, followers[0]);
}

async fn etcdctl(endpoint: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--dial-timeout=3s")
        .arg("--command-timeout=10s")
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = timeout(WAIT, output).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "etcdctl {args:?}: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn scenario<L: LogStore + Send + 'static, S: KvHost>(mut cluster: RaftCluster<L, S>) {
    writes_and_reads_on_any_member(&cluster).await;
    watch_on_a_follower_sees_writes_in_order(&cluster).await;
    leases_work_from_a_follower(&cluster).await;
    a_lost_lease_on_every_member(&cluster).await;
    garbage_on_the_forward_service_is_refused(&cluster).await;
    crate::forged_forwards::forged_forwards_are_refused(&cluster).await;
    crate::read_only_txn::a_read_only_txn_adds_no_log_entry(&cluster).await;
    crate::maintenance_ops::hashes_agree_and_leadership_moves(&cluster).await;
    a_burst_through_a_follower(&cluster).await;
    a_physical_compaction_on_a_follower(&cluster).await;
    etcdctl_on_followers(&cluster).await;
    the_leader_dies(&mut cluster).await;
    crate::require_leader::a_member_without_a_leader_ends_require_leader_streams(&mut cluster)
        .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_group_serves_etcd_on_every_member_over_rocksdb() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    let open = |id: u64| RocksLogStore::open(&paths[(id - 1) as usize]).unwrap();
    let cluster = RaftCluster::start(open, KvMachine::new).await;
    timeout(Duration::from_secs(60), scenario(cluster))
        .await
        .expect("scenario timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_group_serves_etcd_on_every_member_in_memory() {
    let cluster = RaftCluster::start(|_| MemLogStore::new(), KvMachine::new).await;
    timeout(Duration::from_secs(60), scenario(cluster))
        .await
        .expect("scenario timed out");
}

/// The backend inside a bigger state machine, as the master embeds it:
/// kv entries travel in the host's own envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raft_group_serves_etcd_from_a_keyspace_embedded_in_another_machine() {
    let cluster = RaftCluster::start(|_| MemLogStore::new(), Enveloped::default).await;
    timeout(Duration::from_secs(60), scenario(cluster))
        .await
        .expect("scenario timed out");
}

/// A stand-in for the master's machine: its entries start with a tag
/// byte; `KV_TAG` entries carry the keyspace's, the rest are counted.
#[derive(Debug, Default)]
struct Enveloped {
    kv: KvMachine,
    others: u64,
}

const KV_TAG: u8 = 0x6b;

impl StateMachine for Enveloped {
    type Error = KvError;

    fn apply(&mut self, index: u64, data: &[u8]) -> Vec<u8> {
        match data.split_first() {
            Some((&KV_TAG, entry)) => self.kv.apply(index, entry),
            _ => {
                self.others += 1;
                Vec::new()
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.kv.snapshot()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), KvError> {
        self.kv.restore(data)
    }

    fn applied_index(&self) -> u64 {
        self.kv.applied_index()
    }

    fn hash(&self) -> u64 {
        self.kv.hash()
    }

    fn after_drive(&mut self) {
        self.kv.after_drive();
    }

    fn has_background_work(&self) -> bool {
        self.kv.has_background_work()
    }

    fn background_work(&mut self) {
        self.kv.background_work();
    }
}

impl KvHost for Enveloped {
    fn kv(&self) -> &KvMachine {
        &self.kv
    }

    fn kv_mut(&mut self) -> &mut KvMachine {
        &mut self.kv
    }

    fn encode_kv_entry(entry: &LogEntry) -> Vec<u8> {
        let mut bytes = vec![KV_TAG];
        bytes.extend(entry.encode());
        bytes
    }
}

/// Waits until a read at `revision` is refused as compacted.
async fn compacted_past(client: &mut etcd_client::Client, key: &str, revision: i64) {
    eventually(WAIT, || {
        let mut client = client.clone();
        async move {
            let at = GetOptions::new().with_revision(revision);
            match client.get(key, Some(at)).await {
                Err(error) => error
                    .to_string()
                    .contains("required revision has been compacted"),
                Ok(_) => false,
            }
        }
    })
    .await;
}

/// Periodic auto-compaction with a one-second window: the leader compacts
/// history older than that on its own, keeps what is newer, and a new
/// leader takes the duty over after the old one is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_auto_compacts_and_a_new_leader_takes_over() {
    let window = AutoCompaction::Periodic(Duration::from_secs(1));
    let mut cluster = RaftCluster::start_with(|_| MemLogStore::new(), KvMachine::new, window).await;
    let leader = cluster.wait_for_leader().await;
    let mut client = cluster.client(cluster.others(leader)[0]).await;
    let first = put_retrying(&mut client, "auto/a", "1").await;
    put_retrying(&mut client, "auto/a", "2").await;
    compacted_past(&mut client, "auto/a", first).await;
    let fresh = put_retrying(&mut client, "auto/a", "3").await;
    let at = GetOptions::new().with_revision(fresh);
    let kept = client.get("auto/a", Some(at)).await.unwrap();
    assert_eq!(
        kept.kvs()[0].value(),
        b"3",
        "history younger than the window stays"
    );

    cluster.kill(leader).await;
    let survivor = cluster.others(leader)[0];
    let mut client = cluster.client(survivor).await;
    let after = put_retrying(&mut client, "auto/b", "1").await;
    put_retrying(&mut client, "auto/b", "2").await;
    compacted_past(&mut client, "auto/b", after).await;
    let now = client
        .get("auto/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let values: Vec<&[u8]> = now.kvs().iter().map(|kv| kv.value()).collect();
    assert_eq!(values, [b"3", b"2"], "compaction keeps every current value");
    cluster.shutdown().await;
}
