//! The gRPC transport and the tokio runner on real loopback sockets:
//! 3-member groups (MemLogStore and RocksLogStore) elect, commit, survive
//! a crashed member, take it back, and shrug off garbage on a peer port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

use crate::runner::{Access, Proposal, Status, runner_channels, spawn_replica_thread};
use crate::transport::encode_message;
use crate::transport::grpc::proto::RaftEnvelope;
use crate::transport::grpc::proto::raft_peer_client::RaftPeerClient;
use crate::transport::grpc::{GrpcTransport, serve};
use crate::{
    Applied, LogStore, MemLogStore, MembershipChange, RaftError, Register, Replica, StateMachine,
};

/// Fast ticks keep elections short (10-20 ticks) on loopback.
const TEST_TICK: Duration = Duration::from_millis(20);
const DEADLINE: Duration = Duration::from_secs(10);

type Rep<L> = Replica<L, Register>;

/// One running member: its peer server and its runner (on its own thread).
struct Member<L: LogStore + Send + 'static> {
    proposals: mpsc::Sender<Proposal>,
    access: mpsc::Sender<Access<Register>>,
    status: watch::Receiver<Status>,
    stop_server: oneshot::Sender<()>,
    stop_runner: oneshot::Sender<()>,
    server: JoinHandle<()>,
    runner: std::thread::JoinHandle<Rep<L>>,
}

async fn start<L: LogStore + Send + 'static>(
    replica: Rep<L>,
    addr: SocketAddr,
    peers: &BTreeMap<u64, SocketAddr>,
) -> Member<L> {
    let id = replica.id();
    let listener = bind(addr).await;
    let (senders, inputs) = runner_channels();
    let inbound_tx = senders.inbound;
    let (stop_server, server_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _ = server_rx.await;
        };
        if let Err(error) = serve(id, listener, inbound_tx, stopped).await {
            panic!("member {id} server failed: {error}");
        }
    });
    let peers = peers.clone();
    let (status_tx, status) = watch::channel(Status::of(&replica));
    let (stop_runner, runner_rx) = oneshot::channel::<()>();
    let runner = spawn_replica_thread(
        replica,
        move || GrpcTransport::new(id, &peers),
        inputs,
        TEST_TICK,
        status_tx,
        async move {
            let _ = runner_rx.await;
        },
    )
    .unwrap();
    Member {
        proposals: senders.proposals,
        access: senders.access,
        status,
        stop_server,
        stop_runner,
        server,
        runner,
    }
}

/// Stops a member's server and runner (as a crash would, minus the
/// store) and hands back its replica.
async fn stop<L: LogStore + Send + 'static>(member: Member<L>) -> Rep<L> {
    let _ = member.stop_server.send(());
    let _ = member.stop_runner.send(());
    timeout(DEADLINE, member.server)
        .await
        .expect("server did not stop")
        .unwrap();
    let runner = tokio::task::spawn_blocking(move || member.runner.join());
    timeout(DEADLINE, runner)
        .await
        .expect("runner did not stop")
        .unwrap()
        .unwrap()
}

/// Binds `addr`, retrying briefly (a restarted member reuses its port).
async fn bind(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(error) if Instant::now() < deadline => {
                eprintln!("bind {addr}: {error}; retrying");
                sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("bind {addr}: {error}"),
        }
    }
}

/// Three free loopback ports.
async fn addresses() -> BTreeMap<u64, SocketAddr> {
    let mut addrs = BTreeMap::new();
    for id in 1..=3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.insert(id, listener.local_addr().unwrap());
    }
    addrs
}

fn leader<L: LogStore + Send + 'static>(members: &BTreeMap<u64, Member<L>>) -> Option<u64> {
    (members.iter())
        .map(|(id, member)| (*id, member.status.borrow().clone()))
        .filter(|(_, status)| status.is_leader())
        .max_by_key(|(_, status)| status.leadership.term)
        .map(|(id, _)| id)
}

async fn wait_for_leader<L: LogStore + Send + 'static>(members: &BTreeMap<u64, Member<L>>) -> u64 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(id) = leader(members) {
            return id;
        }
        assert!(Instant::now() < deadline, "no leader elected");
        sleep(TEST_TICK).await;
    }
}

