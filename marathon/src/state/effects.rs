//! What one state transition asks the world to do: store writes, SDK calls
//! and events. The event loop carries them out in this order: the writes
//! first, and the calls and events only once the writes are durable, so no
//! task is launched (and no client told) before its record is stored.
use std::time::Duration;

use agora_model::{AgentId, Offer, OfferId, TaskId, TaskSpec};
use serde_json::Value;

use crate::readiness::Probe;
use crate::store::Write;

/// A call to the master through the scheduler SDK.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    /// Launch tasks on one offer; what is left of it comes back to the
    /// master with `refuse` as its filter (None: the master's default).
    Launch {
        offer: Box<Offer>,
        tasks: Vec<TaskSpec>,
        refuse: Option<Duration>,
    },
    /// Decline offers with a filter.
    Decline {
        offers: Vec<OfferId>,
        filter: Duration,
    },
    /// Kill one task.
    Kill {
        task: TaskId,
        agent: Option<AgentId>,
    },
    /// Ask for the state of these tasks (empty: implicit, all of them).
    Reconcile(Vec<(TaskId, Option<AgentId>)>),
    /// Stop offers: nothing waits.
    Suppress,
    /// Offers again: something waits (also clears decline filters).
    Revive,
}

/// One Marathon event for `/v2/events`: its type and its JSON body (which
/// carries `eventType` and `timestamp` too).
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) kind: &'static str,
    pub(crate) body: Value,
}

/// Everything one transition produced.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) writes: Vec<Write>,
    pub(crate) calls: Vec<Call>,
    pub(crate) events: Vec<Event>,
    pub(crate) probes: Vec<Probe>,
}

impl Effects {
    pub(crate) fn write(&mut self, key: String, value: Vec<u8>) {
        self.writes.push(Write {
            key,
            value: Some(value),
        });
    }

    pub(crate) fn delete(&mut self, key: String) {
        self.writes.push(Write { key, value: None });
    }

    pub(crate) fn call(&mut self, call: Call) {
        self.calls.push(call);
    }

    pub(crate) fn event(&mut self, kind: &'static str, mut body: Value, timestamp: &str) {
        if let Value::Object(map) = &mut body {
            map.insert("eventType".into(), Value::String(kind.into()));
            map.insert("timestamp".into(), Value::String(timestamp.into()));
        }
        self.events.push(Event { kind, body });
    }

    pub(crate) fn absorb(&mut self, other: Effects) {
        self.writes.extend(other.writes);
        self.calls.extend(other.calls);
        self.events.extend(other.events);
        self.probes.extend(other.probes);
    }
}
