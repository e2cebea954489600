//! `SchedulerDriver`: subscribes, keeps the subscription alive across master
//! restarts and network trouble, and feeds events to a [`Scheduler`].
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use agora_model::{FrameworkInfo, Role};
use agora_proto::leader::{MasterWalk, Retry, leader_hint};
use agora_proto::v1::scheduler_client::SchedulerClient;
use tokio::sync::watch;
use tonic::transport::Endpoint;
use tracing::{debug, info, warn};

use crate::backoff::{Backoff, DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN};
use crate::calls::{Driver, Refusal, Session};
use crate::error::SdkError;
use crate::events::{Event, Flow, decode, dispatch, stream_deadline};
use crate::scheduler::Scheduler;

/// Default bound on one unary call (Mesos guidance: ~75 s).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(75);
/// How long to wait for a TCP connection to a master.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the SUBSCRIBED event after sending SUBSCRIBE.
pub const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(15);
/// Automatic acknowledgements go out in batches (AcknowledgeMany), at most
/// this many batches in flight. Acknowledging one update per round trip
/// caps a framework at a few hundred updates a second and stalls its event
/// stream; with batches, whatever arrives while earlier batches are in
/// flight rides the next one, so a quiet framework acks at once and a busy
/// one in a few large calls.
const ACK_BATCHES_IN_FLIGHT: usize = 4;
/// Updates in one automatic AcknowledgeMany.
const MAX_ACK_BATCH: usize = 2_000;
/// Updates waiting for a batch, by default (see
/// [`SchedulerDriverBuilder::max_unacknowledged`]). At the limit the driver
/// stops reading events until a batch in flight completes: the master then
/// holds the framework's events (and its offers) back, instead of the SDK
/// dropping acknowledgements, which left those updates waiting seconds for
/// their agents' resend.
pub const MAX_UNACKED: usize = 65_536;

/// Configures a [`SchedulerDriver`]; made by [`SchedulerDriver::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SchedulerDriverBuilder {
    masters: Vec<String>,
    framework: FrameworkInfo,
    auto_ack: bool,
    backoff_min: Duration,
    backoff_max: Duration,
    suppressed: BTreeSet<Role>,
    call_timeout: Duration,
    max_unacked: usize,
}

impl SchedulerDriverBuilder {
    /// Automatic acknowledgements waiting to be sent before the driver
    /// stops reading events (default [`MAX_UNACKED`], at least 1); bounds
    /// the memory a burst of updates can take.
    pub fn max_unacknowledged(mut self, n: usize) -> Self {
        self.max_unacked = n.max(1);
        self
    }

    /// Acknowledge status updates automatically after `update` returns
    /// (default `true`). With `false`, call [`Driver::acknowledge`] yourself,
    /// e.g. after persisting the update.
    pub fn auto_acknowledge(mut self, on: bool) -> Self {
        self.auto_ack = on;
        self
    }

    /// Reconnect delays: capped, jittered exponential from `min` to `max`
    /// (defaults 0.5 s and 15 s).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// Roles to subscribe suppressed (no offers until revived).
    pub fn suppressed_roles(mut self, roles: impl IntoIterator<Item = Role>) -> Self {
        self.suppressed = roles.into_iter().collect();
        self
    }

