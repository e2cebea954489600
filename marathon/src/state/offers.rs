//! Offers → launches. Apps with waiting instances are placed one after
//! another (in id order) by the planner's `place`, each seeing what the
//! previous ones took; the placed instances become tasks; offers that took
//! nothing are declined, with Marathon's long filter (120 s) when nothing
//! waits and a short one when something waits but did not fit (so a
//! change elsewhere is seen soon).
use std::collections::BTreeMap;
use std::time::Duration;

use agora_marathon_planner::{
    AgentFacts, App, Condition, EnvValue, HealthProtocol, InstanceId, NetworkMode, OfferView,
    PlacementInput, place,
};
use agora_model::{
    DockerNetwork, DockerSpec, HealthCheck, HealthCheckKind, Offer, Ranges, ResourceRequest,
    Resources, Role, Scalar, TaskSpec, Value,
};
use agora_scheduler_sdk::TaskBuilder;

use crate::state::records::{encode_instance, instance_key};
use crate::state::{
    Call, DECLINE_FILTER, Effects, MAX_INSTANCES_PER_OFFER, MAX_LAUNCHES_PER_ROUND, Now, Placed,
    State,
};

/// Decline filter while instances wait but these offers did not fit them.
const SHORT_DECLINE_FILTER: Duration = Duration::from_secs(5);
/// Decline filter while instances wait for launch tokens.
const RATE_LIMITED_DECLINE_FILTER: Duration = Duration::from_secs(1);

impl State {
    /// Places waiting instances on `offers` and launches them.
    pub(crate) fn offers(&mut self, offers: Vec<Offer>, now: Now) -> Effects {
        let mut fx = Effects::default();
        // Nothing is placed on a draining agent (the master offers none; a
        // late offer is declined).
        let (drained, offers): (Vec<Offer>, Vec<Offer>) = offers
            .into_iter()
            .partition(|o| self.draining.contains_key(&o.agent_id));
        if !drained.is_empty() {
            fx.call(Call::Decline {
                offers: drained.into_iter().map(|o| o.id).collect(),
                filter: DECLINE_FILTER,
            });
        }
        let mut views: Vec<OfferView> = Vec::with_capacity(offers.len());
        for o in &offers {
            let facts = AgentFacts::new(o.hostname.clone(), &o.attributes);
            self.learn_agent(&o.agent_id, &facts);
            views.push(OfferView {
                id: o.id.clone(),
                agent_id: o.agent_id.clone(),
                agent: facts,
                resources: o.resources.clone(),
            });
        }
        let mut left: Vec<Resources> = offers.iter().map(|o| o.resources.clone()).collect();
        let mut tasks: BTreeMap<usize, Vec<TaskSpec>> = BTreeMap::new();
        let tokens = self.launch_tokens.available(now.mono);
        let mut budget = MAX_LAUNCHES_PER_ROUND.min(tokens);
        let start_budget = budget;
        for (app_id, waiting) in self.waiting(now) {
            if budget == 0 {
                break;
            }
            let Some(state) = self.apps.get(&app_id) else {
                continue;
            };
            let app = state.app.clone();
            let to_place = (waiting.len() as u32).min(budget);
            let plan = place(
                &PlacementInput {
                    app: &app,
                    counters: &state.counters,
                    inventory: &self.inventory,
                    to_place,
                    max_per_offer: MAX_INSTANCES_PER_OFFER,
                },
                &views,
            );
            if let Some(s) = self.apps.get_mut(&app_id) {
                s.offer_stats.merge(&plan.summary);
                s.last_offer_wall_ms = Some(now.wall_ms);
            }
            for (p, inst_id) in plan.placements.iter().zip(waiting) {
                let (Some(view), Some(rest), Some(offer)) = (
                    views.get_mut(p.offer_index),
                    left.get_mut(p.offer_index),
                    offers.get(p.offer_index),
                ) else {
                    continue;
                };
                let Some(resources) = carve(rest, &offer.role, &app, &p.host_ports) else {
                    continue;
                };
                view.resources = rest.clone();
                let Some(spec) = self.task_for(&inst_id, &app, view, resources, &p.host_ports)
                else {
                    continue;
                };
                budget -= 1;
                tasks.entry(p.offer_index).or_default().push(spec);
                self.mark_placed(&inst_id, view, &p.host_ports, &mut fx);
            }
        }
        self.launch_tokens.spend(start_budget - budget);
        let waits = self.anything_waits();
        let mut unused = Vec::new();
        // While instances still wait (the per-offer cap or the rate limit
        // stopped us), the rest of a used offer comes back at once.
        let refuse = waits.then_some(Duration::ZERO);
        for (i, offer) in offers.into_iter().enumerate() {
            match tasks.remove(&i) {
                Some(t) => fx.call(Call::Launch {
                    offer: Box::new(offer),
                    tasks: t,
                    refuse,
                }),
                None => unused.push(offer.id),
            }
        }
        if !unused.is_empty() {
            // Out of launch tokens: they refill within a second, so the
            // offers should come back about then.
            let rate_limited = budget == 0 && waits;
            let filter = match (rate_limited, waits) {
                (true, _) => RATE_LIMITED_DECLINE_FILTER,
                (false, true) => SHORT_DECLINE_FILTER,
                (false, false) => DECLINE_FILTER,
            };
            fx.call(Call::Decline {
                offers: unused,
                filter,
            });
        }
        fx
    }

