//! How one Marathon process is configured (`agora marathon` flags).
use std::time::Duration;

/// A week: Marathon's default `failover_timeout`, so a framework survives
/// a long outage of every Marathon process without losing its tasks.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// One Marathon process.
#[derive(Debug, Clone)]
pub struct MarathonConfig {
    /// Masters to subscribe to (`host:port`), any of the group.
    pub masters: Vec<String>,
    /// etcd v3 endpoints (the masters' coordination service).
    pub etcd: Vec<String>,
    /// Key prefix for all state (several Marathons can share one keyspace
    /// with different prefixes and framework names).
    pub prefix: String,
    /// The address other Marathon processes reach this one's API at
    /// (`host:port`); the listener's address when empty.
    pub advertise: Option<String>,
    /// The framework's name at the master.
    pub framework_name: String,
    /// The role it subscribes with.
    pub role: String,
    /// The leader lease's TTL: a dead leader is replaced after about this.
    pub leader_lease: Duration,
}

impl Default for MarathonConfig {
    fn default() -> Self {
        MarathonConfig {
            masters: vec!["127.0.0.1:5050".into()],
            etcd: vec!["127.0.0.1:2379".into()],
            prefix: "/marathon".into(),
            advertise: None,
            framework_name: "marathon".into(),
            role: "*".into(),
            leader_lease: Duration::from_secs(5),
        }
    }
}
