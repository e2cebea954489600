//! Marathon v2 JSON ↔ the planner's [`App`], in one place.
//!
//! [`parse_app`] reads a request body: not JSON, or a field of the wrong
//! JSON type, is a 400 ([`ApiError::MalformedJson`]); otherwise every field
//! is converted with Marathon 1.x's defaults (the planner's `App::new`,
//! `HealthCheck::default`, ...) and every problem is collected, conversion
//! problems (ranges, enums, unsupported features) first, then the planner's
//! [`validate_app`] rules, as one 422 ([`ApiError::Invalid`]) with
//! Marathon's paths (`/container/docker/image`, `/constraints(0)`,
//! `/healthChecks(1)/portIndex`). [`app_to_json`] renders an app for GET
//! bodies; `parse(render(app)) == app` for every valid app.
//!
//! Defaults the planner does not hold: a host-mode app without
//! `portDefinitions` gets one port, `[{"port": 0}]` (Marathon's
//! normalization); a bridge port mapping without `hostPort` gets host port
//! 0 (any), a `container`-network one none; a health check without
//! `portIndex` uses index 0 unless it names a `port` or is a COMMAND check.
//! Marathon < 1.5's `container.docker.network`,
//! `container.docker.portMappings` and `ports` are read (never written).
use std::time::Duration;

use agora_marathon_planner::{
    App, DockerContainer, EnvValue, HealthCheck, HealthProtocol, KillSelection, NetworkMode,
    PathId, PortSpec, ReadinessCheck, UnreachableStrategy, Version, VersionInfo, Violation,
    parse_constraints, validate_app,
};
use agora_model::{Role, Scalar};
use serde_json::{Number, Value};

use crate::api::error::ApiError;

mod render;

use crate::api::json::{
    AppJson, ContainerJson, DockerJson, EnvJson, HealthCheckJson, NetworkJson, PortDefinitionJson,
    PortMappingJson, ReadinessCheckJson, UnreachableDelaysJson, UnreachableStrategyJson,
    parse_version,
};
pub use render::{app_to_json, render_app};

/// Longest duration accepted, in seconds (about 31,700 years).
const MAX_SECONDS: f64 = 1e12;

/// Most instances one app may ask for. The leader creates every instance
/// of a scale-up as a record in one turn of its event loop, and stores each
/// (one key) before it answers, so an unbounded count (`u32::MAX`) runs
/// every leader out of memory. 10,000 keeps one scale-up within about 80
/// etcd transactions and a few MB in the loop, and is five times the largest
/// single app Marathon's own scale tests run (2,000; mesos-marathon.md §3);
/// a bigger fleet is several apps.
pub const MAX_INSTANCES_PER_APP: u32 = 10_000;

/// Longest app id accepted, in bytes. A task id is the app id's safe path
/// (the id without its leading `/`, `_` for `/`), a dot and a 36-byte uuid,
/// and task ids are at most `agora_model::ids::MAX_ID_LEN` (255) bytes: a
/// longer app id could never launch, and a far longer one does not fit in a
/// store key (a refused write ends the leadership).
pub const MAX_APP_ID_BYTES: usize = agora_model::ids::MAX_ID_LEN - 36;

/// `docker run` flags Agora's agents apply (as container labels and
/// environment); any other is refused with a 422 rather than ignored.
pub const SUPPORTED_DOCKER_PARAMETERS: [&str; 3] = ["label", "env", "e"];

/// Reads an app definition from a request body; relative ids (the app's
/// and, against the app's group, its dependencies') resolve against `base`.
pub fn parse_app(body: &[u8], base: &PathId) -> Result<App, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson {
        path: "/".into(),
        message: e.to_string(),
    })?;
    let json: AppJson = serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson {
        path: wrong_type_path(&value),
        message: e.to_string(),
    })?;
    app_from_json(&json, base).map_err(ApiError::Invalid)
}

/// The top-level field whose JSON type is wrong, found by reading each
/// field alone; `/` when the body is not an object or no single field fails.
fn wrong_type_path(value: &Value) -> String {
    let Value::Object(map) = value else {
        return "/".into();
    };
    for (key, v) in map {
        let mut one = serde_json::Map::new();
        one.insert(key.clone(), v.clone());
        if serde_json::from_value::<AppJson>(Value::Object(one)).is_err() {
            return format!("/{key}");
        }
    }
    "/".into()
}

