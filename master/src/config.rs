//! Master configuration: defaults follow Mesos (see ARCHITECTURE.md), and a
//! TOML file may override any of them.
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::MasterError;
use crate::replication::GroupConfig;

/// Everything the master can be configured with.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Where gRPC and HTTP are served (one port).
    pub listen: SocketAddr,
    /// Batch allocation period (Mesos `--allocation_interval`, 1 s).
    pub allocation_interval: Duration,
    /// How often agents are pinged (Mesos `--agent_ping_timeout`, 15 s).
    pub agent_ping_interval: Duration,
    /// Missed pings before an agent is unreachable (Mesos `--max_agent_ping_timeouts`, 5).
    pub max_agent_ping_misses: u32,
    /// How long agents recovered from the registry have to re-register after a
    /// master restart before they are marked unreachable (Mesos 10 min).
    pub agent_reregister_timeout: Duration,
    /// Rescind offers older than this (Mesos `--offer_timeout`, unset).
    pub offer_timeout: Option<Duration>,
    /// Filter duration for declines without filters (Mesos 5 s).
    pub default_refuse: Duration,
    /// Heartbeat events to frameworks (Mesos 15 s).
    pub framework_heartbeat_interval: Duration,
    /// Role weights for DRF (default 1.0).
    pub role_weights: BTreeMap<String, f64>,
    /// Offer GPU agents only to GPU_RESOURCES frameworks (Mesos default on).
    pub filter_gpu_resources: bool,
    /// Terminal tasks kept per framework for /state and reconciliation.
    pub max_completed_tasks_per_framework: usize,
    /// Unreachable agents are forgotten after this long (Mesos
    /// `--registry_max_agent_age`, 2 weeks), so the registry stays bounded.
    pub registry_max_agent_age: Duration,
    /// At most this many unreachable agents are remembered; the oldest go
    /// first (Mesos `--registry_max_agent_count`, 102,400).
    pub registry_max_agent_count: usize,
    /// Where this member keeps its Raft log, hard state and snapshots
    /// (RocksDB under `raft/`): the registry and the etcd keyspace.
    /// None = in memory only (tests).
    pub data_dir: Option<PathBuf>,
    /// The masters' group: member id, peers, etcd API address, Raft tick.
    pub group: GroupConfig,
    /// Task shapes capacity is counted in (fragmentation, placeable
    /// instances in the metrics, the history and the pages); default
    /// small 0.5 cpus/512 MB, medium 1/2048, large 4/8192.
    pub reference_shapes: Vec<agora_capacity::ReferenceShape>,
}

/// At most this many reference shapes (each costs a fit per snapshot and
/// a series in the history).
pub(crate) const MAX_REFERENCE_SHAPES: usize = 16;

/// Most refuse_seconds a filter may ask for (Mesos caps at 365 days).
pub(crate) const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 3600);

/// The shortest period or timeout a setting may have: tokio's timers work
/// in milliseconds, so nothing shorter can be kept, and a value that rounds
/// to a zero `Duration` (1e-12 s) makes `tokio::time::interval` panic when
/// the event loop starts.
pub(crate) const MIN_PERIOD: Duration = Duration::from_millis(1);

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5050)),
            allocation_interval: Duration::from_secs(1),
            agent_ping_interval: Duration::from_secs(15),
            max_agent_ping_misses: 5,
            agent_reregister_timeout: Duration::from_secs(600),
            offer_timeout: None,
            default_refuse: Duration::from_secs(5),
            framework_heartbeat_interval: Duration::from_secs(15),
            role_weights: BTreeMap::new(),
            filter_gpu_resources: true,
            max_completed_tasks_per_framework: 1000,
            registry_max_agent_age: Duration::from_secs(14 * 24 * 3600),
            registry_max_agent_count: 102_400,
            data_dir: None,
            group: GroupConfig::default(),
            reference_shapes: agora_capacity::default_shapes(),
        }
    }
}

