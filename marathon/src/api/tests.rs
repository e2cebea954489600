//! Table tests with Marathon's documented app definitions, every invalid
//! field with its path, malformed JSON, and property tests: render→parse
//! round trips, and no panic on any JSON.
use std::collections::BTreeMap;
use std::time::Duration;

use agora_marathon_planner::{
    App, Constraint, DockerContainer, EnvValue, HealthCheck, HealthProtocol, KillSelection,
    NetworkMode, PathId, PortSpec, ReadinessCheck, UnreachableStrategy, UpgradeStrategy, Version,
    VersionInfo, validate_app,
};
use agora_model::{Role, Scalar};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::api::convert::{app_to_json, parse_app, render_app};
use crate::api::error::ApiError;

fn parse(v: &Value) -> Result<App, ApiError> {
    parse_app(v.to_string().as_bytes(), &PathId::root())
}

fn ok(v: Value) -> App {
    match parse(&v) {
        Ok(app) => app,
        Err(e) => panic!("{v} was rejected: {}", e.body()),
    }
}

fn id(s: &str) -> PathId {
    PathId::parse(s).unwrap()
}

fn tcp(port: u16) -> PortSpec {
    PortSpec {
        port,
        protocol: "tcp".into(),
        ..Default::default()
    }
}

/// `{"id": "/a", "cmd": "x"}` plus `extra`.
fn with(extra: Value) -> Value {
    let mut v = json!({"id": "/a", "cmd": "sleep 1"});
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

#[test]
fn missing_fields_take_marathons_defaults() {
    let app = ok(json!({"id": "/a", "cmd": "sleep 1"}));
    let mut want = App::new(id("/a"));
    want.cmd = Some("sleep 1".into());
    // Marathon's normalization: host networking without portDefinitions has one port.
    want.ports = vec![tcp(0)];
    assert_eq!(app, want);
    // GET shows every default, in Marathon's shapes.
    let body = render_app(&app);
    assert_eq!(body["cpus"], json!(1));
    assert_eq!(body["mem"], json!(128));
    assert_eq!(body["disk"], json!(0));
    assert_eq!(body["gpus"], json!(0));
    assert_eq!(body["instances"], json!(1));
    assert_eq!(
        body["upgradeStrategy"],
        json!({"minimumHealthCapacity": 1, "maximumOverCapacity": 1})
    );
    assert_eq!(body["backoffSeconds"], json!(1));
    assert_eq!(body["backoffFactor"], json!(1.15));
    assert_eq!(body["maxLaunchDelaySeconds"], json!(300));
    assert_eq!(body["killSelection"], json!("YOUNGEST_FIRST"));
    assert_eq!(
        body["unreachableStrategy"],
        json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0})
    );
    assert_eq!(body["networks"], json!([{"mode": "host"}]));
    assert_eq!(
        body["portDefinitions"],
        json!([{"port": 0, "protocol": "tcp", "labels": {}}])
    );
    assert_eq!(body["acceptedResourceRoles"], json!(["*"]));
    assert_eq!(body["requirePorts"], json!(false));
    assert_eq!(body["container"], Value::Null);
    assert_eq!(body["version"], json!("1970-01-01T00:00:00.000Z"));
    // An explicit empty list means no ports.
    assert!(ok(with(json!({"portDefinitions": []}))).ports.is_empty());
}

