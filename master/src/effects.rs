//! What the master core decides, as data. `Master::handle` returns an
//! `Outbox`; the event loop performs it (sends on streams, hands proposals to
//! the registry writer, answers callers). Nothing in the core sends on a
//! channel, reads a clock or touches the disk, so the core can be driven by a
//! harness with a controlled clock and its effects inspected.
use std::time::Duration;

use agora_model::{
    AgentId, FrameworkId, FrameworkInfo, Offer, OfferId, SessionId, StreamId, TaskId, TaskSpec,
    TaskStatus,
};

use crate::error::CallError;
use crate::registry::LogEntry;

/// Identifies a caller waiting for an answer; the loop keeps the channel.
pub(crate) type ReplyToken = u64;

/// Events on a framework's Subscribe stream (the domain form of the wire `Event`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FrameworkEvent {
    Subscribed {
        framework_id: FrameworkId,
        stream_id: StreamId,
        heartbeat_interval: Duration,
    },
    Offers(Vec<Offer>),
    Rescind(OfferId),
    Update(TaskStatus),
    Failure(AgentId),
    /// The agent drains (`Some`) or no longer does (`None`).
    AgentMaintenance {
        agent: AgentId,
        drain: Option<agora_model::Drain>,
    },
    Error(String),
    Heartbeat,
}

/// Messages down an agent's Attach stream (the domain form of the wire `MasterMessage`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToAgent {
    Launch {
        framework: Box<FrameworkInfo>,
        task: Box<TaskSpec>,
    },
    Kill {
        framework: FrameworkId,
        task: TaskId,
        grace: Option<Duration>,
    },
    Acknowledge {
        framework: FrameworkId,
        task: TaskId,
        uuid: uuid::Uuid,
    },
    Ping {
        seq: u64,
    },
}

/// What a successful agent registration answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Registered {
    pub(crate) agent_id: AgentId,
    pub(crate) session: SessionId,
}

/// Answers to callers, by the kind of call.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// Subscribe: the framework id (the events flow on the stream).
    Subscribed(Result<FrameworkId, CallError>),
    /// Every other scheduler call, and Attach.
    Done(Result<(), CallError>),
    /// Agent Register.
    Registered(Result<Registered, CallError>),
}

/// Effects hold no channels, so they can be cloned, recorded and compared.
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    ToFramework {
        framework: FrameworkId,
        stream: StreamId,
        event: FrameworkEvent,
    },
    /// The subscription is over (framework removed or superseded): the loop
    /// drops its sender, which ends the stream after what was queued.
    CloseFramework {
        stream: StreamId,
    },
    ToAgent {
        agent: AgentId,
        session: SessionId,
        msg: ToAgent,
    },
    /// A registry change to make durable; `Master::on_durable(seq)` follows.
    Propose {
        seq: u64,
        entry: Box<LogEntry>,
    },
    Reply {
        token: ReplyToken,
        reply: Reply,
    },
}

/// Effects in the order they were decided. The loop performs them in order,
/// so a framework sees events in the order the core produced them.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) effects: Vec<Effect>,
}

impl Outbox {
    pub(crate) fn push(&mut self, e: Effect) {
        self.effects.push(e);
    }
    pub(crate) fn take(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }
}