/// Converts wire JSON to a validated [`App`], or every violation found.
pub fn app_from_json(json: &AppJson, base: &PathId) -> Result<App, Vec<Violation>> {
    convert(json, base, Limits::Request)
}

/// Converts a stored definition: as [`app_from_json`], without the limits
/// on new requests ([`MAX_INSTANCES_PER_APP`], [`MAX_APP_ID_BYTES`]), so a
/// limit added by a later release never makes a store unreadable (a leader
/// that cannot load resigns, and so would every other).
pub(crate) fn stored_app_from_json(json: &AppJson, base: &PathId) -> Result<App, Vec<Violation>> {
    convert(json, base, Limits::Stored)
}

/// Which limits a conversion applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Limits {
    /// A request's: every rule.
    #[default]
    Request,
    /// A stored record's: the request-only limits are skipped.
    Stored,
}

fn convert(json: &AppJson, base: &PathId, limits: Limits) -> Result<App, Vec<Violation>> {
    let mut cx = Cx {
        limits,
        ..Cx::default()
    };
    let id = cx.app_id(json.id.as_deref(), base);
    let mut app = App::new(id);
    cx.command(json, &mut app);
    cx.resources(json, &mut app);
    cx.networking(json, &mut app);
    cx.checks(json, &mut app);
    cx.strategies(json, &mut app);
    cx.metadata(json, &mut app);
    cx.unsupported(json);
    let mut errors = cx.errors;
    let from_json: Vec<String> = errors.iter().map(|v| v.path.clone()).collect();
    for mut v in validate_app(&app) {
        if app.network != NetworkMode::Host
            && let Some(rest) = v.path.strip_prefix("/portDefinitions(")
        {
            v.path = format!("/container/portMappings({rest}");
        }
        let related = |p: &String| p.starts_with(&v.path) || v.path.starts_with(p.as_str());
        if !from_json.iter().any(related) {
            errors.push(v);
        }
    }
    if errors.is_empty() {
        Ok(app)
    } else {
        Err(errors)
    }
}

/// Collects violations while the fields are converted.
#[derive(Default)]
struct Cx {
    errors: Vec<Violation>,
    limits: Limits,
}