/// Marathon's docs (native-docker.md, health-checks.md): a bridged web app.
#[test]
fn docker_app_with_bridge_port_mappings_and_a_mesos_http_check() {
    let doc = json!({
        "id": "bridged-webapp",
        "cmd": "python3 -m http.server 8080",
        "cpus": 0.5,
        "mem": 64.0,
        "instances": 2,
        "networks": [{"mode": "container/bridge"}],
        "container": {
            "type": "DOCKER",
            "docker": {"image": "python:3", "forcePullImage": true,
                       "parameters": [{"key": "label", "value": "team=web"}]},
            "portMappings": [
                {"containerPort": 8080, "hostPort": 0, "servicePort": 9000, "protocol": "tcp", "name": "http"},
                {"containerPort": 161, "protocol": "udp"}
            ]
        },
        "healthChecks": [{
            "protocol": "MESOS_HTTP",
            "path": "/",
            "portIndex": 0,
            "gracePeriodSeconds": 5,
            "intervalSeconds": 20,
            "maxConsecutiveFailures": 3
        }]
    });
    let app = ok(doc.clone());
    assert_eq!(app.id, id("/bridged-webapp"));
    assert_eq!(app.network, NetworkMode::Bridge);
    assert_eq!(app.resources.cpus, Scalar::from_milli(500));
    assert_eq!(app.resources.mem, Scalar::from_units(64));
    assert_eq!(app.instances, 2);
    assert_eq!(
        app.docker,
        Some(DockerContainer {
            image: "python:3".into(),
            force_pull_image: true,
            privileged: false,
            parameters: vec![("label".into(), "team=web".into())],
        })
    );
    assert_eq!(
        app.ports,
        vec![
            PortSpec {
                port: 8080,
                host_port: Some(0),
                service_port: 9000,
                protocol: "tcp".into(),
                name: Some("http".into()),
                labels: BTreeMap::new(),
            },
            PortSpec {
                port: 161,
                host_port: Some(0),
                protocol: "udp".into(),
                ..Default::default()
            },
        ]
    );
    assert_eq!(
        app.health_checks,
        vec![HealthCheck {
            protocol: HealthProtocol::MesosHttp,
            grace_period: Duration::from_secs(5),
            interval: Duration::from_secs(20),
            ..HealthCheck::default()
        }]
    );
    let body = render_app(&app);
    assert_eq!(body["container"]["type"], "DOCKER");
    assert_eq!(body["container"]["docker"]["image"], "python:3");
    assert_eq!(body["container"]["portMappings"][0]["servicePort"], 9000);
    assert_eq!(body["networks"], json!([{"mode": "container/bridge"}]));
    assert_eq!(body["portDefinitions"], json!([]));
    assert_eq!(body["healthChecks"][0]["protocol"], "MESOS_HTTP");
    assert_eq!(parse(&body).unwrap(), app);

    // Marathon < 1.5 wrote the same app with docker.network and docker.portMappings.
    let legacy = json!({
        "id": "bridged-webapp",
        "cmd": "python3 -m http.server 8080",
        "cpus": 0.5, "mem": 64.0, "instances": 2,
        "container": {"type": "DOCKER", "docker": {
            "image": "python:3", "forcePullImage": true,
            "parameters": [{"key": "label", "value": "team=web"}],
            "network": "BRIDGE",
            "portMappings": [
                {"containerPort": 8080, "hostPort": 0, "servicePort": 9000, "protocol": "tcp", "name": "http"},
                {"containerPort": 161, "protocol": "udp"}
            ]}},
        "healthChecks": doc["healthChecks"].clone()
    });
    assert_eq!(ok(legacy), app);
}

/// Marathon's docs (constraints.md): UNIQUE hostnames, GROUP_BY racks.
#[test]
fn cmd_apps_with_constraints() {
    let unique = ok(json!({
        "id": "sleep-unique", "cmd": "sleep 60", "instances": 3,
        "constraints": [["hostname", "UNIQUE"]]
    }));
    assert_eq!(
        unique.constraints,
        vec![Constraint::parse(&["hostname", "UNIQUE"]).unwrap()]
    );
    assert_eq!(unique.instances, 3);
    let group_by = ok(json!({
        "id": "sleep-group-by", "cmd": "sleep 60", "instances": 3,
        "constraints": [["rack_id", "GROUP_BY", "3"]]
    }));
    assert_eq!(
        group_by.constraints,
        vec![Constraint::parse(&["rack_id", "GROUP_BY", "3"]).unwrap()]
    );
    assert_eq!(
        render_app(&group_by)["constraints"],
        json!([["rack_id", "GROUP_BY", "3"]])
    );
}

