//! Table tests of the core, one behaviour each, through `MasterHarness`.
use std::time::Duration;

use agora_model::{Capability, FrameworkInfo, Resources, TaskState, testkit};

use super::*;
use crate::core::InvalidTask;
use crate::registry::{LogEntry, RegistryCommand};

fn cfg() -> MasterConfig {
    MasterConfig::default()
}

fn cluster(agents: usize) -> (MasterHarness, Fw, Vec<Ag>) {
    let mut h = MasterHarness::new(cfg());
    let ags = (0..agents)
        .map(|_| h.register(testkit::agent_resources()))
        .collect();
    let fw = h.subscribe(testkit::framework("fw"));
    (h, fw, ags)
}

#[test]
fn a_subscription_is_answered_only_once_it_is_durable() {
    let mut h = MasterHarness::new(cfg());
    h.auto_commit = false;
    let token = h.token();
    let effects = h.input(Input::Subscribe {
        info: testkit::framework("fw"),
        suppressed: vec![],
        stream: StreamId::new_unchecked("s"),
        new_id: FrameworkId::new_unchecked("f"),
        reply: token,
    });
    assert_eq!(proposals_in(&effects), 1);
    assert!(
        reply_of(&effects, token).is_none(),
        "no answer before durable"
    );
    assert!(events_in(&effects, &FrameworkId::new_unchecked("f")).is_empty());
    let effects = h.commit();
    assert!(matches!(
        reply_of(&effects, token),
        Some(Reply::Subscribed(Ok(_)))
    ));
    assert!(matches!(
        events_in(&effects, &FrameworkId::new_unchecked("f"))[..],
        [FrameworkEvent::Subscribed { .. }]
    ));
    assert!(
        h.master
            .registry
            .frameworks
            .contains_key(&FrameworkId::new_unchecked("f"))
    );
}

#[test]
fn a_failed_write_refuses_the_subscription_and_changes_nothing() {
    let mut h = MasterHarness::new(cfg());
    h.auto_commit = false;
    let token = h.token();
    h.input(Input::Subscribe {
        info: testkit::framework("fw"),
        suppressed: vec![],
        stream: StreamId::new_unchecked("s"),
        new_id: FrameworkId::new_unchecked("f"),
        reply: token,
    });
    let seqs = std::mem::take(&mut h.undurable);
    let effects = h.input(Input::WriteFailed {
        seqs,
        reason: "disk full".into(),
    });
    assert!(matches!(
        reply_of(&effects, token),
        Some(Reply::Subscribed(Err(
            crate::error::CallError::Unavailable(_)
        )))
    ));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::CloseFramework { .. }))
    );
    assert!(h.master.frameworks.is_empty());
    assert!(h.master.registry.frameworks.is_empty());
}

#[test]
fn re_registering_a_known_agent_with_the_same_info_writes_nothing() {
    let mut h = MasterHarness::new(cfg());
    let ag = h.register(testkit::agent_resources());
    let before = proposals_in(&h.log);
    let again = h.register_with(Some(ag.id.clone()), testkit::agent_resources(), vec![]);
    assert_eq!(again.id, ag.id);
    assert_eq!(
        proposals_in(&h.log),
        before,
        "a no-op admission is not proposed"
    );
    let more = Resources::cpus_mem_disk(8.0, 4096.0, 10_000.0);
    h.register_with(Some(ag.id.clone()), more.clone(), vec![]);
    assert_eq!(proposals_in(&h.log), before + 1);
    assert_eq!(h.master.registry.agents[&ag.id].resources, more);
}

#[test]
fn an_accepted_offer_launches_and_the_tallies_follow_the_task() {
    let (mut h, fw, ags) = cluster(1);
    let offers = offers_in(&h.allocate(), &fw.id);
    assert_eq!(offers.len(), 1);
    assert_eq!(
        h.master.agents[&ags[0].id].offered,
        testkit::agent_resources()
    );
    let effects = h.accept(
        &fw,
        &[offers[0].id.clone()],
        vec![template("t1", testkit::small())],
    );
    assert!(matches!(
        to_agent_in(&effects, &ags[0].id)[..],
        [ToAgent::Launch { .. }]
    ));
    let a = &h.master.agents[&ags[0].id];
    assert_eq!(a.used, testkit::small());
    assert!(a.offered.is_empty());
    h.agent_update(
        &ags[0],
        &fw.id,
        status(&TaskId::new_unchecked("t1"), TaskState::Finished),
    );
    assert!(h.master.agents[&ags[0].id].used.is_empty());
    assert!(h.master.frameworks[&fw.id].used.is_empty());
    assert_eq!(h.master.task_counts.values().sum::<usize>(), 0);
}