/// The TOML file form; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<SocketAddr>,
    allocation_interval_seconds: Option<f64>,
    agent_ping_interval_seconds: Option<f64>,
    max_agent_ping_misses: Option<u32>,
    agent_reregister_timeout_seconds: Option<f64>,
    offer_timeout_seconds: Option<f64>,
    default_refuse_seconds: Option<f64>,
    framework_heartbeat_interval_seconds: Option<f64>,
    role_weights: Option<BTreeMap<String, f64>>,
    filter_gpu_resources: Option<bool>,
    max_completed_tasks_per_framework: Option<usize>,
    registry_max_agent_age_seconds: Option<f64>,
    registry_max_agent_count: Option<usize>,
    data_dir: Option<PathBuf>,
    member_id: Option<u64>,
    /// `1=HOST:PORT,2=HOST:PORT/ETCD_PORT,...`, as `--peers`.
    peers: Option<String>,
    join: Option<bool>,
    etcd_listen: Option<SocketAddr>,
    /// `periodic` (default) or `revision`, as etcd's flag.
    etcd_auto_compaction_mode: Option<String>,
    /// A duration (`30m`, `72h`) or hours in periodic mode, a count of
    /// revisions in revision mode, `0` for off; as etcd's flag.
    etcd_auto_compaction_retention: Option<String>,
    /// The keyspace's space quota in bytes, as etcd's `quota-backend-bytes`.
    etcd_quota_backend_bytes: Option<u64>,
    reference_shapes: Option<Vec<ShapeFile>>,
}

/// `[[reference_shapes]]` in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapeFile {
    name: String,
    cpus: f64,
    mem: f64,
}

fn shape(i: usize, s: ShapeFile) -> Result<agora_capacity::ReferenceShape, MasterError> {
    let bad = |what: &str| MasterError::Config(format!("reference_shapes[{i}].{what}"));
    let name_ok = !s.name.is_empty()
        && s.name.len() <= 32
        && s.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return Err(bad("name: 1-32 characters of A-Z a-z 0-9 - _ ."));
    }
    let cpus = agora_model::Scalar::from_f64(s.cpus).map_err(|e| bad(&format!("cpus: {e}")))?;
    let mem = agora_model::Scalar::from_f64(s.mem).map_err(|e| bad(&format!("mem: {e}")))?;
    if cpus <= agora_model::Scalar::ZERO && mem <= agora_model::Scalar::ZERO {
        return Err(bad("cpus/mem: a shape needs some cpus or memory"));
    }
    Ok(agora_capacity::ReferenceShape {
        name: s.name,
        cpus,
        mem,
    })
}

fn secs(key: &str, v: f64) -> Result<Duration, MasterError> {
    if !v.is_finite() || v <= 0.0 || v > MAX_REFUSE.as_secs_f64() {
        return Err(MasterError::Config(format!(
            "{key}: {v} is not a positive number of seconds"
        )));
    }
    let d = Duration::from_secs_f64(v);
    if d < MIN_PERIOD {
        return Err(MasterError::Config(format!(
            "{key}: {v} is below the minimum of {} seconds",
            MIN_PERIOD.as_secs_f64()
        )));
    }
    Ok(d)
}

/// A period the event loop ticks at, however it was set (the file, flags
/// or code): within [`MIN_PERIOD`]..=[`MAX_REFUSE`].
fn check_period(key: &str, d: Duration) -> Result<(), MasterError> {
    if d < MIN_PERIOD || d > MAX_REFUSE {
        return Err(MasterError::Config(format!(
            "{key}: {} s is outside {} s..={} s",
            d.as_secs_f64(),
            MIN_PERIOD.as_secs_f64(),
            MAX_REFUSE.as_secs()
        )));
    }
    Ok(())
}