/// Proposes on the leader until the entry is applied there (retrying on
/// no leader, a leader change, or a lost answer).
async fn commit<L: LogStore + Send + 'static>(
    members: &BTreeMap<u64, Member<L>>,
    data: Vec<u8>,
) -> Applied {
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "proposal not committed in time");
        let Some(target) = leader(members) else {
            sleep(TEST_TICK).await;
            continue;
        };
        let (reply, answer) = oneshot::channel();
        if members[&target]
            .proposals
            .send((data.clone(), reply))
            .await
            .is_err()
        {
            sleep(TEST_TICK).await;
            continue;
        }
        match timeout(Duration::from_secs(3), answer).await {
            Ok(Ok(Ok(applied))) => return applied,
            Ok(Ok(Err(RaftError::NotLeader { .. } | RaftError::Dropped | RaftError::Unknown)))
            | Ok(Err(_))
            | Err(_) => sleep(TEST_TICK).await,
            Ok(Ok(Err(error))) => panic!("proposal failed: {error}"),
        }
    }
}

/// A linearizable read (ReadIndex) of the register's length on `member`,
/// retried while there is no leader.
async fn read_history_len<L: LogStore + Send + 'static>(member: &Member<L>) -> usize {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (reply, answer) = oneshot::channel();
        let read =
            Access::Linearizable(Box::new(move |state: Result<&mut Register, RaftError>| {
                let _ = reply.send(state.map(|s| s.history().len()));
            }));
        member.access.send(read).await.unwrap();
        match answer.await.unwrap() {
            Ok(len) => return len,
            Err(error) => assert!(Instant::now() < deadline, "read failed: {error}"),
        }
        sleep(TEST_TICK).await;
    }
}

/// Queues 200 proposals at once on the leader (the runner proposes them
/// in batches before each drive); answers the highest index applied. A
/// leader change mid-burst may refuse some; most must commit.
async fn burst<L: LogStore + Send + 'static>(members: &BTreeMap<u64, Member<L>>) -> u64 {
    let leader_id = wait_for_leader(members).await;
    let mut answers = Vec::new();
    for n in 1000..1200 {
        let (reply, answer) = oneshot::channel();
        let proposals = &members[&leader_id].proposals;
        proposals.send((payload(n), reply)).await.unwrap();
        answers.push(answer);
    }
    let mut applied = Vec::new();
    for answer in answers {
        if let Ok(Ok(entry)) = timeout(DEADLINE, answer).await.unwrap() {
            applied.push(entry.index);
        }
    }
    assert!(
        applied.len() >= 150,
        "only {} of 200 committed",
        applied.len()
    );
    assert!(applied.windows(2).all(|w| w[0] < w[1]), "out of order");
    applied.last().copied().unwrap_or(0)
}

/// `Access::ChangeMembership` reaches `propose_conf_change`: a follower
/// answers `NotLeader`, the leader refuses to remove itself.
async fn membership_requests_go_through_the_runner<L: LogStore + Send + 'static>(
    members: &BTreeMap<u64, Member<L>>,
) {
    let leader_id = wait_for_leader(members).await;
    let follower = *members.keys().find(|id| **id != leader_id).unwrap();
    let ask = |on: u64, change| async move {
        let (reply, answer) = oneshot::channel();
        let access = Access::ChangeMembership(change, reply);
        members[&on].access.send(access).await.unwrap();
        timeout(DEADLINE, answer).await.unwrap().unwrap()
    };
    let answer = ask(follower, MembershipChange::RemoveVoter(leader_id)).await;
    assert!(
        matches!(answer, Err(RaftError::NotLeader { .. })),
        "{answer:?}"
    );
    let answer = ask(leader_id, MembershipChange::RemoveVoter(leader_id)).await;
    assert!(
        matches!(answer, Err(RaftError::ConfChange(_))),
        "{answer:?}"
    );
}

/// Waits until every member has applied the same index, at least `at_least`.
async fn converge<L: LogStore + Send + 'static>(members: &BTreeMap<u64, Member<L>>, at_least: u64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let applied: Vec<u64> = (members.values())
            .map(|m| m.status.borrow().applied_index)
            .collect();
        if applied.iter().all(|a| *a == applied[0] && *a >= at_least) {
            return;
        }
        assert!(Instant::now() < deadline, "no convergence: {applied:?}");
        sleep(TEST_TICK).await;
    }
}

