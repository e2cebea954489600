//! App definitions as domain types, with Marathon 1.x's defaults
//! (`AppDefinition.scala`, `*.raml`; mesos-marathon.md §2.1–2.2), and
//! [`change`], which tells a scale-only change from one that needs a
//! rolling restart.
//!
//! These are validated, non-optional types: the JSON layer applies the
//! defaults (through `Default`/[`App::new`]) and [`crate::validate::validate_app`].
use std::collections::BTreeMap;
use std::time::Duration;

use agora_model::{Role, Scalar};

use crate::constraint::Constraint;
use crate::ids::{PathId, Version};

/// One app: what to run, how many, where, and how to upgrade it.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// Absolute id, e.g. `/prod/web/api`.
    pub id: PathId,
    /// Shell command (`cmd`); exclusive with `args`.
    pub cmd: Option<String>,
    /// Exec arguments (`args`; with Docker, arguments to the entrypoint).
    pub args: Vec<String>,
    /// `container.docker`; `None` runs `cmd` without an image.
    pub docker: Option<DockerContainer>,
    /// Networking mode; Marathon's app default is host.
    pub network: NetworkMode,
    /// `portDefinitions` (host mode) or `portMappings` (bridge/container).
    pub ports: Vec<PortSpec>,
    /// `requirePorts`: host mode uses the `port` values as host ports.
    pub require_ports: bool,
    /// Per-instance resources.
    pub resources: AppResources,
    /// Desired instance count.
    pub instances: u32,
    /// Environment; secrets are references resolved elsewhere.
    pub env: BTreeMap<String, EnvValue>,
    /// Free-form labels (marathon-lb reads `HAPROXY_*`).
    pub labels: BTreeMap<String, String>,
    /// Placement constraints, validated.
    pub constraints: Vec<Constraint>,
    /// `acceptedResourceRoles`: roles whose resources instances may use.
    pub accepted_resource_roles: Vec<Role>,
    /// Health checks (run on the agent).
    pub health_checks: Vec<HealthCheck>,
    /// At most one readiness check (deployment time only).
    pub readiness_checks: Vec<ReadinessCheck>,
    /// How to replace instances on a restart.
    pub upgrade_strategy: UpgradeStrategy,
    /// Launch delay after failures.
    pub backoff: BackoffPolicy,
    /// Which instances die first on scale-down.
    pub kill_selection: KillSelection,
    /// When to replace an unreachable instance and when to expunge it.
    pub unreachable_strategy: UnreachableStrategy,
    /// SIGTERM→SIGKILL window; `None` uses the agent's default.
    pub task_kill_grace_period: Option<Duration>,
    /// Apps that must be deployed before this one (absolute ids).
    pub dependencies: Vec<PathId>,
    /// Agora addition (not in Marathon): a deployment step for this app
    /// fails when it makes no progress for this long. Off by default.
    pub progress_deadline: Option<Duration>,
    /// Agora addition: when the progress deadline fails a deployment, roll
    /// the app back to the definition it had before (off by default).
    pub rollback_on_deadline: bool,
    /// This definition's version (every change makes a new one).
    pub version: Version,
    /// When the instance count and the rest of the config last changed.
    pub version_info: VersionInfo,
}

impl App {
    /// An app with Marathon's defaults: 1 cpu, 128 MB, no disk or GPUs, one
    /// instance, host networking, upgrade {1.0, 1.0}, backoff 1 s × 1.15 up
    /// to 300 s, YOUNGEST_FIRST, unreachable {0 s, 0 s}, roles `*`.
    pub fn new(id: PathId) -> App {
        App {
            id,
            cmd: None,
            args: Vec::new(),
            docker: None,
            network: NetworkMode::Host,
            ports: Vec::new(),
            require_ports: false,
            resources: AppResources::default(),
            instances: 1,
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            constraints: Vec::new(),
            accepted_resource_roles: vec![Role::star()],
            health_checks: Vec::new(),
            readiness_checks: Vec::new(),
            upgrade_strategy: UpgradeStrategy::default(),
            backoff: BackoffPolicy::default(),
            kill_selection: KillSelection::YoungestFirst,
            unreachable_strategy: UnreachableStrategy::default(),
            task_kill_grace_period: None,
            dependencies: Vec::new(),
            progress_deadline: None,
            rollback_on_deadline: false,
            version: Version::default(),
            version_info: VersionInfo::default(),
        }
    }

