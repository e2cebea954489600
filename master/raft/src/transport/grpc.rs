//! The real network between members: tonic, one client stream per peer.
//!
//! Sending ([`GrpcTransport`]): every peer has a bounded queue
//! ([`PEER_QUEUE_CAPACITY`]) drained by one task that holds a client
//! stream (`RaftPeer/Send`) to that peer. It connects lazily, reconnects
//! with a capped backoff, and while the peer is unreachable it drops what
//! is queued. A full queue drops the new message. Raft retransmits
//! whatever is lost, so nothing here retries a message; drops are counted.
//!
//! Receiving ([`service`], [`serve`]): each envelope is checked (addressed
//! to this member, decodable, sender matching the envelope) and handed to a
//! bounded inbound channel as `(from, Message)`. Anything else is logged
//! and dropped; a peer cannot make the receiver fail.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use raft::eraftpb::Message;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};

use super::{Transport, decode_message, encode_message};

/// Generated tonic/prost code for `agora.raft.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod proto {
    tonic::include_proto!("agora.raft.v1");
}

use proto::raft_peer_client::RaftPeerClient;
use proto::raft_peer_server::{RaftPeer, RaftPeerServer};
use proto::{RaftEnvelope, SendAck};

/// Messages waiting for one peer. Past this the new message is dropped:
/// a peer this far behind gets retransmissions anyway.
pub const PEER_QUEUE_CAPACITY: usize = 1024;
/// Envelopes handed from the peer task to the open stream.
const STREAM_BUFFER: usize = 64;
/// First wait after a failed connection; doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// Longest wait between connection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_millis(1000);
/// Connection attempt timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// HTTP/2 pings on an open stream, so that a peer that hangs (rather than
/// closing) is noticed and the stream is rebuilt.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// A ping unanswered this long closes the connection.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest envelope accepted (snapshots are sent whole).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// Inbound messages waiting for the replica's task (see [`inbound_channel`]).
pub const INBOUND_CAPACITY: usize = 4096;

/// A message from a peer: the sending member and the decoded message.
pub type Inbound = (u64, Message);

/// The bounded channel between [`serve`]/[`service`] and the replica's task.
pub fn inbound_channel() -> (mpsc::Sender<Inbound>, mpsc::Receiver<Inbound>) {
    mpsc::channel(INBOUND_CAPACITY)
}

/// Counters of one transport, shared with its peer tasks.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Messages handed to a stream.
    pub sent: AtomicU64,
    /// Messages dropped: queue full, peer unknown or unreachable, stream broken.
    pub dropped: AtomicU64,
    /// Connections established (the first and every reconnection).
    pub connects: AtomicU64,
}

/// One peer's queue and its "could not deliver" flag.
#[derive(Debug)]
struct PeerQueue {
    tx: mpsc::Sender<RaftEnvelope>,
    unreachable: Arc<AtomicBool>,
    /// The address its task connects to, as given.
    address: String,
}

/// Finds the address of a member the transport was not started with (one
/// added to the group at run time), and the new address of one that
/// moved (etcd's MemberUpdate).
pub type PeerResolver = Arc<dyn Fn(u64) -> Option<String> + Send + Sync>;

