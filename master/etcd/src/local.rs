//! [`LocalBackend`]: a single-member, in-process [`Backend`].
//!
//! One tokio task owns the [`KvState`] and the [`WatchHub`]; nothing else
//! touches them. Requests reach it over a bounded channel (a full queue
//! makes callers wait: backpressure, not unbounded memory) and answers go
//! back on oneshots. Watch acknowledgements, cancels and progress requests
//! use a second, unbounded channel because they are sent from `Drop` and
//! from stream tasks that must not block on a busy owner; each is a few
//! bytes and at most one per response sent. On a timer the task reads its
//! [`Clock`] and applies `ExpireLeases`, as a Raft leader would propose it.
//!
//! This is the API's backend until the Raft-backed one exists, and the one
//! the tests run against.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use agora_kv::{
    AlarmMember, Command, KvError, KvState, LeaseId, LeaseTimeToLive, Millis, RangeRequest,
    RangeResponse, Response, Revision, WatchId, WatchRequest,
};
use agora_raft::Watchers;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::ApiError;
use crate::backend::{Backend, Header, KvHash, Member, MemberStatus, Space, WatchSink, stamp_time};
use crate::config::DEFAULT_PROGRESS_INTERVAL;

/// The backend's source of time, in milliseconds. Leases expire by it.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since some fixed origin; never decreases.
    fn now_ms(&self) -> Millis;
}

/// Milliseconds since the clock was made, on tokio's monotonic clock (so a
/// test that pauses tokio's time controls it too).
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock reading 0 now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        Millis::try_from(self.origin.elapsed().as_millis()).unwrap_or(Millis::MAX)
    }
}

/// Settings of a [`LocalBackend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// Reported as the cluster id.
    pub cluster_id: u64,
    /// This member (the only one).
    pub member: Member,
    /// Requests waiting for the owner task before callers wait.
    pub queue_depth: usize,
    /// How often expired leases are looked for (etcd: every 500 ms).
    pub expiry_interval: Duration,
    /// How often watchers that asked for progress notices get one.
    pub progress_interval: Duration,
    /// Unacknowledged events per watcher (agora-kv's `WATCHER_BUFFER_LIMIT`
    /// unless a test wants slow watchers cancelled sooner).
    pub watcher_buffer: usize,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            cluster_id: 0x1000,
            member: Member {
                id: 0x1,
                name: "agora".to_string(),
                peer_urls: Vec::new(),
                client_urls: Vec::new(),
                is_learner: false,
            },
            queue_depth: 1024,
            expiry_interval: Duration::from_millis(500),
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
            watcher_buffer: agora_kv::WATCHER_BUFFER_LIMIT,
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, KvError>>;

/// A request the owner answers.
enum Call {
    Apply(Command, Reply<Response>),
    Read(RangeRequest, Reply<RangeResponse>),
    TimeToLive(LeaseId, bool, Reply<LeaseTimeToLive>),
    Leases(Reply<Vec<LeaseId>>),
    Hash(Revision, Reply<KvHash>),
    Alarms(Reply<Vec<AlarmMember>>),
    Watch(WatchRequest, WatchSink, Reply<(WatchId, Revision)>),
}

/// A fire-and-forget note about watchers.
enum Control {
    Cancel(WatchId),
    Acknowledge(WatchId, usize),
    Progress(Vec<WatchId>, WatchSink),
}

/// Counters the owner publishes for headers and status without a round trip.
#[derive(Debug, Default)]
struct Published {
    revision: AtomicI64,
    applied: AtomicU64,
    /// [`KvState::stored_bytes`] after the owner's last step.
    stored_bytes: AtomicU64,
    /// [`KvState::nospace`] after the owner's last step.
    nospace: AtomicBool,
}