    /// Host ports one instance needs: every host-mode port definition, and
    /// every port mapping with a host port (0 = any) in bridge/container mode.
    pub fn host_ports(&self) -> Vec<HostPort> {
        self.ports
            .iter()
            .filter_map(|p| match self.network {
                NetworkMode::Host if self.require_ports && p.port != 0 => {
                    Some(HostPort::Exact(p.port))
                }
                NetworkMode::Host => Some(HostPort::Any),
                NetworkMode::Bridge | NetworkMode::Container => match p.host_port {
                    Some(0) => Some(HostPort::Any),
                    Some(n) => Some(HostPort::Exact(n)),
                    None => None,
                },
            })
            .collect()
    }

    /// The config version instances of this definition are launched with:
    /// instances whose config version differs are "old" during a restart.
    pub fn config_version(&self) -> Version {
        self.version_info.last_config_change_at
    }
}

/// A host port one instance needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPort {
    /// Any free port from the offer.
    Any,
    /// This port exactly.
    Exact(u16),
}

/// Per-instance resources (Marathon: cpus ≥ 0.001, default 1; mem 128 MB;
/// disk 0 MB; gpus 0, whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppResources {
    /// CPUs.
    pub cpus: Scalar,
    /// Memory, MB.
    pub mem: Scalar,
    /// Disk, MB.
    pub disk: Scalar,
    /// Whole GPUs.
    pub gpus: u32,
}

impl Default for AppResources {
    fn default() -> Self {
        AppResources {
            cpus: Scalar::from_units(1),
            mem: Scalar::from_units(128),
            disk: Scalar::ZERO,
            gpus: 0,
        }
    }
}

/// `container.docker`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DockerContainer {
    /// Image reference; a new tag means a rolling restart.
    pub image: String,
    /// Pull even if present (default false).
    pub force_pull_image: bool,
    /// `privileged` (default false).
    pub privileged: bool,
    /// `parameters`: extra `docker run` flags as key/value pairs, in order.
    pub parameters: Vec<(String, String)>,
}

/// `networks[0].mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// Host networking (Marathon's app default).
    #[default]
    Host,
    /// `container/bridge`.
    Bridge,
    /// `container` (a named virtual network).
    Container,
}

/// One port definition (host mode) or port mapping (bridge/container).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortSpec {
    /// Host mode: `port` (0 = assign a service port). Bridge: `containerPort`.
    pub port: u16,
    /// Bridge/container: `hostPort` (`Some(0)` = any, `None` = no host port).
    pub host_port: Option<u16>,
    /// `servicePort` (0 = auto from 10000..20000).
    pub service_port: u16,
    /// `tcp`, `udp` or `udp,tcp`.
    pub protocol: String,
    /// Optional name (`$PORT_<NAME>`).
    pub name: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// An environment value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A literal.
    Value(String),
    /// `{"secret": "ref"}`.
    Secret(String),
}

/// `upgradeStrategy`; both in [0, 1], held at three decimals so
/// `ceil(n × minimumHealthCapacity)` is exact (10 × 0.3 is 3, not 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeStrategy {
    /// Fraction of instances that stay healthy during a restart.
    pub minimum_health_capacity: Scalar,
    /// Fraction of extra instances allowed during a restart.
    pub maximum_over_capacity: Scalar,
}