/// Marathon's docs (deployments.md, blue-green-deploy.md).
#[test]
fn upgrade_strategies() {
    let bg = ok(json!({
        "id": "/product/service/my-app", "cmd": "env && sleep 300", "instances": 5,
        "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}
    }));
    assert_eq!(bg.upgrade_strategy, UpgradeStrategy::default());
    let rolling = ok(with(json!({
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2}
    })));
    assert_eq!(
        rolling.upgrade_strategy,
        UpgradeStrategy {
            minimum_health_capacity: Scalar::from_milli(500),
            maximum_over_capacity: Scalar::from_milli(200),
        }
    );
    // A partial object keeps the other default.
    let partial = ok(with(
        json!({"upgradeStrategy": {"minimumHealthCapacity": 0}}),
    ));
    assert_eq!(
        partial.upgrade_strategy.maximum_over_capacity,
        Scalar::from_units(1)
    );
}

#[test]
fn every_other_field_is_read() {
    let app = ok(json!({
        "id": "web/api", "args": ["--port", "80"],
        "container": {"docker": {"image": "nginx:1.27", "privileged": true}},
        "env": {"A": "1"}, "labels": {"HAPROXY_GROUP": "external"},
        "disk": 10, "gpus": 1, "acceptedResourceRoles": ["slave_public", "*"],
        "portDefinitions": [{"port": 10000, "name": "http-api", "labels": {"x": "y"}}],
        "requirePorts": true,
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}],
        "readinessChecks": [{"protocol": "HTTPS", "intervalSeconds": 5, "timeoutSeconds": 1,
                             "httpStatusCodesForReady": [200, 204]}],
        "backoffSeconds": 2, "backoffFactor": 2, "maxLaunchDelaySeconds": 60,
        "killSelection": "OLDEST_FIRST", "unreachableStrategy": "disabled",
        "taskKillGracePeriodSeconds": 1.5, "progressDeadlineSeconds": 600,
        "dependencies": ["../db", "/infra/cache"],
        "version": "2017-05-08T15:29:26.123Z",
        "versionInfo": {"lastScalingAt": "2017-05-08T15:29:26.123Z",
                        "lastConfigChangeAt": "2017-05-01T00:00:00.000Z"},
        "ipAddress": null, "executor": "", "someFutureField": {"x": [1]}
    }));
    let base = PathId::root();
    assert_eq!(app.id, id("/web/api"));
    assert_eq!(app.args, ["--port", "80"]);
    assert!(app.docker.as_ref().unwrap().privileged);
    assert_eq!(app.env["A"], EnvValue::Value("1".into()));
    assert_eq!(app.labels["HAPROXY_GROUP"], "external");
    assert_eq!(
        (app.resources.disk, app.resources.gpus),
        (Scalar::from_units(10), 1)
    );
    assert_eq!(
        app.accepted_resource_roles,
        vec![Role::parse("slave_public").unwrap(), Role::star()]
    );
    assert!(app.require_ports);
    assert_eq!(app.ports[0].port, 10000);
    assert_eq!(app.health_checks[0].port_index, None);
    assert_eq!(app.health_checks[0].command.as_deref(), Some("true"));
    assert!(app.readiness_checks[0].https);
    assert_eq!(
        app.readiness_checks[0].http_status_codes_for_ready,
        [200, 204]
    );
    assert_eq!(app.backoff.factor, Scalar::from_units(2));
    assert_eq!(app.backoff.max_launch_delay, Duration::from_secs(60));
    assert_eq!(app.kill_selection, KillSelection::OldestFirst);
    assert_eq!(app.unreachable_strategy, UnreachableStrategy::Disabled);
    assert_eq!(
        app.task_kill_grace_period,
        Some(Duration::from_millis(1500))
    );
    assert_eq!(app.progress_deadline, Some(Duration::from_secs(600)));
    assert_eq!(app.dependencies, vec![id("/db"), id("/infra/cache")]);
    assert_eq!(app.version, Version(1_494_257_366_123));
    assert_eq!(
        app.version_info,
        VersionInfo {
            last_scaling_at: Version(1_494_257_366_123),
            last_config_change_at: Version(1_493_596_800_000),
        }
    );
    assert_eq!(
        parse_app(render_app(&app).to_string().as_bytes(), &base).unwrap(),
        app
    );
    // Relative ids resolve against the group the request names.
    let nested = parse_app(
        br#"{"id": "api", "cmd": "x", "dependencies": ["../db"]}"#,
        &id("/prod/web"),
    )
    .unwrap();
    assert_eq!(nested.id, id("/prod/web/api"));
    assert_eq!(nested.dependencies, vec![id("/prod/db")]);
}

