//! The `/state` document: what operators and dashboards read. Field names
//! follow Mesos' /state where there is an equivalent.
use serde_json::{Value, json};

use crate::state::{AgentConn, AgentStatus, Master, TaskEntry};

fn task_json(t: &TaskEntry) -> Value {
    json!({
        "id": t.spec.id,
        "name": t.spec.name,
        "framework_id": t.framework,
        "agent_id": t.spec.agent_id,
        "state": t.state.as_str(),
        "role": t.role,
        "healthy": t.healthy,
        "resources": t.spec.resources.summary_json(),
        "docker_image": t.spec.docker.as_ref().map(|d| d.image.clone()),
        "status": t.last_status.as_ref().map(|s| json!({
            "state": s.state.as_str(), "message": s.message, "timestamp": s.timestamp,
            "exit_code": s.exit_code, "reason": s.reason,
        })),
    })
}

impl Master {
    /// O(agents + tasks + offers): per-agent and per-framework use comes from
    /// tallies kept as tasks and offers come and go.
    pub(crate) fn state_json(&self) -> Value {
        let agents: Vec<Value> = self
            .agents
            .values()
            .map(|a| {
                let (used, offered) = (&a.used, &a.offered);
                let reserved = a.total.filter_roles(|r| !r.is_star());
                let unreachable_time = match a.conn {
                    AgentConn::Unreachable { since_unix } => Some(since_unix),
                    _ => None,
                };
                json!({
                    "id": a.id,
                    "hostname": a.hostname,
                    "port": a.port,
                    "status": a.status().as_str(),
                    "active": a.status() == AgentStatus::Connected,
                    "registered_time": a.registered_unix,
                    "unreachable_time": unreachable_time,
                    "resources": a.total.summary_json(),
                    "used_resources": used.summary_json(),
                    "offered_resources": offered.summary_json(),
                    "reserved_resources": reserved.summary_json(),
                    "unreserved_free_resources": a.total.minus(used).minus(offered).unreserved().summary_json(),
                    "resources_text": a.total.to_string(),
                    "attributes": a.attributes.0.iter().map(|(k, v)| (k.clone(), json!(v.to_string()))).collect::<serde_json::Map<_, _>>(),
                    "task_count": a.tasks.len(),
                })
            })
            .collect();
        let frameworks: Vec<Value> = self
            .frameworks
            .values()
            .map(|f| {
                let tasks: Vec<Value> = self.tasks_of(&f.id).map(|(_, t)| task_json(t)).collect();
                let offers: Vec<Value> = f
                    .offers
                    .iter()
                    .filter_map(|id| self.offers.get(id))
                    .map(|o| {
                        json!({"id": o.offer.id, "agent_id": o.offer.agent_id, "role": o.offer.role, "resources": o.offer.resources.summary_json()})
                    })
                    .collect();
                json!({
                    "id": f.id,
                    "name": f.info.name,
                    "user": f.info.user,
                    "roles": f.info.roles,
                    "principal": f.info.principal,
                    "capabilities": f.info.capabilities,
                    "active": f.connected(),
                    "connected": f.connected(),
                    "registered_time": f.registered_unix,
                    "failover_timeout": f.info.failover_timeout.as_secs_f64(),
                    "suppressed_roles": f.suppressed,
                    "active_filters": f.filters.len(),
                    "used_resources": f.used.summary_json(),
                    "offered_resources": f.offered.summary_json(),
                    "tasks": tasks,
                    "completed_tasks": f.completed.iter().map(task_json).collect::<Vec<_>>(),
                    "offers": offers,
                })
            })
            .collect();
        let unreachable: Vec<Value> = self
            .registry
            .unreachable
            .iter()
            .map(|(id, ms)| json!({"id": id, "timestamp": *ms as f64 / 1000.0}))
            .collect();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "id": self.master_id,
            "leader": self.leader,
            "start_time": self.start_unix,
            "elected_time": self.start_unix,
            "activated_agents": self.agents.values().filter(|a| a.status() == AgentStatus::Connected).count(),
            "agents": agents,
            "frameworks": frameworks,
            "unreachable_agents": unreachable,
            "outstanding_offers": self.offers.len(),
            "flags": {
                "allocation_interval": self.cfg.allocation_interval.as_secs_f64(),
                "agent_ping_interval": self.cfg.agent_ping_interval.as_secs_f64(),
                "max_agent_ping_misses": self.cfg.max_agent_ping_misses,
                "offer_timeout": self.cfg.offer_timeout.map(|d| d.as_secs_f64()),
                "default_refuse_seconds": self.cfg.default_refuse.as_secs_f64(),
                "role_weights": self.cfg.role_weights,
            },
        })
    }
}
