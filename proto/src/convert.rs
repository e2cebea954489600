//! Conversions between wire (prost) types and model types. Incoming
//! conversions validate and name the offending field; outgoing ones cannot fail.
use std::collections::BTreeMap;
use std::time::Duration;

use agora_model as m;
use agora_model::{ModelError, Scalar};

use crate::v1;

/// A conversion error: the field path and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ConvertError {
    /// Dotted field path, e.g. `task_infos[0].resources[2].scalar`.
    pub field: String,
    /// What was wrong.
    pub reason: String,
}

impl ConvertError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
    /// Prefixes the field path with `prefix.`.
    pub fn at(self, prefix: &str) -> Self {
        let field = if self.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.field)
        };
        Self {
            field,
            reason: self.reason,
        }
    }
}

impl From<ModelError> for ConvertError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Invalid { field, reason } => ConvertError::new(field, reason),
            other => ConvertError::new("", other.to_string()),
        }
    }
}

impl From<ConvertError> for tonic::Status {
    fn from(e: ConvertError) -> Self {
        tonic::Status::invalid_argument(e.to_string())
    }
}

type Result<T> = std::result::Result<T, ConvertError>;

fn scalar(v: f64, field: &str) -> Result<Scalar> {
    Scalar::from_f64(v).map_err(|e| ConvertError::new(field, e.to_string()))
}

