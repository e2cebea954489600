//! Helpers for the scheduler-SDK integration tests: a framework whose
//! callbacks are forwarded to the test as events, so a test can drive the
//! SDK's `Driver` imperatively and wait for exactly the events it expects.
use std::collections::VecDeque;
use std::time::Duration;

use agora_scheduler_sdk::model::{
    AgentId, Capability, FrameworkId, FrameworkInfo, Offer, OfferId, ResourceRequest, Resources,
    TaskState, TaskStatus,
};
use agora_scheduler_sdk::{
    Driver, OfferResources, Scheduler, SchedulerDriver, SchedulerDriverBuilder, SdkError,
    TaskBuilder,
};
use agora_tests::{SimAgent, SimAgentConfig, TaskBehaviour, TestMaster};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Events buffered between the driver and the test. Large, because a test
/// may not read for a while; offers are not a flood (outstanding offers are
/// not re-offered), so this is never reached in practice.
const EVENT_BUFFER: usize = 4096;

/// How long any single expected event may take.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// One callback, as seen by the test.
#[derive(Debug, Clone)]
pub(crate) enum Ev {
    Subscribed(FrameworkId),
    Offers(Vec<Offer>),
    Rescinded(OfferId),
    Update(TaskStatus),
    Error(String),
    Disconnected,
}

/// Forwards every callback to the test; does nothing else (no declines, no acks
/// beyond the driver's automatic ones).
pub(crate) struct Forward(mpsc::Sender<Ev>);

impl Forward {
    async fn send(&self, ev: Ev) {
        // The test may have stopped listening; that is not an error here.
        let _ = self.0.send(ev).await;
    }
}

impl Scheduler for Forward {
    async fn subscribed(&mut self, _: &Driver, id: &FrameworkId) {
        self.send(Ev::Subscribed(id.clone())).await;
    }
    async fn offers(&mut self, _: &Driver, offers: Vec<Offer>) {
        self.send(Ev::Offers(offers)).await;
    }
    async fn rescinded(&mut self, _: &Driver, id: OfferId) {
        self.send(Ev::Rescinded(id)).await;
    }
    async fn update(&mut self, _: &Driver, status: &TaskStatus) {
        self.send(Ev::Update(status.clone())).await;
    }
    async fn error(&mut self, _: &Driver, message: String) {
        self.send(Ev::Error(message)).await;
    }
    async fn disconnected(&mut self, _: &Driver) {
        self.send(Ev::Disconnected).await;
    }
}

/// A framework under test: the SDK driver running a `Forward` scheduler.
pub(crate) struct Fw {
    pub(crate) driver: Driver,
    pub(crate) id: FrameworkId,
    events: mpsc::Receiver<Ev>,
    /// Events received but not yet matched by an `expect`.
    pending: VecDeque<Ev>,
    run: Option<JoinHandle<Result<(), SdkError>>>,
}

/// A FrameworkInfo for tests.
pub(crate) fn info(name: &str) -> FrameworkInfo {
    FrameworkInfo::named(name)
}

/// A partition-aware FrameworkInfo.
pub(crate) fn pa_info(name: &str) -> FrameworkInfo {
    let mut i = FrameworkInfo::named(name);
    i.capabilities.insert(Capability::PartitionAware);
    i
}

/// A builder with test-friendly reconnect timings.
pub(crate) fn builder(master: &TestMaster, info: FrameworkInfo) -> SchedulerDriverBuilder {
    SchedulerDriver::builder([master.host_port()], info)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .call_timeout(Duration::from_secs(5))
}

impl Fw {
    /// Subscribes `info` to `master` and waits for SUBSCRIBED.
    pub(crate) async fn start(master: &TestMaster, info: FrameworkInfo) -> Fw {
        Fw::start_with(builder(master, info)).await
    }

    /// Runs a driver from `builder` and waits for SUBSCRIBED.
    pub(crate) async fn start_with(builder: SchedulerDriverBuilder) -> Fw {
        let mut fw = Fw::spawn(builder);
        fw.id = fw
            .expect("SUBSCRIBED", |e| match e {
                Ev::Subscribed(id) => Some(id.clone()),
                _ => None,
            })
            .await;
        fw
    }

    /// Runs a driver from `builder` without waiting for anything.
    pub(crate) fn spawn(builder: SchedulerDriverBuilder) -> Fw {
        let sdk = match builder.build() {
            Ok(d) => d,
            Err(e) => panic!("driver config: {e}"),
        };
        let (tx, events) = mpsc::channel(EVENT_BUFFER);
        let driver = sdk.driver();
        let run = tokio::spawn(sdk.run(Forward(tx)));
        Fw {
            driver,
            id: FrameworkId::new_unchecked("-"),
            events,
            pending: VecDeque::new(),
            run: Some(run),
        }
    }

