//! Prometheus metrics (text format). Counters and histograms are updated as
//! things happen; gauges describing the cluster are recomputed from state
//! when /metrics is scraped, so they can never drift from the truth.
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use agora_model::TaskState;

use crate::state::{AgentStatus, Master};

pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) agents: IntGaugeVec,
    pub(crate) agents_draining: IntGauge,
    pub(crate) frameworks: IntGaugeVec,
    pub(crate) tasks: IntGaugeVec,
    pub(crate) outstanding_offers: IntGauge,
    /// Offers made to frameworks (each allocation that passed the commit check).
    pub(crate) offers: IntCounter,
    pub(crate) allocation_runs: IntCounter,
    pub(crate) allocation_seconds: Histogram,
    pub(crate) queue_depth: IntGauge,
    pub(crate) messages: IntCounterVec,
    pub(crate) uptime: prometheus::Gauge,
    pub(crate) role_shares: prometheus::GaugeVec,
    /// /state requests, and the documents serialized for them: concurrent
    /// requests share one document (see `event_loop::STATE_BATCH_WAIT`).
    pub(crate) state_requests: IntCounter,
    pub(crate) state_documents: IntCounter,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    match r {
        Ok(v) => v,
        // Only reachable with a malformed metric name, a programming error
        // caught by the unit test below.
        Err(e) => panic!("metric definition: {e}"),
    }
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let registry = Registry::new_custom(Some("agora_master".into()), None).unwrap_or_default();
        // Cluster resources are not here: `agora_capacity_*{agent,state}`
        // (capacity.rs) partitions them per agent, in base units.
        let agents = must(IntGaugeVec::new(
            Opts::new("agents", "Agents by state"),
            &["state"],
        ));
        let agents_draining = must(IntGauge::new(
            "agents_draining",
            "Agents in maintenance (draining: no new offers; frameworks move their tasks)",
        ));
        let frameworks = must(IntGaugeVec::new(
            Opts::new("frameworks", "Frameworks by state"),
            &["state"],
        ));
        let tasks = must(IntGaugeVec::new(
            Opts::new("tasks", "Live tasks by state"),
            &["state"],
        ));
        let outstanding_offers = must(IntGauge::new(
            "outstanding_offers",
            "Offers not yet accepted, declined or rescinded",
        ));
        let offers = must(IntCounter::new("offers_total", "Offers made to frameworks"));
        let allocation_runs = must(IntCounter::new("allocation_runs_total", "Allocation runs"));
        let allocation_seconds = must(Histogram::with_opts(
            HistogramOpts::new("allocation_run_seconds", "Duration of one allocation run").buckets(
                vec![
                    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0,
                ],
            ),
        ));
        let queue_depth = must(IntGauge::new(
            "event_queue_depth",
            "Commands waiting for the event loop",
        ));
        let messages = must(IntCounterVec::new(
            Opts::new("messages_total", "Messages handled by type"),
            &["type"],
        ));
        let uptime = must(prometheus::Gauge::new(
            "uptime_seconds",
            "Seconds since the master started",
        ));
        let role_shares = must(prometheus::GaugeVec::new(
            Opts::new(
                "role_dominant_share",
                "Per role: the largest fraction of any of cpus/mem/disk/gpus held by its tasks and offers (unweighted)",
            ),
            &["role"],
        ));
        let state_requests = must(IntCounter::new(
            "state_requests_total",
            "Requests for /state",
        ));
        let state_documents = must(IntCounter::new(
            "state_documents_total",
            "/state documents serialized (concurrent requests share one)",
        ));
        for c in [
            Box::new(state_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(state_documents.clone()),
            Box::new(agents.clone()),
            Box::new(agents_draining.clone()),
            Box::new(frameworks.clone()),
            Box::new(tasks.clone()),
            Box::new(outstanding_offers.clone()),
            Box::new(offers.clone()),
            Box::new(allocation_runs.clone()),
            Box::new(allocation_seconds.clone()),
            Box::new(queue_depth.clone()),
            Box::new(messages.clone()),
            Box::new(uptime.clone()),
            Box::new(role_shares.clone()),
        ] {
            must(registry.register(c));
        }
        Metrics {
            registry,
            agents,
            agents_draining,
            frameworks,
            tasks,
            outstanding_offers,
            offers,
            allocation_runs,
            allocation_seconds,
            queue_depth,
            messages,
            uptime,
            role_shares,
            state_requests,
            state_documents,
        }
    }

    pub(crate) fn message(&self, kind: &str) {
        self.messages.with_label_values(&[kind]).inc();
    }
}

