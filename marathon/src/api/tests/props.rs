//! Property tests: every valid app renders and parses back to itself;
//! parsing never panics on any JSON value or byte string, and answers a
//! valid app, a 400 or a 422 with paths.
use std::collections::BTreeMap;
use std::time::Duration;

use agora_marathon_planner::{
    App, BackoffPolicy, Constraint, DockerContainer, EnvValue, HealthCheck, HealthProtocol,
    KillSelection, NetworkMode, PathId, PortSpec, ReadinessCheck, UnreachableStrategy,
    UpgradeStrategy, Version, VersionInfo, validate_app,
};
use agora_model::{Role, Scalar};
use proptest::prelude::*;
use serde_json::Value;

use crate::api::convert::{parse_app, render_app};
use crate::api::error::ApiError;

fn segment() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,4}[a-z0-9]|[a-z]"
}

fn path_id() -> impl Strategy<Value = PathId> {
    prop::collection::vec(segment(), 1..4).prop_map(|s| PathId::from_segments(&s).unwrap())
}

fn millis(max: u64) -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0..=max / 1000).prop_map(Duration::from_secs),
        (0..=max).prop_map(Duration::from_millis),
    ]
}

fn small_map(key: &'static str) -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(key, "[ -~]{0,8}", 0..3)
}

fn constraint() -> impl Strategy<Value = Constraint> {
    prop::sample::select(vec![
        vec!["hostname", "UNIQUE"],
        vec!["@hostname", "MAX_PER", "2"],
        vec!["rack_id", "GROUP_BY", "3"],
        vec!["rack_id", "GROUP_BY"],
        vec!["rack", "CLUSTER", "r1"],
        vec!["rack", "CLUSTER"],
        vec!["rack", "LIKE", "rack-[1-3]"],
        vec!["rack", "UNLIKE", "x.*|y"],
        vec!["@zone", "IS", "a"],
        vec!["@region", "UNIQUE"],
        vec!["level", "IS", "3.5"],
    ])
    .prop_map(|c| Constraint::parse(&c).unwrap())
}

fn ports(network: NetworkMode) -> impl Strategy<Value = Vec<PortSpec>> {
    let one = (
        any::<u16>(),
        prop::option::of(any::<u16>()),
        any::<u16>(),
        prop::sample::select(vec!["tcp", "udp", "udp,tcp"]),
        any::<bool>(),
        small_map("[a-z]{1,3}"),
    );
    prop::collection::vec(one, 0..4).prop_map(move |raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (port, host, service, proto, named, labels))| {
                let (host_port, service_port) = match network {
                    NetworkMode::Host => (None, 0),
                    NetworkMode::Bridge => (Some(host.unwrap_or(0)), service),
                    NetworkMode::Container => (host, service),
                };
                PortSpec {
                    port,
                    host_port,
                    service_port,
                    protocol: proto.into(),
                    name: named.then(|| format!("p{i}")),
                    labels,
                }
            })
            .collect()
    })
}

