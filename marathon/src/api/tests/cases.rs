//! Table tests: Marathon's documented app definitions, defaults, every
//! invalid field with its path, malformed JSON.
use std::collections::BTreeMap;
use std::time::Duration;

use agora_marathon_planner::{
    App, Constraint, DockerContainer, EnvValue, HealthCheck, HealthProtocol, KillSelection,
    NetworkMode, PathId, PortSpec, UnreachableStrategy, UpgradeStrategy, Version, VersionInfo,
};
use agora_model::{Role, Scalar};
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

/// Marathon's docs (recipes.md): Docker without a `type`, with `args`, and
/// the pre-1.5 `ports` list.
#[test]
fn docker_recipes_and_legacy_ports() {
    let simple = ok(json!({
        "id": "simple-docker", "container": {"docker": {"image": "busybox"}},
        "cmd": "echo hello from docker", "cpus": 0.2, "mem": 32.0, "instances": 2
    }));
    assert_eq!(simple.docker.unwrap().image, "busybox");
    assert_eq!(simple.resources.cpus, Scalar::from_milli(200));
    let entry = ok(json!({
        "id": "simple-docker", "container": {"docker": {"image": "mesosphere/inky"}},
        "args": ["hello", "from", "docker"], "cpus": 0.2, "mem": 32.0, "instances": 2
    }));
    assert_eq!((entry.cmd, entry.args.len()), (None, 3));
    let legacy = ok(with(json!({"ports": [0, 8080]})));
    assert_eq!(legacy.ports, vec![tcp(0), tcp(8080)]);
    assert_eq!(render_app(&legacy)["ports"], Value::Null);
    assert_eq!(render_app(&legacy)["portDefinitions"][1]["port"], 8080);
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
        "disk": 10, "gpus": 1, "acceptedResourceRoles": ["agent_public", "*"],
        "portDefinitions": [{"port": 10000, "name": "http-api", "labels": {"x": "y"}}],
        "requirePorts": true,
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}],
        "readinessChecks": [{"protocol": "HTTP", "intervalSeconds": 5, "timeoutSeconds": 1,
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
        vec![Role::parse("agent_public").unwrap(), Role::star()]
    );
    assert!(app.require_ports);
    assert_eq!(app.ports[0].port, 10000);
    assert_eq!(app.health_checks[0].port_index, None);
    assert_eq!(app.health_checks[0].command.as_deref(), Some("true"));
    assert!(!app.readiness_checks[0].https);
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
            with(
                json!({"container": {"docker": {"image": "x", "parameters": [
                {"key": "label", "value": "a=b"}, {"key": "volume", "value": "/x:/y"},
                {"key": "env", "value": "NOEQUALS"}]}}}),
            ),
            &[
                "/container/docker/parameters(1)/key",
                "/container/docker/parameters(2)/value",
            ],
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
            with(json!({"ports": [80], "portDefinitions": []})),
            &["/ports"],
        ),
        (with(json!({"ports": [-80]})), &["/portDefinitions(0)/port"]),
        (
            with(json!({"networks": [{"mode": "container/bridge"}], "ports": [80]})),
            &["/ports"],
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
            &["/healthChecks(1)"],
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
            &["/healthChecks(1)"],
        ),
        (
            with(json!({"healthChecks": [{"protocol": "MESOS_HTTPS"}]})),
            &["/healthChecks(0)/protocol"],
        ),
        (
            with(
                json!({"portDefinitions": [{"name": "web"}], "readinessChecks": [{"protocol": "HTTPS", "portName": "web"}]}),
            ),
            &["/readinessChecks(0)/protocol"],
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
            // Agora's agents run one health check: the second is refused
            // (and its portIndex no longer looked at).
            "/healthChecks(1)",
            "/container/docker/image",
            "/upgradeStrategy/minimumHealthCapacity",
            "/healthChecks(0)/portIndex",
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

/// A body in the shape Marathon 1.x's GET answers (with its nulls, empty
/// lists and status fields) goes back in a PUT unchanged: clients edit
/// GET output and send it back.
#[test]
fn a_marathon_get_body_is_accepted_back() {
    let body = r#"{
        "id": "/sleep", "backoffFactor": 1.15, "backoffSeconds": 1, "cmd": "sleep 1000",
        "args": null, "user": null, "container": null, "cpus": 0.1, "disk": 0,
        "executor": "", "instances": 1, "labels": {}, "maxLaunchDelaySeconds": 300,
        "mem": 32, "gpus": 0, "networks": [{"mode": "host"}],
        "portDefinitions": [{"port": 10000, "name": "default", "protocol": "tcp"}],
        "requirePorts": false, "constraints": [], "uris": [], "fetch": [], "storeUrls": [],
        "env": {}, "healthChecks": [], "readinessChecks": [], "dependencies": [],
        "secrets": {}, "role": "*", "ipAddress": null, "residency": null,
        "taskKillGracePeriodSeconds": null,
        "upgradeStrategy": {"maximumOverCapacity": 1, "minimumHealthCapacity": 1},
        "version": "2017-10-16T12:20:48.452Z",
        "versionInfo": {"lastScalingAt": "2017-10-16T12:20:48.452Z",
                        "lastConfigChangeAt": "2017-10-16T12:20:48.452Z"},
        "killSelection": "YOUNGEST_FIRST",
        "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
        "tasksStaged": 0, "tasksRunning": 1, "tasksHealthy": 0, "tasksUnhealthy": 0,
        "deployments": [], "tasks": []
    }"#;
    let app = ok(serde_json::from_str(body).unwrap());
    assert_eq!(app.resources.mem, Scalar::from_units(32));
    assert_eq!(app.ports[0].name.as_deref(), Some("default"));
    assert_eq!(app.version, Version(1_508_156_448_452));
}

/// `instances` up to `MAX_INSTANCES_PER_APP`, no further: every instance
/// is a record the leader creates and stores in one turn of its loop.
#[test]
fn instances_are_capped_at_the_named_limit() {
    use crate::api::convert::MAX_INSTANCES_PER_APP;
    let at = ok(with(json!({"instances": MAX_INSTANCES_PER_APP})));
    assert_eq!(at.instances, MAX_INSTANCES_PER_APP);
    for over in [u64::from(MAX_INSTANCES_PER_APP) + 1, u64::from(u32::MAX)] {
        let body = parse(&with(json!({"instances": over}))).unwrap_err().body();
        assert_eq!(body["details"][0]["path"], "/instances", "{body}");
        assert_eq!(
            body["details"][0]["errors"][0],
            format!("got {over}, expected {MAX_INSTANCES_PER_APP} or less"),
        );
    }
}

/// An app id whose task ids would be too long for a task id (and, far
/// longer, for a store key) is refused.
#[test]
fn app_ids_are_capped_so_task_ids_fit() {
    use crate::api::convert::MAX_APP_ID_BYTES;
    let longest = format!("/{}", "a".repeat(MAX_APP_ID_BYTES - 1));
    let app = ok(json!({"id": longest, "cmd": "x"}));
    // A task id is the safe path, a dot and a uuid: it fits the model's.
    let task = agora_marathon_planner::InstanceId::new(&app.id, &"u".repeat(36));
    assert!(agora_model::TaskId::parse(task.as_str()).is_ok());
    for len in [MAX_APP_ID_BYTES + 1, 5_000] {
        let long = format!("/{}", "a".repeat(len - 1));
        let body = parse(&json!({"id": long, "cmd": "x"})).unwrap_err().body();
        assert_eq!(body["details"][0]["path"], "/id", "{body}");
    }
}