impl Default for UpgradeStrategy {
    /// `{1.0, 1.0}` (`UpgradeStrategy.empty`): blue-green in place.
    fn default() -> Self {
        UpgradeStrategy {
            minimum_health_capacity: Scalar::from_units(1),
            maximum_over_capacity: Scalar::from_units(1),
        }
    }
}

impl UpgradeStrategy {
    /// `ceil(n × minimumHealthCapacity)`: healthy instances kept.
    pub fn min_healthy(&self, n: u32) -> u32 {
        let m = u64::try_from(self.minimum_health_capacity.milli().clamp(0, 1000)).unwrap_or(0);
        u32::try_from((u64::from(n) * m).div_ceil(1000)).unwrap_or(n)
    }

    /// `floor(n × (1 + maximumOverCapacity))`: instances allowed at once.
    pub fn max_capacity(&self, n: u32) -> u32 {
        let m = u64::try_from(self.maximum_over_capacity.milli().clamp(0, 1000)).unwrap_or(0);
        let cap = u64::from(n) * (1000 + m) / 1000;
        u32::try_from(cap).unwrap_or(u32::MAX)
    }
}

/// `backoffSeconds` / `backoffFactor` / `maxLaunchDelaySeconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// First delay after a failure (default 1 s).
    pub backoff: Duration,
    /// Multiplier per failure (default 1.15, ≥ 1).
    pub factor: Scalar,
    /// Cap (default 300 s).
    pub max_launch_delay: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            backoff: Duration::from_secs(1),
            factor: Scalar::from_milli(1150),
            max_launch_delay: Duration::from_secs(300),
        }
    }
}

impl BackoffPolicy {
    /// The delay before the next launch after `failures` failures in a row
    /// (0 failures: no delay): `backoff × factor^(failures−1)`, capped.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let cap = self.max_launch_delay;
        let factor = self.factor.as_f64().max(1.0);
        let ms = self.backoff.as_secs_f64() * 1000.0 * factor.powf(f64::from(failures - 1));
        if !ms.is_finite() || ms >= cap.as_secs_f64() * 1000.0 {
            return cap;
        }
        Duration::from_millis(ms.round() as u64)
    }
}

/// `killSelection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KillSelection {
    /// Newest instances die first (Marathon's default).
    #[default]
    YoungestFirst,
    /// Oldest instances die first.
    OldestFirst,
}

/// `unreachableStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachableStrategy {
    /// `"disabled"`: never replace (resident apps).
    Disabled,
    /// Replace after `inactive_after`; kill the original if it returns
    /// after `expunge_after` (≥ `inactive_after`).
    Enabled {
        /// `inactiveAfterSeconds`.
        inactive_after: Duration,
        /// `expungeAfterSeconds`.
        expunge_after: Duration,
    },
}

impl Default for UnreachableStrategy {
    /// `{inactiveAfterSeconds: 0, expungeAfterSeconds: 0}` (mesos-marathon.md §2.1).
    fn default() -> Self {
        UnreachableStrategy::Enabled {
            inactive_after: Duration::ZERO,
            expunge_after: Duration::ZERO,
        }
    }
}

/// `versionInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VersionInfo {
    /// The last version that changed only the instance count.
    pub last_scaling_at: Version,
    /// The last version that changed anything else (or was a restart).
    pub last_config_change_at: Version,
}

/// A health check's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HealthProtocol {
    /// Marathon-level HTTP (Marathon's default; Agora runs it on the agent).
    #[default]
    Http,
    /// Marathon-level HTTPS.
    Https,
    /// Marathon-level TCP.
    Tcp,
    /// Agent-side HTTP.
    MesosHttp,
    /// Agent-side HTTPS.
    MesosHttps,
    /// Agent-side TCP.
    MesosTcp,
    /// Agent-side command.
    Command,
}