fn health_check(n_ports: usize, mesos: bool) -> impl Strategy<Value = HealthCheck> {
    let protocols = if mesos {
        vec![
            HealthProtocol::MesosHttp,
            HealthProtocol::MesosTcp,
            HealthProtocol::Command,
        ]
    } else {
        vec![HealthProtocol::Http, HealthProtocol::Tcp]
    };
    (
        prop::sample::select(protocols),
        (
            millis(600_000),
            1..600_000u64,
            millis(100_000),
            millis(100_000),
        ),
        (
            0..10u32,
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            move |(
                protocol,
                (grace, interval, timeout, delay),
                (mcf, port, by_index, also_port, ign),
            )| {
                let (port_index, port) = match protocol {
                    HealthProtocol::Command => (None, None),
                    _ if n_ports > 0 && by_index => {
                        let idx = u32::try_from(usize::from(port) % n_ports).unwrap();
                        (Some(idx), also_port.then_some(port))
                    }
                    _ => (by_index.then_some(0), Some(port)),
                };
                HealthCheck {
                    protocol,
                    grace_period: grace,
                    interval: Duration::from_millis(interval),
                    timeout,
                    max_consecutive_failures: mcf,
                    delay,
                    port_index,
                    port,
                    path: if ign { "/health".into() } else { "/".into() },
                    command: (protocol == HealthProtocol::Command).then(|| "true".into()),
                    ignore_http1xx: ign,
                }
            },
        )
}

prop_compose! {
    fn networked()(network in prop::sample::select(vec![NetworkMode::Host, NetworkMode::Bridge, NetworkMode::Container]))
        (ports in ports(network), network in Just(network)) -> (NetworkMode, Vec<PortSpec>) {
        (network, ports)
    }
}

prop_compose! {
    fn command()(kind in 0..3u8, cmd in "[ -~]{1,12}", args in prop::collection::vec("[ -~]{0,6}", 1..3),
                 image in "[a-z]{1,8}(:[0-9]{1,2})?", pull in any::<bool>(), privileged in any::<bool>(),
                 params in prop::collection::vec(("label|env|e", "[a-z]{1,3}=[ -~]{0,5}"), 0..3))
        -> (Option<String>, Vec<String>, Option<DockerContainer>) {
        let docker = DockerContainer { image, force_pull_image: pull, privileged, parameters: params };
        match kind {
            0 => (Some(cmd), Vec::new(), None),
            1 => (None, args, Some(docker)),
            _ => (Some(cmd), Vec::new(), Some(docker)),
        }
    }
}

prop_compose! {
    fn tuning()(mhc in 0..=1000i64, moc in 0..=1000i64, backoff in millis(100_000),
                factor in 1000..5000i64, extra in millis(1_000_000), kill in any::<bool>(),
                unreachable in prop::option::of((millis(1_000_000), millis(1_000_000))),
                grace in prop::option::of(millis(100_000)), deadline in prop::option::of(millis(10_000_000)))
        -> (UpgradeStrategy, BackoffPolicy, KillSelection, UnreachableStrategy, Option<Duration>, Option<Duration>) {
        (
            UpgradeStrategy { minimum_health_capacity: Scalar::from_milli(mhc), maximum_over_capacity: Scalar::from_milli(moc) },
            BackoffPolicy { backoff, factor: Scalar::from_milli(factor), max_launch_delay: backoff + extra },
            if kill { KillSelection::OldestFirst } else { KillSelection::YoungestFirst },
            match unreachable {
                None => UnreachableStrategy::Disabled,
                Some((a, b)) => UnreachableStrategy::Enabled { inactive_after: a, expunge_after: a + b },
            },
            grace,
            deadline,
        )
    }
}

prop_compose! {
    fn valid_app()(id in path_id(), (cmd, args, docker) in command(), (network, ports) in networked(),
                   cpus in 1..64_000i64, mem in 0..1_000_000_000i64, disk in 0..1_000_000i64, gpus in 0..8u32,
                   instances in 0..10_000u32, env in small_map("[A-Z_]{1,6}"), labels in small_map("[A-Za-z_]{1,6}"),
                   constraints in prop::collection::vec(constraint(), 0..3),
                   roles in prop::sample::select(vec![vec!["*"], vec!["agent_public", "*"], vec!["prod"]]),
                   mesos in any::<bool>(), n_checks in 0..2usize, ready in any::<bool>(),
                   require_ports in any::<bool>(), tuning in tuning(),
                   deps in prop::collection::vec(path_id(), 0..3),
                   versions in (0..253_402_300_799_999u64, 0..253_402_300_799_999u64, 0..253_402_300_799_999u64))
        (checks in prop::collection::vec(health_check(ports.len(), mesos), n_checks..=n_checks),
         ready_interval in 2..100_000u64, ready_timeout in 1..1000u64, https in Just(false),
         id in Just(id), cmd in Just(cmd), args in Just(args), docker in Just(docker), network in Just(network),
         ports in Just(ports), cpus in Just(cpus), mem in Just(mem), disk in Just(disk), gpus in Just(gpus),
         instances in Just(instances), env in Just(env), labels in Just(labels), constraints in Just(constraints),
         roles in Just(roles), ready in Just(ready), require_ports in Just(require_ports), tuning in Just(tuning),
         deps in Just(deps), versions in Just(versions)) -> App {
        let mut app = App::new(id);
        app.cmd = cmd;
        app.args = args;
        app.docker = docker;
        app.network = network;
        app.resources.cpus = Scalar::from_milli(cpus);
        app.resources.mem = Scalar::from_milli(mem);
        app.resources.disk = Scalar::from_milli(disk);
        app.resources.gpus = gpus;
        app.instances = instances;
        app.env = env.into_iter().map(|(k, v)| (k, EnvValue::Value(v))).collect();
        app.labels = labels;
        app.constraints = constraints;
        app.accepted_resource_roles = roles.into_iter().map(|r| Role::parse(r).unwrap()).collect();
        app.health_checks = checks;
        let port_name = ports.iter().find_map(|p| p.name.clone());
        app.ports = ports;
        if let (true, Some(port_name)) = (ready, port_name) {
            app.readiness_checks = vec![ReadinessCheck {
                https,
                port_name,
                interval: Duration::from_millis(ready_interval),
                timeout: Duration::from_millis(ready_timeout.min(ready_interval - 1)),
                http_status_codes_for_ready: vec![200, 204],
                ..ReadinessCheck::default()
            }];
        }
        app.require_ports = require_ports;
        let (upgrade, backoff, kill, unreachable, grace, deadline) = tuning;
        app.upgrade_strategy = upgrade;
        app.backoff = backoff;
        app.kill_selection = kill;
        app.unreachable_strategy = unreachable;
        app.task_kill_grace_period = grace;
        app.progress_deadline = deadline;
        app.dependencies = deps.into_iter().filter(|d| *d != app.id).collect();
        app.version = Version(versions.0);
        app.version_info = VersionInfo { last_scaling_at: Version(versions.1), last_config_change_at: Version(versions.2) };
        app
    }
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-3i64..70_000).prop_map(Value::from),
        "[ -~]{0,6}".prop_map(Value::from),
        prop::sample::select(vec![
            "UNIQUE",
            "GROUP_BY",
            "LIKE",
            "hostname",
            "DOCKER",
            "MESOS",
            "host",
            "container/bridge",
            "container",
            "MESOS_HTTP",
            "COMMAND",
            "disabled",
            "/a",
            "../b",
            "(",
            "2017-05-08T15:29:26.123Z",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(field_name(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "cmd",
            "args",
            "user",
            "env",
            "instances",
            "cpus",
            "mem",
            "disk",
            "gpus",
            "constraints",
            "acceptedResourceRoles",
            "container",
            "type",
            "docker",
            "image",
            "network",
            "portMappings",
            "containerPort",
            "hostPort",
            "servicePort",
            "volumes",
            "networks",
            "mode",
            "name",
            "ports",
            "portDefinitions",
            "port",
            "protocol",
            "labels",
            "requirePorts",
            "healthChecks",
            "portIndex",
            "command",
            "value",
            "secret",
            "intervalSeconds",
            "timeoutSeconds",
            "readinessChecks",
            "portName",
            "httpStatusCodesForReady",
            "upgradeStrategy",
            "minimumHealthCapacity",
            "maximumOverCapacity",
            "backoffSeconds",
            "backoffFactor",
            "maxLaunchDelaySeconds",
            "killSelection",
            "unreachableStrategy",
            "inactiveAfterSeconds",
            "expungeAfterSeconds",
            "taskKillGracePeriodSeconds",
            "dependencies",
            "version",
            "versionInfo",
            "fetch",
        ])
        .prop_map(String::from),
        "[a-zA-Z]{1,6}",
    ]
}

fn any_json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-2i64..3).prop_map(Value::from),
        (-2.0f64..3.0).prop_map(Value::from),
        (65_530u64..65_540).prop_map(Value::from),
    ]
}

