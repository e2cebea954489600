//! Planner [`App`] → Marathon v2 JSON, as GET bodies show it: every field,
//! defaults included; whole numbers as integers (`"mem": 128`), versions as
//! ISO-8601. Never writes Marathon < 1.5's `docker.network`.
use std::collections::BTreeMap;
use std::time::Duration;

use agora_marathon_planner::{
    App, Constraint, EnvValue, HealthCheck, HealthProtocol, KillSelection, NetworkMode, Operator,
    PathId, ReadinessCheck, UnreachableStrategy,
};
use agora_model::Scalar;
use serde_json::{Number, Value};

use crate::api::json::{
    AppJson, CommandJson, ContainerJson, DockerJson, DockerParameterJson, EnvJson, HealthCheckJson,
    NetworkJson, PortDefinitionJson, PortMappingJson, ReadinessCheckJson, UnreachableDelaysJson,
    UnreachableStrategyJson, UpgradeStrategyJson, VersionInfoJson, format_version,
};

fn health_protocol_word(p: HealthProtocol) -> &'static str {
    match p {
        HealthProtocol::Http => "HTTP",
        HealthProtocol::Https => "HTTPS",
        HealthProtocol::Tcp => "TCP",
        HealthProtocol::MesosHttp => "MESOS_HTTP",
        HealthProtocol::MesosHttps => "MESOS_HTTPS",
        HealthProtocol::MesosTcp => "MESOS_TCP",
        HealthProtocol::Command => "COMMAND",
    }
}

/// Whole scalars as integers (`128`), others as decimals (`0.25`).
fn scalar_number(s: Scalar) -> Number {
    if s.is_whole() {
        Number::from(s.milli() / 1000)
    } else {
        Number::from_f64(s.as_f64()).unwrap_or_else(|| Number::from(0))
    }
}

/// Whole seconds as integers, others with milliseconds.
fn seconds_number(d: Duration) -> Number {
    if d.subsec_nanos() == 0 {
        Number::from(d.as_secs())
    } else {
        Number::from_f64(d.as_millis() as f64 / 1000.0).unwrap_or_else(|| Number::from(0))
    }
}

/// `[field, OPERATOR, value?]`, as `parse_constraints` reads it.
fn constraint_json(c: &Constraint) -> Vec<String> {
    let field = c.field.to_string();
    let (op, value) = match &c.op {
        Operator::Unique => ("UNIQUE", None),
        Operator::Cluster(v) => ("CLUSTER", v.clone()),
        Operator::GroupBy(g) => ("GROUP_BY", g.map(|g| g.to_string())),
        Operator::Like(r) => ("LIKE", Some(r.as_str().to_string())),
        Operator::Unlike(r) => ("UNLIKE", Some(r.as_str().to_string())),
        Operator::MaxPer(n) => ("MAX_PER", Some(n.to_string())),
        Operator::Is(v) => ("IS", Some(v.clone())),
    };
    let mut out = vec![field, op.to_string()];
    out.extend(value);
    out
}

/// Renders an app as Marathon's GET bodies show it: every field, defaults
/// included.
pub fn app_to_json(app: &App) -> AppJson {
    let host = app.network == NetworkMode::Host;
    let mode = match app.network {
        NetworkMode::Host => "host",
        NetworkMode::Bridge => "container/bridge",
        NetworkMode::Container => "container",
    };
    AppJson {
        id: Some(app.id.to_string()),
        cmd: app.cmd.clone(),
        args: Some(app.args.clone()),
        user: None,
        env: Some(env_json(app)),
        instances: Some(Number::from(app.instances)),
        cpus: Some(scalar_number(app.resources.cpus)),
        mem: Some(scalar_number(app.resources.mem)),
        disk: Some(scalar_number(app.resources.disk)),
        gpus: Some(Number::from(app.resources.gpus)),
        constraints: Some(app.constraints.iter().map(constraint_json).collect()),
        accepted_resource_roles: Some(
            app.accepted_resource_roles
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
        ),
        container: container_json(app),
        networks: Some(vec![NetworkJson {
            mode: Some(mode.into()),
            name: None,
        }]),
        ports: None,
        port_definitions: Some(if host {
            port_definitions(app)
        } else {
            Vec::new()
        }),
        require_ports: Some(app.require_ports),
        health_checks: Some(app.health_checks.iter().map(health_check_json).collect()),
        readiness_checks: Some(
            app.readiness_checks
                .iter()
                .map(readiness_check_json)
                .collect(),
        ),
        upgrade_strategy: Some(UpgradeStrategyJson {
            minimum_health_capacity: Some(scalar_number(
                app.upgrade_strategy.minimum_health_capacity,
            )),
            maximum_over_capacity: Some(scalar_number(app.upgrade_strategy.maximum_over_capacity)),
        }),
        backoff_seconds: Some(seconds_number(app.backoff.backoff)),
        backoff_factor: Some(scalar_number(app.backoff.factor)),
        max_launch_delay_seconds: Some(seconds_number(app.backoff.max_launch_delay)),
        kill_selection: Some(
            match app.kill_selection {
                KillSelection::YoungestFirst => "YOUNGEST_FIRST",
                KillSelection::OldestFirst => "OLDEST_FIRST",
            }
            .into(),
        ),
        unreachable_strategy: Some(unreachable_json(app.unreachable_strategy)),
        task_kill_grace_period_seconds: app.task_kill_grace_period.map(seconds_number),
        labels: Some(app.labels.clone()),
        dependencies: Some(app.dependencies.iter().map(PathId::to_string).collect()),
        progress_deadline_seconds: app.progress_deadline.map(seconds_number),
        progress_deadline_rollback: app.rollback_on_deadline.then_some(true),
        version: Some(format_version(app.version)),
        version_info: Some(VersionInfoJson {
            last_scaling_at: Some(format_version(app.version_info.last_scaling_at)),
            last_config_change_at: Some(format_version(app.version_info.last_config_change_at)),
        }),
        fetch: None,
        uris: None,
        secrets: None,
    }
}