fn seconds(v: f64, field: &str) -> Result<Duration> {
    if !v.is_finite() || v < 0.0 || v > 1e10 {
        return Err(ConvertError::new(
            field,
            format!("{v} is not a valid number of seconds"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn ranges(r: &v1::RangeList, field: &str) -> Result<m::Ranges> {
    for (i, x) in r.ranges.iter().enumerate() {
        if x.end < x.begin {
            return Err(ConvertError::new(
                format!("{field}.ranges[{i}]"),
                "end is below begin",
            ));
        }
    }
    Ok(m::Ranges::from_pairs(
        r.ranges.iter().map(|x| (x.begin, x.end)),
    ))
}

fn ranges_to_wire(r: &m::Ranges) -> v1::RangeList {
    v1::RangeList {
        ranges: r
            .pairs()
            .iter()
            .map(|&(begin, end)| v1::Range { begin, end })
            .collect(),
    }
}

/// Wire resources → model resources, validated.
pub fn resources_from_wire(list: &[v1::Resource], field: &str) -> Result<m::Resources> {
    let mut out = m::Resources::new();
    for (i, r) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if r.name.is_empty() {
            return Err(ConvertError::new(format!("{f}.name"), "must not be empty"));
        }
        let role = if r.role.is_empty() {
            m::Role::star()
        } else {
            m::Role::parse(r.role.clone()).map_err(|e| ConvertError::from(e).at(&f))?
        };
        let value = match &r.value {
            Some(v1::resource::Value::Scalar(s)) => {
                m::Value::Scalar(scalar(*s, &format!("{f}.scalar"))?)
            }
            Some(v1::resource::Value::Ranges(rg)) => m::Value::Ranges(ranges(rg, &f)?),
            Some(v1::resource::Value::Set(s)) => m::Value::Set(s.items.iter().cloned().collect()),
            None => return Err(ConvertError::new(format!("{f}.value"), "missing")),
        };
        out.push(r.name.clone(), role, value);
    }
    out.validate()
        .map_err(|e| ConvertError::from(e).at(field))?;
    Ok(out)
}

/// Model resources → wire.
pub fn resources_to_wire(r: &m::Resources) -> Vec<v1::Resource> {
    r.iter()
        .map(|e| v1::Resource {
            name: e.name.to_string(),
            role: e.role.to_string(),
            value: Some(match e.value {
                m::Value::Scalar(s) => v1::resource::Value::Scalar(s.as_f64()),
                m::Value::Ranges(rg) => v1::resource::Value::Ranges(ranges_to_wire(rg)),
                m::Value::Set(s) => v1::resource::Value::Set(v1::StringSet {
                    items: s.iter().cloned().collect(),
                }),
            }),
        })
        .collect()
}

/// Wire attributes → model.
pub fn attributes_from_wire(list: &[v1::Attribute]) -> Result<m::Attributes> {
    let mut out = BTreeMap::new();
    for (i, a) in list.iter().enumerate() {
        let f = format!("attributes[{i}]");
        if a.name.is_empty() {
            return Err(ConvertError::new(format!("{f}.name"), "must not be empty"));
        }
        let v = match &a.value {
            Some(v1::attribute::Value::Text(t)) => m::AttributeValue::Text(t.clone()),
            Some(v1::attribute::Value::Scalar(s)) => {
                m::AttributeValue::Scalar(scalar(*s, &format!("{f}.scalar"))?)
            }
            Some(v1::attribute::Value::Ranges(r)) => m::AttributeValue::Ranges(ranges(r, &f)?),
            Some(v1::attribute::Value::Set(s)) => {
                m::AttributeValue::Set(s.items.iter().cloned().collect())
            }
            None => return Err(ConvertError::new(format!("{f}.value"), "missing")),
        };
        if out.insert(a.name.clone(), v).is_some() {
            return Err(ConvertError::new(
                format!("{f}.name"),
                format!("{:?} given twice", a.name),
            ));
        }
    }
    Ok(m::Attributes(out))
}

/// Model attributes → wire.
pub fn attributes_to_wire(a: &m::Attributes) -> Vec<v1::Attribute> {
    a.0.iter()
        .map(|(name, v)| v1::Attribute {
            name: name.clone(),
            value: Some(match v {
                m::AttributeValue::Text(t) => v1::attribute::Value::Text(t.clone()),
                m::AttributeValue::Scalar(s) => v1::attribute::Value::Scalar(s.as_f64()),
                m::AttributeValue::Ranges(r) => v1::attribute::Value::Ranges(ranges_to_wire(r)),
                m::AttributeValue::Set(s) => v1::attribute::Value::Set(v1::StringSet {
                    items: s.iter().cloned().collect(),
                }),
            }),
        })
        .collect()
}

fn capability_from_wire(c: i32) -> Option<m::Capability> {
    use v1::framework_info::Capability as C;
    match C::try_from(c).ok()? {
        C::PartitionAware => Some(m::Capability::PartitionAware),
        C::TaskKillingState => Some(m::Capability::TaskKillingState),
        C::GpuResources => Some(m::Capability::GpuResources),
        C::MultiRole => Some(m::Capability::MultiRole),
        C::Unspecified => None,
    }
}

fn capability_to_wire(c: m::Capability) -> i32 {
    use v1::framework_info::Capability as C;
    (match c {
        m::Capability::PartitionAware => C::PartitionAware,
        m::Capability::TaskKillingState => C::TaskKillingState,
        m::Capability::GpuResources => C::GpuResources,
        m::Capability::MultiRole => C::MultiRole,
    }) as i32
}

/// Wire FrameworkInfo → model, validated.
pub fn framework_from_wire(f: &v1::FrameworkInfo) -> Result<m::FrameworkInfo> {
    let id = if f.framework_id.is_empty() {
        None
    } else {
        Some(m::FrameworkId::parse(f.framework_id.clone())?)
    };
    if f.name.trim().is_empty() {
        return Err(ConvertError::new(
            "framework_info.name",
            "must not be empty",
        ));
    }
    let mut roles = Vec::new();
    for (i, r) in f.roles.iter().enumerate() {
        let role = m::Role::parse(r.clone())
            .map_err(|e| ConvertError::from(e).at(&format!("framework_info.roles[{i}]")))?;
        if roles.contains(&role) {
            return Err(ConvertError::new(
                format!("framework_info.roles[{i}]"),
                format!("{r:?} given twice"),
            ));
        }
        roles.push(role);
    }
    if roles.is_empty() {
        roles.push(m::Role::star());
    }
    let mut capabilities = std::collections::BTreeSet::new();
    for (i, c) in f.capabilities.iter().enumerate() {
        match capability_from_wire(*c) {
            Some(c) => {
                capabilities.insert(c);
            }
            None => {
                return Err(ConvertError::new(
                    format!("framework_info.capabilities[{i}]"),
                    format!("unknown capability {c}"),
                ));
            }
        }
    }
    if roles.len() > 1 && !capabilities.contains(&m::Capability::MultiRole) {
        return Err(ConvertError::new(
            "framework_info.roles",
            "several roles need the MULTI_ROLE capability",
        ));
    }
    Ok(m::FrameworkInfo {
        id,
        name: f.name.clone(),
        user: if f.user.is_empty() {
            "root".into()
        } else {
            f.user.clone()
        },
        roles,
        principal: f.principal.clone(),
        failover_timeout: seconds(
            f.failover_timeout_seconds,
            "framework_info.failover_timeout_seconds",
        )?,
        capabilities,
        checkpoint: f.checkpoint,
        hostname: f.hostname.clone(),
        labels: f.labels.clone().into_iter().collect(),
    })
}

/// Model FrameworkInfo → wire.
pub fn framework_to_wire(f: &m::FrameworkInfo) -> v1::FrameworkInfo {
    v1::FrameworkInfo {
        framework_id: f.id.as_ref().map(ToString::to_string).unwrap_or_default(),
        name: f.name.clone(),
        user: f.user.clone(),
        roles: f.roles.iter().map(ToString::to_string).collect(),
        principal: f.principal.clone(),
        failover_timeout_seconds: f.failover_timeout.as_secs_f64(),
        capabilities: f
            .capabilities
            .iter()
            .map(|c| capability_to_wire(*c))
            .collect(),
        checkpoint: f.checkpoint,
        hostname: f.hostname.clone(),
        labels: f.labels.clone().into_iter().collect(),
    }
}

fn port(v: u32, field: &str) -> Result<u16> {
    u16::try_from(v)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ConvertError::new(field, format!("{v} is not a port")))
}

fn health_from_wire(h: &v1::HealthCheck) -> Result<m::HealthCheck> {
    use v1::health_check::Type;
    let f = "health_check";
    let kind = match Type::try_from(h.r#type).unwrap_or(Type::Unspecified) {
        Type::Http => {
            let http = h.http.as_ref().ok_or_else(|| {
                ConvertError::new(format!("{f}.http"), "missing for an HTTP check")
            })?;
            let path = if http.path.is_empty() {
                "/".to_string()
            } else {
                http.path.clone()
            };
            if !path.starts_with('/') {
                return Err(ConvertError::new(
                    format!("{f}.http.path"),
                    "must start with '/'",
                ));
            }
            if !(http.scheme.is_empty() || http.scheme == "http") {
                return Err(ConvertError::new(
                    format!("{f}.http.scheme"),
                    "only http is supported",
                ));
            }
            m::HealthCheckKind::Http {
                port: port(http.port, &format!("{f}.http.port"))?,
                path,
            }
        }
        Type::Tcp => {
            let tcp = h
                .tcp
                .as_ref()
                .ok_or_else(|| ConvertError::new(format!("{f}.tcp"), "missing for a TCP check"))?;
            m::HealthCheckKind::Tcp {
                port: port(tcp.port, &format!("{f}.tcp.port"))?,
            }
        }
        Type::Command => {
            let c = h.command.as_ref().ok_or_else(|| {
                ConvertError::new(format!("{f}.command"), "missing for a COMMAND check")
            })?;
            if c.value.trim().is_empty() {
                return Err(ConvertError::new(
                    format!("{f}.command.value"),
                    "must not be empty",
                ));
            }
            m::HealthCheckKind::Command {
                value: c.value.clone(),
            }
        }
        Type::Unspecified => {
            return Err(ConvertError::new(
                format!("{f}.type"),
                "must be COMMAND, HTTP or TCP",
            ));
        }
    };
    let mut out = m::HealthCheck::with_defaults(kind);
    if let Some(v) = h.delay_seconds {
        out.delay = seconds(v, &format!("{f}.delay_seconds"))?;
    }
    if let Some(v) = h.interval_seconds {
        out.interval = seconds(v, &format!("{f}.interval_seconds"))?;
        if out.interval.is_zero() {
            return Err(ConvertError::new(
                format!("{f}.interval_seconds"),
                "must be positive",
            ));
        }
    }
    if let Some(v) = h.timeout_seconds {
        out.timeout = seconds(v, &format!("{f}.timeout_seconds"))?;
        if out.timeout.is_zero() {
            return Err(ConvertError::new(
                format!("{f}.timeout_seconds"),
                "must be positive",
            ));
        }
    }
    if let Some(v) = h.consecutive_failures {
        out.consecutive_failures = v.max(1);
    }
    if let Some(v) = h.grace_period_seconds {
        out.grace_period = seconds(v, &format!("{f}.grace_period_seconds"))?;
    }
    out.never_kill = h.never_kill;
    Ok(out)
}

fn health_to_wire(h: &m::HealthCheck) -> v1::HealthCheck {
    use v1::health_check::{Command, Http, Tcp, Type};
    let mut w = v1::HealthCheck {
        delay_seconds: Some(h.delay.as_secs_f64()),
        interval_seconds: Some(h.interval.as_secs_f64()),
        timeout_seconds: Some(h.timeout.as_secs_f64()),
        consecutive_failures: Some(h.consecutive_failures),
        grace_period_seconds: Some(h.grace_period.as_secs_f64()),
        never_kill: h.never_kill,
        ..Default::default()
    };
    match &h.kind {
        m::HealthCheckKind::Http { port, path } => {
            w.r#type = Type::Http as i32;
            w.http = Some(Http {
                port: u32::from(*port),
                path: path.clone(),
                scheme: "http".into(),
            });
        }
        m::HealthCheckKind::Tcp { port } => {
            w.r#type = Type::Tcp as i32;
            w.tcp = Some(Tcp {
                port: u32::from(*port),
            });
        }
        m::HealthCheckKind::Command { value } => {
            w.r#type = Type::Command as i32;
            w.command = Some(Command {
                value: value.clone(),
            });
        }
    }
    w
}

/// Wire TaskInfo → model TaskSpec. `agent_id` is the agent of the offer the
/// task was launched on (the wire field may be empty in ACCEPT).
pub fn task_from_wire(t: &v1::TaskInfo, agent_id: &m::AgentId) -> Result<m::TaskSpec> {
    spec_from_wire(t, agent_id)
}

/// Wire TaskInfo from an ACCEPT → a validated template, before the master
/// knows which agent it goes to. A non-empty `agent_id` is kept as the
/// framework's request and checked against the offers' agent later.
pub fn task_template_from_wire(t: &v1::TaskInfo) -> Result<m::TaskTemplate> {
    let requested_agent = if t.agent_id.is_empty() {
        None
    } else {
        Some(m::AgentId::parse(t.agent_id.clone())?)
    };
    let placeholder = m::AgentId::new_unchecked("");
    Ok(m::TaskTemplate::new(
        requested_agent,
        spec_from_wire(t, &placeholder)?,
    ))
}

fn spec_from_wire(t: &v1::TaskInfo, agent_id: &m::AgentId) -> Result<m::TaskSpec> {
    let id = m::TaskId::parse(t.task_id.clone())?;
    let resources = resources_from_wire(&t.resources, "resources")?;
    let command = t.command.as_ref().map(|c| m::CommandSpec {
        shell: c.shell,
        value: c.value.clone(),
        arguments: c.arguments.clone(),
        env: c.environment.clone().into_iter().collect(),
        user: (!c.user.is_empty()).then(|| c.user.clone()),
    });
    let docker = match t.container.as_ref().and_then(|c| c.docker.as_ref()) {
        None => None,
        Some(d) => {
            use v1::docker_info::Network;
            let network = match Network::try_from(d.network) {
                Ok(Network::Host) => m::DockerNetwork::Host,
                Ok(Network::Bridge) => m::DockerNetwork::Bridge,
                Ok(Network::None) => m::DockerNetwork::None,
                Err(_) => {
                    return Err(ConvertError::new(
                        "container.docker.network",
                        format!("unknown network {}", d.network),
                    ));
                }
            };
            let mut port_mappings = Vec::new();
            for (i, pm) in d.port_mappings.iter().enumerate() {
                let f = format!("container.docker.port_mappings[{i}]");
                port_mappings.push(m::PortMapping {
                    host_port: port(pm.host_port, &format!("{f}.host_port"))?,
                    container_port: port(pm.container_port, &format!("{f}.container_port"))?,
                    protocol: if pm.protocol.is_empty() {
                        "tcp".into()
                    } else {
                        pm.protocol.to_lowercase()
                    },
                    name: (!pm.name.is_empty()).then(|| pm.name.clone()),
                });
            }
            if !port_mappings.is_empty() && network != m::DockerNetwork::Bridge {
                return Err(ConvertError::new(
                    "container.docker.port_mappings",
                    "port mappings need BRIDGE networking",
                ));
            }
            Some(m::DockerSpec {
                image: d.image.clone(),
                network,
                port_mappings,
                force_pull: d.force_pull_image,
                privileged: d.privileged,
                entrypoint: d.entrypoint.clone(),
                labels: d.labels.clone().into_iter().collect(),
            })
        }
    };
    let health_check = t.health_check.as_ref().map(health_from_wire).transpose()?;
    let kill_grace = match t.kill_policy.as_ref().and_then(|k| k.grace_period_seconds) {
        Some(s) => Some(seconds(s, "kill_policy.grace_period_seconds")?),
        None => None,
    };
    let spec = m::TaskSpec {
        id,
        name: if t.name.is_empty() {
            t.task_id.clone()
        } else {
            t.name.clone()
        },
        agent_id: agent_id.clone(),
        resources,
        command,
        docker,
        health_check,
        kill_grace,
        labels: t.labels.clone().into_iter().collect(),
        port_names: t
            .port_names
            .iter()
            .map(|p| (p.name.clone(), p.index))
            .collect(),
    };
    spec.validate()?;
    Ok(spec)
}

/// Model TaskSpec → wire.
pub fn task_to_wire(t: &m::TaskSpec) -> v1::TaskInfo {
    v1::TaskInfo {
        task_id: t.id.to_string(),
        name: t.name.clone(),
        agent_id: t.agent_id.to_string(),
        resources: resources_to_wire(&t.resources),
        command: t.command.as_ref().map(|c| v1::CommandInfo {
            shell: c.shell,
            value: c.value.clone(),
            arguments: c.arguments.clone(),
            environment: c.env.clone().into_iter().collect(),
            user: c.user.clone().unwrap_or_default(),
        }),
        container: t.docker.as_ref().map(|d| v1::ContainerInfo {
            docker: Some(v1::DockerInfo {
                image: d.image.clone(),
                network: match d.network {
                    m::DockerNetwork::Host => v1::docker_info::Network::Host,
                    m::DockerNetwork::Bridge => v1::docker_info::Network::Bridge,
                    m::DockerNetwork::None => v1::docker_info::Network::None,
                } as i32,
                port_mappings: d
                    .port_mappings
                    .iter()
                    .map(|p| v1::docker_info::PortMapping {
                        host_port: u32::from(p.host_port),
                        container_port: u32::from(p.container_port),
                        protocol: p.protocol.clone(),
                        name: p.name.clone().unwrap_or_default(),
                    })
                    .collect(),
                force_pull_image: d.force_pull,
                privileged: d.privileged,
                entrypoint: d.entrypoint.clone(),
                labels: d.labels.clone().into_iter().collect(),
            }),
        }),
        health_check: t.health_check.as_ref().map(health_to_wire),
        kill_policy: t.kill_grace.map(|g| v1::KillPolicy {
            grace_period_seconds: Some(g.as_secs_f64()),
        }),
        labels: t.labels.clone().into_iter().collect(),
        port_names: t
            .port_names
            .iter()
            .map(|(name, index)| v1::PortName {
                name: name.clone(),
                index: *index,
            })
            .collect(),
    }
}

/// Wire state → model.
pub fn state_from_wire(s: i32) -> Result<m::TaskState> {
    use v1::TaskState as W;
    Ok(
        match W::try_from(s)
            .map_err(|_| ConvertError::new("state", format!("unknown task state {s}")))?
        {
            W::TaskStaging => m::TaskState::Staging,
            W::TaskStarting => m::TaskState::Starting,
            W::TaskRunning => m::TaskState::Running,
            W::TaskKilling => m::TaskState::Killing,
            W::TaskFinished => m::TaskState::Finished,
            W::TaskFailed => m::TaskState::Failed,
            W::TaskKilled => m::TaskState::Killed,
            W::TaskError => m::TaskState::Error,
            W::TaskLost => m::TaskState::Lost,
            W::TaskDropped => m::TaskState::Dropped,
            W::TaskUnreachable => m::TaskState::Unreachable,
            W::TaskGone => m::TaskState::Gone,
            W::TaskGoneByOperator => m::TaskState::GoneByOperator,
            W::TaskUnknown => m::TaskState::Unknown,
        },
    )
}

/// Model state → wire.
pub fn state_to_wire(s: m::TaskState) -> i32 {
    use v1::TaskState as W;
    (match s {
        m::TaskState::Staging => W::TaskStaging,
        m::TaskState::Starting => W::TaskStarting,
        m::TaskState::Running => W::TaskRunning,
        m::TaskState::Killing => W::TaskKilling,
        m::TaskState::Finished => W::TaskFinished,
        m::TaskState::Failed => W::TaskFailed,
        m::TaskState::Killed => W::TaskKilled,
        m::TaskState::Error => W::TaskError,
        m::TaskState::Lost => W::TaskLost,
        m::TaskState::Dropped => W::TaskDropped,
        m::TaskState::Unreachable => W::TaskUnreachable,
        m::TaskState::Gone => W::TaskGone,
        m::TaskState::GoneByOperator => W::TaskGoneByOperator,
        m::TaskState::Unknown => W::TaskUnknown,
    }) as i32
}

macro_rules! reasons {
    ($($m:ident <=> $w:ident),* $(,)?) => {
        /// Wire reason → model (unknown values become Unspecified: reasons are informative).
        pub fn reason_from_wire(r: i32) -> m::TaskStatusReason {
            use v1::task_status::Reason as W;
            match W::try_from(r) {
                $(Ok(W::$w) => m::TaskStatusReason::$m,)*
                _ => m::TaskStatusReason::Unspecified,
            }
        }
        /// Model reason → wire.
        pub fn reason_to_wire(r: m::TaskStatusReason) -> i32 {
            use v1::task_status::Reason as W;
            (match r { $(m::TaskStatusReason::$m => W::$w,)* }) as i32
        }
    };
}

reasons! {
    Unspecified <=> Unspecified,
    CommandExecutorFailed <=> CommandExecutorFailed,
    ContainerLaunchFailed <=> ContainerLaunchFailed,
    ContainerLimitationMemory <=> ContainerLimitationMemory,
    ContainerPreempted <=> ContainerPreempted,
    ExecutorTerminated <=> ExecutorTerminated,
    FrameworkRemoved <=> FrameworkRemoved,
    InvalidOffers <=> InvalidOffers,
    Reconciliation <=> Reconciliation,
    ResourcesUnknown <=> ResourcesUnknown,
    AgentDisconnected <=> AgentDisconnected,
    AgentRemoved <=> AgentRemoved,
    AgentRestarted <=> AgentRestarted,
    AgentUnknown <=> AgentUnknown,
    TaskInvalid <=> TaskInvalid,
    TaskKilledDuringLaunch <=> TaskKilledDuringLaunch,
    TaskUnknown <=> TaskUnknown,
    TaskHealthCheckStatusUpdated <=> TaskHealthCheckStatusUpdated,
    TaskUnhealthy <=> TaskUnhealthy,
    ContainerImageNotFound <=> ContainerImageNotFound,
    CommandNotFound <=> CommandNotFound,
    MasterDisconnected <=> MasterDisconnected,
}

fn source_from_wire(s: i32) -> m::StatusSource {
    use v1::task_status::Source as W;
    match W::try_from(s) {
        Ok(W::Agent) => m::StatusSource::Agent,
        Ok(W::Executor) => m::StatusSource::Executor,
        _ => m::StatusSource::Master,
    }
}

fn source_to_wire(s: m::StatusSource) -> i32 {
    use v1::task_status::Source as W;
    (match s {
        m::StatusSource::Master => W::Master,
        m::StatusSource::Agent => W::Agent,
        m::StatusSource::Executor => W::Executor,
    }) as i32
}

/// Wire TaskStatus → model, validated.
pub fn status_from_wire(s: &v1::TaskStatus) -> Result<m::TaskStatus> {
    let uuid = if s.uuid.is_empty() {
        None
    } else {
        Some(
            uuid::Uuid::from_slice(&s.uuid)
                .map_err(|_| ConvertError::new("status.uuid", "must be 16 bytes"))?,
        )
    };
    if !s.timestamp.is_finite() {
        return Err(ConvertError::new("status.timestamp", "must be finite"));
    }
    Ok(m::TaskStatus {
        task_id: m::TaskId::parse(s.task_id.clone())
            .map_err(|e| ConvertError::from(e).at("status"))?,
        framework_id: if s.framework_id.is_empty() {
            None
        } else {
            Some(
                m::FrameworkId::parse(s.framework_id.clone())
                    .map_err(|e| ConvertError::from(e).at("status"))?,
            )
        },
        agent_id: if s.agent_id.is_empty() {
            None
        } else {
            Some(
                m::AgentId::parse(s.agent_id.clone())
                    .map_err(|e| ConvertError::from(e).at("status"))?,
            )
        },
        state: state_from_wire(s.state).map_err(|e| e.at("status"))?,
        message: s.message.clone(),
        source: source_from_wire(s.source),
        reason: reason_from_wire(s.reason),
        uuid,
        timestamp: s.timestamp,
        healthy: s.healthy,
        exit_code: s.exit_code,
    })
}

/// Model TaskStatus → wire.
pub fn status_to_wire(s: &m::TaskStatus) -> v1::TaskStatus {
    v1::TaskStatus {
        task_id: s.task_id.to_string(),
        state: state_to_wire(s.state),
        message: s.message.clone(),
        source: source_to_wire(s.source),
        reason: reason_to_wire(s.reason),
        agent_id: s
            .agent_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        uuid: s.uuid.map(|u| u.as_bytes().to_vec()).unwrap_or_default(),
        timestamp: s.timestamp,
        healthy: s.healthy,
        exit_code: s.exit_code,
        framework_id: s
            .framework_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    }
}

/// Wire Offer → model, validated.
pub fn offer_from_wire(o: &v1::Offer) -> Result<m::Offer> {
    Ok(m::Offer {
        id: m::OfferId::parse(o.offer_id.clone())?,
        framework_id: m::FrameworkId::parse(o.framework_id.clone())?,
        agent_id: m::AgentId::parse(o.agent_id.clone())?,
        hostname: o.hostname.clone(),
        resources: resources_from_wire(&o.resources, "resources")?,
        attributes: attributes_from_wire(&o.attributes)?,
        role: if o.role.is_empty() {
            m::Role::star()
        } else {
            m::Role::parse(o.role.clone())?
        },
    })
}

/// Model Offer → wire.
pub fn offer_to_wire(o: &m::Offer) -> v1::Offer {
    v1::Offer {
        offer_id: o.id.to_string(),
        framework_id: o.framework_id.to_string(),
        agent_id: o.agent_id.to_string(),
        hostname: o.hostname.clone(),
        resources: resources_to_wire(&o.resources),
        attributes: attributes_to_wire(&o.attributes),
        role: o.role.to_string(),
    }
}

/// An agent's maintenance notice (drain or its end) → wire.
pub fn maintenance_to_wire(
    agent: &m::AgentId,
    drain: Option<&m::Drain>,
) -> v1::event::AgentMaintenance {
    v1::event::AgentMaintenance {
        agent_id: agent.to_string(),
        draining: drain.is_some(),
        since_unix_ms: drain.map_or(0, |d| d.since_unix_ms),
        deadline_unix_ms: drain.and_then(|d| d.deadline_unix_ms),
    }
}

/// Wire maintenance notice → the agent and its drain (`None`: not draining).
pub fn maintenance_from_wire(
    w: &v1::event::AgentMaintenance,
) -> Result<(m::AgentId, Option<m::Drain>)> {
    let agent =
        m::AgentId::parse(w.agent_id.clone()).map_err(|e| ConvertError::from(e).at("agent_id"))?;
    let drain = w.draining.then_some(m::Drain {
        since_unix_ms: w.since_unix_ms,
        deadline_unix_ms: w.deadline_unix_ms,
    });
    Ok((agent, drain))
}

/// Wire AgentInfo → (id if re-registering, hostname, port, resources, attributes), validated.
pub fn agent_info_from_wire(a: &v1::AgentInfo) -> Result<AgentInfo> {
    let id = if a.agent_id.is_empty() {
        None
    } else {
        Some(m::AgentId::parse(a.agent_id.clone())?)
    };
    if a.hostname.trim().is_empty() {
        return Err(ConvertError::new(
            "agent_info.hostname",
            "must not be empty",
        ));
    }
    let port =
        u16::try_from(a.port).map_err(|_| ConvertError::new("agent_info.port", "is not a port"))?;
    Ok(AgentInfo {
        id,
        hostname: a.hostname.clone(),
        port,
        resources: resources_from_wire(&a.resources, "agent_info.resources")?,
        attributes: attributes_from_wire(&a.attributes).map_err(|e| e.at("agent_info"))?,
    })
}

/// Model AgentInfo → wire.
pub fn agent_info_to_wire(a: &AgentInfo) -> v1::AgentInfo {
    v1::AgentInfo {
        agent_id: a.id.as_ref().map(ToString::to_string).unwrap_or_default(),
        hostname: a.hostname.clone(),
        port: u32::from(a.port),
        resources: resources_to_wire(&a.resources),
        attributes: attributes_to_wire(&a.attributes),
    }
}

/// An agent's self-description, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentInfo {
    /// Set when re-registering.
    pub id: Option<m::AgentId>,
    /// Hostname.
    pub hostname: String,
    /// The agent's HTTP port.
    pub port: u16,
    /// Total resources.
    pub resources: m::Resources,
    /// Attributes.
    pub attributes: m::Attributes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_round_trip_and_bad_input_names_the_field() {
        let r = m::Resources::parse("cpus:2;mem:512;ports:[31000-31010];cpus(web):1").unwrap();
        assert_eq!(resources_from_wire(&resources_to_wire(&r), "r").unwrap(), r);
        let bad = vec![v1::Resource {
            name: "cpus".into(),
            role: String::new(),
            value: Some(v1::resource::Value::Scalar(-1.0)),
        }];
        let e = resources_from_wire(&bad, "resources").unwrap_err();
        assert_eq!(e.field, "resources[0].scalar");
        let nan = vec![v1::Resource {
            name: "mem".into(),
            role: String::new(),
            value: Some(v1::resource::Value::Scalar(f64::NAN)),
        }];
        assert!(resources_from_wire(&nan, "resources").is_err());
    }

    #[test]
    fn task_round_trips() {
        let agent = m::AgentId::new_unchecked("a1");
        let spec = m::TaskSpec {
            id: m::TaskId::new_unchecked("t1"),
            name: "t1".into(),
            agent_id: agent.clone(),
            resources: m::Resources::parse("cpus:0.5;mem:64;ports:[31000-31000]").unwrap(),
            command: Some(m::CommandSpec::shell("sleep 1")),
            docker: Some(m::DockerSpec {
                image: "busybox".into(),
                network: m::DockerNetwork::Bridge,
                port_mappings: vec![m::PortMapping {
                    host_port: 31000,
                    container_port: 80,
                    protocol: "tcp".into(),
                    name: None,
                }],
                ..Default::default()
            }),
            health_check: Some(m::HealthCheck::with_defaults(m::HealthCheckKind::Tcp {
                port: 31000,
            })),
            kill_grace: Some(Duration::from_secs(3)),
            labels: Default::default(),
            port_names: vec![("http".into(), 0)],
        };
        assert_eq!(task_from_wire(&task_to_wire(&spec), &agent).unwrap(), spec);
    }

    #[test]
    fn task_validation_errors_name_fields() {
        let agent = m::AgentId::new_unchecked("a1");
        let mut w = v1::TaskInfo {
            task_id: "t".into(),
            ..Default::default()
        };
        w.resources = resources_to_wire(&m::Resources::parse("cpus:1;mem:32").unwrap());
        assert_eq!(task_from_wire(&w, &agent).unwrap_err().field, "command");
        w.task_id = String::new();
        assert_eq!(task_from_wire(&w, &agent).unwrap_err().field, "task_id");
        w.task_id = "t".into();
        w.container = Some(v1::ContainerInfo {
            docker: Some(v1::DockerInfo {
                image: String::new(),
                ..Default::default()
            }),
        });
        assert_eq!(
            task_from_wire(&w, &agent).unwrap_err().field,
            "container.docker.image"
        );
    }

    #[test]
    fn status_round_trips_and_rejects_bad_uuid() {
        let mut st = m::TaskStatus::new(
            m::TaskId::new_unchecked("t"),
            m::TaskState::Running,
            m::StatusSource::Executor,
            1.5,
        );
        st.uuid = Some(uuid::Uuid::new_v4());
        st.healthy = Some(true);
        st.agent_id = Some(m::AgentId::new_unchecked("a"));
        st.framework_id = Some(m::FrameworkId::new_unchecked("f"));
        assert_eq!(status_from_wire(&status_to_wire(&st)).unwrap(), st);
        let mut w = status_to_wire(&st);
        w.uuid = vec![1, 2, 3];
        assert_eq!(status_from_wire(&w).unwrap_err().field, "status.uuid");
        w.uuid = vec![];
        w.state = 99;
        assert_eq!(status_from_wire(&w).unwrap_err().field, "status.state");
    }

    #[test]
    fn framework_needs_multi_role_for_several_roles() {
        let w = v1::FrameworkInfo {
            name: "f".into(),
            roles: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        assert_eq!(
            framework_from_wire(&w).unwrap_err().field,
            "framework_info.roles"
        );
        let ok = v1::FrameworkInfo {
            name: "f".into(),
            ..Default::default()
        };
        assert_eq!(
            framework_from_wire(&ok).unwrap().roles,
            vec![m::Role::star()]
        );
    }
}
