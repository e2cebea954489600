//! The agent's configuration, with defaults taken from Mesos where Mesos has
//! one.
use std::path::PathBuf;
use std::time::Duration;

use agora_model::{Attributes, Resources};

/// Whether the agent uses Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DockerMode {
    /// Use Docker if the daemon answers at start; Docker tasks fail with a
    /// clear message otherwise.
    #[default]
    Auto,
    /// Refuse to start without a reachable Docker daemon.
    Required,
    /// Never use Docker; Docker tasks fail.
    Disabled,
}

/// Garbage collection of sandboxes and exited containers.
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// How often the worker runs.
    pub interval: Duration,
    /// Sandboxes of terminated tasks are removed after this long (Mesos
    /// `--gc_delay` is one week; a day is plenty for logs of finished tasks).
    pub max_age: Duration,
    /// Above this fraction of the work dir's filesystem in use, sandboxes are
    /// removed regardless of age, oldest first (Mesos
    /// `--gc_disk_headroom` plays the same role).
    pub disk_usage_threshold: f64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            interval: Duration::from_secs(60),
            max_age: Duration::from_secs(24 * 3600),
            disk_usage_threshold: 0.9,
        }
    }
}

/// Everything the agent needs to run. `AgentConfig::default()` is usable
/// except for `masters` and `work_dir`.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Masters as `host:port`, tried in order until one accepts the
    /// registration. A standby's redirect to the leader is followed even
    /// when the leader is not listed here.
    pub masters: Vec<String>,
    /// Root of the agent's state: `meta/` (checkpoint) and `sandboxes/`.
    pub work_dir: PathBuf,
    /// Resources to offer; `None` detects them (see `resources::detect`).
    pub resources: Option<Resources>,
    /// Attributes reported to the master.
    pub attributes: Attributes,
    /// Hostname reported to the master and given to tasks as `HOST`; `None`
    /// reads the kernel's hostname.
    pub hostname: Option<String>,
    /// Whether to use Docker.
    pub docker: DockerMode,
    /// SIGTERM → SIGKILL gap for tasks without a kill policy (Mesos
    /// `--executor_shutdown_grace_period` 5 s; we use 3 s).
    pub default_kill_grace: Duration,
    /// First resend interval of an unacknowledged status update (Mesos 10 s).
    pub status_update_backoff_min: Duration,
    /// Largest resend interval (Mesos 10 min).
    pub status_update_backoff_max: Duration,
    /// First wait before trying the masters again after a failed
    /// registration; doubled (with jitter) on every failure.
    pub register_backoff_min: Duration,
    /// Cap of the registration backoff.
    pub register_backoff_max: Duration,
    /// Timeout of one connection attempt or Register call.
    pub connect_timeout: Duration,
    /// The agent re-registers when no ping arrived for this many ping
    /// intervals (Mesos `--max_agent_ping_timeouts` 5).
    pub max_missed_pings: u32,
    /// Garbage collection.
    pub gc: GcConfig,
    /// Parent cgroup of process tasks (`<parent>/<agent_id>/<container_id>`).
    pub cgroup_parent: String,
    /// pids limit of every container (`None`: unlimited).
    pub task_pids_limit: Option<u64>,
    /// Keep exited Docker containers when cleaning up (debugging).
    pub docker_keep_exited: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            masters: Vec::new(),
            work_dir: PathBuf::from("/var/lib/agora/agent"),
            resources: None,
            attributes: Attributes::default(),
            hostname: None,
            docker: DockerMode::Auto,
            default_kill_grace: Duration::from_secs(3),
            status_update_backoff_min: Duration::from_secs(10),
            status_update_backoff_max: Duration::from_secs(600),
            register_backoff_min: Duration::from_millis(500),
            register_backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_missed_pings: 5,
            gc: GcConfig::default(),
            cgroup_parent: "agora".to_string(),
            task_pids_limit: None,
            docker_keep_exited: false,
        }
    }
}

/// The shortest period or timeout a setting may have: tokio's timers work
/// in milliseconds, so nothing shorter can be kept, and a period of zero
/// makes its worker spin (the GC would rescan the work dir without pause,
/// every connection attempt would time out at once).
const MIN_PERIOD: Duration = Duration::from_millis(1);

impl AgentConfig {
    /// Rejects settings the agent cannot work with.
    pub(crate) fn validate(&self) -> Result<(), crate::AgentError> {
        let bad = |m: &str| Err(crate::AgentError::Config(m.to_string()));
        if self.masters.is_empty() {
            return bad("masters: at least one master address is needed");
        }
        if self.work_dir.as_os_str().is_empty() {
            return bad("work_dir: must not be empty");
        }
        if self.status_update_backoff_min < MIN_PERIOD
            || self.status_update_backoff_max < self.status_update_backoff_min
        {
            return bad("status_update_backoff: need 1 ms <= min <= max");
        }
        if self.register_backoff_min < MIN_PERIOD
            || self.register_backoff_max < self.register_backoff_min
        {
            return bad("register_backoff: need 1 ms <= min <= max");
        }
        if self.connect_timeout < MIN_PERIOD {
            return bad("connect_timeout: must be at least 1 ms");
        }
        if self.gc.interval < MIN_PERIOD {
            return bad("gc.interval: must be at least 1 ms");
        }
        if self.max_missed_pings == 0 {
            return bad("max_missed_pings: must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.gc.disk_usage_threshold) {
            return bad("gc.disk_usage_threshold: must be within 0..=1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::AgentConfig;

    /// Sets one duration setting of a config.
    type Setter = fn(&mut AgentConfig, Duration);

    fn usable() -> AgentConfig {
        AgentConfig {
            masters: vec!["127.0.0.1:5050".into()],
            ..AgentConfig::default()
        }
    }

    #[test]
    fn periods_that_round_to_zero_are_refused_by_name() {
        assert!(usable().validate().is_ok());
        let tiny = Duration::from_nanos(1);
        let cases: [(Setter, &str); 4] = [
            (
                |c, d| c.status_update_backoff_min = d,
                "status_update_backoff",
            ),
            (|c, d| c.register_backoff_min = d, "register_backoff"),
            (|c, d| c.connect_timeout = d, "connect_timeout"),
            (|c, d| c.gc.interval = d, "gc.interval"),
        ];
        for (set, name) in cases {
            for d in [Duration::ZERO, tiny] {
                let mut c = usable();
                set(&mut c, d);
                let err = c.validate().err().map(|e| e.to_string());
                assert!(
                    err.as_deref().is_some_and(|e| e.contains(name)),
                    "{name} = {d:?}: {err:?}"
                );
            }
            let mut c = usable();
            set(&mut c, Duration::from_millis(1));
            assert!(c.validate().is_ok(), "{name}: 1 ms is accepted");
        }
    }
}