/// Sends raft messages to peers over gRPC. Create it inside a tokio
/// runtime; dropping it ends the peer tasks.
pub struct GrpcTransport {
    id: u64,
    queues: BTreeMap<u64, PeerQueue>,
    stats: Arc<TransportStats>,
    runtime: tokio::runtime::Handle,
    resolver: Option<PeerResolver>,
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("id", &self.id)
            .field("peers", &self.queues.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// A transport for member `id` to `peers` (id → `host:port` or
    /// `http://host:port`); an entry for `id` itself is ignored. Spawns one
    /// task per peer on the current tokio runtime.
    pub fn new<A: ToString>(id: u64, peers: &BTreeMap<u64, A>) -> Result<Self, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|error| format!("GrpcTransport needs a tokio runtime: {error}"))?;
        GrpcTransport::on_runtime(runtime, id, peers)
    }

    /// Like [`GrpcTransport::new`], with the peer tasks on `runtime`. A
    /// replica on its own thread passes another runtime's handle here, so
    /// that its messages leave while it is blocked in its log's fsync: a
    /// leader then replicates while it persists (raft thesis 10.2.1)
    /// instead of one after the other.
    pub fn on_runtime<A: ToString>(
        runtime: tokio::runtime::Handle,
        id: u64,
        peers: &BTreeMap<u64, A>,
    ) -> Result<Self, String> {
        let mut transport = GrpcTransport {
            id,
            queues: BTreeMap::new(),
            stats: Arc::new(TransportStats::default()),
            runtime,
            resolver: None,
        };
        for (&peer, address) in peers {
            transport.add_peer(peer, address.to_string())?;
        }
        Ok(transport)
    }

    /// Like [`GrpcTransport::on_runtime`], and a message to a member not
    /// in `peers` asks `resolver` for its address (members added later).
    pub fn with_resolver<A: ToString>(
        runtime: tokio::runtime::Handle,
        id: u64,
        peers: &BTreeMap<u64, A>,
        resolver: PeerResolver,
    ) -> Result<Self, String> {
        let mut transport = GrpcTransport::on_runtime(runtime, id, peers)?;
        transport.resolver = Some(resolver);
        Ok(transport)
    }

    /// Starts the queue and task of one peer (not this member).
    fn add_peer(&mut self, peer: u64, address: String) -> Result<(), String> {
        if peer == self.id {
            return Ok(());
        }
        let uri = if address.contains("://") {
            address.clone()
        } else {
            format!("http://{address}")
        };
        let endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|error| format!("peer {peer} address {uri}: {error}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        let (tx, rx) = mpsc::channel(PEER_QUEUE_CAPACITY);
        let unreachable = Arc::new(AtomicBool::new(false));
        let link = Link {
            id: self.id,
            peer,
            stats: Arc::clone(&self.stats),
            unreachable: Arc::clone(&unreachable),
        };
        self.runtime.spawn(peer_task(link, endpoint, rx));
        let queue = PeerQueue {
            tx,
            unreachable,
            address,
        };
        self.queues.insert(peer, queue);
        Ok(())
    }

    /// A peer that cannot be reached may have moved: if the resolver now
    /// gives another address for it, its queue starts over there (the old
    /// task ends with its queue). Asked only of unreachable peers, so the
    /// send path never pays for a lookup.
    fn follow_move(&mut self, peer: u64) {
        let Some(address) = self.resolver.as_ref().and_then(|resolve| resolve(peer)) else {
            return;
        };
        if self.queues.get(&peer).is_none_or(|q| q.address == address) {
            return;
        }
        tracing::info!(member = self.id, peer, %address, "peer moved");
        self.queues.remove(&peer);
        if let Err(error) = self.add_peer(peer, address) {
            tracing::warn!(member = self.id, peer, %error, "cannot reach a moved member");
        }
    }

    /// The queue of `peer`, started now if the resolver knows its address.
    fn queue(&mut self, peer: u64) -> Option<&PeerQueue> {
        if !self.queues.contains_key(&peer) {
            let address = self.resolver.as_ref().and_then(|resolve| resolve(peer))?;
            if let Err(error) = self.add_peer(peer, address) {
                tracing::warn!(member = self.id, peer, %error, "cannot reach a new member");
                return None;
            }
        }
        self.queues.get(&peer)
    }

    /// This transport's counters.
    pub fn stats(&self) -> Arc<TransportStats> {
        Arc::clone(&self.stats)
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }
}

impl Transport for GrpcTransport {
    fn send(&mut self, message: Message) {
        let (id, stats) = (self.id, Arc::clone(&self.stats));
        let Some(queue) = self.queue(message.to) else {
            tracing::debug!(
                member = id,
                to = message.to,
                "message to unknown peer dropped"
            );
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let envelope = RaftEnvelope {
            from: id,
            to: message.to,
            payload: encode_message(&message).into(),
        };
        if queue.tx.try_send(envelope).is_err() {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            queue.unreachable.store(true, Ordering::Relaxed);
        }
    }

    fn take_unreachable(&mut self) -> Vec<u64> {
        let unreachable: Vec<u64> = (self.queues.iter())
            .filter(|(_, queue)| queue.unreachable.swap(false, Ordering::Relaxed))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &unreachable {
            self.follow_move(*peer);
        }
        unreachable
    }
}

/// What a peer task shares with its transport.
struct Link {
    id: u64,
    peer: u64,
    stats: Arc<TransportStats>,
    unreachable: Arc<AtomicBool>,
}

impl Link {
    /// Counts `n` dropped messages and flags the peer.
    fn dropped(&self, n: u64) {
        self.stats.dropped.fetch_add(n, Ordering::Relaxed);
        self.unreachable.store(true, Ordering::Relaxed);
    }
}

/// Drains one peer's queue into a client stream, reconnecting as needed.
/// Ends when the transport (the queue's sender) is dropped.
async fn peer_task(link: Link, endpoint: Endpoint, mut queue: mpsc::Receiver<RaftEnvelope>) {
    let (id, peer, stats) = (link.id, link.peer, Arc::clone(&link.stats));
    let mut backoff = MIN_BACKOFF;
    loop {
        // Connect only once there is something to send.
        let Some(mut first) = queue.recv().await else {
            return;
        };
        let channel = match endpoint.connect().await {
            Ok(channel) => channel,
            Err(error) => {
                tracing::debug!(member = id, peer, %error, "peer unreachable");
                link.dropped(1);
                pause(&link, &mut queue, &mut backoff).await;
                continue;
            }
        };
        stats.connects.fetch_add(1, Ordering::Relaxed);
        backoff = MIN_BACKOFF;
        let mut client = RaftPeerClient::new(channel).max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (stream_tx, stream_rx) = mpsc::channel(STREAM_BUFFER);
        let mut call = pin!(client.send(ReceiverStream::new(stream_rx)));
        let ended = loop {
            if stream_tx.send(first).await.is_err() {
                link.dropped(1);
                break None;
            }
            stats.sent.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                next = queue.recv() => match next {
                    Some(next) => first = next,
                    None => return,
                },
                result = &mut call => break Some(result),
            }
        };
        if !matches!(ended, Some(Ok(_))) {
            link.unreachable.store(true, Ordering::Relaxed);
        }
        match ended {
            Some(Ok(_)) => tracing::debug!(member = id, peer, "peer closed the stream"),
            Some(Err(status)) => {
                tracing::debug!(member = id, peer, %status, "stream to peer failed")
            }
            None => tracing::debug!(member = id, peer, "stream to peer closed"),
        }
        pause(&link, &mut queue, &mut backoff).await;
    }
}

