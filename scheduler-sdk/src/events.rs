//! Events from the master: decoding from the wire and dispatching to a
//! [`Scheduler`]. Both are free of IO so they are unit-tested directly.
use std::time::Duration;

use agora_model::{AgentId, Drain, FrameworkId, Offer, OfferId, TaskStatus};
use agora_proto::convert::{maintenance_from_wire, offer_from_wire, status_from_wire};
use agora_proto::v1;

use crate::calls::Driver;
use crate::scheduler::Scheduler;

/// Heartbeats missed before the driver declares the stream dead and
/// re-subscribes (Mesos scheduler guidance: about 5).
pub const MISSED_HEARTBEATS: u32 = 5;

/// One event of the subscription stream, in model types.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// The subscription was accepted.
    Subscribed {
        /// The framework's id (new on first subscription).
        framework_id: FrameworkId,
        /// How often the master sends HEARTBEAT; `None` if it does not.
        heartbeat_interval: Option<Duration>,
        /// Identifies this subscription on every call.
        stream_id: String,
        /// The master's id.
        master_id: String,
    },
    /// New offers (malformed ones are dropped with a warning).
    Offers(Vec<Offer>),
    /// An offer is no longer valid.
    Rescind(OfferId),
    /// A task status update.
    Update(TaskStatus),
    /// An agent was lost or an executor ended.
    Failure {
        /// The agent.
        agent_id: AgentId,
        /// The executor's exit status, if an executor ended.
        status: Option<i32>,
    },
    /// The operator drains an agent (`Some`: move tasks off it; it makes
    /// no new offers) or stopped draining it (`None`).
    AgentMaintenance {
        /// The agent.
        agent_id: AgentId,
        /// Its drain, if it drains.
        drain: Option<Drain>,
    },
    /// The master refuses to serve this framework any longer.
    Error(String),
    /// Keep-alive.
    Heartbeat,
}

/// Turns a wire event into a model event. Returns `None` for events that
/// cannot be used (empty, or naming malformed ids); those are logged, not
/// fatal, because one bad event should not tear down the framework.
pub(crate) fn decode(ev: v1::Event) -> Option<Event> {
    use v1::event::Event as W;
    let Some(inner) = ev.event else {
        tracing::warn!("event with no content; ignored");
        return None;
    };
    Some(match inner {
        W::Subscribed(s) => match FrameworkId::parse(s.framework_id.clone()) {
            Ok(framework_id) => Event::Subscribed {
                framework_id,
                heartbeat_interval: positive_seconds(s.heartbeat_interval_seconds),
                stream_id: s.stream_id,
                master_id: s.master_id,
            },
            Err(e) => {
                tracing::warn!(error = %e, "SUBSCRIBED with a bad framework id");
                return None;
            }
        },
        W::Offers(o) => Event::Offers(
            o.offers
                .iter()
                .filter_map(|w| {
                    offer_from_wire(w)
                        .inspect_err(|e| tracing::warn!(offer = %w.offer_id, error = %e, "malformed offer dropped"))
                        .ok()
                })
                .collect(),
        ),
        W::Rescind(r) => match OfferId::parse(r.offer_id) {
            Ok(id) => Event::Rescind(id),
            Err(e) => {
                tracing::warn!(error = %e, "RESCIND with a bad offer id");
                return None;
            }
        },
        W::Update(u) => {
            let Some(status) = u.status else {
                tracing::warn!("UPDATE without a status");
                return None;
            };
            match status_from_wire(&status) {
                Ok(s) => Event::Update(s),
                Err(e) => {
                    tracing::warn!(task = %status.task_id, error = %e, "malformed status update dropped");
                    return None;
                }
            }
        }
        W::Failure(f) => match AgentId::parse(f.agent_id) {
            Ok(agent_id) => Event::Failure { agent_id, status: f.status },
            Err(e) => {
                tracing::warn!(error = %e, "FAILURE with a bad agent id");
                return None;
            }
        },
        W::AgentMaintenance(m) => match maintenance_from_wire(&m) {
            Ok((agent_id, drain)) => Event::AgentMaintenance { agent_id, drain },
            Err(e) => {
                tracing::warn!(error = %e, "AGENT_MAINTENANCE with a bad agent id");
                return None;
            }
        },
        W::Error(e) => Event::Error(e.message),
        W::Heartbeat(_) => Event::Heartbeat,
    })
}

fn positive_seconds(s: f64) -> Option<Duration> {
    (s.is_finite() && s > 0.0 && s < 1e9).then(|| Duration::from_secs_f64(s))
}

/// How long the driver waits for any event before re-subscribing: five
/// heartbeat intervals, or forever if the master sends no heartbeats.
pub(crate) fn stream_deadline(heartbeat_interval: Option<Duration>) -> Option<Duration> {
    heartbeat_interval.map(|i| i.saturating_mul(MISSED_HEARTBEATS))
}

/// What the run loop does after an event was dispatched.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Flow {
    /// Wait for the next event.
    Continue,
    /// Acknowledge this update, then continue.
    Acknowledge(TaskStatus),
    /// Stop `run` with `SdkError::Fatal`.
    Fatal(String),
}

/// Hands one event to the scheduler and says what the driver does next.
pub(crate) async fn dispatch<S: Scheduler>(
    scheduler: &mut S,
    driver: &Driver,
    event: Event,
    auto_ack: bool,
) -> Flow {
    match event {
        Event::Offers(offers) if offers.is_empty() => {}
        Event::Offers(offers) => scheduler.offers(driver, offers).await,
        Event::Rescind(id) => scheduler.rescinded(driver, id).await,
        Event::Update(status) => {
            scheduler.update(driver, &status).await;
            if auto_ack && status.uuid.is_some() {
                return Flow::Acknowledge(status);
            }
        }
        Event::Failure { agent_id, status } => scheduler.failure(driver, agent_id, status).await,
        Event::AgentMaintenance { agent_id, drain } => {
            scheduler.agent_maintenance(driver, agent_id, drain).await
        }
        Event::Error(message) => {
            scheduler.error(driver, message.clone()).await;
            return Flow::Fatal(message);
        }
        Event::Heartbeat => {}
        Event::Subscribed { .. } => {
            // The master sends SUBSCRIBED only as the first event; the run
            // loop handles that one. A second one is a protocol slip.
            tracing::warn!("unexpected SUBSCRIBED in the middle of a stream; ignored");
        }
    }
    Flow::Continue
}

#[cfg(test)]
mod tests;
