//! A scripted in-process master for tests (the driver's own, and framework
//! authors' behind the `testing` feature): it speaks the real gRPC Scheduler
//! service on a loopback socket, records what it was sent, and lets a test
//! push events into or break the current stream. Its helpers panic on
//! failure, as test helpers do.
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use agora_proto::v1;
use agora_proto::v1::scheduler_server::{Scheduler as SchedulerService, SchedulerServer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};

use crate::calls::Driver;
use crate::scheduler::Scheduler;
use agora_model::{AgentId, FrameworkId, Offer, OfferId, TaskStatus};

/// Events buffered per fake stream; tests push a handful.
const FAKE_STREAM_BUFFER: usize = 64;
/// Callback records buffered for a test; tests read them promptly.
const RECORD_BUFFER: usize = 256;

/// What the fake master saw and how it behaves next.
#[derive(Default)]
pub struct FakeState {
    /// Every SUBSCRIBE received, in order.
    pub subscribes: Vec<v1::SubscribeRequest>,
    /// Every other call, as "name stream_id detail".
    pub calls: Vec<String>,
    /// The current stream's sender; dropping it ends the stream.
    pub stream: Option<mpsc::Sender<Result<v1::Event, Status>>>,
    /// If set, SUBSCRIBE fails with this.
    pub refuse: Option<Status>,
    /// SUBSCRIBEs refused because of `refuse`.
    pub refused: usize,
    /// If set, every other call is recorded and fails with this, as a
    /// standby answers them (`agora_proto::not_leader_status`).
    pub refuse_calls: Option<Status>,
    /// If set, the first event is ERROR with this message.
    pub error_on_subscribe: Option<String>,
    /// Heartbeat interval announced in SUBSCRIBED (the fake sends none).
    pub heartbeat_seconds: f64,
    /// While set, AcknowledgeMany calls are not answered (nor recorded).
    pub hold_acks: bool,
}

/// A scripted master on a loopback port; clones share the state.
#[derive(Clone, Default)]
pub struct FakeMaster {
    /// What it saw and how it behaves.
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeMaster {
    /// Starts serving on 127.0.0.1 (any port); returns it and `host:port`.
    pub async fn start(heartbeat_seconds: f64) -> (FakeMaster, String) {
        let fake = FakeMaster::default();
        fake.lock().heartbeat_seconds = heartbeat_seconds;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let svc = SchedulerServer::new(fake.clone());
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        (fake, addr.to_string())
    }

    /// Its state, locked.
    pub fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake master lock")
    }

    /// Pushes an event into the current stream.
    pub async fn push(&self, e: v1::event::Event) {
        let tx = self.lock().stream.clone().expect("a live stream");
        tx.send(Ok(v1::Event { event: Some(e) }))
            .await
            .expect("stream open");
    }

    /// Ends the current stream, as a crashing master would.
    pub fn break_stream(&self) {
        self.lock().stream = None;
    }