    fn mark_placed(
        &mut self,
        id: &InstanceId,
        view: &OfferView,
        host_ports: &[u64],
        fx: &mut Effects,
    ) {
        let Some(inst) = self.instances.get_mut(id) else {
            return;
        };
        inst.placed = Some(Placed {
            agent_id: view.agent_id.clone(),
            facts: view.agent.clone(),
            host_ports: host_ports.to_vec(),
        });
        inst.condition = Condition::Staging;
        inst.task_state = Some(agora_model::TaskState::Staging);
        fx.write(instance_key(id), encode_instance(inst));
        self.recount(id);
    }

    /// The task for one placed instance. A definition the SDK refuses is
    /// logged and the instance stays waiting (validation should have caught
    /// it; nothing is launched half-built).
    fn task_for(
        &self,
        id: &InstanceId,
        app: &App,
        view: &OfferView,
        resources: Resources,
        host_ports: &[u64],
    ) -> Option<TaskSpec> {
        let mut b = TaskBuilder::new(id.as_str())
            .name(app.id.name().unwrap_or("app"))
            .resources(resources);
        for (k, v) in task_env(id, app, &view.agent.hostname, host_ports) {
            b = b.env(k, v);
        }
        b = match (&app.cmd, app.args.is_empty()) {
            (Some(cmd), _) => b.shell(cmd.clone()),
            (None, false) => b.exec(app.args[0].clone(), app.args[1..].to_vec()),
            (None, true) => b,
        };
        if let Some(d) = &app.docker {
            b = b.docker_spec(docker_spec(app, d, host_ports));
        }
        if let Some(hc) = health_check(app, host_ports) {
            b = b.health_check(hc);
        }
        if let Some(g) = app.task_kill_grace_period {
            b = b.kill_grace(g);
        }
        for (k, v) in &app.labels {
            b = b.label(k.clone(), v.clone());
        }
        match b.build(&view.agent_id) {
            Ok(spec) => Some(spec),
            Err(e) => {
                tracing::warn!(app = %app.id, error = %e, "cannot build the task; the instance keeps waiting");
                None
            }
        }
    }
}

/// Carves the app's scalars and its exact host ports out of what is left of
/// an offer, and takes them out of it.
fn carve(left: &mut Resources, role: &Role, app: &App, host_ports: &[u64]) -> Option<Resources> {
    let req = ResourceRequest {
        cpus: app.resources.cpus,
        mem: app.resources.mem,
        disk: app.resources.disk,
        gpus: Scalar::from_units(i64::from(app.resources.gpus)),
        ports: 0,
    };
    let mut res = left.carve(&req, role).ok()?;
    let mut wanted = Ranges::from_pairs(host_ports.iter().map(|p| (*p, *p)));
    for r in left.iter() {
        if r.name != "ports" || wanted.is_empty() {
            continue;
        }
        if let Value::Ranges(have) = r.value {
            // wanted ∩ have
            let mine = wanted.difference(&wanted.difference(have));
            if !mine.is_empty() {
                wanted = wanted.difference(&mine);
                res.push("ports", r.role.clone(), Value::Ranges(mine));
            }
        }
    }
    if !wanted.is_empty() {
        return None;
    }
    left.subtract(&res);
    Some(res)
}