/// Snapshots every few entries, encoded by the runner on a blocking
/// thread as the masters do: the crashed member below comes back behind the
/// compacted log and must catch up from one of them.
fn config(id: u64) -> crate::ReplicaConfig {
    crate::ReplicaConfig {
        background_snapshots: true,
        ..super::compacting_config(0x9e37 + id)
    }
}

fn message(from: u64, to: u64) -> crate::eraftpb::Message {
    crate::eraftpb::Message {
        from,
        to,
        ..Default::default()
    }
}

fn payload(n: u64) -> Vec<u8> {
    format!("entry-{n}").into_bytes()
}

/// Garbage on member `id`'s peer port: raw bytes that are not HTTP/2, and
/// a well-formed stream of bad envelopes (undecodable payload, wrong
/// recipient, sender mismatch, and messages raft-rs would die of: a
/// heartbeat of a far later term committing past any log, an empty
/// proposal).
async fn throw_garbage(id: u64, addr: SocketAddr) {
    let mut raw = TcpStream::connect(addr).await.unwrap();
    let _ = raw
        .write_all(b"\x00\xffNOT HTTP/2 AT ALL\r\n\r\n\x17\x03\x03garbage")
        .await;
    let mut sink = Vec::new();
    let _ = timeout(Duration::from_secs(2), raw.read_to_end(&mut sink)).await;
    drop(raw);

    let mut client = RaftPeerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let misaddressed = message(2, id);
    let sender = if id == 1 { 2 } else { 1 };
    let mut heartbeat = message(sender, id);
    heartbeat.set_msg_type(crate::eraftpb::MessageType::MsgHeartbeat);
    (heartbeat.term, heartbeat.commit) = (FORGED_TERM, u64::MAX);
    let mut proposal = message(sender, id);
    proposal.set_msg_type(crate::eraftpb::MessageType::MsgPropose);
    proposal.term = FORGED_TERM;
    let forged = [heartbeat, proposal].map(|forged| RaftEnvelope {
        from: sender,
        to: id,
        payload: encode_message(&forged).into(),
    });
    let envelopes = vec![
        RaftEnvelope {
            from: 2,
            to: id,
            payload: vec![0xff, 0xff, 0xff, 0x01, 0x02].into(),
        },
        RaftEnvelope {
            from: 2,
            to: id + 100,
            payload: encode_message(&misaddressed).into(),
        },
        RaftEnvelope {
            from: 3,
            to: id,
            payload: encode_message(&misaddressed).into(),
        },
    ]
    .into_iter()
    .chain(forged);
    let ack = client
        .send(tokio_stream::iter(envelopes))
        .await
        .expect("the receiver answers a stream of bad envelopes");
    assert_eq!(ack.into_inner().received, 5);
}

/// The term of forged messages: far above any the group reaches, so a
/// member that took one would show it.
const FORGED_TERM: u64 = 1_000;