    /// Bound on each unary call (default 75 s).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Checks the master addresses and makes the driver.
    pub fn build(self) -> Result<SchedulerDriver, SdkError> {
        if self.masters.is_empty() {
            return Err(SdkError::Config("no master addresses given".into()));
        }
        let masters = self
            .masters
            .iter()
            .map(|m| {
                endpoint(m)?;
                normalize_master(m)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let driver = Driver::new(self.framework, self.suppressed, self.call_timeout);
        Ok(SchedulerDriver {
            masters,
            auto_ack: self.auto_ack,
            max_unacked: self.max_unacked,
            backoff: (self.backoff_min, self.backoff_max),
            driver,
        })
    }

    /// `build()` then [`SchedulerDriver::run`].
    pub async fn run<S: Scheduler>(self, scheduler: S) -> Result<(), SdkError> {
        self.build()?.run(scheduler).await
    }
}

/// Runs a [`Scheduler`] against a list of masters.
///
/// The driver subscribes to the first reachable master, remembers the
/// framework id and stream id from SUBSCRIBED, and re-subscribes with the
/// same framework id (trying the masters in turn, with backoff) whenever
/// the stream breaks or [`MISSED_HEARTBEATS`](crate::MISSED_HEARTBEATS)
/// heartbeats go missing.
///
/// A standby master refuses with "not the leading master" (`UNAVAILABLE`)
/// and names the leader in the `agora-leader` metadata
/// ([`agora_proto::LEADER_METADATA_KEY`]); the driver subscribes there
/// next, without a backoff wait, even if the leader is not in its list.
/// After [`MAX_REDIRECT_HOPS`](agora_proto::leader::MAX_REDIRECT_HOPS)
/// redirects in a row (hints pointing at each other) it backs off and goes
/// on with the list. A refusal without a hint, or an unreachable master,
/// moves on to the next master after the backoff. A call refused by a
/// master that lost leadership ends the subscription the same way.
#[derive(Debug)]
pub struct SchedulerDriver {
    /// The configured masters, as `http://host:port`.
    masters: Vec<String>,
    auto_ack: bool,
    max_unacked: usize,
    backoff: (Duration, Duration),
    driver: Driver,
}

/// A subscription's event stream.
type Events = tonic::Streaming<agora_proto::v1::Event>;

/// Why one subscription ended.
enum End {
    /// `stop()`/`teardown()`: `run` returns `Ok`.
    Stopped,
    /// ERROR event or a refused subscription: `run` returns the error.
    Fatal(SdkError),
    /// Connection trouble: reconnect. `subscribed` says whether the
    /// scheduler had seen `subscribed()` (and so must see `disconnected()`);
    /// `leader` is where a standby said the leader is.
    Broken {
        subscribed: bool,
        reason: String,
        leader: Option<String>,
    },
}

impl End {
    /// A break before SUBSCRIBED, with no leader hint.
    fn early(reason: String) -> End {
        End::Broken {
            subscribed: false,
            reason,
            leader: None,
        }
    }

    /// A break before SUBSCRIBED because of `status`, keeping its hint.
    fn refused(what: &str, status: &tonic::Status) -> End {
        End::Broken {
            subscribed: false,
            reason: format!("{what}: {:?} {}", status.code(), status.message()),
            leader: leader_hint(status),
        }
    }
}

impl SchedulerDriver {
    /// A builder for `masters` (`"host:port"` or `"http://host:port"`) and
    /// the framework's description. Set `framework.id` to fail over to an
    /// existing framework.
    pub fn builder(
        masters: impl IntoIterator<Item = impl Into<String>>,
        framework: FrameworkInfo,
    ) -> SchedulerDriverBuilder {
        SchedulerDriverBuilder {
            masters: masters.into_iter().map(Into::into).collect(),
            framework,
            auto_ack: true,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
            suppressed: BTreeSet::new(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_unacked: MAX_UNACKED,
        }
    }

    /// A handle for making calls or stopping the driver from outside the
    /// scheduler (e.g. from a signal handler or another task).
    pub fn driver(&self) -> Driver {
        self.driver.clone()
    }

    /// Runs until the scheduler calls [`Driver::stop`] or
    /// [`Driver::teardown`] (`Ok`), or the master sends ERROR or refuses the
    /// subscription for good (gRPC `InvalidArgument`, `PermissionDenied`,
    /// `Unauthenticated`), which returns [`SdkError::Fatal`]. Other failures
    /// (unreachable masters, `Unavailable`, `FailedPrecondition` from a
    /// standby) are retried forever; stop the driver from outside if needed.
    pub async fn run<S: Scheduler>(self, mut scheduler: S) -> Result<(), SdkError> {
        let mut stop = self.driver.stop_receiver();
        let mut backoff = Backoff::new(self.backoff.0, self.backoff.1);
        // Backs off after every failure (not only after a whole round), as
        // the driver always did; redirects go at once.
        let mut walk = MasterWalk::new(self.masters.clone(), true);
        loop {
            if self.driver.is_stopped() {
                return Ok(());
            }
            let master = walk.current().to_string();
            let end = match endpoint(&master) {
                Ok(ep) => {
                    self.session(&ep, &mut scheduler, &mut stop, &mut backoff, &mut walk)
                        .await
                }
                Err(e) => End::early(e.to_string()),
            };
            self.driver.clear_session();
            let (reason, leader) = match end {
                End::Stopped => {
                    info!("scheduler driver stopped");
                    return Ok(());
                }
                End::Fatal(e) => {
                    warn!(error = %e, "scheduler driver aborted");
                    self.driver.stop();
                    return Err(e);
                }
                End::Broken {
                    subscribed,
                    reason,
                    leader,
                } => {
                    if subscribed {
                        scheduler.disconnected(&self.driver).await;
                    }
                    (reason, leader)
                }
            };
            let retry = walk.failed(leader.as_deref());
            if walk.is_redirected() {
                info!(from = master, to = walk.current(), %reason, "redirected to the leading master");
            } else {
                warn!(master, %reason, "subscription lost");
            }
            if retry == Retry::Now {
                continue;
            }
            let delay = backoff.next_delay();
            debug!(
                ?delay,
                attempt = backoff.attempts(),
                "waiting before re-subscribing"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped(&mut stop) => return Ok(()),
            }
        }
    }

    /// One subscription, from connecting to its end.
    async fn session<S: Scheduler>(
        &self,
        endpoint: &Endpoint,
        scheduler: &mut S,
        stop: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
        walk: &mut MasterWalk,
    ) -> End {
        match self.subscribe(endpoint, scheduler, stop).await {
            Ok((stream, heartbeat_interval, refused)) => {
                backoff.reset();
                walk.succeeded();
                self.pump(stream, heartbeat_interval, refused, scheduler, stop)
                    .await
            }
            Err(end) => end,
        }
    }

    /// Connects, subscribes and waits for SUBSCRIBED; installs the session
    /// for calls and tells the scheduler. Returns the event stream and the
    /// receiver of the session's refused calls (see [`Session::refused`]).
    async fn subscribe<S: Scheduler>(
        &self,
        endpoint: &Endpoint,
        scheduler: &mut S,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(Events, Option<Duration>, watch::Receiver<Refusal>), End> {
        let driver = &self.driver;
        let channel = tokio::select! {
            r = endpoint.connect() => match r {
                Ok(c) => c,
                Err(e) => return Err(End::early(format!("connect: {e}"))),
            },
            () = stopped(stop) => return Err(End::Stopped),
        };
        let mut client = SchedulerClient::new(channel);
        let request = driver.subscribe_request();
        let response = tokio::select! {
            r = tokio::time::timeout(SUBSCRIBE_TIMEOUT, client.subscribe(request)) => r,
            () = stopped(stop) => return Err(End::Stopped),
        };
        let mut stream = match response {
            Err(_) => return Err(End::early("no answer to SUBSCRIBE".into())),
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => return Err(refusal(scheduler, driver, &status).await),
        };
        let first = tokio::select! {
            r = tokio::time::timeout(SUBSCRIBE_TIMEOUT, stream.message()) => r,
            () = stopped(stop) => return Err(End::Stopped),
        };
        let (framework_id, heartbeat_interval, stream_id) = match first {
            Err(_) => return Err(End::early("no SUBSCRIBED event".into())),
            Ok(Err(status)) => return Err(End::refused("stream", &status)),
            Ok(Ok(None)) => return Err(End::early("stream closed before SUBSCRIBED".into())),
            Ok(Ok(Some(ev))) => match decode(ev) {
                Some(Event::Subscribed {
                    framework_id,
                    heartbeat_interval,
                    stream_id,
                    master_id,
                }) => {
                    info!(framework = %framework_id, master = %master_id, ?heartbeat_interval, "subscribed");
                    (framework_id, heartbeat_interval, stream_id)
                }
                Some(Event::Error(m)) => {
                    scheduler.error(driver, m.clone()).await;
                    return Err(End::Fatal(SdkError::Fatal(m)));
                }
                other => {
                    return Err(End::early(format!(
                        "expected SUBSCRIBED first, got {other:?}"
                    )));
                }
            },
        };
        // Calls get a connection of their own (see `Session::client`); lazy,
        // so a dead master shows up as a failed call, not a stuck subscribe.
        let calls = SchedulerClient::new(endpoint.connect_lazy());
        let (refused, refused_rx) = watch::channel(None);
        driver.install(Session {
            client: calls,
            framework_id: framework_id.clone(),
            stream_id,
            refused: Arc::new(refused),
        });
        scheduler.subscribed(driver, &framework_id).await;
        Ok((stream, heartbeat_interval, refused_rx))
    }

    /// Feeds events to the scheduler until the subscription ends.
    async fn pump<S: Scheduler>(
        &self,
        mut stream: Events,
        heartbeat_interval: Option<Duration>,
        mut refused: watch::Receiver<Refusal>,
        scheduler: &mut S,
        stop: &mut watch::Receiver<bool>,
    ) -> End {
        let driver = &self.driver;
        let deadline = stream_deadline(heartbeat_interval);
        let lost = |reason: String| End::Broken {
            subscribed: true,
            reason,
            leader: None,
        };
        // Dropped with the session: acks still in flight are abandoned, and
        // the agents resend those updates until a later ack lands.
        let mut acks = tokio::task::JoinSet::new();
        let mut unacked: VecDeque<agora_model::TaskStatus> = VecDeque::new();
        loop {
            let next = tokio::select! {
                biased;
                () = stopped(stop) => return End::Stopped,
                Ok(r) = refused.wait_for(Option::is_some) => {
                    return End::Broken {
                        subscribed: true,
                        reason: "a call was refused: not the leading master".into(),
                        leader: (*r).clone().flatten(),
                    };
                }
                Some(_) = acks.join_next(), if !acks.is_empty() => {
                    flush_acks(driver, &mut acks, &mut unacked);
                    continue;
                }
                // `flush_acks` keeps batches in flight while any wait, so a
                // full queue always has a batch to wait for.
                r = next_within(&mut stream, deadline), if unacked.len() < self.max_unacked || acks.is_empty() => r,
            };
            let event = match next {
                None => return lost(format!("no event for {deadline:?} (missed heartbeats)")),
                Some(Err(status)) => {
                    return End::Broken {
                        subscribed: true,
                        reason: format!("stream: {:?} {}", status.code(), status.message()),
                        leader: leader_hint(&status),
                    };
                }
                Some(Ok(None)) => return lost("stream closed by the master".into()),
                Some(Ok(Some(ev))) => ev,
            };
            let Some(event) = decode(event) else { continue };
            if matches!(event, Event::Error(_)) && driver.is_tearing_down() {
                // The master's goodbye to our own TEARDOWN, not a failure.
                return End::Stopped;
            }
            match dispatch(scheduler, driver, event, self.auto_ack).await {
                Flow::Continue => {}
                Flow::Acknowledge(status) => {
                    unacked.push_back(status);
                    flush_acks(driver, &mut acks, &mut unacked);
                }
                Flow::Fatal(m) => return End::Fatal(SdkError::Fatal(m)),
            }
        }
    }
}

/// The end of a SUBSCRIBE the master answered with an error `status`.
async fn refusal<S: Scheduler>(scheduler: &mut S, driver: &Driver, status: &tonic::Status) -> End {
    use tonic::Code;
    let m = status.message().to_string();
    match status.code() {
        // The master understood and said no (bad FrameworkInfo, a removed
        // framework): the same SUBSCRIBE would be refused again. Anything
        // else (e.g. a standby master) may pass on another master or later.
        Code::InvalidArgument | Code::PermissionDenied | Code::Unauthenticated => {
            scheduler.error(driver, m.clone()).await;
            End::Fatal(SdkError::Fatal(format!("subscription refused: {m}")))
        }
        _ => End::refused("SUBSCRIBE", status),
    }
}

/// Sends what is waiting in batches, while fewer than the limit are in flight.
fn flush_acks(
    driver: &Driver,
    acks: &mut tokio::task::JoinSet<()>,
    unacked: &mut VecDeque<agora_model::TaskStatus>,
) {
    while acks.len() < ACK_BATCHES_IN_FLIGHT && !unacked.is_empty() {
        let n = unacked.len().min(MAX_ACK_BATCH);
        let batch: Vec<_> = unacked.drain(..n).collect();
        let driver = driver.clone();
        acks.spawn(async move {
            // A failed ack is not lost: the agents resend the updates until
            // they are acknowledged.
            if let Err(e) = driver.acknowledge_many(&batch).await {
                warn!(updates = batch.len(), error = %e, "acknowledgements failed");
            }
        });
    }
}

/// The next stream message, or `None` if `deadline` passed first.
async fn next_within(
    stream: &mut Events,
    deadline: Option<Duration>,
) -> Option<Result<Option<agora_proto::v1::Event>, tonic::Status>> {
    match deadline {
        Some(d) => tokio::time::timeout(d, stream.message()).await.ok(),
        None => Some(stream.message().await),
    }
}

/// Resolves once the driver is asked to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The sender lives as long as the Driver we hold, so an error cannot
    // happen; if it did, treating it as "stop" is the safe reading.
    let _ = stop.wait_for(|s| *s).await;
}

/// `"host:port"` or `"http://host:port"` → a tonic endpoint.
pub(crate) fn endpoint(master: &str) -> Result<Endpoint, SdkError> {
    let url = normalize_master(master)?;
    let ep = Endpoint::from_shared(url.clone())
        .map_err(|e| SdkError::Config(format!("master {master:?}: {e}")))?;
    Ok(ep.connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true))
}

/// Adds `http://` to a bare `host:port` and checks the result looks like one.
pub(crate) fn normalize_master(master: &str) -> Result<String, SdkError> {
    let m = master.trim().trim_end_matches('/');
    let bad = |why: &str| SdkError::Config(format!("master {master:?}: {why}"));
    if m.is_empty() {
        return Err(bad("empty address"));
    }
    if m.starts_with("https://") {
        return Err(bad("TLS is not supported; use http://"));
    }
    let url = if m.starts_with("http://") {
        m.to_string()
    } else {
        format!("http://{m}")
    };
    let authority = &url["http://".len()..];
    if authority.is_empty() || authority.contains('/') || authority.contains("://") {
        return Err(bad("expected host:port"));
    }
    let port_ok = authority
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok {
        return Err(bad("expected host:port"));
    }
    Ok(url)
}

#[cfg(test)]
mod redirect_tests;
#[cfg(test)]
mod tests;