/// Every invalid field, alone, with the path Marathon's 422 names.
#[test]
fn every_invalid_field_names_its_path() {
    let cases: Vec<(Value, &[&str])> = vec![
        (json!({"cmd": "x"}), &["/id"]),
        (json!({"id": "/Bad_Id", "cmd": "x"}), &["/id"]),
        (json!({"id": "/a/tasks", "cmd": "x"}), &["/id"]),
        (json!({"id": "/"}), &["/id", "/"]),
        (json!({"id": "/a"}), &["/"]),
        (with(json!({"args": ["y"]})), &["/"]),
        (with(json!({"cmd": ""})), &["/cmd"]),
        (with(json!({"cpus": 0})), &["/cpus"]),
        (with(json!({"cpus": -1})), &["/cpus"]),
        (with(json!({"mem": -1})), &["/mem"]),
        (with(json!({"disk": -5})), &["/disk"]),
        (with(json!({"gpus": 1.5})), &["/gpus"]),
        (with(json!({"instances": -1})), &["/instances"]),
        (
            with(json!({"instances": 5_000_000_000_u64})),
            &["/instances"],
        ),
        (with(json!({"user": "root"})), &["/user"]),
        (
            with(json!({"env": {"DB_PASSWORD": {"secret": "db"}}})),
            &["/env/DB_PASSWORD"],
        ),
        (
            with(json!({"constraints": [["hostname", "UNIQUE"], ["rack", "MAX_PER"]]})),
            &["/constraints(1)"],
        ),
        (
            with(json!({"constraints": [["hostname"], ["rack", "NEAR"]]})),
            &["/constraints(0)", "/constraints(1)"],
        ),
        (
            with(json!({"acceptedResourceRoles": []})),
            &["/acceptedResourceRoles"],
        ),
        (
            with(json!({"acceptedResourceRoles": ["*", "a b"]})),
            &["/acceptedResourceRoles(1)"],
        ),
        (
            json!({"id": "/a", "container": {"type": "DOCKER", "docker": {}}}),
            &["/container/docker/image"],
        ),
        (
            json!({"id": "/a", "container": {"docker": {"image": ""}}}),
            &["/container/docker/image"],
        ),
        (
            with(json!({"container": {"type": "DOCKER"}})),
            &["/container/docker"],
        ),
        (
            with(json!({"container": {"type": "RKT"}})),
            &["/container/type"],
        ),
        (
            with(json!({"container": {"type": "MESOS", "docker": {"image": "x"}}})),
            &["/container/docker/image"],
        ),
        (
            with(json!({"container": {"type": "MESOS", "volumes": [{"containerPath": "/d"}]}})),
            &["/container/volumes"],
        ),
        (
            with(json!({"container": {"type": "MESOS", "docker": {"network": "OVERLAY"}}})),
            &["/container/docker/network"],
        ),
        (
            with(json!({"networks": [{"mode": "overlay"}]})),
            &["/networks(0)/mode"],
        ),
        (
            with(json!({"networks": [{"mode": "container", "name": "dcos"}]})),
            &["/networks(0)/name"],
        ),
        (
            with(json!({"networks": [{"mode": "container"}, {"mode": "container"}]})),
            &["/networks"],
        ),
        (
            with(
                json!({"networks": [{"mode": "host"}], "container": {"type": "MESOS", "docker": {"network": "BRIDGE"}}}),
            ),
            &["/container/docker/network"],
        ),
        (
            with(json!({"container": {"type": "MESOS", "portMappings": [{"containerPort": 80}]}})),
            &["/container/portMappings"],
        ),
        (
            with(
                json!({"networks": [{"mode": "container/bridge"}], "portDefinitions": [{"port": 80}]}),
            ),
            &["/portDefinitions"],
        ),
        (
            with(json!({"portDefinitions": [{"port": 70000}]})),
            &["/portDefinitions(0)/port"],
        ),
        (
            with(json!({"portDefinitions": [{"port": 80, "protocol": "sctp"}]})),
            &["/portDefinitions(0)/protocol"],
        ),
        (
            with(json!({"portDefinitions": [{"name": "a"}, {"name": "a"}]})),
            &["/portDefinitions(1)/name"],
        ),
        (
            with(
                json!({"networks": [{"mode": "container/bridge"}], "container": {"type": "MESOS", "portMappings": [{"containerPort": -1}]}}),
            ),
            &["/container/portMappings(0)/containerPort"],
        ),
        (
            with(
                json!({"networks": [{"mode": "container/bridge"}], "container": {"type": "MESOS", "portMappings": [{"hostPort": 65536}]}}),
            ),
            &["/container/portMappings(0)/hostPort"],
        ),
        (
            with(
                json!({"networks": [{"mode": "container/bridge"}], "container": {"type": "MESOS", "portMappings": [{"name": "a"}, {"name": "a"}]}}),
            ),
            &["/container/portMappings(1)/name"],
        ),
        (
            with(json!({"healthChecks": [{"protocol": "FOO"}]})),
            &["/healthChecks(0)/protocol"],
        ),
        (
            with(
                json!({"healthChecks": [{"protocol": "MESOS_TCP"}, {"protocol": "MESOS_HTTP", "portIndex": 1}]}),
            ),
            &["/healthChecks(1)/portIndex"],
        ),
        (
            with(json!({"healthChecks": [{"protocol": "COMMAND"}]})),
            &["/healthChecks(0)/command"],
        ),
        (
            with(json!({"healthChecks": [{"intervalSeconds": 0}]})),
            &["/healthChecks(0)/intervalSeconds"],
        ),
        (
            with(json!({"healthChecks": [{"gracePeriodSeconds": -1}]})),
            &["/healthChecks(0)/gracePeriodSeconds"],
        ),
        (
            with(json!({"healthChecks": [{"maxConsecutiveFailures": -3}]})),
            &["/healthChecks(0)/maxConsecutiveFailures"],
        ),
        (
            with(json!({"healthChecks": [{"port": 100000}]})),
            &["/healthChecks(0)/port"],
        ),
        (
            with(json!({"healthChecks": [{"protocol": "HTTP"}, {"protocol": "MESOS_TCP"}]})),
            &["/healthChecks"],
        ),
        (
            with(
                json!({"portDefinitions": [{"name": "http-api"}], "readinessChecks": [{"timeoutSeconds": 30}]}),
            ),
            &["/readinessChecks(0)"],
        ),
        (
            with(json!({"readinessChecks": [{}]})),
            &["/readinessChecks(0)/portName"],
        ),
        (
            with(
                json!({"portDefinitions": [{"name": "http-api"}], "readinessChecks": [{"protocol": "FTP"}]}),
            ),
            &["/readinessChecks(0)/protocol"],
        ),
        (
            with(
                json!({"portDefinitions": [{"name": "http-api"}], "readinessChecks": [{"httpStatusCodesForReady": [42]}]}),
            ),
            &["/readinessChecks(0)/httpStatusCodesForReady(0)"],
        ),
        (
            with(json!({"portDefinitions": [{"name": "http-api"}], "readinessChecks": [{}, {}]})),
            &["/readinessChecks"],
        ),
        (
            with(json!({"upgradeStrategy": {"minimumHealthCapacity": 1.1}})),
            &["/upgradeStrategy/minimumHealthCapacity"],
        ),
        (
            with(json!({"upgradeStrategy": {"maximumOverCapacity": -0.5}})),
            &["/upgradeStrategy/maximumOverCapacity"],
        ),
        (with(json!({"backoffFactor": 0.5})), &["/backoffFactor"]),
        (with(json!({"backoffSeconds": -1})), &["/backoffSeconds"]),
        (
            with(json!({"maxLaunchDelaySeconds": 0})),
            &["/maxLaunchDelaySeconds"],
        ),
        (
            with(json!({"maxLaunchDelaySeconds": 1e300})),
            &["/maxLaunchDelaySeconds"],
        ),
        (
            with(json!({"killSelection": "RANDOM"})),
            &["/killSelection"],
        ),
        (
            with(json!({"unreachableStrategy": "sometimes"})),
            &["/unreachableStrategy"],
        ),
        (
            with(
                json!({"unreachableStrategy": {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 5}}),
            ),
            &["/unreachableStrategy/expungeAfterSeconds"],
        ),
        (
            with(
                json!({"unreachableStrategy": {"inactiveAfterSeconds": -1, "expungeAfterSeconds": 5}}),
            ),
            &["/unreachableStrategy/inactiveAfterSeconds"],
        ),
        (
            with(json!({"taskKillGracePeriodSeconds": -1})),
            &["/taskKillGracePeriodSeconds"],
        ),
        (
            with(json!({"progressDeadlineSeconds": -1})),
            &["/progressDeadlineSeconds"],
        ),
        (
            with(json!({"dependencies": ["/Bad"]})),
            &["/dependencies(0)"],
        ),
        (with(json!({"dependencies": ["/a"]})), &["/dependencies(0)"]),
        (with(json!({"version": "yesterday"})), &["/version"]),
        (
            with(json!({"versionInfo": {"lastScalingAt": "2017-13-01T00:00:00Z"}})),
            &["/versionInfo/lastScalingAt"],
        ),
        (
            with(json!({"fetch": [{"uri": "https://x/y.tgz"}]})),
            &["/fetch"],
        ),
        (with(json!({"uris": ["https://x/y.tgz"]})), &["/uris"]),
        (
            with(json!({"secrets": {"db": {"source": "db/pw"}}})),
            &["/secrets"],
        ),
    ];
    let mut failures = Vec::new();
    for (body, want) in &cases {
        match parse(body) {
            Err(ApiError::Invalid(v)) => {
                let got: Vec<&str> = v.iter().map(|v| v.path.as_str()).collect();
                if got != *want {
                    failures.push(format!("{body}: got {got:?}, want {want:?}"));
                }
                assert!(
                    v.iter()
                        .all(|v| !v.errors.is_empty() && v.errors.iter().all(|e| !e.is_empty()))
                );
            }
            other => failures.push(format!("{body}: got {other:?}, want 422 {want:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_errors_come_back_at_once_as_one_422() {
    let body = json!({
        "id": "/a", "cpus": -1, "instances": -2,
        "container": {"docker": {"image": ""}},
        "constraints": [["hostname", "UNIQUE"], ["rack", "LIKE"]],
        "healthChecks": [{"protocol": "MESOS_HTTP"}, {"protocol": "MESOS_TCP", "portIndex": 4}],
        "upgradeStrategy": {"minimumHealthCapacity": 2},
        "portDefinitions": []
    });
    let err = parse(&body).unwrap_err();
    let (status, out) = err.to_response();
    assert_eq!(status, 422);
    assert_eq!(out["message"], "Object is not valid");
    let paths: Vec<&str> = out["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/instances",
            "/cpus",
            "/constraints(1)",
            "/container/docker/image",
            "/upgradeStrategy/minimumHealthCapacity",
            "/healthChecks(0)/portIndex",
            "/healthChecks(1)/portIndex",
        ]
    );
    assert_eq!(
        out["details"][1]["errors"],
        json!(["got -1, expected 0.0 or more"])
    );
    assert_eq!(out["details"][2]["errors"], json!(["Missing value"]));
}

#[test]
fn malformed_json_is_a_400_with_serdes_message() {
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "/"),
        (b"{", "/"),
        (b"{\"id\": \"/a\",}", "/"),
        (b"not json", "/"),
        (b"[1, 2]", "/"),
        (b"null", "/"),
        (b"{\"id\": 5, \"cmd\": \"x\"}", "/id"),
        (b"{\"id\": \"/a\", \"cpus\": \"lots\"}", "/cpus"),
        (
            b"{\"id\": \"/a\", \"constraints\": [[\"rack\", \"GROUP_BY\", 3]]}",
            "/constraints",
        ),
        (
            b"{\"id\": \"/a\", \"container\": {\"docker\": {\"image\": 5}}}",
            "/container",
        ),
        (b"{\"id\": \"/a\", \"env\": {\"A\": 1}}", "/env"),
        (b"{\"id\": \"/a\", \"cmd\": \"x\", \"cmd\": \"y\"}", "/"),
    ];
    for (body, want_path) in cases {
        let err = parse_app(body, &PathId::root()).unwrap_err();
        let (status, out) = err.to_response();
        let text = String::from_utf8_lossy(body);
        assert_eq!(status, 400, "{text}");
        assert_eq!(out["message"], "Invalid JSON", "{text}");
        assert_eq!(out["details"][0]["path"], want_path, "{text}");
        let message = out["details"][0]["errors"][0].as_str().unwrap();
        assert!(message.contains("line 1 column"), "{text}: {message}");
    }
}

#[test]
fn the_rendered_struct_serializes_without_nulls() {
    let app = ok(json!({"id": "/a", "cmd": "x"}));
    let text = serde_json::to_string(&app_to_json(&app)).unwrap();
    assert!(!text.contains("null"), "{text}");
}

// ---- property tests ----

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
            HealthProtocol::MesosHttps,
            HealthProtocol::MesosTcp,
            HealthProtocol::Command,
        ]
    } else {
        vec![
            HealthProtocol::Http,
            HealthProtocol::Https,
            HealthProtocol::Tcp,
        ]
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
                 params in prop::collection::vec(("[a-z]{1,5}", "[ -~]{0,5}"), 0..3))
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
        -> (UpgradeStrategy, agora_marathon_planner::BackoffPolicy, KillSelection, UnreachableStrategy, Option<Duration>, Option<Duration>) {
        (
            UpgradeStrategy { minimum_health_capacity: Scalar::from_milli(mhc), maximum_over_capacity: Scalar::from_milli(moc) },
            agora_marathon_planner::BackoffPolicy { backoff, factor: Scalar::from_milli(factor), max_launch_delay: backoff + extra },
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
                   roles in prop::sample::select(vec![vec!["*"], vec!["slave_public", "*"], vec!["prod"]]),
                   mesos in any::<bool>(), n_checks in 0..3usize, ready in any::<bool>(),
                   require_ports in any::<bool>(), tuning in tuning(),
                   deps in prop::collection::vec(path_id(), 0..3),
                   versions in (0..253_402_300_799_999u64, 0..253_402_300_799_999u64, 0..253_402_300_799_999u64))
        (checks in prop::collection::vec(health_check(ports.len(), mesos), n_checks..=n_checks),
         ready_interval in 2..100_000u64, ready_timeout in 1..1000u64, https in any::<bool>(),
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
        app in valid_app(), pick in any::<prop::sample::Index>(), new in any_json()
    ) {
        let mut v = render_app(&app);
        let mut all = Vec::new();
        pointers(&v, String::new(), &mut all);
        let at = pick.get(&all).clone();
        if at.is_empty() {
            v = new;
        } else if let Some(slot) = v.pointer_mut(&at) {
            *slot = new;
        }
        check_any_body(v.to_string().as_bytes())?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        check_any_body(&bytes)?;
    }
}