#[test]
fn an_invalid_task_in_an_accept_gets_task_error_and_the_others_launch() {
    let (mut h, fw, ags) = cluster(1);
    let offers = offers_in(&h.allocate(), &fw.id);
    let (effects, answer) = h.call(
        &fw,
        SchedulerCall::Accept {
            offer_ids: vec![offers[0].id.clone()],
            tasks: vec![
                Err(InvalidTask {
                    task_id: "bad".into(),
                    reason: "resources[0].scalar: negative".into(),
                }),
                Ok(template("good", testkit::small())),
                Ok(template("huge", Resources::cpus_mem_disk(64.0, 32.0, 0.0))),
            ],
            refuse_seconds: None,
        },
    );
    assert_eq!(answer, Some(Ok(())));
    let states: Vec<(String, TaskState)> = updates_in(&effects, &fw.id)
        .iter()
        .map(|s| (s.task_id.to_string(), s.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("bad".into(), TaskState::Error),
            ("huge".into(), TaskState::Error)
        ]
    );
    assert_eq!(to_agent_in(&effects, &ags[0].id).len(), 1);
}

#[test]
fn repeated_declines_of_one_agent_keep_one_filter() {
    let (mut h, fw, _) = cluster(1);
    for _ in 0..5 {
        h.advance(Duration::from_secs(10));
        h.input(Input::Housekeeping);
        let offers = offers_in(&h.allocate(), &fw.id);
        assert_eq!(offers.len(), 1);
        let (_, answer) = h.call(
            &fw,
            SchedulerCall::Decline {
                offer_ids: vec![offers[0].id.clone()],
                refuse_seconds: Some(5.0),
            },
        );
        assert_eq!(answer, Some(Ok(())));
        assert_eq!(h.master.frameworks[&fw.id].filters.len(), 1);
        assert!(offers_in(&h.allocate(), &fw.id).is_empty(), "filtered");
    }
}

#[test]
fn dropped_offer_events_return_the_offers_and_a_congested_framework_gets_none() {
    let (mut h, fw, ags) = cluster(2);
    let offers = offers_in(&h.allocate(), &fw.id);
    assert_eq!(offers.len(), 2);
    h.input(Input::FrameworkEventsDropped {
        framework: fw.id.clone(),
        stream: fw.stream.clone(),
        offers: offers.iter().map(|o| o.id.clone()).collect(),
    });
    assert!(h.master.offers.is_empty());
    assert!(h.master.agents[&ags[0].id].offered.is_empty());
    let effects = h.input(Input::Allocate {
        congested: [fw.id.clone()].into(),
    });
    assert!(offers_in(&effects, &fw.id).is_empty());
    assert!(
        h.master.frameworks[&fw.id].connected(),
        "never disconnected for it"
    );
    assert_eq!(offers_in(&h.allocate(), &fw.id).len(), 2);
}

#[test]
fn a_framework_without_failover_timeout_is_removed_durably_and_its_tasks_killed() {
    let (mut h, fw, ags) = cluster(1);
    let offers = offers_in(&h.allocate(), &fw.id);
    h.accept(
        &fw,
        &[offers[0].id.clone()],
        vec![template("t1", testkit::small())],
    );
    let effects = h.input(Input::FrameworkStreamClosed {
        framework: fw.id.clone(),
        stream: fw.stream.clone(),
    });
    assert!(matches!(
        to_agent_in(&effects, &ags[0].id)[..],
        [ToAgent::Kill { .. }]
    ));
    assert!(h.master.registry.removed_frameworks.contains_key(&fw.id));
    let (effects, token) = h.resubscribe(&fw.id, "again");
    assert!(matches!(
        reply_of(&effects, token),
        Some(Reply::Subscribed(Err(
            crate::error::CallError::PermissionDenied(_)
        )))
    ));
}

