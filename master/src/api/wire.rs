//! Domain messages ↔ wire messages, at the edge. The core speaks
//! `FrameworkEvent`, `ToAgent` and `FromAgent`; only the loop's sending side
//! and the handlers' receiving side see protobuf types.
use agora_model::FrameworkId;
use agora_proto::{convert, v1};

use crate::core::FromAgent;
use crate::effects::{FrameworkEvent, ToAgent};

pub(crate) fn event_to_wire(ev: FrameworkEvent, master_id: &str) -> v1::Event {
    use v1::event::Event as E;
    let event = match ev {
        FrameworkEvent::Subscribed {
            framework_id,
            stream_id,
            heartbeat_interval,
        } => E::Subscribed(v1::event::Subscribed {
            framework_id: framework_id.to_string(),
            heartbeat_interval_seconds: heartbeat_interval.as_secs_f64(),
            stream_id: stream_id.to_string(),
            master_id: master_id.to_string(),
        }),
        FrameworkEvent::Offers(offers) => E::Offers(v1::event::Offers {
            offers: offers.iter().map(convert::offer_to_wire).collect(),
        }),
        FrameworkEvent::Rescind(id) => E::Rescind(v1::event::Rescind {
            offer_id: id.to_string(),
        }),
        FrameworkEvent::Update(st) => E::Update(v1::event::Update {
            status: Some(convert::status_to_wire(&st)),
        }),
        FrameworkEvent::Failure(agent) => E::Failure(v1::event::Failure {
            agent_id: agent.to_string(),
            status: None,
        }),
        FrameworkEvent::AgentMaintenance { agent, drain } => {
            E::AgentMaintenance(convert::maintenance_to_wire(&agent, drain.as_ref()))
        }
        FrameworkEvent::Error(message) => E::Error(v1::event::Error { message }),
        FrameworkEvent::Heartbeat => E::Heartbeat(v1::event::Heartbeat {}),
    };
    v1::Event { event: Some(event) }
}

pub(crate) fn to_agent_wire(msg: ToAgent) -> v1::MasterMessage {
    use v1::master_message::Message as M;
    let message = match msg {
        ToAgent::Launch { framework, task } => M::Launch(v1::master_message::Launch {
            framework: Some(convert::framework_to_wire(&framework)),
            task: Some(convert::task_to_wire(&task)),
        }),
        ToAgent::Kill {
            framework,
            task,
            grace,
        } => M::Kill(v1::master_message::Kill {
            framework_id: framework.to_string(),
            task_id: task.to_string(),
            kill_policy: grace.map(|g| v1::KillPolicy {
                grace_period_seconds: Some(g.as_secs_f64()),
            }),
        }),
        ToAgent::Acknowledge {
            framework,
            task,
            uuid,
        } => M::Acknowledge(v1::master_message::Acknowledge {
            framework_id: framework.to_string(),
            task_id: task.to_string(),
            uuid: uuid.as_bytes().to_vec(),
        }),
        ToAgent::Ping { seq } => M::Ping(v1::master_message::Ping { seq }),
    };
    v1::MasterMessage {
        message: Some(message),
    }
}

/// Decodes one message from an agent's Attach stream. `Ok(None)` for
/// messages with nothing for the core (Hello after the first).
pub(crate) fn from_agent_wire(
    msg: v1::agent_message::Message,
) -> Result<Option<FromAgent>, convert::ConvertError> {
    use v1::agent_message::Message as M;
    Ok(Some(match msg {
        M::Hello(_) => return Ok(None),
        M::Pong(p) => FromAgent::Pong { seq: p.seq },
        M::StatusUpdate(u) => {
            let framework = FrameworkId::parse(u.framework_id.clone())
                .map_err(|e| convert::ConvertError::from(e).at("status_update"))?;
            let status = u
                .status
                .as_ref()
                .ok_or_else(|| convert::ConvertError::new("status_update.status", "missing"))?;
            let status = convert::status_from_wire(status).map_err(|e| e.at("status_update"))?;
            FromAgent::StatusUpdate { framework, status }
        }
        M::ResourcesChanged(rc) => FromAgent::ResourcesChanged(convert::resources_from_wire(
            &rc.resources,
            "resources_changed.resources",
        )?),
    }))
}
