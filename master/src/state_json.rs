//! The `/state` document: what operators and dashboards read. Field names
//! follow Mesos' /state where there is an equivalent.
//!
//! Written straight from the master's state through borrowing `Serialize`
//! views, never as a `serde_json::Value` tree: at 10,000 agents a tree costs
//! hundreds of thousands of small allocations, the views cost none beyond
//! the output buffer. Per-agent and per-framework use come from tallies, so
//! the whole document is O(agents + tasks + offers).
use std::collections::{BTreeMap, BTreeSet};

use agora_model::{
    AgentId, Capability, FrameworkId, OfferId, Resources, Role, TaskId, TaskStatusReason,
};
use serde::Serialize;

use crate::state::{
    AgentConn, AgentEntry, AgentStatus, FrameworkEntry, Master, OfferEntry, TaskEntry,
};

/// The well-known quantities of a `Resources`, as dashboards read them.
#[derive(Serialize)]
struct Summary {
    cpus: f64,
    mem: f64,
    disk: f64,
    gpus: f64,
    ports: String,
}

impl From<&Resources> for Summary {
    fn from(r: &Resources) -> Summary {
        Summary {
            cpus: r.cpus().as_f64(),
            mem: r.mem().as_f64(),
            disk: r.disk().as_f64(),
            gpus: r.gpus().as_f64(),
            ports: r.ports().to_string(),
        }
    }
}

#[derive(Serialize)]
struct StatusDoc<'a> {
    state: &'static str,
    message: &'a str,
    timestamp: f64,
    exit_code: Option<i32>,
    reason: TaskStatusReason,
}

#[derive(Serialize)]
struct TaskDoc<'a> {
    id: &'a TaskId,
    name: &'a str,
    framework_id: &'a FrameworkId,
    agent_id: &'a AgentId,
    state: &'static str,
    role: &'a Role,
    healthy: Option<bool>,
    resources: Summary,
    docker_image: Option<&'a str>,
    status: Option<StatusDoc<'a>>,
}

impl<'a> From<&'a TaskEntry> for TaskDoc<'a> {
    fn from(t: &'a TaskEntry) -> TaskDoc<'a> {
        TaskDoc {
            id: &t.spec.id,
            name: &t.spec.name,
            framework_id: &t.framework,
            agent_id: &t.spec.agent_id,
            state: t.state.as_str(),
            role: &t.role,
            healthy: t.healthy,
            resources: (&t.spec.resources).into(),
            docker_image: t.spec.docker.as_ref().map(|d| d.image.as_str()),
            status: t.last_status.as_ref().map(|s| StatusDoc {
                state: s.state.as_str(),
                message: &s.message,
                timestamp: s.timestamp,
                exit_code: s.exit_code,
                reason: s.reason,
            }),
        }
    }
}

#[derive(Serialize)]
struct AgentDoc<'a> {
    id: &'a AgentId,
    hostname: &'a str,
    port: u16,
    status: &'static str,
    active: bool,
    registered_time: f64,
    unreachable_time: Option<f64>,
    resources: Summary,
    used_resources: Summary,
    offered_resources: Summary,
    reserved_resources: Summary,
    unreserved_free_resources: Summary,
    resources_text: String,
    attributes: BTreeMap<&'a str, String>,
    task_count: usize,
    /// `{"state": "draining", "since_time", "deadline_time"}` while the
    /// operator drains it, else null.
    maintenance: Option<MaintenanceDoc>,
}

#[derive(Serialize)]
struct MaintenanceDoc {
    state: &'static str,
    since_time: f64,
    deadline_time: Option<f64>,
}

impl MaintenanceDoc {
    fn of(d: &agora_model::Drain) -> MaintenanceDoc {
        MaintenanceDoc {
            state: "draining",
            since_time: d.since_unix_ms as f64 / 1000.0,
            deadline_time: d.deadline_unix_ms.map(|ms| ms as f64 / 1000.0),
        }
    }
}

impl<'a> From<&'a AgentEntry> for AgentDoc<'a> {
    fn from(a: &'a AgentEntry) -> AgentDoc<'a> {
        AgentDoc {
            id: &a.id,
            hostname: &a.hostname,
            port: a.port,
            status: a.status().as_str(),
            active: a.status() == AgentStatus::Connected,
            registered_time: a.registered_unix,
            unreachable_time: match a.conn {
                AgentConn::Unreachable { since_unix } => Some(since_unix),
                _ => None,
            },
            resources: (&a.total).into(),
            used_resources: (&a.used).into(),
            offered_resources: (&a.offered).into(),
            reserved_resources: (&a.total.filter_roles(|r| !r.is_star())).into(),
            unreserved_free_resources: (&a.total.minus(&a.used).minus(&a.offered).unreserved())
                .into(),
            resources_text: a.total.to_string(),
            attributes: a
                .attributes
                .0
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_string()))
                .collect(),
            task_count: a.tasks.len(),
            maintenance: None,
        }
    }
}

