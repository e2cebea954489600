//! The state without IO: deployments, offers, status updates and the
//! records a new leader loads, driven by hand with explicit time and ids.
use agora_marathon_planner::{App, Condition, PathId, Version};
use agora_model::{
    AgentId, Attributes, FrameworkId, MonoTime, Offer, OfferId, Resources, StatusSource, TaskId,
    TaskState, TaskStatus,
};

use crate::state::records::{all_records, load_state};
use crate::state::{Call, DeployRequest, Effects, Now, State};

struct Harness {
    state: State,
    now: Now,
    next: u64,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            state: State::default(),
            now: Now {
                mono: MonoTime(1_000),
                wall_ms: 1_700_000_000_000,
            },
            next: 0,
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now.mono = MonoTime(self.now.mono.0 + ms);
        self.now.wall_ms += ms;
    }

    fn drive(&mut self) -> Effects {
        let mut n = self.next;
        let fx = self.state.drive(self.now, &mut || {
            n += 1;
            format!("{n:08}")
        });
        self.next = n;
        fx
    }

    fn deploy(&mut self, app: App) -> Effects {
        self.next += 1;
        let id = agora_marathon_planner::DeploymentId(format!("d{}", self.next));
        let req = DeployRequest {
            apps: vec![app],
            ..DeployRequest::default()
        };
        let (_, mut fx) = self.state.deploy(req, self.now, id).expect("deploy");
        fx.absorb(self.drive());
        fx
    }

    fn offer(&mut self, agent: &str) -> Effects {
        self.next += 1;
        let offer = Offer {
            id: OfferId::parse(format!("o{}", self.next)).expect("offer id"),
            framework_id: FrameworkId::parse("fw").expect("fw"),
            agent_id: AgentId::parse(agent).expect("agent"),
            hostname: agent.to_string(),
            resources: Resources::parse("cpus:8;mem:8192;disk:1000;ports:[31000-31099]")
                .expect("res"),
            attributes: Attributes::default(),
            role: agora_model::Role::parse("*").expect("role"),
        };
        let mut fx = self.state.offers(vec![offer], self.now);
        fx.absorb(self.drive());
        fx
    }

    fn report(&mut self, task: &str, state: TaskState) -> Effects {
        let status = TaskStatus::new(
            TaskId::parse(task).expect("task"),
            state,
            StatusSource::Executor,
            0.0,
        );
        let mut fx = self.state.status_update(&status, self.now);
        fx.absorb(self.drive());
        fx
    }

    fn launched(fx: &Effects) -> Vec<String> {
        fx.calls
            .iter()
            .filter_map(|c| match c {
                Call::Launch { tasks, .. } => {
                    Some(tasks.iter().map(|t| t.id.to_string()).collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn killed(fx: &Effects) -> Vec<String> {
        fx.calls
            .iter()
            .filter_map(|c| match c {
                Call::Kill { task, .. } => Some(task.to_string()),
                _ => None,
            })
            .collect()
    }
}

fn app(instances: u32, cmd: &str) -> App {
    let mut a = App::new(PathId::parse("/web").expect("id"));
    a.cmd = Some(cmd.into());
    a.instances = instances;
    a.resources.cpus = agora_model::Scalar::from_milli(100);
    a.resources.mem = agora_model::Scalar::from_units(32);
    a
}

#[test]
fn create_launch_run_then_scale_never_restarts() {
    let mut h = Harness::new();
    let fx = h.deploy(app(3, "sleep 100"));
    assert_eq!(h.state.instances.len(), 3);
    assert!(fx.events.iter().any(|e| e.kind == "deployment_info"));
    let fx = h.offer("agent-1");
    let first = Harness::launched(&fx);
    assert_eq!(first.len(), 3, "{:?}", fx.calls);
    for t in &first {
        h.report(t, TaskState::Running);
    }
    assert!(
        h.state.deployments.is_empty(),
        "the deployment should be done"
    );

    h.advance(1000);
    h.deploy(app(5, "sleep 100"));
    let fx = h.offer("agent-2");
    assert_eq!(Harness::launched(&fx).len(), 2);
    assert!(Harness::killed(&fx).is_empty());
    for t in &first {
        assert!(
            h.state.instances.keys().any(|k| k.as_str() == t),
            "{t} was restarted"
        );
    }
}

#[test]
fn a_new_command_rolls_every_instance_and_keeps_the_floor() {
    let mut h = Harness::new();
    let mut a = app(2, "sleep 100");
    a.upgrade_strategy.minimum_health_capacity = agora_model::Scalar::from_units(1);
    a.upgrade_strategy.maximum_over_capacity = agora_model::Scalar::ZERO;
    h.deploy(a.clone());
    let old = Harness::launched(&h.offer("agent-1"));
    for t in &old {
        h.report(t, TaskState::Running);
    }
    h.advance(1000);
    a.cmd = Some("sleep 200".into());
    h.deploy(a);
    // {1.0, 0}: one extra instance at a time, an old one killed only once
    // its replacement runs.
    let new1 = Harness::launched(&h.offer("agent-1"));
    assert_eq!(new1.len(), 1);
    let fx = h.report(&new1[0], TaskState::Running);
    let killed = Harness::killed(&fx);
    assert_eq!(killed.len(), 1);
    assert!(old.contains(&killed[0]));
    h.report(&killed[0], TaskState::Killed);
    let new2 = Harness::launched(&h.offer("agent-1"));
    assert_eq!(new2.len(), 1);
    let fx = h.report(&new2[0], TaskState::Running);
    let killed2 = Harness::killed(&fx);
    assert_eq!(killed2.len(), 1);
    h.report(&killed2[0], TaskState::Killed);
    assert!(h.state.deployments.is_empty());
    let cv = h
        .state
        .apps
        .values()
        .next()
        .expect("app")
        .app
        .config_version();
    assert!(
        h.state
            .instances
            .values()
            .all(|i| i.config_version == cv && i.condition == Condition::Running)
    );
}

#[test]
fn a_failed_task_is_replaced_after_its_backoff() {
    let mut h = Harness::new();
    h.deploy(app(1, "false"));
    let t = Harness::launched(&h.offer("agent-1"));
    h.report(&t[0], TaskState::Running);
    h.report(&t[0], TaskState::Failed);
    let a = h.state.apps.values().next().expect("app");
    assert_eq!(a.delay.failures, 1);
    assert!(a.last_failure.is_some());
    // The replacement waits out the 1 s backoff.
    assert!(Harness::launched(&h.offer("agent-1")).is_empty());
    h.advance(1100);
    assert_eq!(Harness::launched(&h.offer("agent-1")).len(), 1);
}

#[test]
fn unknown_tasks_are_killed_and_repeats_change_nothing() {
    let mut h = Harness::new();
    let fx = h.report("stranger.1", TaskState::Running);
    assert_eq!(Harness::killed(&fx), vec!["stranger.1".to_string()]);
    h.deploy(app(1, "sleep 1"));
    let t = Harness::launched(&h.offer("agent-1"));
    let fx = h.report(&t[0], TaskState::Running);
    assert!(!fx.writes.is_empty());
    let again = h.report(&t[0], TaskState::Running);
    assert!(again.writes.is_empty() && again.events.is_empty());
}

#[test]
fn a_new_leader_loads_what_was_written() {
    let mut h = Harness::new();
    h.deploy(app(2, "sleep 100"));
    let t = Harness::launched(&h.offer("agent-1"));
    h.report(&t[0], TaskState::Running);
    // Mid-deployment: one running, one staging.
    let loaded = load_state(all_records(&h.state), MonoTime(0)).expect("load");
    assert_eq!(loaded.apps.len(), 1);
    let (a, b) = (
        &h.state.apps[&PathId::parse("/web").expect("id")],
        &loaded.apps[&PathId::parse("/web").expect("id")],
    );
    assert_eq!(a.app, b.app);
    assert_eq!(
        a.versions.keys().collect::<Vec<&Version>>(),
        b.versions.keys().collect::<Vec<&Version>>()
    );
    assert_eq!(loaded.instances.len(), 2);
    for (id, i) in &h.state.instances {
        let j = &loaded.instances[id];
        assert_eq!(
            (i.goal, i.condition, i.config_version, &i.placed),
            (j.goal, j.condition, j.config_version, &j.placed)
        );
        assert_eq!(i.counted, j.counted);
    }
    assert_eq!(loaded.deployments.len(), 1);
    let (da, db) = (
        h.state.deployments.values().next().expect("d"),
        loaded.deployments.values().next().expect("d"),
    );
    assert_eq!(
        (da.current_step, &da.plan.steps),
        (db.current_step, &db.plan.steps)
    );
}

#[test]
fn deleting_an_app_kills_its_tasks_then_forgets_it() {
    let mut h = Harness::new();
    h.deploy(app(2, "sleep 100"));
    let t = Harness::launched(&h.offer("agent-1"));
    for x in &t {
        h.report(x, TaskState::Running);
    }
    let req = DeployRequest {
        remove: vec![PathId::parse("/web").expect("id")],
        ..DeployRequest::default()
    };
    let (_, mut fx) = h
        .state
        .deploy(
            req,
            h.now,
            agora_marathon_planner::DeploymentId("del".into()),
        )
        .expect("delete");
    fx.absorb(h.drive());
    let mut killed = Harness::killed(&fx);
    killed.sort();
    assert_eq!(killed, t);
    for x in &t {
        h.report(x, TaskState::Killed);
    }
    assert!(
        h.state.apps.is_empty() && h.state.instances.is_empty() && h.state.deployments.is_empty()
    );
}

#[test]
fn a_launch_the_master_never_saw_is_replaced_after_reconciliation() {
    let mut h = Harness::new();
    h.deploy(app(1, "sleep 100"));
    let t = Harness::launched(&h.offer("agent-1"));
    // The leader died before the launch reached the master; the next one
    // reconciles and hears TASK_UNKNOWN.
    let mut loaded = load_state(all_records(&h.state), MonoTime(0)).expect("load");
    std::mem::swap(&mut h.state, &mut loaded);
    h.report(&t[0], TaskState::Unknown);
    assert!(!h.state.instances.keys().any(|k| k.as_str() == t[0]));
    h.advance(2000);
    assert_eq!(Harness::launched(&h.offer("agent-1")).len(), 1);
}

#[test]
fn a_restart_waits_for_readiness_before_killing_the_old_instance() {
    let mut h = Harness::new();
    let mut a = app(1, "sleep 100");
    a.ports = vec![agora_marathon_planner::PortSpec {
        port: 0,
        host_port: None,
        service_port: 0,
        protocol: "tcp".into(),
        name: Some("http".into()),
        labels: Default::default(),
    }];
    a.readiness_checks = vec![agora_marathon_planner::ReadinessCheck {
        port_name: "http".into(),
        ..agora_marathon_planner::ReadinessCheck::default()
    }];
    a.upgrade_strategy.minimum_health_capacity = agora_model::Scalar::from_units(1);
    h.deploy(a.clone());
    let old = Harness::launched(&h.offer("agent-1"));
    let fx = h.report(&old[0], TaskState::Running);
    let started = fx.probes.iter().any(|p| {
        matches!(p, crate::readiness::Probe::Start { instance, url, .. }
        if instance.as_str() == old[0] && url.starts_with("http://agent-1:310"))
    });
    assert!(started, "{:?}", fx.probes);
    h.state
        .mark_ready(&agora_marathon_planner::InstanceId::from_string(
            old[0].clone(),
        ));
    h.drive();
    assert!(h.state.deployments.is_empty());

    h.advance(1000);
    a.cmd = Some("sleep 200".into());
    h.deploy(a);
    let new = Harness::launched(&h.offer("agent-1"));
    assert_eq!(new.len(), 1);
    let fx = h.report(&new[0], TaskState::Running);
    assert!(
        Harness::killed(&fx).is_empty(),
        "killed before the new one was ready"
    );
    assert_eq!(fx.probes.len(), 1);
    let id = agora_marathon_planner::InstanceId::from_string(new[0].clone());
    let mut fx = h.state.mark_ready(&id);
    fx.absorb(h.drive());
    assert_eq!(Harness::killed(&fx), old);
}

#[test]
fn a_stuck_deployment_rolls_back_at_its_progress_deadline() {
    let mut h = Harness::new();
    let mut a = app(1, "sleep 100");
    h.deploy(a.clone());
    let first = Harness::launched(&h.offer("agent-1"));
    h.report(&first[0], TaskState::Running);
    h.advance(1000);
    a.cmd = Some("sleep 200".into());
    a.resources.cpus = agora_model::Scalar::from_units(100); // never fits
    a.progress_deadline = Some(std::time::Duration::from_secs(30));
    a.rollback_on_deadline = true;
    h.deploy(a);
    assert!(Harness::launched(&h.offer("agent-1")).is_empty());
    h.advance(31_000);
    let fx = h.drive();
    assert!(fx.events.iter().any(|e| e.kind == "deployment_failed"));
    // The revert kills the waiting new instance, and is done at the next
    // drive (the loop drives after every command and each second): the
    // old instance never stopped.
    h.drive();
    let current = &h.state.apps.values().next().expect("app").app;
    assert_eq!(current.cmd.as_deref(), Some("sleep 100"));
    assert!(
        h.state.deployments.is_empty(),
        "{:?} {:?}",
        h.state
            .deployments
            .values()
            .map(|d| (&d.plan.steps, d.current_step))
            .collect::<Vec<_>>(),
        h.state
            .instances
            .values()
            .map(|i| (&i.id, i.condition, i.goal, i.config_version))
            .collect::<Vec<_>>()
    );
    assert!(h.state.instances.keys().any(|k| k.as_str() == first[0]));
    assert!(
        !h.state
            .instances
            .values()
            .any(|i| i.condition == Condition::Scheduled)
    );
}

#[test]
fn launches_are_rate_limited_by_a_token_bucket() {
    let mut t = crate::state::LaunchTokens::default();
    let now = MonoTime(10_000);
    let burst = t.available(now);
    assert_eq!(u64::from(burst), crate::state::LAUNCH_BURST);
    t.spend(burst);
    assert_eq!(t.available(now), 0);
    let later = MonoTime(10_100);
    assert_eq!(
        u64::from(t.available(later)),
        crate::state::LAUNCH_RATE_PER_SEC / 10
    );
}

#[test]
fn service_ports_are_assigned_once_and_kept() {
    let mut h = Harness::new();
    let port = |name: &str| agora_marathon_planner::PortSpec {
        name: Some(name.into()),
        protocol: "tcp".into(),
        ..Default::default()
    };
    let mut a = app(0, "sleep 1");
    a.ports = vec![port("a"), port("b")];
    h.deploy(a.clone());
    let ports = |h: &Harness, id: &str| -> Vec<u16> {
        h.state.apps[&PathId::parse(id).expect("id")]
            .app
            .ports
            .iter()
            .map(|p| p.port)
            .collect()
    };
    assert_eq!(ports(&h, "/web"), vec![10000, 10001]);
    let mut other = a.clone();
    other.id = PathId::parse("/other").expect("id");
    h.deploy(other);
    assert_eq!(ports(&h, "/other"), vec![10002, 10003]);
    // A new version that leaves them 0 keeps them: a scale, not a restart.
    h.advance(1000);
    a.instances = 2;
    let before = h.state.apps[&PathId::parse("/web").expect("id")]
        .app
        .config_version();
    h.deploy(a);
    assert_eq!(ports(&h, "/web"), vec![10000, 10001]);
    assert_eq!(
        h.state.apps[&PathId::parse("/web").expect("id")]
            .app
            .config_version(),
        before
    );
}

#[test]
fn an_unreachable_instance_is_replaced_and_the_surplus_killed_when_it_returns() {
    let mut h = Harness::new();
    let mut a = app(1, "sleep 100");
    a.unreachable_strategy = agora_marathon_planner::UnreachableStrategy::Enabled {
        inactive_after: std::time::Duration::from_secs(10),
        expunge_after: std::time::Duration::from_secs(600),
    };
    h.deploy(a);
    let first = Harness::launched(&h.offer("agent-1"));
    h.report(&first[0], TaskState::Running);
    h.report(&first[0], TaskState::Unreachable);
    // Within inactiveAfterSeconds nothing is replaced.
    h.advance(5_000);
    h.drive();
    assert!(Harness::launched(&h.offer("agent-2")).is_empty());
    h.advance(6_000);
    h.drive();
    let second = Harness::launched(&h.offer("agent-2"));
    assert_eq!(second.len(), 1, "a replacement after inactiveAfterSeconds");
    h.report(&second[0], TaskState::Running);
    // The original comes back: one of the two goes.
    let fx = h.report(&first[0], TaskState::Running);
    assert_eq!(Harness::killed(&fx).len(), 1);
}

mod maintenance;

fn deploy_req(h: &mut Harness, req: DeployRequest) -> Result<crate::state::apps::Deployed, String> {
    h.next += 1;
    let id = agora_marathon_planner::DeploymentId(format!("d{}", h.next));
    let (d, _) = h
        .state
        .deploy(req, h.now, id)
        .map_err(|e| e.body().to_string())?;
    h.drive();
    Ok(d)
}

/// An app whose id is another app's group (or the reverse) is refused with
/// Marathon's 422, and so is a rollback that would bring one back, with
/// nothing changed.
#[test]
fn an_app_is_never_also_the_group_of_another() {
    let mut h = Harness::new();
    let web = PathId::parse("/web").expect("id");
    h.deploy(app(1, "sleep 100"));
    let fx = h.offer("agent-1");
    let task = Harness::launched(&fx);
    h.report(&task[0], TaskState::Running);
    assert!(h.state.deployments.is_empty());
    let mut inner = app(1, "sleep 100");
    inner.id = PathId::parse("/web/api").expect("id");
    let refused = DeployRequest {
        apps: vec![inner.clone()],
        ..DeployRequest::default()
    };
    let body = deploy_req(&mut h, refused).expect_err("an app under an app");
    assert!(
        body.contains("Groups and Applications may not have the same identifier")
            && body.contains("/web is an app")
            && body.contains("/web/api"),
        "{body}"
    );
    assert!(!h.state.apps.contains_key(&inner.id));
    // Removing /web waits for its task to die; meanwhile /web/api may be
    // created, as Marathon frees a deleted id at once.
    let removal = DeployRequest {
        remove: vec![web.clone()],
        ..DeployRequest::default()
    };
    let removal = deploy_req(&mut h, removal).expect("remove /web");
    let create = DeployRequest {
        apps: vec![inner],
        ..DeployRequest::default()
    };
    deploy_req(&mut h, create).expect("/web/api once /web is going");
    let deployments: Vec<_> = h.state.deployments.keys().cloned().collect();
    assert_eq!(deployments.len(), 2);
    // Reverting the removal would put /web back over /web/api.
    let r = h.state.cancel_deployment(
        &removal.deployment,
        false,
        h.now,
        agora_marathon_planner::DeploymentId("revert".into()),
    );
    let err = r.expect_err("the revert is refused");
    assert_eq!(err.status(), 422);
    assert!(
        err.body().to_string().contains("/web/api"),
        "{}",
        err.body()
    );
    let after: Vec<_> = h.state.deployments.keys().cloned().collect();
    assert_eq!(after, deployments);
    assert!(h.state.apps[&web].removing);
}