/// [`app_to_json`] as a JSON value (a GET body).
pub fn render_app(app: &App) -> Value {
    serde_json::to_value(app_to_json(app)).unwrap_or(Value::Null)
}

fn health_check_json(h: &HealthCheck) -> HealthCheckJson {
    HealthCheckJson {
        protocol: Some(health_protocol_word(h.protocol).into()),
        path: Some(h.path.clone()),
        port_index: h.port_index.map(Number::from),
        port: h.port.map(Number::from),
        command: h.command.as_ref().map(|value| CommandJson {
            value: value.clone(),
        }),
        grace_period_seconds: Some(seconds_number(h.grace_period)),
        interval_seconds: Some(seconds_number(h.interval)),
        timeout_seconds: Some(seconds_number(h.timeout)),
        max_consecutive_failures: Some(Number::from(h.max_consecutive_failures)),
        delay_seconds: Some(seconds_number(h.delay)),
        ignore_http1xx: Some(h.ignore_http1xx),
    }
}

fn readiness_check_json(r: &ReadinessCheck) -> ReadinessCheckJson {
    ReadinessCheckJson {
        name: Some(r.name.clone()),
        protocol: Some(if r.https { "HTTPS" } else { "HTTP" }.into()),
        path: Some(r.path.clone()),
        port_name: Some(r.port_name.clone()),
        interval_seconds: Some(seconds_number(r.interval)),
        timeout_seconds: Some(seconds_number(r.timeout)),
        http_status_codes_for_ready: Some(
            r.http_status_codes_for_ready
                .iter()
                .map(|c| Number::from(*c))
                .collect(),
        ),
        preserve_last_response: Some(r.preserve_last_response),
    }
}

fn env_json(app: &App) -> BTreeMap<String, EnvJson> {
    app.env
        .iter()
        .map(|(k, v)| {
            let v = match v {
                EnvValue::Value(s) => EnvJson::Value(s.clone()),
                EnvValue::Secret(s) => EnvJson::Secret { secret: s.clone() },
            };
            (k.clone(), v)
        })
        .collect()
}

fn port_definitions(app: &App) -> Vec<PortDefinitionJson> {
    app.ports
        .iter()
        .map(|p| PortDefinitionJson {
            port: Some(Number::from(p.port)),
            protocol: Some(p.protocol.clone()),
            name: p.name.clone(),
            labels: Some(p.labels.clone()),
        })
        .collect()
}

fn port_mappings(app: &App) -> Vec<PortMappingJson> {
    app.ports
        .iter()
        .map(|p| PortMappingJson {
            container_port: Some(Number::from(p.port)),
            host_port: p.host_port.map(Number::from),
            service_port: Some(Number::from(p.service_port)),
            protocol: Some(p.protocol.clone()),
            name: p.name.clone(),
            labels: Some(p.labels.clone()),
        })
        .collect()
}

/// `container`: DOCKER with the image; MESOS (no image) when only the
/// port mappings of a container network need a place; none otherwise.
fn container_json(app: &App) -> Option<ContainerJson> {
    let host = app.network == NetworkMode::Host;
    if app.docker.is_none() && host {
        return None;
    }
    Some(ContainerJson {
        kind: Some(
            if app.docker.is_some() {
                "DOCKER"
            } else {
                "MESOS"
            }
            .into(),
        ),
        docker: app.docker.as_ref().map(|d| DockerJson {
            image: Some(d.image.clone()),
            force_pull_image: Some(d.force_pull_image),
            parameters: Some(
                d.parameters
                    .iter()
                    .map(|(key, value)| DockerParameterJson {
                        key: key.clone(),
                        value: value.clone(),
                    })
                    .collect(),
            ),
            privileged: Some(d.privileged),
            network: None,
            port_mappings: None,
        }),
        port_mappings: (!host).then(|| port_mappings(app)),
        volumes: Some(Vec::new()),
    })
}

fn unreachable_json(s: UnreachableStrategy) -> UnreachableStrategyJson {
    match s {
        UnreachableStrategy::Disabled => UnreachableStrategyJson::Word("disabled".into()),
        UnreachableStrategy::Enabled {
            inactive_after,
            expunge_after,
        } => UnreachableStrategyJson::Delays(UnreachableDelaysJson {
            inactive_after_seconds: Some(seconds_number(inactive_after)),
            expunge_after_seconds: Some(seconds_number(expunge_after)),
        }),
    }
}