/// A single-member [`Backend`]; cheap to clone. The owner task ends when
/// the last clone is dropped.
#[derive(Clone)]
pub struct LocalBackend {
    calls: mpsc::Sender<Call>,
    control: mpsc::UnboundedSender<Control>,
    published: Arc<Published>,
    cluster_id: u64,
    member: Member,
}

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend")
            .field("cluster_id", &self.cluster_id)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl LocalBackend {
    /// Starts the owner task on the current tokio runtime.
    pub fn start(config: LocalConfig, clock: Arc<dyn Clock>) -> LocalBackend {
        let (calls, calls_rx) = mpsc::channel(config.queue_depth.max(1));
        let (control, control_rx) = mpsc::unbounded_channel();
        let published = Arc::new(Published::default());
        let kv = KvState::new();
        published
            .revision
            .store(kv.current_revision(), Ordering::Release);
        let owner = Owner {
            kv,
            watchers: Watchers::with_buffer_limit(config.watcher_buffer),
            clock,
            published: published.clone(),
        };
        tokio::spawn(owner.run(calls_rx, control_rx, timers(&config)));
        LocalBackend {
            calls,
            control,
            published,
            cluster_id: config.cluster_id,
            member: config.member,
        }
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Call) -> Result<T, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(make(reply))
            .await
            .map_err(|_| ApiError::Stopped)?;
        let answer = answer.await.map_err(|_| ApiError::Stopped)?;
        answer.map_err(ApiError::from)
    }

    fn note(&self, control: Control) {
        // The owner is gone only when the backend is shutting down; then
        // there is nothing left to cancel or acknowledge.
        let _ = self.control.send(control);
    }
}

#[tonic::async_trait]
impl Backend for LocalBackend {
    fn header(&self) -> Header {
        Header {
            cluster_id: self.cluster_id,
            member_id: self.member.id,
            revision: self.published.revision.load(Ordering::Acquire),
            raft_term: 1,
        }
    }

    async fn apply(&self, command: Command) -> Result<Response, ApiError> {
        self.call(|reply| Call::Apply(command, reply)).await
    }

    async fn read(&self, request: RangeRequest) -> Result<RangeResponse, ApiError> {
        self.call(|reply| Call::Read(request, reply)).await
    }

    async fn lease_time_to_live(
        &self,
        id: LeaseId,
        keys: bool,
    ) -> Result<LeaseTimeToLive, ApiError> {
        self.call(|reply| Call::TimeToLive(id, keys, reply)).await
    }

    async fn leases(&self) -> Result<Vec<LeaseId>, ApiError> {
        self.call(Call::Leases).await
    }

    async fn watch(
        &self,
        request: WatchRequest,
        sink: WatchSink,
    ) -> Result<(WatchId, Revision), ApiError> {
        self.call(|reply| Call::Watch(request, sink, reply)).await
    }

    fn cancel_watch(&self, id: WatchId) {
        self.note(Control::Cancel(id));
    }

    fn acknowledge(&self, id: WatchId, count: usize) {
        self.note(Control::Acknowledge(id, count));
    }

    fn request_progress(&self, ids: Vec<WatchId>, sink: WatchSink) {
        self.note(Control::Progress(ids, sink));
    }

    async fn members(&self) -> Result<Vec<Member>, ApiError> {
        Ok(vec![self.member.clone()])
    }

    async fn hash_kv(&self, revision: Revision) -> Result<KvHash, ApiError> {
        self.call(|reply| Call::Hash(revision, reply)).await
    }

    fn space(&self) -> Space {
        Space {
            held_bytes: self.published.stored_bytes.load(Ordering::Acquire),
            nospace: self.published.nospace.load(Ordering::Acquire),
        }
    }

    async fn alarms(&self) -> Result<Vec<AlarmMember>, ApiError> {
        self.call(Call::Alarms).await
    }

    async fn status(&self) -> Result<MemberStatus, ApiError> {
        let alarms = self.alarms().await?;
        let applied = self.published.applied.load(Ordering::Acquire);
        Ok(MemberStatus {
            leader: self.member.id,
            raft_index: applied,
            raft_applied_index: applied,
            raft_term: 1,
            db_size: i64::try_from(self.published.stored_bytes.load(Ordering::Acquire))
                .unwrap_or(i64::MAX),
            is_learner: false,
            errors: alarms.iter().map(crate::alarm::text).collect(),
        })
    }
}

struct Timers {
    expiry: tokio::time::Interval,
    progress: tokio::time::Interval,
}

fn timers(config: &LocalConfig) -> Timers {
    let every = |period: Duration| {
        let period = period.max(Duration::from_millis(1));
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    };
    Timers {
        expiry: every(config.expiry_interval),
        progress: every(config.progress_interval),
    }
}

/// The task that owns the keyspace.
struct Owner {
    kv: KvState,
    /// The watch streams and their routing (shared with agora-raft's
    /// `KvMachine`, which does the same on a replica's thread).
    watchers: Watchers,
    clock: Arc<dyn Clock>,
    published: Arc<Published>,
}

