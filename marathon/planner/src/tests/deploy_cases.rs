//! Deployment plans and steps, including the examples of mesos-marathon.md
//! §2.6 (Marathon's deployment docs and `TaskReplaceActor`).
use std::time::Duration;

use agora_model::{MonoTime, Scalar};

use super::{DeployHarness, app, id};
use crate::{
    Action, App, Apps, DeploymentAction, DockerContainer, PlanError, StepInput, StepStatus,
    UpgradeStrategy, Version, plan, step,
};

fn apps(list: &[&App]) -> Apps {
    list.iter().map(|a| (a.id.clone(), (*a).clone())).collect()
}

fn names(p: &crate::DeploymentPlan) -> Vec<Vec<String>> {
    p.steps
        .iter()
        .map(|s| {
            s.actions
                .iter()
                .map(|a| format!("{} {}", a.name(), a.app()))
                .collect()
        })
        .collect()
}

fn image(mut a: App, tag: &str, version: u64) -> App {
    a.docker = Some(DockerContainer {
        image: format!("nginx:{tag}"),
        ..Default::default()
    });
    a.cmd = None;
    a.version = Version(version);
    a.version_info.last_config_change_at = Version(version);
    a
}

#[test]
fn plan_orders_stop_start_then_dependencies() {
    let old = app("/old");
    let db = app("/prod/db");
    let mut api = app("/prod/api");
    api.dependencies = vec![id("/prod/db")];
    let mut web = app("/prod/web");
    web.dependencies = vec![id("/prod/api")];
    let p = plan(&apps(&[&old]), &apps(&[&db, &api, &web])).unwrap();
    assert_eq!(
        names(&p),
        vec![
            vec!["StopApplication /old"],
            vec![
                "StartApplication /prod/api",
                "StartApplication /prod/db",
                "StartApplication /prod/web"
            ],
            vec!["ScaleApplication /prod/db"],
            vec!["ScaleApplication /prod/api"],
            vec!["ScaleApplication /prod/web"],
        ]
    );
    assert_eq!(p.affected_apps().len(), 4);
}

#[test]
fn plan_tells_scale_from_restart_and_skips_unchanged() {
    let a = image(app("/a"), "1.26", 1);
    let b = image(app("/b"), "1.26", 1);
    let c = image(app("/c"), "1.26", 1);
    let mut a2 = a.clone();
    a2.instances = 5;
    a2.version = Version(2);
    let b2 = image(b.clone(), "1.27", 2);
    let p = plan(&apps(&[&a, &b, &c]), &apps(&[&a2, &b2, &c])).unwrap();
    assert_eq!(
        p.steps[0].actions,
        vec![
            DeploymentAction::ScaleApplication {
                app: id("/a"),
                instances: 5,
                kill: vec![],
            },
            DeploymentAction::RestartApplication(id("/b")),
        ]
    );
    assert_eq!(p.steps.len(), 1);
    // Nothing changed: an empty plan.
    assert!(plan(&apps(&[&a]), &apps(&[&a])).unwrap().is_empty());
}

#[test]
fn plan_rejects_cycles_and_unknown_dependencies() {
    let mut a = app("/a");
    let mut b = app("/b");
    a.dependencies = vec![id("/b")];
    b.dependencies = vec![id("/a")];
    let err = plan(&Apps::new(), &apps(&[&a, &b])).unwrap_err();
    assert!(
        matches!(err, PlanError::Cycle(ref c) if c.len() == 2),
        "{err:?}"
    );
    a.dependencies = vec![id("/nope")];
    assert!(matches!(
        plan(&Apps::new(), &apps(&[&a])),
        Err(PlanError::UnknownDependency { .. })
    ));
}

#[test]
fn revert_goes_back_to_the_original() {
    let a = image(app("/a"), "1", 1);
    let a2 = image(a.clone(), "2", 2);
    let p = plan(&apps(&[&a]), &apps(&[&a2])).unwrap();
    let back = p.revert(&apps(&[&a2])).unwrap();
    assert_eq!(
        back.steps[0].actions,
        vec![DeploymentAction::RestartApplication(id("/a"))]
    );
    assert_eq!(back.target, apps(&[&a]));
}

