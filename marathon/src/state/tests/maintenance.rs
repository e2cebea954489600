//! Instances on a draining agent move as a restart limited to them would:
//! replacements first while `maximumOverCapacity` allows, old ones killed
//! only while `ceil(n × minimumHealthCapacity)` healthy remain, nothing
//! placed on the draining agent.
use agora_model::{Drain, Scalar};

use super::*;

const DRAIN: Drain = Drain {
    since_unix_ms: 1,
    deadline_unix_ms: None,
};

/// `n` running instances of `/web`, one per agent `agent-1..=n`.
fn running(h: &mut Harness, n: u32, min_health: i64, max_over: i64) -> Vec<String> {
    let mut tasks = Vec::new();
    for k in 1..=n {
        let mut a = app(k, "sleep 100");
        a.upgrade_strategy.minimum_health_capacity = Scalar::from_milli(min_health);
        a.upgrade_strategy.maximum_over_capacity = Scalar::from_milli(max_over);
        h.advance(1000);
        h.deploy(a);
        let fx = h.offer(&format!("agent-{k}"));
        let launched = Harness::launched(&fx);
        assert_eq!(launched.len(), 1, "{:?}", fx.calls);
        h.report(&launched[0], TaskState::Running);
        tasks.extend(launched);
    }
    assert!(h.state.deployments.is_empty());
    tasks
}

fn drain(h: &mut Harness, agent: &str, d: Option<Drain>) -> Effects {
    let mut fx = h
        .state
        .agent_maintenance(AgentId::parse(agent).expect("agent"), d);
    fx.absorb(h.drive());
    fx
}

/// Running instances (what serves: the app has no health checks).
fn serving(h: &Harness) -> usize {
    h.state
        .instances
        .values()
        .filter(|i| i.is_active() && i.condition == Condition::Running)
        .count()
}

fn on(h: &Harness, agent: &str) -> usize {
    h.state
        .instances
        .values()
        .filter(|i| i.is_active())
        .filter(|i| {
            i.placed
                .as_ref()
                .is_some_and(|p| p.agent_id.as_str() == agent)
        })
        .count()
}

#[test]
fn with_room_above_the_app_the_replacement_runs_before_the_old_instance_is_killed() {
    let mut h = Harness::new();
    let tasks = running(&mut h, 2, 1000, 1000);
    let fx = drain(&mut h, "agent-1", Some(DRAIN));
    assert!(
        Harness::killed(&fx).is_empty(),
        "floor is 2 healthy: nothing dies yet"
    );
    assert_eq!(
        h.state.waiting(h.now).len(),
        1,
        "a replacement waits for an offer"
    );
    assert_eq!(serving(&h), 2);
    // Shown: the queue says why it waits, the task where it still runs.
    let queue = crate::api::render::queue_json(&h.state, h.now);
    assert_eq!(queue["queue"][0]["draining"], 1, "{queue}");
    let shown: Vec<bool> = h
        .state
        .instances
        .values()
        .filter(|i| i.placed.is_some())
        .map(|i| {
            let app = h.state.apps.get(&i.app);
            crate::api::render::task_json(i, app, h.state.on_draining_agent(i))["draining"] == true
        })
        .collect();
    assert_eq!(shown.iter().filter(|d| **d).count(), 1, "{shown:?}");

    let fx = h.offer("agent-1");
    assert!(
        Harness::launched(&fx).is_empty(),
        "nothing lands on the draining agent"
    );
    assert!(fx.calls.iter().any(|c| matches!(c, Call::Decline { .. })));

    let fx = h.offer("agent-3");
    let new = Harness::launched(&fx);
    assert_eq!(new.len(), 1);
    assert!(
        Harness::killed(&fx).is_empty(),
        "the replacement is not running yet"
    );
    assert_eq!(serving(&h), 2);

    let fx = h.report(&new[0], TaskState::Running);
    assert_eq!(
        Harness::killed(&fx),
        vec![tasks[0].clone()],
        "then the old one goes"
    );
    assert!(serving(&h) >= 2, "never below the floor");
    h.report(&tasks[0], TaskState::Killed);
    assert_eq!(on(&h, "agent-1"), 0);
    assert_eq!(
        serving(&h),
        2,
        "the app is back at its count, off the agent"
    );
    let fx = h.drive();
    assert!(Harness::killed(&fx).is_empty() && h.state.waiting(h.now).is_empty());
}

#[test]
fn without_room_above_the_app_the_old_instance_goes_first_down_to_the_floor() {
    let mut h = Harness::new();
    let tasks = running(&mut h, 2, 500, 0);
    let fx = drain(&mut h, "agent-1", Some(DRAIN));
    assert_eq!(
        Harness::killed(&fx),
        vec![tasks[0].clone()],
        "ceil(2 × 0.5) = 1 healthy may remain, and no extra instance is allowed"
    );
    h.report(&tasks[0], TaskState::Killed);
    assert_eq!(serving(&h), 1, "the floor holds");
    let fx = h.offer("agent-3");
    let new = Harness::launched(&fx);
    assert_eq!(new.len(), 1, "the replacement lands elsewhere");
    h.report(&new[0], TaskState::Running);
    assert_eq!(serving(&h), 2);
    assert_eq!(on(&h, "agent-1"), 0);
}

#[test]
fn a_full_floor_with_no_room_moves_one_at_a_time() {
    let mut h = Harness::new();
    // {1.0, 0.0}: like a restart, one extra instance is allowed, or
    // nothing could ever move.
    let tasks = running(&mut h, 2, 1000, 0);
    let fx = drain(&mut h, "agent-2", Some(DRAIN));
    assert!(Harness::killed(&fx).is_empty());
    let fx = h.offer("agent-3");
    let new = Harness::launched(&fx);
    assert_eq!(new.len(), 1);
    let fx = h.report(&new[0], TaskState::Running);
    assert_eq!(Harness::killed(&fx), vec![tasks[1].clone()]);
    assert_eq!(serving(&h), 2, "the new one and the one that stays serve");
    assert_eq!(on(&h, "agent-2"), 0, "the old one is no longer wanted");
}

#[test]
fn undraining_before_the_move_stops_it_and_the_surplus_goes() {
    let mut h = Harness::new();
    running(&mut h, 2, 1000, 1000);
    drain(&mut h, "agent-1", Some(DRAIN));
    assert_eq!(h.state.waiting(h.now).len(), 1);
    let fx = drain(&mut h, "agent-1", None);
    assert!(
        Harness::killed(&fx).is_empty(),
        "nothing that runs is killed"
    );
    assert!(
        h.state.waiting(h.now).is_empty(),
        "the replacement that never launched is no longer wanted"
    );
    assert_eq!(on(&h, "agent-1"), 1, "the instance stays where it is");
    assert_eq!(serving(&h), 2);
}