#[test]
fn a_lost_agent_is_marked_durably_before_its_tasks_are_reported() {
    let mut h = MasterHarness::new(cfg());
    let ag = h.register(testkit::agent_resources());
    let info = FrameworkInfo {
        capabilities: [Capability::PartitionAware].into(),
        ..testkit::framework("pa")
    };
    let fw = h.subscribe(info);
    let offers = offers_in(&h.allocate(), &fw.id);
    h.accept(
        &fw,
        &[offers[0].id.clone()],
        vec![template("t1", testkit::small())],
    );
    h.auto_commit = false;
    let effects = h.lose_agent(&ag);
    assert!(effects.iter().any(|e| matches!(e,
        Effect::Propose { entry, .. } if matches!(**entry, LogEntry::V1(RegistryCommand::MarkUnreachable { .. })))));
    assert!(
        updates_in(&effects, &fw.id).is_empty(),
        "not before durable"
    );
    let effects = h.commit();
    let states: Vec<TaskState> = updates_in(&effects, &fw.id)
        .iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(states, vec![TaskState::Unreachable]);
    assert!(
        events_in(&effects, &fw.id)
            .iter()
            .any(|e| matches!(e, FrameworkEvent::Failure(a) if a == &ag.id))
    );
}

#[test]
fn a_kill_while_the_agent_is_away_goes_out_when_it_attaches_again() {
    let (mut h, fw, ags) = cluster(1);
    let offers = offers_in(&h.allocate(), &fw.id);
    h.accept(
        &fw,
        &[offers[0].id.clone()],
        vec![template("t1", testkit::small())],
    );
    h.input(Input::AgentStreamClosed {
        agent: ags[0].id.clone(),
        session: ags[0].session.clone(),
    });
    let (effects, _) = h.call(
        &fw,
        SchedulerCall::Kill {
            task: TaskId::new_unchecked("t1"),
            agent: None,
            grace: None,
        },
    );
    assert!(to_agent_in(&effects, &ags[0].id).is_empty());
    let spec = template("t1", testkit::small()).bind(ags[0].id.clone());
    let back = h.register_with(
        Some(ags[0].id.clone()),
        testkit::agent_resources(),
        vec![ReportedTask {
            framework: fw.id.clone(),
            spec,
            state: TaskState::Running,
            healthy: None,
        }],
    );
    let kills = h
        .log
        .iter()
        .filter(|e| matches!(e, Effect::ToAgent { session, msg: ToAgent::Kill { .. }, .. } if session == &back.session))
        .count();
    assert_eq!(kills, 1);
}

#[test]
fn the_registry_brings_frameworks_back_after_a_master_restart() {
    let (h, fw, _) = cluster(1);
    let registry = h.master.registry.clone();
    let mut h2 = MasterHarness::with_registry(cfg(), registry);
    assert!(!h2.master.frameworks[&fw.id].connected());
    let (effects, token) = h2.resubscribe(&fw.id, "s2");
    assert!(matches!(reply_of(&effects, token), Some(Reply::Subscribed(Ok(id))) if id == &fw.id));
    assert_eq!(proposals_in(&effects), 0, "same info: nothing to write");
}

#[test]
fn a_batch_of_acknowledgements_relays_the_valid_ones_and_names_the_first_bad_one() {
    let (mut h, fw, ags) = cluster(1);
    let uuid = uuid::Uuid::new_v4();
    let (effects, answer) = h.call(
        &fw,
        SchedulerCall::AcknowledgeMany {
            acks: vec![
                (ags[0].id.clone(), TaskId::new_unchecked("t1"), uuid),
                (
                    AgentId::new_unchecked("nobody"),
                    TaskId::new_unchecked("t2"),
                    uuid,
                ),
                (ags[0].id.clone(), TaskId::new_unchecked("t3"), uuid),
            ],
        },
    );
    let relayed: Vec<String> = to_agent_in(&effects, &ags[0].id)
        .iter()
        .filter_map(|m| match m {
            ToAgent::Acknowledge { task, .. } => Some(task.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(relayed, ["t1", "t3"]);
    let err = answer
        .expect("answered")
        .expect_err("a bad acknowledgement");
    assert!(err.contains("acknowledgements[1].agent_id"), "{err}");
}