/// Runs a restart of `n` instances to completion, advancing `per_tick`
/// instances a tick, and returns the (healthy, active) counts after every
/// step's kills and launches.
fn run_restart(target: &App, per_tick: usize) -> Vec<(u32, u32)> {
    let mut h = DeployHarness::running(target.instances, 1);
    let action = DeploymentAction::RestartApplication(target.id.clone());
    let mut seen = Vec::new();
    for _ in 0..1_000 {
        let out = step(&StepInput {
            action: &action,
            app: target,
            instances: &h.instances,
            now: h.now,
            last_progress: h.now,
        });
        h.apply(&out.actions);
        seen.push((h.healthy(), h.active()));
        if out.status == StepStatus::Done {
            assert_eq!(h.of_version(1), 0);
            assert_eq!(h.of_version(2), target.instances);
            return seen;
        }
        h.advance(per_tick);
    }
    panic!("restart did not converge");
}

fn strategy(min: i64, over: i64) -> UpgradeStrategy {
    UpgradeStrategy {
        minimum_health_capacity: Scalar::from_milli(min),
        maximum_over_capacity: Scalar::from_milli(over),
    }
}

fn target(n: u32, s: UpgradeStrategy) -> App {
    let mut a = image(app("/prod/api"), "2", 2);
    a.instances = n;
    a.upgrade_strategy = s;
    a
}

#[test]
fn default_strategy_starts_all_new_alongside_the_old() {
    // (1.0, 1.0), 10 instances → 10 new next to 10 old (2× capacity).
    let seen = run_restart(&target(10, UpgradeStrategy::default()), 3);
    assert_eq!(seen[0], (10, 20));
    assert!(
        seen.iter()
            .all(|(healthy, active)| *healthy >= 10 && *active <= 20)
    );
    // Blue-green: all 20 stay up until the 10 new are healthy and ready,
    // then the 10 old go together.
    let cut = seen
        .iter()
        .position(|(_, active)| *active < 20)
        .expect("the old ones go");
    assert!(seen[cut..].iter().all(|s| *s == (10, 10)), "{seen:?}");
}

#[test]
fn half_health_kills_five_at_once_and_stays_within_twelve() {
    // (0.5, 0.2), 10 instances → kill 5 old at once, ≤ 12 in total.
    let t = target(10, strategy(500, 200));
    let h = DeployHarness::running(10, 1);
    let action = DeploymentAction::RestartApplication(t.id.clone());
    let out = step(&StepInput {
        action: &action,
        app: &t,
        instances: &h.instances,
        now: MonoTime(0),
        last_progress: MonoTime(0),
    });
    match &out.actions[..] {
        [Action::Kill { instances, .. }, Action::Launch { count, .. }] => {
            assert_eq!(instances.len(), 5);
            assert_eq!(*count, 7);
        }
        other => panic!("{other:?}"),
    }
    let seen = run_restart(&t, 2);
    assert!(
        seen.iter()
            .all(|(healthy, active)| *healthy >= 5 && *active <= 12)
    );
}

#[test]
fn full_health_no_surge_replaces_one_by_one() {
    // (1.0, 0.0) → one extra instance, one-by-one replacement.
    let seen = run_restart(&target(4, strategy(1000, 0)), 1);
    assert_eq!(seen[0], (4, 5));
    assert!(
        seen.iter()
            .all(|(healthy, active)| *healthy >= 4 && *active <= 5)
    );
}

#[test]
fn docs_example_three_instances_at_point_seven_keep_three() {
    // 3 instances, minimumHealthCapacity 0.7 → ceil(2.1) = 3 kept healthy.
    let seen = run_restart(&target(3, strategy(700, 0)), 1);
    assert!(seen.iter().all(|(healthy, _)| *healthy >= 3));
}

#[test]
fn zero_health_replaces_everything_at_once() {
    let t = target(3, strategy(0, 0));
    let seen = run_restart(&t, 6);
    assert_eq!(seen[0], (0, 3));
}

