//! Maintenance through the core: a draining agent makes no offers (its
//! outstanding ones are rescinded), its tasks keep running, frameworks are
//! told (and told again on re-subscription), and undraining brings its
//! offers back. The drain is answered only once durable.
use std::time::Duration;

use agora_model::{Drain, Resources, testkit};

use super::*;
use crate::core::MaintenanceChange;
use crate::error::CallError;

fn set(h: &mut MasterHarness, agent: &AgentId, change: MaintenanceChange) -> Vec<Effect> {
    let reply = h.token();
    let effects = h.input(Input::SetMaintenance {
        agent: agent.clone(),
        change,
        reply,
    });
    assert!(
        matches!(reply_of(&effects, reply), Some(Reply::Done(Ok(())))),
        "{change:?} answered {:?}",
        reply_of(&effects, reply)
    );
    effects
}

fn drain() -> MaintenanceChange {
    MaintenanceChange::Drain {
        deadline: Some(Duration::from_secs(60)),
    }
}

fn offered_agents(effects: &[Effect], fw: &FrameworkId) -> BTreeSet<AgentId> {
    offers_in(effects, fw)
        .into_iter()
        .map(|o| o.agent_id)
        .collect()
}

fn notices(effects: &[Effect], fw: &FrameworkId) -> Vec<(AgentId, Option<Drain>)> {
    events_in(effects, fw)
        .into_iter()
        .filter_map(|e| match e {
            FrameworkEvent::AgentMaintenance { agent, drain } => Some((agent.clone(), *drain)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_draining_agent_gets_no_offers_and_offers_return_after_undrain() {
    let mut h = MasterHarness::new(MasterConfig::default());
    let a = h.register(testkit::agent_resources());
    h.register(testkit::agent_resources());
    let fw = h.subscribe(testkit::framework("fw"));
    let first = h.allocate();
    let offers = offers_in(&first, &fw.id);
    assert_eq!(offered_agents(&first, &fw.id).len(), 2);
    // A task on `a` keeps running through the drain.
    let on_a = offers
        .iter()
        .find(|o| o.agent_id == a.id)
        .expect("offer on a");
    let task = template("t1", Resources::cpus_mem_disk(1.0, 64.0, 0.0));
    h.accept(&fw, std::slice::from_ref(&on_a.id), vec![task]);
    // Past the default filter on the unused remainder.
    h.advance(Duration::from_secs(6));
    let more = h.allocate();
    let pending: Vec<OfferId> = offers_in(&more, &fw.id)
        .into_iter()
        .filter(|o| o.agent_id == a.id)
        .map(|o| o.id)
        .collect();
    assert!(!pending.is_empty(), "the rest of a is offered again");

    let effects = set(&mut h, &a.id, drain());
    let rescinded: Vec<&OfferId> = events_in(&effects, &fw.id)
        .into_iter()
        .filter_map(|e| match e {
            FrameworkEvent::Rescind(id) => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(
        rescinded,
        pending.iter().collect::<Vec<_>>(),
        "a's offers are rescinded"
    );
    let told = notices(&effects, &fw.id);
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].0, a.id);
    let d = told[0].1.expect("draining");
    assert_eq!(d.deadline_unix_ms, Some(d.since_unix_ms + 60_000));
    assert!(
        h.master.registry.drain_of(&a.id).is_some(),
        "durable in the registry"
    );
    assert!(
        to_agent_in(&effects, &a.id).is_empty(),
        "nothing is killed: tasks stay until the framework moves them"
    );
    h.advance(Duration::from_secs(10));
    let during = h.allocate();
    assert!(
        !offered_agents(&during, &fw.id).contains(&a.id),
        "no offer from a draining agent"
    );
    let t1 = h.master.tasks.keys().find(|k| k.task.as_str() == "t1");
    assert!(
        t1.is_some(),
        "the task on the draining agent is still there"
    );

    let effects = set(&mut h, &a.id, MaintenanceChange::Undrain);
    assert_eq!(notices(&effects, &fw.id), vec![(a.id.clone(), None)]);
    let after = h.allocate();
    assert!(
        offered_agents(&after, &fw.id).contains(&a.id),
        "offers from a again"
    );
}

#[test]
fn a_framework_that_subscribes_during_a_drain_is_told() {
    let mut h = MasterHarness::new(MasterConfig::default());
    let a = h.register(testkit::agent_resources());
    let fw = h.subscribe(testkit::framework("fw"));
    set(&mut h, &a.id, drain());
    let (effects, _) = h.resubscribe(&fw.id, "s-again");
    let told = notices(&effects, &fw.id);
    assert_eq!(told.len(), 1, "{effects:?}");
    assert_eq!(told[0].0, a.id);
    assert!(told[0].1.is_some());
}

#[test]
fn drain_is_answered_once_durable_and_unknown_agents_are_not_found() {
    let mut h = MasterHarness::new(MasterConfig::default());
    let a = h.register(testkit::agent_resources());
    h.auto_commit = false;
    let reply = h.token();
    let effects = h.input(Input::SetMaintenance {
        agent: a.id.clone(),
        change: drain(),
        reply,
    });
    assert_eq!(proposals_in(&effects), 1);
    assert!(
        reply_of(&effects, reply).is_none(),
        "no answer before durable"
    );
    assert!(h.master.registry.drain_of(&a.id).is_none());
    let effects = h.commit();
    assert!(matches!(
        reply_of(&effects, reply),
        Some(Reply::Done(Ok(())))
    ));
    // Draining again writes nothing and is answered at once.
    let again = h.token();
    let effects = h.input(Input::SetMaintenance {
        agent: a.id.clone(),
        change: MaintenanceChange::Drain {
            deadline: Some(Duration::from_secs(60)),
        },
        reply: again,
    });
    assert!(matches!(
        reply_of(&effects, again),
        Some(Reply::Done(Ok(())))
    ));
    let unknown = h.token();
    let effects = h.input(Input::SetMaintenance {
        agent: AgentId::new_unchecked("nobody"),
        change: drain(),
        reply: unknown,
    });
    assert!(matches!(
        reply_of(&effects, unknown),
        Some(Reply::Done(Err(CallError::NotFound(_))))
    ));
    assert_eq!(proposals_in(&effects), 0);
}

#[test]
fn a_new_core_keeps_the_drain_from_its_registry() {
    let mut h = MasterHarness::new(MasterConfig::default());
    let a = h.register(testkit::agent_resources());
    set(&mut h, &a.id, drain());
    let registry = h.master.registry.clone();
    let mut next = MasterHarness::with_registry(MasterConfig::default(), registry);
    let again = next.register_with(Some(a.id.clone()), testkit::agent_resources(), vec![]);
    let fw = next.subscribe(testkit::framework("fw"));
    let effects = next.allocate();
    assert!(next.master.registry.drain_of(&again.id).is_some());
    assert!(
        offers_in(&effects, &fw.id).is_empty(),
        "still no offers from it"
    );
}
