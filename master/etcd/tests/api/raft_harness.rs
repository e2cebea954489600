//! A 3-member Raft group serving the etcd API on loopback: each member
//! has a peer port (agora-raft's gRPC transport), a runner on its own
//! thread (`spawn_replica_thread`) over a real log store, and an etcd port
//! (`serve_with` over a `RaftBackend`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agora_etcd::{
    AutoCompaction, Member, RaftBackend, RaftBackendConfig, RaftTimings, ServerConfig,
    StaticDirectory, SystemClock,
};
use agora_raft::{
    GrpcTransport, KvHost, LogStore, Replica, ReplicaConfig, Status, runner_channels,
    spawn_replica_thread,
};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// Fast ticks keep elections short (10-20 ticks) on loopback.
pub(crate) const TICK: Duration = Duration::from_millis(20);
const DEADLINE: Duration = Duration::from_secs(10);

/// One running member.
pub(crate) struct Node<L: LogStore + Send + 'static, S: KvHost> {
    pub(crate) etcd_addr: SocketAddr,
    pub(crate) status: watch::Receiver<Status>,
    stop_etcd: oneshot::Sender<()>,
    etcd: JoinHandle<()>,
    stop_runner: oneshot::Sender<()>,
    runner: std::thread::JoinHandle<Replica<L, S>>,
    stop_peer: oneshot::Sender<()>,
    peer: JoinHandle<()>,
}

pub(crate) struct RaftCluster<L: LogStore + Send + 'static, S: KvHost> {
    pub(crate) nodes: BTreeMap<u64, Node<L, S>>,
}

fn stopper() -> (
    oneshot::Sender<()>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    (stop, async move {
        let _ = stopped.await;
    })
}

impl<L: LogStore + Send + 'static, S: KvHost> RaftCluster<L, S> {
    /// Founds members 1, 2 and 3 over `open(id)`'s stores and `machine()`'s
    /// state machines.
    pub(crate) async fn start(
        open: impl Fn(u64) -> L,
        machine: impl Fn() -> S,
    ) -> RaftCluster<L, S> {
        RaftCluster::start_with(open, machine, AutoCompaction::Off).await
    }

    /// [`RaftCluster::start`] with the backends' auto-compaction policy.
    pub(crate) async fn start_with(
        open: impl Fn(u64) -> L,
        machine: impl Fn() -> S,
        auto_compaction: AutoCompaction,
    ) -> RaftCluster<L, S> {
        let ids = [1u64, 2, 3];
        let mut peer_listeners = BTreeMap::new();
        let mut etcd_listeners = BTreeMap::new();
        let mut directory = BTreeMap::new();
        for id in ids {
            let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let etcd = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let member = Member {
                id,
                name: format!("m{id}"),
                peer_urls: vec![format!("http://{}", peer.local_addr().unwrap())],
                client_urls: vec![format!("http://{}", etcd.local_addr().unwrap())],
                is_learner: false,
            };
            directory.insert(id, member);
            peer_listeners.insert(id, peer);
            etcd_listeners.insert(id, etcd);
        }
        let peers: BTreeMap<u64, String> = (peer_listeners.iter())
            .map(|(id, l)| (*id, l.local_addr().unwrap().to_string()))
            .collect();
        let directory = Arc::new(StaticDirectory(directory));
        let mut nodes = BTreeMap::new();
        for id in ids {
            let config = ReplicaConfig {
                seed: 0x5eed + id,
                ..ReplicaConfig::default()
            };
            let replica = Replica::new(id, &ids, open(id), machine(), config).unwrap();
            let peer_listener = peer_listeners.remove(&id).unwrap();
            let etcd_listener = etcd_listeners.remove(&id).unwrap();
            let listeners = (peer_listener, etcd_listener);
            let node = start_node(replica, listeners, &peers, &directory, auto_compaction);
            nodes.insert(id, node);
        }
        RaftCluster { nodes }
    }

    /// The member that leads the highest term, if any.
    pub(crate) fn leader(&self) -> Option<u64> {
        (self.nodes.iter())
            .map(|(id, node)| (*id, node.status.borrow().clone()))
            .filter(|(_, status)| status.is_leader())
            .max_by_key(|(_, status)| status.leadership.term)
            .map(|(id, _)| id)
    }

    pub(crate) async fn wait_for_leader(&self) -> u64 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(id) = self.leader() {
                return id;
            }
            assert!(Instant::now() < deadline, "no leader elected");
            sleep(TICK).await;
        }
    }

    /// Members other than `id`.
    pub(crate) fn others(&self, id: u64) -> Vec<u64> {
        self.nodes.keys().copied().filter(|o| *o != id).collect()
    }

    pub(crate) fn endpoint(&self, id: u64) -> String {
        self.nodes[&id].etcd_addr.to_string()
    }

    pub(crate) async fn client(&self, id: u64) -> etcd_client::Client {
        etcd_client::Client::connect([self.endpoint(id)], None)
            .await
            .unwrap()
    }

    /// Stops member `id`'s etcd server, runner and peer server (a crash,
    /// minus losing the store); answers its replica.
    pub(crate) async fn kill(&mut self, id: u64) -> Replica<L, S> {
        let node = self.nodes.remove(&id).unwrap();
        let _ = node.stop_etcd.send(());
        let _ = node.stop_runner.send(());
        let _ = node.stop_peer.send(());
        timeout(DEADLINE, node.etcd).await.unwrap().unwrap();
        let runner = tokio::task::spawn_blocking(move || node.runner.join());
        let replica = timeout(DEADLINE, runner).await.unwrap().unwrap().unwrap();
        timeout(DEADLINE, node.peer).await.unwrap().unwrap();
        replica
    }

    pub(crate) async fn shutdown(mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            drop(self.kill(id).await);
        }
    }
}

