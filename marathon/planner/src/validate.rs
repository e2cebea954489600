//! Checks on an [`App`] that its types cannot express, reported as
//! Marathon's 422 `details` (a JSON path and messages per field). Constraint
//! syntax is checked earlier, by [`crate::parse_constraints`].
use std::time::Duration;

use agora_model::Scalar;

use crate::app::{App, HealthProtocol, UnreachableStrategy};
use crate::error::Violation;

/// Marathon rejects app ids ending in these (they clash with API routes).
const RESERVED_NAMES: [&str; 3] = ["restart", "tasks", "versions"];

/// Every violation in `app`, in field order; empty when valid.
pub fn validate_app(app: &App) -> Vec<Violation> {
    let mut out = Vec::new();
    check_id(app, &mut out);
    check_command(app, &mut out);
    check_resources(app, &mut out);
    check_strategies(app, &mut out);
    check_checks(app, &mut out);
    check_dependencies(app, &mut out);
    out
}

fn check_id(app: &App, out: &mut Vec<Violation>) {
    if app.id.is_root() || !app.id.is_absolute() {
        out.push(Violation::at(
            "/id",
            "Path must be absolute and not the root",
        ));
    }
    if let Some(name) = app.id.name()
        && RESERVED_NAMES.contains(&name)
    {
        out.push(Violation::at(
            "/id",
            format!("must not end with {RESERVED_NAMES:?}"),
        ));
    }
}

fn check_command(app: &App, out: &mut Vec<Violation>) {
    if app.cmd.is_some() && !app.args.is_empty() {
        out.push(Violation::at(
            "/",
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.",
        ));
    }
    if app.cmd.is_none() && app.args.is_empty() && app.docker.is_none() {
        out.push(Violation::at(
            "/",
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.",
        ));
    }
    if app.cmd.as_deref() == Some("") {
        out.push(Violation::at("/cmd", "must not be empty"));
    }
    if let Some(d) = &app.docker
        && d.image.is_empty()
    {
        out.push(Violation::at(
            "/container/docker/image",
            "must not be empty",
        ));
    }
}

fn check_resources(app: &App, out: &mut Vec<Violation>) {
    if app.resources.cpus < Scalar::from_milli(1) {
        out.push(Violation::at("/cpus", "got 0.0, expected 0.001 or more"));
    }
    for (i, p) in app.ports.iter().enumerate() {
        let name_taken = p.name.is_some() && app.ports[..i].iter().any(|q| q.name == p.name);
        if name_taken {
            out.push(Violation::at(
                format!("/portDefinitions({i})/name"),
                "Port names must be unique.",
            ));
        }
    }
}

fn check_strategies(app: &App, out: &mut Vec<Violation>) {
    let one = Scalar::from_units(1);
    let s = &app.upgrade_strategy;
    if s.minimum_health_capacity > one {
        out.push(Violation::at(
            "/upgradeStrategy/minimumHealthCapacity",
            "is greater than 1",
        ));
    }
    if s.maximum_over_capacity > one {
        out.push(Violation::at(
            "/upgradeStrategy/maximumOverCapacity",
            "is greater than 1",
        ));
    }
    if app.backoff.factor < one {
        out.push(Violation::at(
            "/backoffFactor",
            "got below 1.0, expected 1.0 or more",
        ));
    }
    if app.backoff.max_launch_delay < app.backoff.backoff {
        out.push(Violation::at(
            "/maxLaunchDelaySeconds",
            "must be at least backoffSeconds",
        ));
    }
    if let UnreachableStrategy::Enabled {
        inactive_after,
        expunge_after,
    } = app.unreachable_strategy
        && expunge_after < inactive_after
    {
        out.push(Violation::at(
            "/unreachableStrategy/expungeAfterSeconds",
            "expungeAfterSeconds must be greater than or equal to inactiveAfterSeconds",
        ));
    }
}

fn check_checks(app: &App, out: &mut Vec<Violation>) {
    let marathon_level = |p: HealthProtocol| {
        matches!(
            p,
            HealthProtocol::Http | HealthProtocol::Https | HealthProtocol::Tcp
        )
    };
    let kinds: Vec<bool> = app
        .health_checks
        .iter()
        .map(|h| marathon_level(h.protocol))
        .collect();
    if kinds.iter().any(|k| *k) && kinds.iter().any(|k| !*k) {
        out.push(Violation::at(
            "/healthChecks",
            "AppDefinition can only have one kind of health checks: Marathon-level or Mesos-level",
        ));
    }
    for (i, h) in app.health_checks.iter().enumerate() {
        if h.protocol == HealthProtocol::Command && h.command.as_deref().unwrap_or("").is_empty() {
            out.push(Violation::at(
                format!("/healthChecks({i})/command"),
                "command must be set",
            ));
        }
        if h.interval == Duration::ZERO {
            out.push(Violation::at(
                format!("/healthChecks({i})/intervalSeconds"),
                "must be positive",
            ));
        }
        if let Some(idx) = h.port_index
            && h.port.is_none()
            && !matches!(h.protocol, HealthProtocol::Command)
            && usize::try_from(idx).unwrap_or(usize::MAX) >= app.ports.len()
        {
            out.push(Violation::at(format!("/healthChecks({i})/portIndex"), "Health check port indices must address an element of the ports array or container port mappings."));
        }
    }
    if app.readiness_checks.len() > 1 {
        out.push(Violation::at(
            "/readinessChecks",
            "Only one readinessCheck is allowed",
        ));
    }
    for (i, r) in app.readiness_checks.iter().enumerate() {
        if r.timeout >= r.interval {
            out.push(Violation::at(
                format!("/readinessChecks({i})"),
                "timeoutSeconds must be less than intervalSeconds",
            ));
        }
        if !app
            .ports
            .iter()
            .any(|p| p.name.as_deref() == Some(r.port_name.as_str()))
        {
            out.push(Violation::at(
                format!("/readinessChecks({i})/portName"),
                "The portName must be defined",
            ));
        }
    }
}

