//! Marathon v2 JSON shapes (serde, camelCase) and the version timestamps'
//! ISO-8601 form. Plain wire types: nothing here knows Marathon's defaults
//! or rules; `crate::api::convert` does.
mod app;
mod time;

pub use app::{
    AppJson, CommandJson, ContainerJson, DockerJson, DockerParameterJson, EnvJson, HealthCheckJson,
    NetworkJson, PortDefinitionJson, PortMappingJson, ReadinessCheckJson, UnreachableDelaysJson,
    UnreachableStrategyJson, UpgradeStrategyJson, VersionInfoJson,
};
pub use time::{format_version, parse_version};

/// Marathon 1.x's wire key for a task's agent id (Mesos' old word for an
/// agent). Clients parse it, so the key stays; it is the only place the
/// word appears (`tests/it/tidy.rs` allows exactly this line).
pub const AGENT_ID_KEY: &str = "slaveId";
