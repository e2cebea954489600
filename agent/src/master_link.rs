//! The agent's link to the masters: register with the first master that
//! accepts (trying the list in order, with capped jittered exponential
//! backoff between rounds), say Hello on the same connection, answer pings,
//! pass launches, kills and acknowledgements to the event loop, and start
//! over when the link ends, fails or goes quiet for `max_missed_pings` ping
//! intervals. The framing is `agora_proto::link`.
//!
//! A standby master refuses the registration with "not the leading master"
//! and the leader's address (`LinkError.leader`); the agent registers there
//! next, at once, even if it is not in `masters` (`agora_proto::leader::
//! MasterWalk`: after `MAX_REDIRECT_HOPS` hints in a row it backs off and
//! goes on with the list). A refusal without a hint, or an unreachable
//! master, moves on to the next master. A leader that loses leadership
//! closes its links; the agent then re-registers as after a master restart,
//! starting with the same master, which redirects it.
use std::time::Duration;

use agora_model::AgentId;
use agora_proto::leader::{MasterWalk, Retry, leader_hint};
use agora_proto::link::{AgentLink, FrameReader, next_master_message};
use agora_proto::v1;
use rand::Rng;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, oneshot};

use crate::event_loop::Event;

/// Capacity of the link's outgoing queue. Updates that do not fit
/// are resent after their backoff, pongs are small and rare; 256 messages
/// is far above a healthy steady state.
pub(crate) const OUTBOUND_CAPACITY: usize = 256;

/// Ping interval assumed when the master does not name one (Mesos 15 s).
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);
/// Shortest ping interval taken from a master (the master's own config
/// refuses periods below this, `master/src/config.rs`).
const MIN_PING_INTERVAL: Duration = Duration::from_millis(1);

/// Settings of the link.
#[derive(Debug, Clone)]
pub(crate) struct LinkConfig {
    pub(crate) masters: Vec<String>,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_missed_pings: u32,
}

/// Capped exponential backoff with "equal jitter": each wait is uniformly
/// drawn from [d/2, d] so agents restarted together do not stampede.
pub(crate) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            next: min,
            min,
            max,
        }
    }
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
    /// The next wait (jittered), doubling the base up to the cap.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = d / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// How a session ended: the stream ended, failed or went quiet.
struct Lost(String);

/// Runs forever (the agent's runtime is dropped to stop it).
pub(crate) async fn run(config: LinkConfig, events: mpsc::Sender<Event>) {
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
    // Backs off only after a whole round of the list failed, as before
    // redirects existed.
    let mut walk = MasterWalk::new(config.masters.clone(), false);
    loop {
        let master = walk.current().to_string();
        if master.is_empty() {
            return;
        }
        match session(&config, &master, &events).await {
            Ok(Lost(why)) => {
                tracing::warn!(master, why, "lost the master; registering again");
                if events.send(Event::Disconnected).await.is_err() {
                    return;
                }
                // The same master first: after a restart it is back, and
                // after losing leadership it names the new leader.
                walk.succeeded();
                backoff.reset();
                tokio::time::sleep(backoff.next_wait()).await;
            }
            Err(refused) => {
                if events.is_closed() {
                    return;
                }
                let retry = walk.failed(refused.leader.as_deref());
                if walk.is_redirected() {
                    tracing::info!(
                        from = master,
                        to = walk.current(),
                        "not the leading master; registering at the leader"
                    );
                } else {
                    tracing::warn!(master, why = refused.why, "registration failed");
                }
                if retry == Retry::AfterBackoff {
                    // A whole round failed, or hints went in circles.
                    tokio::time::sleep(backoff.next_wait()).await;
                }
            }
        }
    }
}

/// Why a registration failed, and the leader a standby named, if any.
struct Refused {
    why: String,
    leader: Option<String>,
}

impl From<String> for Refused {
    fn from(why: String) -> Refused {
        Refused { why, leader: None }
    }
}