impl Master {
    /// O(agents + frameworks + roles): task counts and per-agent use are
    /// tallies kept as state changes.
    pub(crate) fn metrics_text(&mut self, now_unix: f64) -> String {
        let m = &self.metrics;
        let mut total = agora_model::Resources::new();
        let mut by_status: std::collections::BTreeMap<AgentStatus, i64> = Default::default();
        for a in self.agents.values() {
            *by_status.entry(a.status()).or_default() += 1;
            if a.status() == AgentStatus::Connected {
                total.add(&a.total);
            }
        }
        for s in AgentStatus::ALL {
            let n = by_status.get(&s).copied().unwrap_or(0);
            m.agents.with_label_values(&[s.as_str()]).set(n);
        }
        m.agents_draining
            .set(self.registry.maintenance.len() as i64);
        let active = self.frameworks.values().filter(|f| f.connected()).count();
        m.frameworks
            .with_label_values(&["active"])
            .set(active as i64);
        m.frameworks
            .with_label_values(&["disconnected"])
            .set((self.frameworks.len() - active) as i64);
        for s in TaskState::ALL {
            let n = self.task_counts.get(&s).copied().unwrap_or(0);
            m.tasks.with_label_values(&[s.as_str()]).set(n as i64);
        }
        m.outstanding_offers.set(self.offers.len() as i64);
        // Dominant shares: what each role's frameworks hold (tasks and
        // offers) over the connected agents' total. A framework's holdings
        // count for its first role; multi-role frameworks are rare and the
        // allocator's own accounting is per role.
        let mut by_role: std::collections::BTreeMap<&agora_model::Role, agora_model::Resources> =
            Default::default();
        for f in self.frameworks.values() {
            for r in &f.info.roles {
                by_role.entry(r).or_default();
            }
            if let Some(r) = f.info.roles.first() {
                let held = by_role.entry(r).or_default();
                held.add(&f.used);
                held.add(&f.offered);
            }
        }
        m.role_shares.reset();
        for (role, held) in &by_role {
            let share = ["cpus", "mem", "disk", "gpus"]
                .iter()
                .filter(|n| !total.scalar(n).is_zero())
                .map(|n| held.scalar(n).as_f64() / total.scalar(n).as_f64())
                .fold(0.0_f64, f64::max);
            m.role_shares.with_label_values(&[role.as_str()]).set(share);
        }
        m.uptime.set((now_unix - self.start_unix).max(0.0));
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut buf) {
            return format!("# encoding error: {e}\n");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// The group's gauges in the text exposition format, appended to the
/// core's (a standby has no core and serves these alone). Written by hand
/// because they are read from the replica's published status at scrape
/// time, not kept in the core's registry.
pub(crate) fn replication_text(status: &agora_raft::runner::Status, member_id: u64) -> String {
    let leads = u8::from(status.is_leader());
    let gauges: [(&str, &str, u64); 6] = [
        ("raft_member_id", "This master's Raft member id.", member_id),
        (
            "raft_is_leader",
            "1 if this master leads the group (is the active master).",
            u64::from(leads),
        ),
        (
            "raft_leader_id",
            "The member this master believes leads (0: none known).",
            status.leadership.leader.unwrap_or(0),
        ),
        ("raft_term", "Current Raft term.", status.leadership.term),
        (
            "raft_commit_index",
            "Index of the last committed log entry.",
            status.commit_index,
        ),
        (
            "raft_applied_index",
            "Index of the last log entry applied here.",
            status.applied_index,
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in gauges {
        out.push_str(&format!(
            "# HELP agora_master_{name} {help}\n# TYPE agora_master_{name} gauge\nagora_master_{name} {value}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP agora_master_raft_members Voting members of the group.\n# TYPE agora_master_raft_members gauge\nagora_master_raft_members {}\n",
        status.voters.len()
    ));
    out
}

/// The etcd keyspace's size against its space quota, for an alert before
/// writes are refused (etcd's `etcd_mvcc_db_total_size_in_bytes` and
/// `etcd_server_quota_backend_bytes`).
#[derive(Clone)]
pub(crate) struct KeyspaceGauges {
    /// The revision and held bytes the replica's thread publishes.
    pub(crate) published: agora_raft::PublishedKv,
    /// `GroupConfig::etcd_quota_backend_bytes`.
    pub(crate) quota_bytes: u64,
}

impl KeyspaceGauges {
    /// The same figures for `/state`, `/members` and the cluster page.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "revision": self.published.get(),
            "keyspace_bytes": self.published.held_bytes(),
            "quota_bytes": self.quota_bytes,
            "nospace_alarm": self.published.nospace(),
        })
    }

    pub(crate) fn text(&self) -> String {
        let revision = u64::try_from(self.published.get()).unwrap_or(0);
        let gauges = [
            (
                "etcd_keyspace_bytes",
                "Bytes the etcd keyspace holds in this master's memory (etcd's dbSize).",
                self.published.held_bytes(),
            ),
            (
                "etcd_quota_bytes",
                "The etcd keyspace's space quota: at it, writes are refused (NOSPACE).",
                self.quota_bytes,
            ),
            (
                "etcd_revision",
                "The etcd keyspace's current revision on this master.",
                revision,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in gauges {
            out.push_str(&format!(
                "# HELP agora_master_{name} {help}\n# TYPE agora_master_{name} gauge\nagora_master_{name} {value}\n"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_register_without_conflicts() {
        let m = super::Metrics::new();
        m.message("x");
        assert!(!m.registry.gather().is_empty());
    }
}