fn any_json_text() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[ -~]{0,6}".prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "HTTP",
            "MESOS_TCP",
            "COMMAND",
            "DOCKER",
            "MESOS",
            "host",
            "container",
            "container/bridge",
            "udp",
            "sctp",
            "disabled",
            "OLDEST_FIRST",
            "/",
            "/a",
            "..",
            "/Bad",
            "UNIQUE",
            "GROUP_BY",
            "0",
            "(",
            "2017-05-08T15:29:26.123Z",
        ])
        .prop_map(Value::from),
    ]
}

/// Every JSON pointer in `v`.
fn pointers(v: &Value, here: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                pointers(child, format!("{here}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(here);
}

/// Parsing never panics; it answers a valid app, a 400 or a 422 with paths,
/// and a valid app it accepts renders back to itself.
fn check_any_body(body: &[u8]) -> Result<(), TestCaseError> {
    match parse_app(body, &PathId::root()) {
        Ok(app) => {
            prop_assert!(validate_app(&app).is_empty());
            let again = parse_app(render_app(&app).to_string().as_bytes(), &PathId::root());
            prop_assert_eq!(again, Ok(app));
        }
        Err(e @ ApiError::MalformedJson { .. }) => prop_assert_eq!(e.status(), 400),
        Err(ApiError::Invalid(v)) => {
            prop_assert!(!v.is_empty());
            prop_assert!(
                v.iter()
                    .all(|v| v.path.starts_with('/') && !v.errors.is_empty())
            );
        }
        Err(other) => prop_assert!(false, "unexpected {other:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn render_then_parse_is_the_identity(app in valid_app()) {
        prop_assume!(validate_app(&app).is_empty());
        let body = serde_json::to_vec(&render_app(&app)).unwrap();
        prop_assert_eq!(parse_app(&body, &PathId::root()), Ok(app));
    }

    #[test]
    fn arbitrary_json_never_panics(v in any_json()) {
        check_any_body(v.to_string().as_bytes())?;
    }

    #[test]
    fn arbitrary_objects_at_the_top_never_panic(
        m in prop::collection::btree_map(field_name(), any_json(), 0..8)
    ) {
        let v = Value::Object(m.into_iter().collect());
        check_any_body(v.to_string().as_bytes())?;
    }

    #[test]
    fn a_valid_app_with_one_value_replaced_never_panics(
        app in valid_app(), pick in any::<prop::sample::Index>(), new in any_json(),
        same_kind in any::<bool>(), (n, text, flag) in (any_json_number(), any_json_text(), any::<bool>())
    ) {
        let mut v = render_app(&app);
        let mut all = Vec::new();
        pointers(&v, String::new(), &mut all);
        let at = pick.get(&all).clone();
        if let Some(slot) = v.pointer_mut(&at) {
            // Half the time a value of the same JSON type, to get past serde.
            *slot = match (&*slot, same_kind) {
                (Value::Number(_), true) => n,
                (Value::String(_), true) => text,
                (Value::Bool(_), true) => Value::from(flag),
                (Value::Array(_), true) => Value::Array(Vec::new()),
                _ => new,
            };
        }
        check_any_body(v.to_string().as_bytes())?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        check_any_body(&bytes)?;
    }
}