fn start_node<L: LogStore + Send + 'static, S: KvHost>(
    replica: Replica<L, S>,
    (peer_listener, etcd_listener): (TcpListener, TcpListener),
    peers: &BTreeMap<u64, String>,
    directory: &Arc<StaticDirectory>,
    auto_compaction: AutoCompaction,
) -> Node<L, S> {
    let id = replica.id();
    let etcd_addr = etcd_listener.local_addr().unwrap();
    let revision = replica.state_machine().kv().published_revision();
    let (senders, inputs) = runner_channels();
    let (stop_peer, peer_stopped) = stopper();
    let inbound = senders.inbound;
    let peer = tokio::spawn(async move {
        agora_raft::serve(id, peer_listener, inbound, peer_stopped)
            .await
            .unwrap();
    });
    let (status_tx, status) = watch::channel(Status::of(&replica));
    let (stop_runner, runner_stopped) = stopper();
    let peers = peers.clone();
    let runner = spawn_replica_thread(
        replica,
        move || GrpcTransport::new(id, &peers),
        inputs,
        TICK,
        status_tx,
        runner_stopped,
    )
    .unwrap();
    let backend = RaftBackend::start(RaftBackendConfig {
        cluster_id: 0xa60a,
        member_id: id,
        directory: directory.clone(),
        proposals: senders.proposals,
        access: senders.access,
        status: status.clone(),
        revision,
        clock: Arc::new(SystemClock::new()),
        timings: RaftTimings {
            expiry_interval: Duration::from_millis(100),
            no_leader_grace: Duration::from_millis(500),
            ..RaftTimings::default()
        },
        auto_compaction,
        member_changes: None,
        defragment: None,
    });
    let (stop_etcd, etcd_stopped) = stopper();
    let etcd = tokio::spawn(async move {
        agora_etcd::serve_with(
            ServerConfig::default(),
            etcd_listener,
            Arc::new(backend),
            etcd_stopped,
        )
        .await
        .unwrap();
    });
    Node {
        etcd_addr,
        status,
        stop_etcd,
        etcd,
        stop_runner,
        runner,
        stop_peer,
        peer,
    }
}