/// Waits `backoff` before the next connection, doubles it (up to
/// [`MAX_BACKOFF`]), and drops what queued up meanwhile: it is stale, and
/// raft resends what matters.
async fn pause(link: &Link, queue: &mut mpsc::Receiver<RaftEnvelope>, backoff: &mut Duration) {
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    while queue.try_recv().is_ok() {
        link.dropped(1);
    }
}

/// The receiving side of member `id`, as a tonic service.
#[derive(Debug, Clone)]
pub struct PeerService {
    id: u64,
    inbound: mpsc::Sender<Inbound>,
    /// Set when [`serve`] shuts down; `None` for a bare [`service`].
    stopping: Option<watch::Receiver<bool>>,
}

/// The tonic service for member `id`, handing checked messages to
/// `inbound`. Its streams run until the peer ends them or `inbound` closes;
/// use [`serve`] to also end them on shutdown.
pub fn service(id: u64, inbound: mpsc::Sender<Inbound>) -> RaftPeerServer<PeerService> {
    server_of(PeerService {
        id,
        inbound,
        stopping: None,
    })
}

fn server_of(service: PeerService) -> RaftPeerServer<PeerService> {
    RaftPeerServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Serves member `id`'s peer port on `listener` until `shutdown`
/// resolves; then ends every open stream and returns.
pub async fn serve(
    id: u64,
    listener: TcpListener,
    inbound: mpsc::Sender<Inbound>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (stop_tx, stopping) = watch::channel(false);
    let service = server_of(PeerService {
        id,
        inbound,
        stopping: Some(stopping),
    });
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    Server::builder()
        .tcp_nodelay(true)
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal)
        .await
}

impl PeerService {
    /// The checked message in `envelope`, or `None` (logged).
    fn accept(&self, envelope: &RaftEnvelope) -> Option<Message> {
        if envelope.to != self.id {
            tracing::warn!(
                member = self.id,
                to = envelope.to,
                "envelope for another member dropped"
            );
            return None;
        }
        let message = decode_message(&envelope.payload)?;
        if message.to != self.id || message.from != envelope.from {
            tracing::warn!(
                member = self.id,
                from = envelope.from,
                message_from = message.from,
                message_to = message.to,
                "envelope and message disagree; dropped"
            );
            return None;
        }
        Some(message)
    }
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn send(
        &self,
        request: Request<Streaming<RaftEnvelope>>,
    ) -> Result<Response<SendAck>, Status> {
        let mut stream = request.into_inner();
        let stopping = self.stopping.clone();
        let mut stopped = pin!(async move {
            match stopping {
                // An error means `serve` is gone: stopped as well.
                Some(mut stopping) => drop(stopping.wait_for(|stop| *stop).await),
                None => std::future::pending().await,
            }
        });
        let mut received = 0u64;
        loop {
            let next = tokio::select! {
                next = stream.message() => next,
                () = &mut stopped => return Err(Status::unavailable("member shutting down")),
            };
            let envelope = match next {
                Ok(Some(envelope)) => envelope,
                Ok(None) => return Ok(Response::new(SendAck { received })),
                Err(status) => {
                    tracing::debug!(member = self.id, %status, "peer stream failed");
                    return Err(status);
                }
            };
            received += 1;
            let Some(message) = self.accept(&envelope) else {
                continue;
            };
            if self.inbound.send((envelope.from, message)).await.is_err() {
                return Err(Status::unavailable("member stopped"));
            }
        }
    }
}