fn check_dependencies(app: &App, out: &mut Vec<Violation>) {
    for (i, d) in app.dependencies.iter().enumerate() {
        if !d.is_absolute() || d.is_root() {
            out.push(Violation::at(
                format!("/dependencies({i})"),
                "must be an absolute app id",
            ));
        }
        if *d == app.id {
            out.push(Violation::at(
                format!("/dependencies({i})"),
                "an app cannot depend on itself",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{DockerContainer, HealthCheck, PortSpec, ReadinessCheck};
    use crate::ids::PathId;

    fn app() -> App {
        let mut a = App::new(PathId::parse("/prod/api").unwrap());
        a.cmd = Some("sleep 100".into());
        a
    }

    fn paths(a: &App) -> Vec<String> {
        validate_app(a).into_iter().map(|v| v.path).collect()
    }

    #[test]
    fn a_default_app_with_a_command_is_valid() {
        assert!(validate_app(&app()).is_empty());
        let mut d = app();
        d.cmd = None;
        d.docker = Some(DockerContainer {
            image: "nginx".into(),
            ..Default::default()
        });
        assert!(validate_app(&d).is_empty());
    }

    #[test]
    fn every_error_names_its_path() {
        let mut a = app();
        a.id = PathId::parse("/prod/tasks").unwrap();
        assert_eq!(paths(&a), ["/id"]);
        let mut a = app();
        a.args = vec!["x".into()];
        assert_eq!(paths(&a), ["/"]);
        let mut a = app();
        a.cmd = None;
        assert_eq!(paths(&a), ["/"]);
        let mut a = app();
        a.resources.cpus = Scalar::ZERO;
        assert_eq!(paths(&a), ["/cpus"]);
        let mut a = app();
        a.upgrade_strategy.minimum_health_capacity = Scalar::from_milli(1100);
        let v = validate_app(&a);
        assert_eq!(v[0].path, "/upgradeStrategy/minimumHealthCapacity");
        assert_eq!(v[0].errors, ["is greater than 1"]);
        let mut a = app();
        a.backoff.factor = Scalar::from_milli(900);
        assert_eq!(paths(&a), ["/backoffFactor"]);
        let mut a = app();
        a.unreachable_strategy = UnreachableStrategy::Enabled {
            inactive_after: Duration::from_secs(10),
            expunge_after: Duration::from_secs(5),
        };
        assert_eq!(paths(&a), ["/unreachableStrategy/expungeAfterSeconds"]);
        let mut a = app();
        a.dependencies = vec![a.id.clone()];
        assert_eq!(paths(&a), ["/dependencies(0)"]);
    }

    #[test]
    fn checks_are_validated() {
        let mut a = app();
        a.health_checks = vec![
            HealthCheck {
                protocol: HealthProtocol::MesosTcp,
                ..Default::default()
            },
            HealthCheck {
                protocol: HealthProtocol::Http,
                ..Default::default()
            },
        ];
        a.ports = vec![PortSpec::default()];
        assert_eq!(paths(&a), ["/healthChecks"]);
        let mut a = app();
        a.health_checks = vec![HealthCheck {
            protocol: HealthProtocol::Command,
            ..Default::default()
        }];
        assert_eq!(paths(&a), ["/healthChecks(0)/command"]);
        let mut a = app();
        a.health_checks = vec![HealthCheck::default()];
        assert_eq!(paths(&a), ["/healthChecks(0)/portIndex"]);
        let mut a = app();
        a.ports = vec![PortSpec {
            name: Some("http-api".into()),
            ..Default::default()
        }];
        a.readiness_checks = vec![ReadinessCheck {
            timeout: Duration::from_secs(30),
            ..Default::default()
        }];
        assert_eq!(paths(&a), ["/readinessChecks(0)"]);
        a.readiness_checks = vec![ReadinessCheck::default(), ReadinessCheck::default()];
        assert_eq!(paths(&a), ["/readinessChecks"]);
    }
}