    /// Waits until `f` holds for the state, or panics after 5 s.
    pub async fn wait_for(&self, what: &str, f: impl Fn(&FakeState) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !f(&self.lock()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn record<T>(
        &self,
        name: &str,
        header: Option<&v1::CallHeader>,
        detail: T,
    ) -> Result<Response<v1::CallResponse>, Status>
    where
        T: std::fmt::Debug,
    {
        let stream = header.map(|h| h.stream_id.clone()).unwrap_or_default();
        let mut st = self.lock();
        let current = st.subscribes.len();
        st.calls.push(format!("{name} {stream} {detail:?}"));
        if let Some(s) = st.refuse_calls.clone() {
            return Err(s);
        }
        // Like the real master: a stale or missing stream id is refused.
        if stream != format!("stream-{current}") {
            return Err(Status::failed_precondition("stale stream id"));
        }
        Ok(Response::new(v1::CallResponse {}))
    }
}

#[tonic::async_trait]
impl SchedulerService for FakeMaster {
    type SubscribeStream = ReceiverStream<Result<v1::Event, Status>>;

    async fn subscribe(
        &self,
        req: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let req = req.into_inner();
        let mut st = self.lock();
        if let Some(s) = st.refuse.clone() {
            st.refused += 1;
            return Err(s);
        }
        st.subscribes.push(req.clone());
        let (tx, rx) = mpsc::channel(FAKE_STREAM_BUFFER);
        let id = req
            .framework_info
            .map(|f| f.framework_id)
            .filter(|id| !id.is_empty())
            .unwrap_or("fw-1".into());
        let first = match st.error_on_subscribe.clone() {
            Some(message) => v1::event::Event::Error(v1::event::Error { message }),
            None => v1::event::Event::Subscribed(v1::event::Subscribed {
                framework_id: id,
                heartbeat_interval_seconds: st.heartbeat_seconds,
                stream_id: format!("stream-{}", st.subscribes.len()),
                master_id: "fake".into(),
            }),
        };
        tx.try_send(Ok(v1::Event { event: Some(first) }))
            .map_err(|_| Status::internal("buffer"))?;
        st.stream = Some(tx);
        Ok(Response::new(ReceiverStream::new(rx)))
    }
    async fn accept(
        &self,
        r: Request<v1::AcceptRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = r.into_inner();
        self.record(
            "accept",
            r.header.as_ref(),
            (r.offer_ids, r.operations.len()),
        )
    }
    async fn decline(
        &self,
        r: Request<v1::DeclineRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = r.into_inner();
        self.record(
            "decline",
            r.header.as_ref(),
            (r.offer_ids, r.filters.and_then(|f| f.refuse_seconds)),
        )
    }
    async fn revive(
        &self,
        r: Request<v1::ReviveRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = r.into_inner();
        self.record("revive", r.header.as_ref(), r.roles)
    }
    async fn suppress(
        &self,
        r: Request<v1::SuppressRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = r.into_inner();
        self.record("suppress", r.header.as_ref(), r.roles)
    }
    async fn kill(
        &self,
        r: Request<v1::KillRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = r.into_inner();
        self.record("kill", r.header.as_ref(), (r.task_id, r.agent_id))
    }
    async fn acknowledge(
        &self,
        r: Request<v1::AcknowledgeRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = r.into_inner();
        self.record(
            "acknowledge",
            r.header.as_ref(),
            (r.task_id, r.agent_id, r.uuid.len()),
        )
    }
    /// Recorded as one "acknowledge" line per acknowledgement, the same as
    /// single acknowledgements, so tests see what was acknowledged however
    /// the driver batched it.
    async fn acknowledge_many(
        &self,
        r: Request<v1::AcknowledgeManyRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = r.into_inner();
        while self.lock().hold_acks {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for a in r.acknowledgements {
            self.record(
                "acknowledge",
                r.header.as_ref(),
                (a.task_id, a.agent_id, a.uuid.len()),
            )?;
        }
        Ok(Response::new(v1::CallResponse {}))
    }
    async fn reconcile(
        &self,
        r: Request<v1::ReconcileRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = r.into_inner();
        self.record("reconcile", r.header.as_ref(), r.tasks.len())
    }
    async fn teardown(
        &self,
        r: Request<v1::TeardownRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = r.into_inner();
        // Like the real master: the removed framework's stream gets ERROR,
        // possibly before the call's answer.
        let tx = self.lock().stream.clone();
        if let Some(tx) = tx {
            let message = "framework removed: teardown".to_string();
            let _ = tx
                .send(Ok(v1::Event {
                    event: Some(v1::event::Event::Error(v1::event::Error { message })),
                }))
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.record("teardown", r.header.as_ref(), ())
    }
    async fn update_framework(
        &self,
        r: Request<v1::UpdateFrameworkRequest>,
    ) -> Result<Response<v1::CallResponse>, Status> {
        let r = r.into_inner();
        self.record(
            "update_framework",
            r.header.as_ref(),
            r.framework_info.map(|f| f.name),
        )
    }
}

/// A scheduler that reports every callback as a line on a channel.
pub struct Recording(pub mpsc::Sender<String>);

impl Recording {
    /// A recorder and the receiving end of its records.
    pub fn new() -> (Recording, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(RECORD_BUFFER);
        (Recording(tx), rx)
    }
    async fn note(&self, s: String) {
        let _ = self.0.send(s).await;
    }
}

impl Scheduler for Recording {
    async fn subscribed(&mut self, _: &Driver, id: &FrameworkId) {
        self.note(format!("subscribed {id}")).await;
    }
    async fn offers(&mut self, _: &Driver, offers: Vec<Offer>) {
        self.note(format!("offers {}", offers.len())).await;
    }
    async fn rescinded(&mut self, _: &Driver, id: OfferId) {
        self.note(format!("rescinded {id}")).await;
    }
    async fn update(&mut self, _: &Driver, s: &TaskStatus) {
        self.note(format!("update {} {}", s.task_id, s.state)).await;
    }
    async fn failure(&mut self, _: &Driver, a: AgentId, s: Option<i32>) {
        self.note(format!("failure {a} {s:?}")).await;
    }
    async fn error(&mut self, _: &Driver, m: String) {
        self.note(format!("error {m}")).await;
    }
    async fn disconnected(&mut self, _: &Driver) {
        self.note("disconnected".into()).await;
    }
}

/// The next record, or a panic after 5 s.
pub async fn next(rx: &mut mpsc::Receiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .ok()
        .flatten()
        .expect("a callback within 5 s")
}