impl Cx {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Violation::at(path, message));
    }

    /// The app's id, resolved against `base`; the root when it is missing
    /// or invalid (with the violation recorded).
    fn app_id(&mut self, text: Option<&str>, base: &PathId) -> PathId {
        let Some(text) = text else {
            self.err("/id", "is required");
            return PathId::root();
        };
        let id = PathId::parse_in(text, base).unwrap_or_else(|e| {
            self.err("/id", e.to_string());
            PathId::root()
        });
        let len = id.to_string().len();
        if self.limits == Limits::Request && len > MAX_APP_ID_BYTES {
            self.err(
                "/id",
                format!("is {len} bytes long, expected {MAX_APP_ID_BYTES} or less"),
            );
        }
        id
    }

    /// `instances`: at most [`MAX_INSTANCES_PER_APP`] in a request.
    fn instances(&mut self, n: Option<&Number>, default: u32) -> u32 {
        let max = match self.limits {
            Limits::Request => MAX_INSTANCES_PER_APP,
            Limits::Stored => u32::MAX,
        };
        let v = self.uint(n, "/instances", u64::from(default), u64::from(max));
        u32::try_from(v).unwrap_or(default)
    }

    /// A whole number in `0..=max`, or `default` when absent.
    fn uint(&mut self, n: Option<&Number>, path: &str, default: u64, max: u64) -> u64 {
        let Some(n) = n else { return default };
        let whole = n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        });
        match whole {
            Some(v) if v <= max => v,
            Some(_) => self.then(default, path, format!("got {n}, expected {max} or less")),
            None if n.as_f64().is_some_and(|f| f < 0.0) => {
                self.then(default, path, format!("got {n}, expected 0 or more"))
            }
            None => self.then(default, path, format!("got {n}, expected an integer")),
        }
    }

    fn u32(&mut self, n: Option<&Number>, path: &str, default: u32) -> u32 {
        let v = self.uint(n, path, u64::from(default), u64::from(u32::MAX));
        u32::try_from(v).unwrap_or(default)
    }

    fn port(&mut self, n: Option<&Number>, path: &str, default: u16) -> u16 {
        let v = self.uint(n, path, u64::from(default), u64::from(u16::MAX));
        u16::try_from(v).unwrap_or(default)
    }

    fn then<T>(&mut self, value: T, path: &str, message: String) -> T {
        self.err(path, message);
        value
    }

    /// A non-negative decimal at three decimals, or `default` when absent.
    fn scalar(&mut self, n: Option<&Number>, path: &str, default: Scalar) -> Scalar {
        let Some(n) = n else { return default };
        let f = n.as_f64().unwrap_or(f64::NAN);
        if f < 0.0 {
            return self.then(default, path, format!("got {n}, expected 0.0 or more"));
        }
        match Scalar::from_f64(f) {
            Ok(s) => s,
            Err(_) => self.then(default, path, format!("got {n}, expected a smaller number")),
        }
    }

    /// Seconds (fractions kept to the millisecond), or `default` when absent.
    fn seconds(&mut self, n: Option<&Number>, path: &str, default: Duration) -> Duration {
        let Some(n) = n else { return default };
        match n.as_f64() {
            Some(f) if f < 0.0 => self.then(default, path, format!("got {n}, expected 0 or more")),
            Some(f) if f <= MAX_SECONDS => Duration::from_millis((f * 1000.0).round() as u64),
            _ => self.then(
                default,
                path,
                format!("got {n}, expected {MAX_SECONDS} or less"),
            ),
        }
    }

    fn version(&mut self, text: Option<&str>, path: &str) -> Version {
        let Some(text) = text else {
            return Version::default();
        };
        parse_version(text).unwrap_or_else(|| {
            self.then(
                Version::default(),
                path,
                format!("{text:?} is not an ISO-8601 timestamp (2017-05-08T15:29:26.123Z)"),
            )
        })
    }

    fn command(&mut self, json: &AppJson, app: &mut App) {
        app.cmd = json.cmd.clone();
        app.args = json.args.clone().unwrap_or_default();
        if json.user.as_deref().is_some_and(|u| !u.is_empty()) {
            self.err(
                "/user",
                "is not supported yet: instances run as the agent's user",
            );
        }
        for (name, value) in json.env.iter().flatten() {
            match value {
                EnvJson::Value(v) => {
                    app.env.insert(name.clone(), EnvValue::Value(v.clone()));
                }
                EnvJson::Secret { .. } => {
                    self.err(format!("/env/{name}"), "secrets are not supported yet")
                }
            }
        }
    }

    fn resources(&mut self, json: &AppJson, app: &mut App) {
        let r = &mut app.resources;
        app.instances = self.instances(json.instances.as_ref(), app.instances);
        r.cpus = self.scalar(json.cpus.as_ref(), "/cpus", r.cpus);
        r.mem = self.scalar(json.mem.as_ref(), "/mem", r.mem);
        r.disk = self.scalar(json.disk.as_ref(), "/disk", r.disk);
        r.gpus = self.u32(json.gpus.as_ref(), "/gpus", r.gpus);
        if let Some(raw) = &json.constraints {
            match parse_constraints(raw) {
                Ok(c) => app.constraints = c,
                Err(v) => self.errors.extend(v),
            }
        }
        if let Some(roles) = &json.accepted_resource_roles {
            if roles.is_empty() {
                self.err("/acceptedResourceRoles", "must not be empty");
            }
            let mut parsed = Vec::new();
            for (i, r) in roles.iter().enumerate() {
                match Role::parse(r.as_str()) {
                    Ok(role) => parsed.push(role),
                    Err(e) => self.err(format!("/acceptedResourceRoles({i})"), e.to_string()),
                }
            }
            if !parsed.is_empty() {
                app.accepted_resource_roles = parsed;
            }
        }
    }

    fn networking(&mut self, json: &AppJson, app: &mut App) {
        let container = json.container.clone().unwrap_or_default();
        let docker = container.docker.clone();
        let legacy = docker.as_ref().and_then(|d| d.network.as_deref());
        let networks = json.networks.as_deref().unwrap_or_default();
        app.network = match (networks, legacy) {
            ([], None) => NetworkMode::Host,
            ([], Some(word)) => self.legacy_network(word),
            ([n], None) => self.network(n),
            (_, Some(_)) => self.then(
                NetworkMode::Host,
                "/container/docker/network",
                "must not be set together with networks".into(),
            ),
            (_, None) => self.then(
                NetworkMode::Host,
                "/networks",
                "only one network per app is supported".into(),
            ),
        };
        self.container(&container, app);
        app.require_ports = json.require_ports.unwrap_or(false);
        let (mappings, mappings_path) = match (&container.port_mappings, &docker) {
            (Some(m), _) => (m.clone(), "/container/portMappings"),
            (
                None,
                Some(DockerJson {
                    port_mappings: Some(m),
                    ..
                }),
            ) => (m.clone(), "/container/docker/portMappings"),
            _ => (Vec::new(), "/container/portMappings"),
        };
        if app.network == NetworkMode::Host {
            if !mappings.is_empty() {
                self.err(
                    mappings_path,
                    "port mappings need container or container/bridge networking",
                );
            }
            app.ports = self.port_definitions(json);
        } else {
            let legacy = json.ports.as_ref().is_some_and(|p| !p.is_empty());
            if legacy
                || json
                    .port_definitions
                    .as_ref()
                    .is_some_and(|d| !d.is_empty())
            {
                self.err(
                    if legacy { "/ports" } else { "/portDefinitions" },
                    "must be empty unless networking is host",
                );
            }
            let bridge = app.network == NetworkMode::Bridge;
            app.ports = mappings
                .iter()
                .enumerate()
                .map(|(i, m)| self.port_mapping(m, &format!("{mappings_path}({i})"), bridge))
                .collect();
        }
    }

    /// Host-mode ports: `portDefinitions`, else Marathon < 1.5's `ports`,
    /// else one port (`[{"port": 0}]`, Marathon's normalization).
    fn port_definitions(&mut self, json: &AppJson) -> Vec<PortSpec> {
        let legacy: Option<Vec<PortDefinitionJson>> = json.ports.as_ref().map(|ports| {
            let one = |n: &Number| PortDefinitionJson {
                port: Some(n.clone()),
                ..Default::default()
            };
            ports.iter().map(one).collect()
        });
        if legacy.is_some() && json.port_definitions.is_some() {
            self.err("/ports", "must not be set together with portDefinitions");
        }
        let default = vec![PortDefinitionJson::default()];
        let defs = json
            .port_definitions
            .as_ref()
            .or(legacy.as_ref())
            .unwrap_or(&default);
        defs.iter()
            .enumerate()
            .map(|(i, d)| self.port_definition(d, &format!("/portDefinitions({i})")))
            .collect()
    }

    fn legacy_network(&mut self, word: &str) -> NetworkMode {
        match word {
            "HOST" => NetworkMode::Host,
            "BRIDGE" => NetworkMode::Bridge,
            "USER" => NetworkMode::Container,
            _ => self.then(
                NetworkMode::Host,
                "/container/docker/network",
                "must be one of HOST, BRIDGE, USER".into(),
            ),
        }
    }

    fn network(&mut self, n: &NetworkJson) -> NetworkMode {
        if n.name.is_some() {
            self.err("/networks(0)/name", "named networks are not supported yet");
        }
        match n.mode.as_deref().unwrap_or("container") {
            "host" => NetworkMode::Host,
            "container/bridge" => NetworkMode::Bridge,
            "container" => NetworkMode::Container,
            _ => self.then(
                NetworkMode::Host,
                "/networks(0)/mode",
                "must be one of host, container/bridge, container".into(),
            ),
        }
    }

    fn container(&mut self, c: &ContainerJson, app: &mut App) {
        if c.volumes.as_ref().is_some_and(|v| !v.is_empty()) {
            self.err("/container/volumes", "volumes are not supported yet");
        }
        // An absent `container` reads as the default one: no image.
        match (c.kind.as_deref().unwrap_or("DOCKER"), c.docker.as_ref()) {
            ("DOCKER", Some(d)) => {
                for (i, p) in d.parameters.iter().flatten().enumerate() {
                    if !SUPPORTED_DOCKER_PARAMETERS.contains(&p.key.as_str()) {
                        self.err(
                            format!("/container/docker/parameters({i})/key"),
                            format!(
                                "{:?} is not supported yet; supported: {}",
                                p.key,
                                SUPPORTED_DOCKER_PARAMETERS.join(", ")
                            ),
                        );
                    } else if !p.value.contains('=') {
                        self.err(
                            format!("/container/docker/parameters({i})/value"),
                            "must be KEY=VALUE",
                        );
                    }
                }
                app.docker = Some(DockerContainer {
                    image: d.image.clone().unwrap_or_default(),
                    force_pull_image: d.force_pull_image.unwrap_or(false),
                    privileged: d.privileged.unwrap_or(false),
                    parameters: d
                        .parameters
                        .iter()
                        .flatten()
                        .map(|p| (p.key.clone(), p.value.clone()))
                        .collect(),
                });
            }
            ("DOCKER", None) if c != &ContainerJson::default() => {
                self.err("/container/docker", "must be set for a DOCKER container")
            }
            ("DOCKER", None) => {}
            ("MESOS", Some(d)) if d.image.is_some() => self.err(
                "/container/docker/image",
                "images are run by DOCKER containers only, for now",
            ),
            ("MESOS", _) => {}
            _ => self.err("/container/type", "must be one of DOCKER, MESOS"),
        }
    }

    fn protocol(&mut self, p: Option<&str>, path: &str) -> String {
        match p.unwrap_or("tcp") {
            ok @ ("tcp" | "udp" | "udp,tcp" | "tcp,udp") => ok.to_string(),
            _ => self.then(
                "tcp".into(),
                &format!("{path}/protocol"),
                "must be one of tcp, udp, udp,tcp".into(),
            ),
        }
    }

    fn port_definition(&mut self, d: &PortDefinitionJson, path: &str) -> PortSpec {
        PortSpec {
            port: self.port(d.port.as_ref(), &format!("{path}/port"), 0),
            host_port: None,
            service_port: 0,
            protocol: self.protocol(d.protocol.as_deref(), path),
            name: d.name.clone(),
            labels: d.labels.clone().unwrap_or_default(),
        }
    }

    fn port_mapping(&mut self, m: &PortMappingJson, path: &str, bridge: bool) -> PortSpec {
        let host_port = match &m.host_port {
            None if bridge => Some(0),
            None => None,
            Some(n) => Some(self.port(Some(n), &format!("{path}/hostPort"), 0)),
        };
        PortSpec {
            port: self.port(
                m.container_port.as_ref(),
                &format!("{path}/containerPort"),
                0,
            ),
            host_port,
            service_port: self.port(m.service_port.as_ref(), &format!("{path}/servicePort"), 0),
            protocol: self.protocol(m.protocol.as_deref(), path),
            name: m.name.clone(),
            labels: m.labels.clone().unwrap_or_default(),
        }
    }

    fn checks(&mut self, json: &AppJson, app: &mut App) {
        for (i, h) in json.health_checks.iter().flatten().enumerate() {
            let path = format!("/healthChecks({i})");
            let hc = self.health_check(h, &path);
            // What Agora's agents cannot run is refused, never dropped.
            if i > 0 {
                self.err(
                    &path,
                    "Agora's agents run one health check per task; more are not supported yet",
                );
            }
            if matches!(
                hc.protocol,
                HealthProtocol::Https | HealthProtocol::MesosHttps
            ) {
                self.err(
                    format!("{path}/protocol"),
                    "HTTPS health checks are not supported yet",
                );
            }
            app.health_checks.push(hc);
        }
        for (i, r) in json.readiness_checks.iter().flatten().enumerate() {
            let path = format!("/readinessChecks({i})");
            let rc = self.readiness_check(r, &path);
            if rc.https {
                self.err(
                    format!("{path}/protocol"),
                    "HTTPS readiness checks are not supported yet",
                );
            }
            app.readiness_checks.push(rc);
        }
    }

    fn health_check(&mut self, h: &HealthCheckJson, path: &str) -> HealthCheck {
        let d = HealthCheck::default();
        let protocol = match h.protocol.as_deref() {
            None => d.protocol,
            Some(word) => health_protocol(word).unwrap_or_else(|| {
                self.then(
                    d.protocol,
                    &format!("{path}/protocol"),
                    "must be one of HTTP, HTTPS, TCP, MESOS_HTTP, MESOS_HTTPS, MESOS_TCP, COMMAND"
                        .into(),
                )
            }),
        };
        let port = h
            .port
            .as_ref()
            .map(|n| self.port(Some(n), &format!("{path}/port"), 0));
        let port_index = match &h.port_index {
            Some(n) => Some(self.u32(Some(n), &format!("{path}/portIndex"), 0)),
            None if port.is_some() || protocol == HealthProtocol::Command => None,
            None => d.port_index,
        };
        let at = |field: &str| format!("{path}/{field}");
        HealthCheck {
            protocol,
            grace_period: self.seconds(
                h.grace_period_seconds.as_ref(),
                &at("gracePeriodSeconds"),
                d.grace_period,
            ),
            interval: self.seconds(
                h.interval_seconds.as_ref(),
                &at("intervalSeconds"),
                d.interval,
            ),
            timeout: self.seconds(h.timeout_seconds.as_ref(), &at("timeoutSeconds"), d.timeout),
            max_consecutive_failures: self.u32(
                h.max_consecutive_failures.as_ref(),
                &at("maxConsecutiveFailures"),
                d.max_consecutive_failures,
            ),
            delay: self.seconds(h.delay_seconds.as_ref(), &at("delaySeconds"), d.delay),
            port_index,
            port,
            path: h.path.clone().unwrap_or(d.path),
            command: h.command.as_ref().map(|c| c.value.clone()),
            ignore_http1xx: h.ignore_http1xx.unwrap_or(d.ignore_http1xx),
        }
    }

    fn readiness_check(&mut self, r: &ReadinessCheckJson, path: &str) -> ReadinessCheck {
        let d = ReadinessCheck::default();
        let at = |field: &str| format!("{path}/{field}");
        let https = match r.protocol.as_deref() {
            None => d.https,
            Some("HTTP") => false,
            Some("HTTPS") => true,
            Some(_) => self.then(
                d.https,
                &at("protocol"),
                "must be one of HTTP, HTTPS".into(),
            ),
        };
        let codes = match &r.http_status_codes_for_ready {
            None => d.http_status_codes_for_ready.clone(),
            Some(codes) => codes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let p = format!("{path}/httpStatusCodesForReady({i})");
                    let code = self.uint(Some(n), &p, 200, 599);
                    if code < 100 {
                        self.err(p, format!("got {code}, expected 100 or more"));
                    }
                    u16::try_from(code).unwrap_or(200)
                })
                .collect(),
        };
        ReadinessCheck {
            name: r.name.clone().unwrap_or(d.name),
            https,
            path: r.path.clone().unwrap_or(d.path),
            port_name: r.port_name.clone().unwrap_or(d.port_name),
            interval: self.seconds(
                r.interval_seconds.as_ref(),
                &at("intervalSeconds"),
                d.interval,
            ),
            timeout: self.seconds(r.timeout_seconds.as_ref(), &at("timeoutSeconds"), d.timeout),
            http_status_codes_for_ready: codes,
            preserve_last_response: r.preserve_last_response.unwrap_or(d.preserve_last_response),
        }
    }

    fn strategies(&mut self, json: &AppJson, app: &mut App) {
        if let Some(u) = &json.upgrade_strategy {
            let s = &mut app.upgrade_strategy;
            s.minimum_health_capacity = self.scalar(
                u.minimum_health_capacity.as_ref(),
                "/upgradeStrategy/minimumHealthCapacity",
                s.minimum_health_capacity,
            );
            s.maximum_over_capacity = self.scalar(
                u.maximum_over_capacity.as_ref(),
                "/upgradeStrategy/maximumOverCapacity",
                s.maximum_over_capacity,
            );
        }
        let b = &mut app.backoff;
        b.backoff = self.seconds(json.backoff_seconds.as_ref(), "/backoffSeconds", b.backoff);
        b.factor = self.scalar(json.backoff_factor.as_ref(), "/backoffFactor", b.factor);
        b.max_launch_delay = self.seconds(
            json.max_launch_delay_seconds.as_ref(),
            "/maxLaunchDelaySeconds",
            b.max_launch_delay,
        );
        app.kill_selection = match json.kill_selection.as_deref() {
            None => app.kill_selection,
            Some("YOUNGEST_FIRST") => KillSelection::YoungestFirst,
            Some("OLDEST_FIRST") => KillSelection::OldestFirst,
            Some(_) => self.then(
                app.kill_selection,
                "/killSelection",
                "must be one of YOUNGEST_FIRST, OLDEST_FIRST".into(),
            ),
        };
        app.unreachable_strategy = match &json.unreachable_strategy {
            None => app.unreachable_strategy,
            Some(UnreachableStrategyJson::Word(w)) if w == "disabled" => {
                UnreachableStrategy::Disabled
            }
            Some(UnreachableStrategyJson::Word(_)) => self.then(
                app.unreachable_strategy,
                "/unreachableStrategy",
                "must be \"disabled\" or {inactiveAfterSeconds, expungeAfterSeconds}".into(),
            ),
            Some(UnreachableStrategyJson::Delays(d)) => self.unreachable(d),
        };
        app.task_kill_grace_period = json
            .task_kill_grace_period_seconds
            .as_ref()
            .map(|n| self.seconds(Some(n), "/taskKillGracePeriodSeconds", Duration::ZERO));
        app.progress_deadline = json
            .progress_deadline_seconds
            .as_ref()
            .map(|n| self.seconds(Some(n), "/progressDeadlineSeconds", Duration::ZERO));
        app.rollback_on_deadline = json.progress_deadline_rollback.unwrap_or(false);
        if app.rollback_on_deadline && app.progress_deadline.is_none() {
            self.err("/progressDeadlineRollback", "needs progressDeadlineSeconds");
        }
    }

    fn unreachable(&mut self, d: &UnreachableDelaysJson) -> UnreachableStrategy {
        let (inactive, expunge) = match UnreachableStrategy::default() {
            UnreachableStrategy::Enabled {
                inactive_after,
                expunge_after,
            } => (inactive_after, expunge_after),
            UnreachableStrategy::Disabled => (Duration::ZERO, Duration::ZERO),
        };
        UnreachableStrategy::Enabled {
            inactive_after: self.seconds(
                d.inactive_after_seconds.as_ref(),
                "/unreachableStrategy/inactiveAfterSeconds",
                inactive,
            ),
            expunge_after: self.seconds(
                d.expunge_after_seconds.as_ref(),
                "/unreachableStrategy/expungeAfterSeconds",
                expunge,
            ),
        }
    }

    fn metadata(&mut self, json: &AppJson, app: &mut App) {
        app.labels = json.labels.clone().unwrap_or_default();
        let group = app.id.parent();
        for (i, d) in json.dependencies.iter().flatten().enumerate() {
            match PathId::parse_in(d, &group) {
                Ok(id) => app.dependencies.push(id),
                Err(e) => self.err(format!("/dependencies({i})"), e.to_string()),
            }
        }
        app.version = self.version(json.version.as_deref(), "/version");
        if let Some(info) = &json.version_info {
            app.version_info = VersionInfo {
                last_scaling_at: self.version(
                    info.last_scaling_at.as_deref(),
                    "/versionInfo/lastScalingAt",
                ),
                last_config_change_at: self.version(
                    info.last_config_change_at.as_deref(),
                    "/versionInfo/lastConfigChangeAt",
                ),
            };
        }
    }

    fn unsupported(&mut self, json: &AppJson) {
        if json.fetch.as_ref().is_some_and(|f| !f.is_empty()) {
            self.err("/fetch", "fetching URIs is not supported yet");
        }
        if json.uris.as_ref().is_some_and(|f| !f.is_empty()) {
            self.err("/uris", "fetching URIs is not supported yet");
        }
        if json.secrets.as_ref().is_some_and(|f| !f.is_empty()) {
            self.err("/secrets", "secrets are not supported yet");
        }
    }
}

fn health_protocol(word: &str) -> Option<HealthProtocol> {
    Some(match word {
        "HTTP" => HealthProtocol::Http,
        "HTTPS" => HealthProtocol::Https,
        "TCP" => HealthProtocol::Tcp,
        "MESOS_HTTP" => HealthProtocol::MesosHttp,
        "MESOS_HTTPS" => HealthProtocol::MesosHttps,
        "MESOS_TCP" => HealthProtocol::MesosTcp,
        "COMMAND" => HealthProtocol::Command,
        _ => return None,
    })
}
