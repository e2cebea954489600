//! Marathon v2 app definitions as they travel over the wire (`App` in
//! Marathon's `app.raml`), field for field, camelCase.
//!
//! Every field is optional here: a missing field takes Marathon's default
//! when `crate::api::convert` builds the planner's `App`, which is the only
//! place these types are read. Numbers are kept as `serde_json::Number` so
//! that a negative count or an out-of-range port is a 422 with its path, not
//! a 400. Unknown fields are accepted and ignored, as Marathon does.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

/// One app definition (`POST /v2/apps`, `PUT /v2/apps/{id}`, `GET` bodies).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppJson {
    /// `/prod/web/api`; relative ids resolve against the enclosing group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Shell command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Exec arguments (with Docker, arguments to the entrypoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Unix user; not supported yet (422 when set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Environment: `"NAME": "value"` (secrets `{"secret": ...}` are a 422 for now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, EnvJson>>,
    /// Desired instances (1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<Number>,
    /// CPUs per instance (1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Number>,
    /// Memory per instance, MB (128).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<Number>,
    /// Disk per instance, MB (0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<Number>,
    /// Whole GPUs per instance (0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<Number>,
    /// `[[field, OPERATOR, value?], ...]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Vec<Vec<String>>>,
    /// Roles whose resources instances may use (`["*"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_resource_roles: Option<Vec<String>>,
    /// The container: Docker image, port mappings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerJson>,
    /// `[{mode: host | container/bridge | container, name}]` (`[host]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<NetworkJson>>,
    /// Host-mode ports; absent means one port, `[{port: 0}]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_definitions: Option<Vec<PortDefinitionJson>>,
    /// Marathon < 1.5: host-mode ports as plain numbers; read, never written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<Number>>,
    /// Host mode: use the `port` values as host ports (false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_ports: Option<bool>,
    /// Health checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_checks: Option<Vec<HealthCheckJson>>,
    /// At most one readiness check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_checks: Option<Vec<ReadinessCheckJson>>,
    /// `{minimumHealthCapacity, maximumOverCapacity}` ({1.0, 1.0}).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_strategy: Option<UpgradeStrategyJson>,
    /// First launch delay after a failure (1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_seconds: Option<Number>,
    /// Delay multiplier per failure (1.15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_factor: Option<Number>,
    /// Delay cap (300).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_launch_delay_seconds: Option<Number>,
    /// `YOUNGEST_FIRST` or `OLDEST_FIRST`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_selection: Option<String>,
    /// `{inactiveAfterSeconds, expungeAfterSeconds}` or `"disabled"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable_strategy: Option<UnreachableStrategyJson>,
    /// SIGTERM→SIGKILL window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<Number>,
    /// Free-form labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// App ids deployed before this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Vec<String>>,
    /// Agora addition: fail a deployment step that makes no progress this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<Number>,
    /// Agora addition: roll back when the progress deadline fails a
    /// deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_deadline_rollback: Option<bool>,
    /// Read-only: ISO-8601 version timestamp, assigned by the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Read-only: `{lastScalingAt, lastConfigChangeAt}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_info: Option<VersionInfoJson>,
    /// Not supported yet (422 when not empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch: Option<Vec<Value>>,
    /// Deprecated `fetch`; not supported yet (422 when not empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uris: Option<Vec<Value>>,
    /// Not supported yet (422 when not empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, Value>>,
}

/// An `env` value: a literal or a secret reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvJson {
    /// `"value"`.
    Value(String),
    /// `{"secret": "name"}`.
    Secret {
        /// The secret's name in the app's `secrets`.
        secret: String,
    },
}

/// `container`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerJson {
    /// `DOCKER` (default) or `MESOS`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The Docker image and its options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerJson>,
    /// Container-network ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMappingJson>>,
    /// Not supported yet (422 when not empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Value>>,
}

/// `container.docker`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerJson {
    /// Image reference (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Pull even if present (false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_pull_image: Option<bool>,
    /// `[{key, value}]`: extra `docker run` flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Vec<DockerParameterJson>>,
    /// Privileged (false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Marathon < 1.5: `BRIDGE`, `HOST` or `USER`; read, never written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Marathon < 1.5: port mappings under `docker`; read, never written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMappingJson>>,
}

/// One `docker.parameters` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerParameterJson {
    /// Flag name, without dashes (`label`).
    pub key: String,
    /// Flag value.
    pub value: String,
}

/// One `container.portMappings` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMappingJson {
    /// Port inside the container (0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_port: Option<Number>,
    /// Host port (bridge: 0 = any; container: absent = none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_port: Option<Number>,
    /// Service port (0 = assign).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_port: Option<Number>,
    /// `tcp` (default), `udp` or `udp,tcp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Name (`$PORT_<NAME>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// One `portDefinitions` entry (host networking).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinitionJson {
    /// Service port (0 = assign).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<Number>,
    /// `tcp` (default), `udp` or `udp,tcp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Name (`$PORT_<NAME>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// One `networks` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkJson {
    /// `host`, `container/bridge` or `container` (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// A named container network; not supported yet (422 when set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One `healthChecks` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckJson {
    /// `HTTP` (default), `HTTPS`, `TCP`, `MESOS_HTTP`, `MESOS_HTTPS`, `MESOS_TCP`, `COMMAND`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// HTTP path (`/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Index into the app's ports (0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_index: Option<Number>,
    /// An explicit port, instead of `portIndex`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<Number>,
    /// COMMAND: `{"value": "curl -f ..."}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandJson>,
    /// 300.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<Number>,
    /// 60.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<Number>,
    /// 20.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<Number>,
    /// 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_consecutive_failures: Option<Number>,
    /// 15.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<Number>,
    /// false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_http1xx: Option<bool>,
}

/// A health check's command.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandJson {
    /// Run with `/bin/sh -c`; exit 0 is healthy.
    pub value: String,
}

/// One `readinessChecks` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheckJson {
    /// `readinessCheck`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `HTTP` (default) or `HTTPS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `http-api`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    /// 30.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<Number>,
    /// 10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<Number>,
    /// `[200]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status_codes_for_ready: Option<Vec<Number>>,
    /// false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preserve_last_response: Option<bool>,
}

/// `upgradeStrategy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategyJson {
    /// 1.0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_health_capacity: Option<Number>,
    /// 1.0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_over_capacity: Option<Number>,
}

/// `unreachableStrategy`: `"disabled"` or the two delays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UnreachableStrategyJson {
    /// `"disabled"` (any other string is a 422).
    Word(String),
    /// `{inactiveAfterSeconds, expungeAfterSeconds}`.
    Delays(UnreachableDelaysJson),
}

/// `unreachableStrategy` as an object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreachableDelaysJson {
    /// 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive_after_seconds: Option<Number>,
    /// 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expunge_after_seconds: Option<Number>,
}

/// `versionInfo` (read-only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfoJson {
    /// ISO-8601.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_scaling_at: Option<String>,
    /// ISO-8601.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_config_change_at: Option<String>,
}