    /// The first event (earliest first) for which `f` returns `Some`; other
    /// events stay queued for later `expect`s. Panics after `WAIT`.
    pub(crate) async fn expect<T>(&mut self, what: &str, mut f: impl FnMut(&Ev) -> Option<T>) -> T {
        match self.try_expect(WAIT, &mut f).await {
            Some(v) => v,
            None => panic!(
                "timed out after {WAIT:?} waiting for {what}; unmatched events: {:?}",
                self.pending
            ),
        }
    }

    /// Like `expect`, but gives up (returning `None`) after `within`.
    pub(crate) async fn try_expect<T>(
        &mut self,
        within: Duration,
        mut f: impl FnMut(&Ev) -> Option<T>,
    ) -> Option<T> {
        if let Some(pos) = self.pending.iter().position(|e| f(e).is_some()) {
            let ev = self.pending.remove(pos)?;
            return f(&ev);
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .ok()
                .flatten()?;
            if let Some(v) = f(&ev) {
                return Some(v);
            }
            self.pending.push_back(ev);
        }
    }

    /// The next offer on `agent`; other offers of the same event stay queued.
    pub(crate) async fn offer_on(&mut self, agent: &AgentId) -> Offer {
        let mut offers = self
            .expect(&format!("an offer on {agent}"), |e| match e {
                Ev::Offers(o) if o.iter().any(|o| &o.agent_id == agent) => Some(o.clone()),
                _ => None,
            })
            .await;
        let pos = offers
            .iter()
            .position(|o| &o.agent_id == agent)
            .unwrap_or_default();
        let offer = offers.remove(pos);
        if !offers.is_empty() {
            self.pending.push_front(Ev::Offers(offers));
        }
        offer
    }

    /// Offers that arrive within `within` (empty if none).
    pub(crate) async fn offers_within(&mut self, within: Duration) -> Vec<Offer> {
        self.try_expect(within, |e| match e {
            Ev::Offers(o) => Some(o.clone()),
            _ => None,
        })
        .await
        .unwrap_or_default()
    }

    /// The next update of `task` in `state`, skipping its other updates.
    pub(crate) async fn state(&mut self, task: &str, state: TaskState) -> TaskStatus {
        self.expect(&format!("{task} {state}"), |e| match e {
            Ev::Update(s) if s.task_id.as_str() == task && s.state == state => Some(s.clone()),
            _ => None,
        })
        .await
    }

    /// The next update of `task`, whatever its state.
    pub(crate) async fn update(&mut self, task: &str) -> TaskStatus {
        self.expect(&format!("an update of {task}"), |e| match e {
            Ev::Update(s) if s.task_id.as_str() == task => Some(s.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for `run` to return and gives its result.
    pub(crate) async fn finished(&mut self) -> Result<(), SdkError> {
        let Some(run) = self.run.take() else {
            panic!("already finished")
        };
        match tokio::time::timeout(WAIT, run).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("driver task panicked: {e}"),
            Err(_) => panic!("driver did not return within {WAIT:?}"),
        }
    }

    /// Stops the driver and waits for `run` to return `Ok`.
    pub(crate) async fn stop(mut self) {
        self.driver.stop();
        if let Err(e) = self.finished().await {
            panic!("driver ended with {e}");
        }
    }
}

impl Drop for Fw {
    fn drop(&mut self) {
        // A failed test must not leave a driver reconnecting forever.
        self.driver.stop();
    }
}

/// An agent with `resources` whose tasks behave as `behaviour`.
pub(crate) async fn agent(
    master: &TestMaster,
    resources: &str,
    behaviour: TaskBehaviour,
) -> (SimAgent, AgentId) {
    let config = SimAgentConfig {
        resources: Resources::parse(resources)
            .unwrap_or_else(|e| panic!("fixture {resources}: {e}")),
        behaviour,
        ..Default::default()
    };
    let a = SimAgent::start(&master.endpoint(), config).await;
    let id = a.agent_id().await;
    (a, id)
}

/// A shell task carved from `res` with `req`, for `offer`'s agent.
pub(crate) fn task(
    id: &str,
    offer: &Offer,
    res: &mut OfferResources,
    req: ResourceRequest,
) -> agora_scheduler_sdk::model::TaskSpec {
    let carved = res
        .take(&req)
        .unwrap_or_else(|| panic!("{req:?} does not fit in {}", res.remaining()));
    TaskBuilder::new(id)
        .shell("sleep 1")
        .resources(carved)
        .build(&offer.agent_id)
        .unwrap_or_else(|e| panic!("task {id}: {e}"))
}

/// A small task (0.1 cpu, 32 MB) carved from the whole of `offer`.
pub(crate) fn small_task(id: &str, offer: &Offer) -> agora_scheduler_sdk::model::TaskSpec {
    task(
        id,
        offer,
        &mut OfferResources::new(offer),
        ResourceRequest::new(0.1, 32.0),
    )
}

/// The framework object with `id` in /state.
pub(crate) async fn state_framework(
    master: &TestMaster,
    id: &FrameworkId,
) -> Option<serde_json::Value> {
    let state = master.state().await.ok()?;
    state["frameworks"]
        .as_array()?
        .iter()
        .find(|f| f["id"] == id.as_str())
        .cloned()
}