/// The whole scenario over any store: `open(id)` gives a member's fresh
/// store; `reopen(replica)` the store a crashed member restarts from.
async fn scenario<L, O, R>(open: O, reopen: R)
where
    L: LogStore + Send + 'static,
    O: Fn(u64) -> L,
    R: Fn(u64, Rep<L>) -> L,
{
    let addrs = addresses().await;
    let ids: Vec<u64> = addrs.keys().copied().collect();
    let mut members = BTreeMap::new();
    for &id in &ids {
        let replica = Replica::new(id, &ids, open(id), Register::new(), config(id)).unwrap();
        members.insert(id, start(replica, addrs[&id], &addrs).await);
    }
    wait_for_leader(&members).await;
    let mut last = 0;
    for n in 0..100 {
        last = commit(&members, payload(n)).await.index;
    }
    converge(&members, last).await;
    for member in members.values() {
        assert!(read_history_len(member).await >= 100);
    }
    last = last.max(burst(&members).await);
    membership_requests_go_through_the_runner(&members).await;

    // Garbage on a follower's port: it keeps working.
    let leader_id = wait_for_leader(&members).await;
    let victim = *ids.iter().find(|id| **id != leader_id).unwrap();
    throw_garbage(victim, addrs[&victim]).await;
    for n in 100..110 {
        last = commit(&members, payload(n)).await.index;
    }
    converge(&members, last).await;
    let victim_term = members[&victim].status.borrow().leadership.term;
    assert!(victim_term < FORGED_TERM, "a forged heartbeat was refused");

    // Crash the leader: the other two elect another and keep committing.
    let crashed = wait_for_leader(&members).await;
    let old_term = members[&crashed].status.borrow().leadership.term;
    let replica = stop(members.remove(&crashed).unwrap()).await;
    let store = reopen(crashed, replica);
    for n in 110..160 {
        last = commit(&members, payload(n)).await.index;
    }
    let new_leader = leader(&members).expect("the two survivors have a leader");
    let new_term = members[&new_leader].status.borrow().leadership.term;
    assert!(new_term > old_term, "a new term after the crash");

    // Restart it from its store: it catches up.
    let replica = Replica::new(crashed, &[], store, Register::new(), config(crashed)).unwrap();
    members.insert(crashed, start(replica, addrs[&crashed], &addrs).await);
    for n in 160..170 {
        last = commit(&members, payload(n)).await.index;
    }
    converge(&members, last).await;
    let back = members[&crashed].status.borrow().clone();
    assert_eq!(back.leadership.leader, Some(new_leader));
    assert_eq!(back.leadership.term, new_term);

    let mut states = BTreeMap::new();
    for (id, member) in members {
        let replica = stop(member).await;
        let snapshot = replica.store().stored_snapshot().get_metadata().index;
        assert!(
            snapshot > 100,
            "member {id}: newest stored snapshot at {snapshot}"
        );
        let history = replica.state_machine().history().to_vec();
        states.insert(id, (replica.state_machine().hash(), history));
    }
    let (hash, history) = states[&1].clone();
    for (id, (other, _)) in &states {
        assert_eq!(*other, hash, "member {id} differs");
    }
    // Retries after a lost answer may apply an entry twice; all 170 are there.
    for n in 0..170 {
        assert!(history.contains(&payload(n)), "entry {n} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_over_grpc_with_memory_stores() {
    timeout(
        Duration::from_secs(60),
        scenario(|_| MemLogStore::new(), |_, replica| replica.into_store()),
    )
    .await
    .expect("scenario timed out");
}

#[cfg(feature = "rocksdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_over_grpc_with_rocksdb_stores() {
    use crate::RocksLogStore;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dir = |id: u64| dirs[(id - 1) as usize].path().to_path_buf();
    timeout(
        Duration::from_secs(60),
        scenario(
            |id| RocksLogStore::open(dir(id)).unwrap(),
            |id, replica| {
                drop(replica);
                RocksLogStore::open(dir(id)).unwrap()
            },
        ),
    )
    .await
    .expect("scenario timed out");
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_and_unknown_peers_drop_and_count() {
    use crate::Transport;
    use crate::transport::grpc::PEER_QUEUE_CAPACITY;
    // A peer nobody listens on; the peer task cannot run before we yield.
    let addrs = addresses().await;
    let peers: BTreeMap<u64, String> = [(2, addrs[&2].to_string())].into();
    let mut transport = GrpcTransport::new(1, &peers).unwrap();
    let extra = 10;
    for _ in 0..PEER_QUEUE_CAPACITY + extra {
        transport.send(message(1, 2));
    }
    assert_eq!(transport.dropped(), extra as u64);
    assert_eq!(transport.take_unreachable(), vec![2]);
    assert!(transport.take_unreachable().is_empty());
    transport.send(message(1, 7));
    assert_eq!(transport.dropped(), extra as u64 + 1);
    // The unreachable peer's queue is dropped too, never delivered.
    let deadline = Instant::now() + DEADLINE;
    while transport.dropped() < (PEER_QUEUE_CAPACITY + extra + 1) as u64 {
        assert!(Instant::now() < deadline, "queue not drained");
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        transport
            .stats()
            .sent
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn a_transport_needs_a_runtime() {
    let peers: BTreeMap<u64, &str> = [(2, "127.0.0.1:1")].into();
    assert!(GrpcTransport::new(1, &peers).is_err());
}

/// A [`Register`] whose background snapshots take a while to encode.
struct SlowSnapshots(Register);

impl StateMachine for SlowSnapshots {
    type Error = <Register as StateMachine>::Error;

    fn apply(&mut self, index: u64, data: &[u8]) -> Vec<u8> {
        self.0.apply(index, data)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.snapshot()
    }

    fn snapshot_task(&self) -> crate::SnapshotTask {
        let bytes = self.0.snapshot();
        Box::new(move || {
            std::thread::sleep(Duration::from_millis(400));
            bytes
        })
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), Self::Error> {
        self.0.restore(data)
    }

    fn applied_index(&self) -> u64 {
        self.0.applied_index()
    }

    fn hash(&self) -> u64 {
        self.0.hash()
    }
}

/// A snapshot job's stager holds the store's database open; a runner
/// stopped while one runs must wait for it, or reopening the member's
/// directory (a restart in the same process) fails on RocksDB's lock.
#[cfg(feature = "rocksdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_runner_waits_for_its_snapshot_job_so_the_store_reopens() {
    use crate::RocksLogStore;
    let dir = tempfile::tempdir().unwrap();
    let config = crate::ReplicaConfig {
        snapshot_interval: 4,
        ..config(1)
    };
    let store = RocksLogStore::open(dir.path()).unwrap();
    let replica = Replica::new(1, &[1], store, SlowSnapshots(Register::new()), config).unwrap();
    let (senders, inputs) = runner_channels();
    let (status_tx, status) = watch::channel(Status::of(&replica));
    let (stop_runner, runner_rx) = oneshot::channel::<()>();
    // On this runtime, not `spawn_replica_thread`'s own: dropping that
    // runtime would wait for the job anyway.
    let transport = GrpcTransport::new(1, &BTreeMap::<u64, String>::new()).unwrap();
    let runner = tokio::spawn(crate::runner::run_replica(
        replica,
        transport,
        inputs,
        TEST_TICK,
        status_tx,
        async move {
            let _ = runner_rx.await;
        },
    ));
    let deadline = Instant::now() + DEADLINE;
    while !status.borrow().is_leader() {
        assert!(Instant::now() < deadline, "a group of one elects itself");
        sleep(TEST_TICK).await;
    }
    // Past the snapshot interval: a job starts and sleeps in its task.
    for n in 0..6 {
        let (reply, answer) = oneshot::channel();
        senders.proposals.send((payload(n), reply)).await.unwrap();
        timeout(DEADLINE, answer).await.unwrap().unwrap().unwrap();
    }
    let _ = stop_runner.send(());
    let replica = timeout(DEADLINE, runner).await.unwrap().unwrap();
    drop(replica);
    let reopened = RocksLogStore::open(dir.path());
    assert!(reopened.is_ok(), "{:?}", reopened.err());
}

/// A member that moved (etcd's MemberUpdate, then a restart elsewhere) is
/// followed: once its old address fails, the resolver's new one is used.
#[tokio::test]
async fn an_unreachable_peer_is_followed_to_its_new_address() {
    use crate::Transport;
    use crate::transport::grpc::inbound_channel;
    use std::sync::{Arc, Mutex};
    let addrs = addresses().await;
    let (old, new) = (addrs[&2].to_string(), addrs[&3].to_string());
    let (inbound_tx, mut inbound) = inbound_channel();
    let listener = bind(addrs[&3]).await;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let stopped = async move {
            let _ = stopped.await;
        };
        serve(2, listener, inbound_tx, stopped).await.unwrap();
    });
    let resolved = Arc::new(Mutex::new(old.clone()));
    let resolve = {
        let resolved = Arc::clone(&resolved);
        Arc::new(move |_peer: u64| Some(resolved.lock().unwrap().clone()))
    };
    let peers: BTreeMap<u64, String> = [(2, old)].into();
    let runtime = tokio::runtime::Handle::current();
    let mut transport = GrpcTransport::with_resolver(runtime, 1, &peers, resolve).unwrap();
    let heartbeat = || crate::eraftpb::Message {
        msg_type: crate::eraftpb::MessageType::MsgHeartbeat,
        term: 1,
        ..message(1, 2)
    };
    // Nobody at the old address: the peer turns unreachable, and stays put.
    let deadline = Instant::now() + DEADLINE;
    loop {
        transport.send(heartbeat());
        if transport.take_unreachable() == vec![2] {
            break;
        }
        assert!(Instant::now() < deadline, "never unreachable");
        sleep(TEST_TICK).await;
    }
    *resolved.lock().unwrap() = new;
    let deadline = Instant::now() + DEADLINE;
    let arrived = loop {
        transport.send(heartbeat());
        let _ = transport.take_unreachable();
        if let Ok(Some(arrived)) = timeout(TEST_TICK, inbound.recv()).await {
            break arrived;
        }
        assert!(
            Instant::now() < deadline,
            "never delivered at the new address"
        );
    };
    assert_eq!(arrived.0, 1);
    let _ = stop.send(());
    server.await.unwrap();
}