/// One registration and the stream after it. `Err` = registration failed.
async fn session(
    config: &LinkConfig,
    master: &str,
    events: &mpsc::Sender<Event>,
) -> Result<Lost, Refused> {
    let mut link = AgentLink::connect(master, config.connect_timeout).await?;
    let (response, delivered) = register(config, &mut link, events).await?;
    let agent_id = AgentId::parse(response.agent_id.clone())
        .map_err(|e| Refused::from(format!("master sent a bad agent id: {e}")))?;
    // A master's ping interval below a millisecond would make every wait
    // time out at once (the agent would reconnect in a loop): refused, as
    // an absent one is.
    let ping_interval = if response.ping_interval_seconds.is_finite()
        && response.ping_interval_seconds >= MIN_PING_INTERVAL.as_secs_f64()
    {
        Duration::from_secs_f64(response.ping_interval_seconds.min(3600.0))
    } else {
        DEFAULT_PING_INTERVAL
    };
    let quiet_limit = ping_interval * config.max_missed_pings;

    let hello = v1::agent_message::Hello {
        agent_id: response.agent_id.clone(),
        session_id: response.session_id.clone(),
    };
    let (out_tx, mut inbound) = match link.attach(hello, OUTBOUND_CAPACITY).await {
        Ok(attached) => attached,
        Err(e) => return Ok(Lost(format!("Hello failed: {e}"))),
    };
    let registered = Event::Registered {
        agent_id,
        master: master.to_string(),
        outbound: out_tx.clone(),
        delivered,
    };
    events
        .send(registered)
        .await
        .map_err(|_| Refused::from("agent stopped".to_string()))?;
    Ok(pump(&mut inbound, quiet_limit, &out_tx, events).await?)
}

/// Asks the loop for a RegisterRequest and sends it; returns the answer
/// and the uuids of the updates the request carried.
async fn register(
    config: &LinkConfig,
    link: &mut AgentLink,
    events: &mpsc::Sender<Event>,
) -> Result<(v1::RegisterResponse, Vec<uuid::Uuid>), Refused> {
    let (tx, rx) = oneshot::channel();
    events
        .send(Event::RegisterSnapshot(tx))
        .await
        .map_err(|_| "agent stopped".to_string())?;
    let request = rx.await.map_err(|_| "agent stopped".to_string())?;
    let delivered: Vec<uuid::Uuid> = request
        .unacknowledged_updates
        .iter()
        .filter_map(|u| u.status.as_ref())
        .filter_map(|s| uuid::Uuid::from_slice(&s.uuid).ok())
        .collect();
    let registering_as = request
        .agent_info
        .as_ref()
        .map(|a| a.agent_id.clone())
        .unwrap_or_default();
    let response = link
        .register(request, config.connect_timeout)
        .await
        .map_err(|s| Refused {
            why: format!("Register refused: {}: {}", s.code(), s.message()),
            leader: leader_hint(&s),
        })?;
    if !registering_as.is_empty() && registering_as != response.agent_id {
        tracing::warn!(
            old = registering_as,
            new = response.agent_id,
            "re-registered under a new id"
        );
    }
    Ok((response, delivered))
}

/// Reads the link until it ends, fails or stays quiet for `quiet_limit`:
/// answers pings, passes everything else to the loop.
async fn pump(
    inbound: &mut FrameReader<OwnedReadHalf>,
    quiet_limit: Duration,
    out_tx: &mpsc::Sender<v1::AgentMessage>,
    events: &mpsc::Sender<Event>,
) -> Result<Lost, String> {
    loop {
        let msg = match tokio::time::timeout(quiet_limit, next_master_message(inbound)).await {
            Err(_) => return Ok(Lost(format!("no ping for {quiet_limit:?}"))),
            Ok(Err(s)) => {
                return Ok(Lost(format!("link failed: {}: {}", s.code(), s.message())));
            }
            Ok(Ok(None)) => return Ok(Lost("link closed by the master".to_string())),
            Ok(Ok(Some(m))) => m,
        };
        use v1::master_message::Message as M;
        match msg.message {
            Some(M::Ping(p)) => {
                let pong = v1::AgentMessage {
                    message: Some(v1::agent_message::Message::Pong(v1::agent_message::Pong {
                        seq: p.seq,
                    })),
                };
                // A pong that does not fit is lost like a dropped packet;
                // the master tolerates missed pongs.
                let _ = out_tx.try_send(pong);
            }
            Some(other) => {
                events
                    .send(Event::FromMaster(Box::new(other)))
                    .await
                    .map_err(|_| "agent stopped".to_string())?;
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let waits: Vec<Duration> = (0..6).map(|_| b.next_wait()).collect();
        let bases = [100, 200, 400, 400, 400, 400];
        for (w, base) in waits.iter().zip(bases) {
            let base = Duration::from_millis(base);
            assert!(
                *w >= base / 2 && *w <= base,
                "{w:?} outside [{:?}, {base:?}]",
                base / 2
            );
        }
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(100));
    }
}