impl Master {
    /// An agent as /state shows it: a draining agent is not active.
    fn agent_doc<'a>(&self, a: &'a AgentEntry) -> AgentDoc<'a> {
        let mut doc = AgentDoc::from(a);
        if let Some(d) = self.registry.drain_of(&a.id) {
            doc.active = false;
            doc.maintenance = Some(MaintenanceDoc::of(d));
        }
        doc
    }
}

#[derive(Serialize)]
struct OfferDoc<'a> {
    id: &'a OfferId,
    agent_id: &'a AgentId,
    role: &'a Role,
    resources: Summary,
}

impl<'a> From<&'a OfferEntry> for OfferDoc<'a> {
    fn from(o: &'a OfferEntry) -> OfferDoc<'a> {
        OfferDoc {
            id: &o.offer.id,
            agent_id: &o.offer.agent_id,
            role: &o.offer.role,
            resources: (&o.offer.resources).into(),
        }
    }
}

#[derive(Serialize)]
struct FrameworkDoc<'a> {
    id: &'a FrameworkId,
    name: &'a str,
    user: &'a str,
    roles: &'a [Role],
    principal: &'a str,
    capabilities: &'a BTreeSet<Capability>,
    active: bool,
    connected: bool,
    registered_time: f64,
    failover_timeout: f64,
    suppressed_roles: &'a BTreeSet<Role>,
    active_filters: usize,
    used_resources: Summary,
    offered_resources: Summary,
    tasks: Vec<TaskDoc<'a>>,
    completed_tasks: Vec<TaskDoc<'a>>,
    offers: Vec<OfferDoc<'a>>,
}

#[derive(Serialize)]
struct UnreachableDoc<'a> {
    id: &'a AgentId,
    timestamp: f64,
}

#[derive(Serialize)]
struct Flags<'a> {
    allocation_interval: f64,
    agent_ping_interval: f64,
    max_agent_ping_misses: u32,
    offer_timeout: Option<f64>,
    default_refuse_seconds: f64,
    role_weights: &'a BTreeMap<String, f64>,
}

#[derive(Serialize)]
struct StateDoc<'a> {
    version: &'static str,
    id: &'a str,
    leader: &'a str,
    start_time: f64,
    elected_time: f64,
    activated_agents: usize,
    agents: Vec<AgentDoc<'a>>,
    frameworks: Vec<FrameworkDoc<'a>>,
    unreachable_agents: Vec<UnreachableDoc<'a>>,
    outstanding_offers: usize,
    flags: Flags<'a>,
}

impl Master {
    fn framework_doc<'a>(&'a self, f: &'a FrameworkEntry) -> FrameworkDoc<'a> {
        FrameworkDoc {
            id: &f.id,
            name: &f.info.name,
            user: &f.info.user,
            roles: &f.info.roles,
            principal: &f.info.principal,
            capabilities: &f.info.capabilities,
            active: f.connected(),
            connected: f.connected(),
            registered_time: f.registered_unix,
            failover_timeout: f.info.failover_timeout.as_secs_f64(),
            suppressed_roles: &f.suppressed,
            active_filters: f.filters.len(),
            used_resources: (&f.used).into(),
            offered_resources: (&f.offered).into(),
            tasks: self.tasks_of(&f.id).map(|(_, t)| t.into()).collect(),
            completed_tasks: f.completed.iter().map(TaskDoc::from).collect(),
            offers: f
                .offers
                .iter()
                .filter_map(|id| self.offers.get(id))
                .map(OfferDoc::from)
                .collect(),
        }
    }

    /// The document as JSON bytes.
    pub(crate) fn state_json(&self) -> Vec<u8> {
        let doc = StateDoc {
            version: env!("CARGO_PKG_VERSION"),
            id: &self.master_id,
            leader: &self.leader,
            start_time: self.start_unix,
            elected_time: self.start_unix,
            activated_agents: self
                .agents
                .values()
                .filter(|a| a.status() == AgentStatus::Connected && !self.is_draining(&a.id))
                .count(),
            agents: self.agents.values().map(|a| self.agent_doc(a)).collect(),
            frameworks: self
                .frameworks
                .values()
                .map(|f| self.framework_doc(f))
                .collect(),
            unreachable_agents: self
                .registry
                .unreachable
                .iter()
                .map(|(id, ms)| UnreachableDoc {
                    id,
                    timestamp: *ms as f64 / 1000.0,
                })
                .collect(),
            outstanding_offers: self.offers.len(),
            flags: Flags {
                allocation_interval: self.cfg.allocation_interval.as_secs_f64(),
                agent_ping_interval: self.cfg.agent_ping_interval.as_secs_f64(),
                max_agent_ping_misses: self.cfg.max_agent_ping_misses,
                offer_timeout: self.cfg.offer_timeout.map(|d| d.as_secs_f64()),
                default_refuse_seconds: self.cfg.default_refuse.as_secs_f64(),
                role_weights: &self.cfg.role_weights,
            },
        };
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_vec(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}").into_bytes())
    }
}