/// One health check (defaults from `healthCheck.raml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Protocol.
    pub protocol: HealthProtocol,
    /// Failures are ignored until the first success or this (300 s).
    pub grace_period: Duration,
    /// Between checks (60 s).
    pub interval: Duration,
    /// A slower check fails (20 s).
    pub timeout: Duration,
    /// Kill after this many failures in a row (3; Marathon-level 0 = never).
    pub max_consecutive_failures: u32,
    /// Before the first check, agent-side only (15 s).
    pub delay: Duration,
    /// Which of the app's ports (`portIndex`, default 0).
    pub port_index: Option<u32>,
    /// An explicit port, overriding `port_index`.
    pub port: Option<u16>,
    /// HTTP(S) path (`/`).
    pub path: String,
    /// COMMAND: the shell command.
    pub command: Option<String>,
    /// Marathon HTTP(S): a 1xx answer leaves health unchanged.
    pub ignore_http1xx: bool,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            protocol: HealthProtocol::Http,
            grace_period: Duration::from_secs(300),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(20),
            max_consecutive_failures: 3,
            delay: Duration::from_secs(15),
            port_index: Some(0),
            port: None,
            path: "/".to_string(),
            command: None,
            ignore_http1xx: false,
        }
    }
}

/// The readiness check (defaults from `readinessCheck.raml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessCheck {
    /// Name (`readinessCheck`).
    pub name: String,
    /// `HTTP` or `HTTPS` (true).
    pub https: bool,
    /// Path (`/`).
    pub path: String,
    /// Which named port (`http-api`).
    pub port_name: String,
    /// Between checks (30 s).
    pub interval: Duration,
    /// Must be shorter than the interval (10 s).
    pub timeout: Duration,
    /// Codes meaning ready (`[200]`).
    pub http_status_codes_for_ready: Vec<u16>,
    /// Keep the last response for `/v2/deployments` (false).
    pub preserve_last_response: bool,
}

impl Default for ReadinessCheck {
    fn default() -> Self {
        ReadinessCheck {
            name: "readinessCheck".to_string(),
            https: false,
            path: "/".to_string(),
            port_name: "http-api".to_string(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            http_status_codes_for_ready: vec![200],
            preserve_last_response: false,
        }
    }
}

/// How a target definition differs from the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppChange {
    /// Same config and instance count.
    Unchanged,
    /// Only the instance count differs: scale, never restart.
    ScaleOnly {
        /// Current count.
        from: u32,
        /// Target count.
        to: u32,
    },
    /// Anything else differs (image, env, resources, constraints, a restart
    /// request...): a rolling restart per the upgrade strategy.
    Restart,
}