/// Marathon's task environment: HOST, PORT, PORT0..n, PORTS,
/// MARATHON_APP_ID, MARATHON_APP_VERSION, MESOS_TASK_ID, plus the app's.
fn task_env(id: &InstanceId, app: &App, host: &str, host_ports: &[u64]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = app
        .env
        .iter()
        .filter_map(|(k, v)| match v {
            EnvValue::Value(s) => Some((k.clone(), s.clone())),
            EnvValue::Secret(_) => None,
        })
        .collect();
    for (k, v) in app.docker.iter().flat_map(|d| &d.parameters) {
        if let ("env" | "e", Some((name, value))) = (k.as_str(), v.split_once('=')) {
            env.push((name.to_string(), value.to_string()));
        }
    }
    env.push(("HOST".into(), host.into()));
    env.push(("MARATHON_APP_ID".into(), app.id.to_string()));
    env.push((
        "MARATHON_APP_VERSION".into(),
        crate::api::json::format_version(app.version),
    ));
    env.push(("MESOS_TASK_ID".into(), id.to_string()));
    for (i, p) in host_ports.iter().enumerate() {
        env.push((format!("PORT{i}"), p.to_string()));
    }
    if let Some(p) = host_ports.first() {
        env.push(("PORT".into(), p.to_string()));
    }
    let all: Vec<String> = host_ports.iter().map(u64::to_string).collect();
    env.push(("PORTS".into(), all.join(",")));
    env
}

fn docker_spec(
    app: &App,
    d: &agora_marathon_planner::DockerContainer,
    host_ports: &[u64],
) -> DockerSpec {
    let network = match app.network {
        NetworkMode::Host => DockerNetwork::Host,
        NetworkMode::Bridge | NetworkMode::Container => DockerNetwork::Bridge,
    };
    let mut port_mappings = Vec::new();
    if network == DockerNetwork::Bridge {
        let mut hp = host_ports.iter();
        for p in &app.ports {
            if p.host_port.is_none() {
                continue;
            }
            let Some(host) = hp.next() else { break };
            let host = u16::try_from(*host).unwrap_or(0);
            port_mappings.push(agora_model::PortMapping {
                host_port: host,
                container_port: if p.port == 0 { host } else { p.port },
                protocol: p.protocol.clone(),
                name: p.name.clone(),
            });
        }
    }
    // `label` parameters (validated as KEY=VALUE); `env`/`e` go to the
    // task's environment (`task_env`).
    let labels = d
        .parameters
        .iter()
        .filter(|(k, _)| k == "label")
        .filter_map(|(_, v)| v.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    DockerSpec {
        image: d.image.clone(),
        network,
        port_mappings,
        force_pull: d.force_pull_image,
        privileged: d.privileged,
        entrypoint: Vec::new(),
        labels,
    }
}

/// The first health check the agent can run, on the instance's host port.
fn health_check(app: &App, host_ports: &[u64]) -> Option<HealthCheck> {
    let hc = app.health_checks.first()?;
    let port = || -> Option<u16> {
        match (hc.port, hc.port_index) {
            (Some(p), _) => Some(p),
            (None, Some(i)) => host_ports
                .get(i as usize)
                .and_then(|p| u16::try_from(*p).ok()),
            (None, None) => None,
        }
    };
    let kind = match hc.protocol {
        HealthProtocol::Http
        | HealthProtocol::MesosHttp
        | HealthProtocol::Https
        | HealthProtocol::MesosHttps => HealthCheckKind::Http {
            port: port()?,
            path: if hc.path.is_empty() {
                "/".into()
            } else {
                hc.path.clone()
            },
        },
        HealthProtocol::Tcp | HealthProtocol::MesosTcp => HealthCheckKind::Tcp { port: port()? },
        HealthProtocol::Command => HealthCheckKind::Command {
            value: hc.command.clone()?,
        },
    };
    Some(HealthCheck {
        kind,
        delay: hc.delay,
        interval: hc.interval,
        timeout: hc.timeout,
        consecutive_failures: hc.max_consecutive_failures,
        grace_period: hc.grace_period,
        never_kill: hc.max_consecutive_failures == 0,
    })
}