impl Owner {
    async fn run(
        mut self,
        mut calls: mpsc::Receiver<Call>,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut timers: Timers,
    ) {
        loop {
            tokio::select! {
                call = calls.recv() => match call {
                    Some(call) => self.call(call),
                    None => break,
                },
                Some(note) = control.recv() => self.control(note),
                _ = timers.expiry.tick() => self.expire_leases(),
                _ = timers.progress.tick() => self.watchers.progress_notices(&self.kv),
            }
            self.watchers.deliver(&self.kv);
            // This backend keeps no tick to spread a compaction's work
            // over: it does it all at once, as the store did before
            // trimming was deferred (the Raft-backed one trims in batches).
            self.kv.trim_compacted(usize::MAX);
            self.published
                .stored_bytes
                .store(self.kv.stored_bytes(), Ordering::Release);
            self.published
                .nospace
                .store(self.kv.nospace(), Ordering::Release);
        }
        tracing::debug!("local etcd backend stopped");
    }

    fn call(&mut self, call: Call) {
        // A caller that gave up dropped its receiver; nothing to tell it.
        match call {
            Call::Apply(command, reply) => {
                let _ = reply.send(self.apply(command));
            }
            Call::Read(request, reply) => {
                let _ = reply.send(self.kv.range(&request));
            }
            Call::TimeToLive(id, keys, reply) => {
                let now = self.clock.now_ms();
                let _ = reply.send(self.kv.lease_time_to_live(id, now, keys));
            }
            Call::Leases(reply) => {
                let _ = reply.send(Ok(self.kv.leases()));
            }
            Call::Hash(revision, reply) => {
                let _ = reply.send(self.kv.hash_kv(revision));
            }
            Call::Alarms(reply) => {
                let _ = reply.send(Ok(self.kv.alarms()));
            }
            Call::Watch(request, sink, reply) => {
                let _ = reply.send(self.watchers.watch(&self.kv, request, sink));
            }
        }
    }

    fn apply(&mut self, mut command: Command) -> Result<Response, KvError> {
        stamp_time(&mut command, self.clock.now_ms());
        let before = (self.kv.current_revision(), self.kv.compact_revision());
        let result = self.kv.apply(&command);
        let after = (self.kv.current_revision(), self.kv.compact_revision());
        if before != after {
            self.watchers.mark_dirty();
        }
        self.published.revision.store(after.0, Ordering::Release);
        // Every proposal is a log entry, answered with an error or not.
        self.published.applied.fetch_add(1, Ordering::AcqRel);
        result
    }

    fn control(&mut self, note: Control) {
        match note {
            Control::Cancel(id) => self.watchers.cancel(id),
            Control::Acknowledge(id, count) => self.watchers.acknowledge(id, count),
            Control::Progress(ids, sink) => self.watchers.request_progress(ids, sink),
        }
    }

    fn expire_leases(&mut self) {
        let now = self.clock.now_ms();
        let ids = self.kv.expired_leases(now);
        if ids.is_empty() {
            return;
        }
        match self.apply(Command::ExpireLeases { ids, now_ms: now }) {
            Ok(Response::ExpireLeases(expired)) => {
                tracing::debug!(leases = ?expired.revoked, revision = expired.revision, "leases expired");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "expiring leases failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::WatchMessage;
    use agora_kv::{PutRequest, WatchUpdate};

    fn put(key: &str) -> Command {
        Command::Put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
            ..PutRequest::default()
        })
    }

    #[tokio::test]
    async fn applies_in_order_and_publishes_the_revision() {
        let backend = LocalBackend::start(LocalConfig::default(), Arc::new(SystemClock::new()));
        backend.apply(put("a")).await.unwrap();
        backend.apply(put("b")).await.unwrap();
        assert_eq!(backend.header().revision, 3);
        assert_eq!(backend.status().await.unwrap().raft_applied_index, 2);
    }

    #[tokio::test]
    async fn watchers_get_history_then_new_events() {
        let backend = LocalBackend::start(LocalConfig::default(), Arc::new(SystemClock::new()));
        backend.apply(put("a")).await.unwrap();
        let (sink, mut updates) = mpsc::unbounded_channel();
        let request = WatchRequest {
            key: b"a".to_vec(),
            start_revision: 1,
            ..WatchRequest::default()
        };
        let (id, _) = backend.watch(request, sink).await.unwrap();
        backend.apply(put("a")).await.unwrap();
        let mut revisions = Vec::new();
        while revisions.len() < 2 {
            match updates.recv().await.unwrap() {
                WatchMessage::Update {
                    update: WatchUpdate::Events { events, .. },
                    ..
                } => {
                    backend.acknowledge(id, events.len());
                    revisions.extend(events.iter().map(|e| e.revision()));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(revisions, vec![2, 3]);
    }
}