impl MasterConfig {
    /// Applies a TOML config file's keys over `self`.
    pub fn merge_toml(mut self, text: &str) -> Result<MasterConfig, MasterError> {
        let f: ConfigFile = toml::from_str(text).map_err(|e| MasterError::Config(e.to_string()))?;
        if let Some(v) = f.listen {
            self.listen = v;
        }
        if let Some(v) = f.allocation_interval_seconds {
            self.allocation_interval = secs("allocation_interval_seconds", v)?;
        }
        if let Some(v) = f.agent_ping_interval_seconds {
            self.agent_ping_interval = secs("agent_ping_interval_seconds", v)?;
        }
        if let Some(v) = f.max_agent_ping_misses {
            self.max_agent_ping_misses = v;
        }
        if let Some(v) = f.agent_reregister_timeout_seconds {
            self.agent_reregister_timeout = secs("agent_reregister_timeout_seconds", v)?;
        }
        if let Some(v) = f.offer_timeout_seconds {
            self.offer_timeout = Some(secs("offer_timeout_seconds", v)?);
        }
        if let Some(v) = f.default_refuse_seconds {
            self.default_refuse = secs("default_refuse_seconds", v)?;
        }
        if let Some(v) = f.framework_heartbeat_interval_seconds {
            self.framework_heartbeat_interval = secs("framework_heartbeat_interval_seconds", v)?;
        }
        if let Some(v) = f.role_weights {
            self.role_weights = v;
        }
        if let Some(v) = f.filter_gpu_resources {
            self.filter_gpu_resources = v;
        }
        if let Some(v) = f.max_completed_tasks_per_framework {
            self.max_completed_tasks_per_framework = v;
        }
        if let Some(v) = f.registry_max_agent_age_seconds {
            self.registry_max_agent_age = secs("registry_max_agent_age_seconds", v)?;
        }
        if let Some(v) = f.registry_max_agent_count {
            self.registry_max_agent_count = v;
        }
        if let Some(v) = f.data_dir {
            self.data_dir = Some(v);
        }
        if let Some(v) = f.member_id {
            self.group.member_id = v;
        }
        if let Some(v) = f.peers {
            self.group.peers = GroupConfig::parse_peers(&v)?;
        }
        if let Some(v) = f.join {
            self.group.join = v;
        }
        if let Some(v) = f.etcd_listen {
            self.group.etcd_listen = Some(v);
        }
        let (mode, retention) = (
            f.etcd_auto_compaction_mode.as_deref(),
            f.etcd_auto_compaction_retention.as_deref(),
        );
        if let Some(v) = agora_etcd::AutoCompaction::from_flags(mode, retention)
            .map_err(|e| MasterError::Config(format!("etcd_auto_compaction_*: {e}")))?
        {
            self.group.etcd_auto_compaction = v;
        }
        if let Some(v) = f.etcd_quota_backend_bytes {
            self.group.etcd_quota_backend_bytes = v;
        }
        if let Some(v) = f.reference_shapes {
            self.reference_shapes = v
                .into_iter()
                .enumerate()
                .map(|(i, s)| shape(i, s))
                .collect::<Result<_, _>>()?;
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks values that would make the master misbehave.
    pub fn validate(&self) -> Result<(), MasterError> {
        self.group.validate()?;
        check_period("allocation_interval_seconds", self.allocation_interval)?;
        check_period("agent_ping_interval_seconds", self.agent_ping_interval)?;
        check_period(
            "framework_heartbeat_interval_seconds",
            self.framework_heartbeat_interval,
        )?;
        if self.max_agent_ping_misses == 0 {
            return Err(MasterError::Config(
                "max_agent_ping_misses must be at least 1".into(),
            ));
        }
        if self.reference_shapes.is_empty() || self.reference_shapes.len() > MAX_REFERENCE_SHAPES {
            return Err(MasterError::Config(format!(
                "reference_shapes: between 1 and {MAX_REFERENCE_SHAPES} shapes"
            )));
        }
        let mut names: Vec<&str> = self
            .reference_shapes
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(MasterError::Config(
                "reference_shapes: names must be unique".into(),
            ));
        }
        for (role, w) in &self.role_weights {
            agora_model::Role::parse(role.clone())
                .map_err(|e| MasterError::Config(format!("role_weights: {e}")))?;
            if !w.is_finite() || *w <= 0.0 {
                return Err(MasterError::Config(format!(
                    "role_weights.{role}: weight must be positive"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_file_parses_and_states_the_defaults() {
        let text = include_str!("../../deploy/config/master.toml");
        let c = MasterConfig::default().merge_toml(text).unwrap();
        let d = MasterConfig::default();
        assert_eq!(c.allocation_interval, d.allocation_interval);
        assert_eq!(c.agent_ping_interval, d.agent_ping_interval);
        assert_eq!(c.default_refuse, d.default_refuse);
        assert_eq!(c.registry_max_agent_age, d.registry_max_agent_age);
        assert_eq!(c.registry_max_agent_count, d.registry_max_agent_count);
        assert_eq!(c.reference_shapes, d.reference_shapes);
        assert_eq!(c.group.etcd_auto_compaction, d.group.etcd_auto_compaction);
        assert_eq!(
            c.group.etcd_quota_backend_bytes,
            d.group.etcd_quota_backend_bytes
        );
    }

    #[test]
    fn reference_shapes_are_configured_and_checked() {
        let c = MasterConfig::default()
            .merge_toml("[[reference_shapes]]\nname = \"gpu-box\"\ncpus = 8\nmem = 32768\n")
            .unwrap();
        assert_eq!(c.reference_shapes.len(), 1);
        assert_eq!(c.reference_shapes[0].name, "gpu-box");
        assert_eq!(c.reference_shapes[0].cpus.to_string(), "8");
        for (bad, says) in [
            (
                "[[reference_shapes]]\nname = \"a b\"\ncpus = 1\nmem = 1\n",
                "reference_shapes[0].name",
            ),
            (
                "[[reference_shapes]]\nname = \"z\"\ncpus = 0\nmem = 0\n",
                "reference_shapes[0].cpus/mem",
            ),
            (
                "[[reference_shapes]]\nname = \"z\"\ncpus = -1\nmem = 1\n",
                "reference_shapes[0].cpus",
            ),
            ("reference_shapes = []\n", "between 1 and 16"),
            (
                "[[reference_shapes]]\nname = \"x\"\ncpus = 1\nmem = 1\n[[reference_shapes]]\nname = \"x\"\ncpus = 2\nmem = 1\n",
                "unique",
            ),
        ] {
            let err = MasterConfig::default()
                .merge_toml(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let c = MasterConfig::default()
            .merge_toml("allocation_interval_seconds = 0.5\noffer_timeout_seconds = 30\n[role_weights]\nweb = 2.0\n")
            .unwrap();
        assert_eq!(c.allocation_interval, Duration::from_millis(500));
        assert_eq!(c.offer_timeout, Some(Duration::from_secs(30)));
        assert_eq!(c.role_weights["web"], 2.0);
        assert!(MasterConfig::default().merge_toml("bogus = 1").is_err());
        assert!(
            MasterConfig::default()
                .merge_toml("allocation_interval_seconds = -1")
                .is_err()
        );
        assert!(
            MasterConfig::default()
                .merge_toml("[role_weights]\nweb = 0")
                .is_err()
        );
    }

    #[test]
    fn periods_that_round_to_zero_are_refused_by_name() {
        for key in [
            "allocation_interval_seconds",
            "agent_ping_interval_seconds",
            "framework_heartbeat_interval_seconds",
            "agent_reregister_timeout_seconds",
            "offer_timeout_seconds",
            "default_refuse_seconds",
            "registry_max_agent_age_seconds",
        ] {
            for v in ["1e-12", "0.0009", "0"] {
                let err = MasterConfig::default()
                    .merge_toml(&format!("{key} = {v}"))
                    .unwrap_err()
                    .to_string();
                assert!(err.contains(key), "{key} = {v}: {err}");
            }
            assert!(
                MasterConfig::default()
                    .merge_toml(&format!("{key} = 0.001"))
                    .is_ok(),
                "{key}: the minimum itself is accepted"
            );
        }
        // Set in code or by flags, the loop's periods are checked too.
        for set in [
            |c: &mut MasterConfig| c.allocation_interval = Duration::ZERO,
            |c: &mut MasterConfig| c.agent_ping_interval = Duration::from_nanos(1),
            |c: &mut MasterConfig| c.framework_heartbeat_interval = Duration::MAX,
        ] {
            let mut c = MasterConfig::default();
            set(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("interval_seconds"), "{err}");
        }
        assert!(MasterConfig::default().validate().is_ok());
    }

    #[test]
    fn etcd_auto_compaction_takes_etcds_forms() {
        use agora_etcd::AutoCompaction;
        let parsed = |text: &str| MasterConfig::default().merge_toml(text);
        assert_eq!(
            MasterConfig::default().group.etcd_auto_compaction,
            AutoCompaction::Periodic(Duration::from_secs(3600))
        );
        let revisions =
            "etcd_auto_compaction_mode = \"revision\"\netcd_auto_compaction_retention = \"5000\"";
        assert_eq!(
            parsed(revisions).unwrap().group.etcd_auto_compaction,
            AutoCompaction::Revisions(5000)
        );
        let window = parsed("etcd_auto_compaction_retention = \"30m\"").unwrap();
        assert_eq!(
            window.group.etcd_auto_compaction,
            AutoCompaction::Periodic(Duration::from_secs(1800))
        );
        let off = parsed("etcd_auto_compaction_retention = \"0\"").unwrap();
        assert_eq!(off.group.etcd_auto_compaction, AutoCompaction::Off);
        for bad in [
            "etcd_auto_compaction_mode = \"revision\"",
            "etcd_auto_compaction_mode = \"hourly\"\netcd_auto_compaction_retention = \"1\"",
            "etcd_auto_compaction_retention = \"soon\"",
        ] {
            let error = parsed(bad).unwrap_err().to_string();
            assert!(error.contains("etcd_auto_compaction"), "{bad}: {error}");
        }
    }
}