/// Compares two definitions of one app, ignoring `version` and
/// `version_info.last_scaling_at` (Marathon's `isUpgrade`/`needsRestart`: a
/// restart request bumps `last_config_change_at`, so it counts as a change).
pub fn change(current: &App, target: &App) -> AppChange {
    let mut normalized = target.clone();
    normalized.instances = current.instances;
    normalized.version = current.version;
    normalized.version_info.last_scaling_at = current.version_info.last_scaling_at;
    if normalized != *current {
        AppChange::Restart
    } else if current.instances != target.instances {
        AppChange::ScaleOnly {
            from: current.instances,
            to: target.instances,
        }
    } else {
        AppChange::Unchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        let mut a = App::new(PathId::parse("/prod/api").unwrap());
        a.cmd = Some("sleep 1000".into());
        a
    }

    #[test]
    fn defaults_are_marathons() {
        let a = app();
        assert_eq!(a.resources.cpus, Scalar::from_units(1));
        assert_eq!(a.resources.mem, Scalar::from_units(128));
        assert_eq!(a.resources.disk, Scalar::ZERO);
        assert_eq!(a.resources.gpus, 0);
        assert_eq!(a.instances, 1);
        assert_eq!(
            a.upgrade_strategy.minimum_health_capacity,
            Scalar::from_units(1)
        );
        assert_eq!(
            a.upgrade_strategy.maximum_over_capacity,
            Scalar::from_units(1)
        );
        assert_eq!(a.backoff.backoff, Duration::from_secs(1));
        assert_eq!(a.backoff.factor, Scalar::from_milli(1150));
        assert_eq!(a.backoff.max_launch_delay, Duration::from_secs(300));
        assert_eq!(a.kill_selection, KillSelection::YoungestFirst);
        assert_eq!(a.network, NetworkMode::Host);
        let hc = HealthCheck::default();
        assert_eq!(
            (
                hc.grace_period.as_secs(),
                hc.interval.as_secs(),
                hc.timeout.as_secs()
            ),
            (300, 60, 20)
        );
        assert_eq!((hc.max_consecutive_failures, hc.delay.as_secs()), (3, 15));
        let rc = ReadinessCheck::default();
        assert_eq!((rc.interval.as_secs(), rc.timeout.as_secs()), (30, 10));
        assert_eq!(rc.http_status_codes_for_ready, vec![200]);
    }

    #[test]
    fn rolling_bounds_are_exact() {
        let s = |m: i64, o: i64| UpgradeStrategy {
            minimum_health_capacity: Scalar::from_milli(m),
            maximum_over_capacity: Scalar::from_milli(o),
        };
        // Docs: 3 instances, minimumHealthCapacity 0.7 → ceil(2.1) = 3.
        assert_eq!(s(700, 0).min_healthy(3), 3);
        assert_eq!(s(300, 0).min_healthy(10), 3);
        assert_eq!(s(500, 200).min_healthy(10), 5);
        assert_eq!(s(500, 200).max_capacity(10), 12);
        assert_eq!(s(1000, 1000).max_capacity(10), 20);
        assert_eq!(s(0, 0).min_healthy(10), 0);
        assert_eq!(s(1000, 0).max_capacity(7), 7);
    }

    #[test]
    fn backoff_grows_by_the_factor_up_to_the_cap() {
        let b = BackoffPolicy::default();
        assert_eq!(b.delay(0), Duration::ZERO);
        assert_eq!(b.delay(1), Duration::from_secs(1));
        assert_eq!(b.delay(2), Duration::from_millis(1150));
        assert_eq!(b.delay(200), Duration::from_secs(300));
    }

    #[test]
    fn scale_only_changes_are_told_from_restarts() {
        let a = app();
        let mut b = a.clone();
        assert_eq!(change(&a, &b), AppChange::Unchanged);
        b.instances = 5;
        b.version = Version(2);
        b.version_info.last_scaling_at = Version(2);
        assert_eq!(change(&a, &b), AppChange::ScaleOnly { from: 1, to: 5 });
        let mut c = b.clone();
        c.docker = Some(DockerContainer {
            image: "nginx:1.27".into(),
            ..Default::default()
        });
        assert_eq!(change(&a, &c), AppChange::Restart);
        let mut d = a.clone();
        d.env.insert("A".into(), EnvValue::Value("1".into()));
        assert_eq!(change(&a, &d), AppChange::Restart);
        let mut e = a.clone();
        e.resources.mem = Scalar::from_units(256);
        assert_eq!(change(&a, &e), AppChange::Restart);
        // POST /restart: same config, new config version.
        let mut r = a.clone();
        r.version_info.last_config_change_at = Version(9);
        assert_eq!(change(&a, &r), AppChange::Restart);
    }

    #[test]
    fn host_ports_by_network_mode() {
        let mut a = app();
        a.ports = vec![
            PortSpec {
                port: 8080,
                ..Default::default()
            },
            PortSpec::default(),
        ];
        assert_eq!(a.host_ports(), vec![HostPort::Any, HostPort::Any]);
        a.require_ports = true;
        assert_eq!(a.host_ports(), vec![HostPort::Exact(8080), HostPort::Any]);
        a.network = NetworkMode::Bridge;
        a.ports[0].host_port = Some(0);
        a.ports[1].host_port = None;
        assert_eq!(a.host_ports(), vec![HostPort::Any]);
    }
}