#[test]
fn scale_never_kills_on_scale_up_and_kills_the_surplus_on_scale_down() {
    let mut a = app("/a");
    a.instances = 5;
    let h = DeployHarness::running(3, 0);
    let up = DeploymentAction::ScaleApplication {
        app: a.id.clone(),
        instances: 5,
        kill: vec![],
    };
    let out = step(&StepInput {
        action: &up,
        app: &a,
        instances: &h.instances,
        now: MonoTime(0),
        last_progress: MonoTime(0),
    });
    assert_eq!(
        out.actions,
        vec![Action::Launch {
            app: a.id.clone(),
            count: 2,
            config_version: Version(0)
        }]
    );
    assert_eq!(out.status, StepStatus::InProgress);
    a.instances = 1;
    let down = DeploymentAction::ScaleApplication {
        app: a.id.clone(),
        instances: 1,
        kill: vec![],
    };
    let out = step(&StepInput {
        action: &down,
        app: &a,
        instances: &h.instances,
        now: MonoTime(0),
        last_progress: MonoTime(0),
    });
    match &out.actions[..] {
        [Action::Kill { instances, .. }] => assert_eq!(instances.len(), 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn stop_kills_everything_and_waits_for_the_end() {
    let mut h = DeployHarness::running(3, 1);
    let stop = DeploymentAction::StopApplication(id("/a"));
    let input = |h: &DeployHarness| {
        step(&StepInput {
            action: &stop,
            app: &app("/a"),
            instances: &h.instances,
            now: MonoTime(0),
            last_progress: MonoTime(0),
        })
    };
    let out = input(&h);
    assert_eq!(out.status, StepStatus::InProgress);
    h.apply(&out.actions);
    assert_eq!(input(&h).status, StepStatus::Done);
}

#[test]
fn a_stalled_step_fails_after_its_progress_deadline() {
    let mut t = target(2, UpgradeStrategy::default());
    t.progress_deadline = Some(Duration::from_secs(600));
    let h = DeployHarness::running(2, 1);
    let action = DeploymentAction::RestartApplication(t.id.clone());
    let at = |now: u64| {
        step(&StepInput {
            action: &action,
            app: &t,
            instances: &h.instances,
            now: MonoTime(now),
            last_progress: MonoTime(0),
        })
        .status
    };
    assert_eq!(at(599_999), StepStatus::InProgress);
    assert_eq!(at(600_000), StepStatus::DeadlineExceeded);
}

#[test]
fn a_dependency_on_a_group_waits_for_every_app_in_it() {
    let db = app("/prod/data/db");
    let cache = app("/prod/data/cache");
    let mut web = app("/prod/web");
    web.dependencies = vec![id("/prod/data")];
    let p = plan(&Apps::new(), &apps(&[&db, &cache, &web])).unwrap();
    let last = p.steps.last().unwrap();
    assert_eq!(last.actions.len(), 1);
    assert_eq!(last.actions[0].app(), &id("/prod/web"));
    assert_eq!(p.steps.len(), 3);
}

#[test]
fn scale_true_kills_kill_the_named_instances_first() {
    // The two-app blue-green pattern: POST /v2/tasks/delete?scale=true on
    // chosen BLUE instances, BLUE's count already lowered by as many.
    let mut blue = app("/blue");
    blue.instances = 4;
    let mut lowered = blue.clone();
    lowered.instances = 2;
    lowered.version = Version(3);
    let h = DeployHarness::running(4, 0);
    let chosen = vec![h.instances[0].id.clone(), h.instances[3].id.clone()];
    let sentenced = std::collections::BTreeMap::from([(blue.id.clone(), chosen.clone())]);
    let p = crate::plan_with_kills(&apps(&[&blue]), &apps(&[&lowered]), &sentenced).unwrap();
    let action = &p.steps[0].actions[0];
    assert_eq!(
        action,
        &DeploymentAction::ScaleApplication {
            app: blue.id.clone(),
            instances: 2,
            kill: chosen.clone()
        }
    );
    let out = step(&StepInput {
        action,
        app: &lowered,
        instances: &h.instances,
        now: MonoTime(0),
        last_progress: MonoTime(0),
    });
    assert_eq!(
        out.actions,
        vec![Action::Kill {
            app: blue.id.clone(),
            instances: chosen
        }]
    );
}

#[test]
fn an_inactive_unreachable_instance_is_replaced_by_scale_and_killed_by_restart() {
    let mut a = app("/a");
    a.instances = 3;
    let mut h = DeployHarness::running(3, 0);
    h.instances[1].condition = crate::Condition::UnreachableInactive;
    let action = DeploymentAction::ScaleApplication {
        app: a.id.clone(),
        instances: 3,
        kill: vec![],
    };
    let out = step(&StepInput {
        action: &action,
        app: &a,
        instances: &h.instances,
        now: MonoTime(0),
        last_progress: MonoTime(0),
    });
    assert_eq!(
        out.actions,
        vec![Action::Launch {
            app: a.id.clone(),
            count: 1,
            config_version: Version(0)
        }]
    );
    // A restart kills it with the old version, and still finishes.
    let mut t = image(a.clone(), "2", 2);
    t.instances = 3;
    let restart = DeploymentAction::RestartApplication(a.id.clone());
    for _ in 0..20 {
        let out = step(&StepInput {
            action: &restart,
            app: &t,
            instances: &h.instances,
            now: MonoTime(0),
            last_progress: MonoTime(0),
        });
        h.apply(&out.actions);
        if out.status == StepStatus::Done {
            assert_eq!(h.of_version(2), 3);
            return;
        }
        h.advance(2);
    }
    panic!("restart did not finish");
}

#[test]
fn a_plan_is_blocked_by_running_deployments_of_its_apps() {
    let a = image(app("/a"), "1", 1);
    let b = image(app("/b"), "1", 1);
    let running_a = plan(&apps(&[&a]), &apps(&[&image(a.clone(), "2", 2)])).unwrap();
    let running_b = plan(&apps(&[&b]), &apps(&[&image(b.clone(), "2", 2)])).unwrap();
    let ids = [
        crate::DeploymentId("d-a".into()),
        crate::DeploymentId("d-b".into()),
    ];
    let mut a3 = a.clone();
    a3.instances = 3;
    let mine = plan(&apps(&[&a]), &apps(&[&a3])).unwrap();
    let blocked = mine.blocked_by([(&ids[0], &running_a), (&ids[1], &running_b)]);
    assert_eq!(blocked, vec![crate::DeploymentId("d-a".into())]);
}

#[test]
fn surplus_new_instances_go_not_ready_first_so_the_floor_holds() {
    // Left over by a cancelled deployment: 4 new instances for n = 2, the
    // two oldest serving, the two youngest healthy but not ready yet.
    let mut t = target(2, strategy(1000, 0));
    t.kill_selection = crate::KillSelection::OldestFirst;
    let mut h = DeployHarness::running(4, 2);
    for i in &mut h.instances[2..] {
        i.ready = false;
    }
    let action = DeploymentAction::RestartApplication(t.id.clone());
    let out = step(&StepInput {
        action: &action,
        app: &t,
        instances: &h.instances,
        now: MonoTime(0),
        last_progress: MonoTime(0),
    });
    let young: Vec<_> = h.instances[2..].iter().map(|i| i.id.clone()).collect();
    assert_eq!(
        out.actions,
        vec![Action::Kill {
            app: t.id.clone(),
            instances: young
        }]
    );
    h.apply(&out.actions);
    assert_eq!(h.healthy(), 2);
}

/// The API caps `instances` (10,000), but the planner must not overflow on
/// any count it is given: `2 * n` and `max + 1` saturate.
#[test]
fn the_largest_instance_count_does_not_overflow() {
    let blue_green = target(u32::MAX, UpgradeStrategy::default());
    let out = step(&StepInput {
        action: &DeploymentAction::RestartApplication(blue_green.id.clone()),
        app: &blue_green,
        instances: &[],
        now: MonoTime(0),
        last_progress: MonoTime(0),
    });
    assert_eq!(
        out.actions,
        vec![Action::Launch {
            app: blue_green.id.clone(),
            count: u32::MAX,
            config_version: blue_green.config_version(),
        }]
    );
    // {1.0, 0.0} at capacity: Marathon's one extra saturates.
    let no_surge = target(u32::MAX, strategy(1000, 0));
    assert_eq!(crate::capacity(&no_surge, u32::MAX), u32::MAX);
}
