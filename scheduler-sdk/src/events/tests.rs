use std::collections::BTreeSet;

use agora_model::{FrameworkInfo, Resources, StatusSource, TaskId, TaskState};
use agora_proto::convert::{offer_to_wire, status_to_wire};

use super::*;

/// Records every callback as a line of text.
#[derive(Default)]
struct Recorder(Vec<String>);

impl Scheduler for Recorder {
    async fn offers(&mut self, _: &Driver, offers: Vec<Offer>) {
        self.0.push(format!("offers {}", offers.len()));
    }
    async fn rescinded(&mut self, _: &Driver, offer_id: OfferId) {
        self.0.push(format!("rescinded {offer_id}"));
    }
    async fn update(&mut self, _: &Driver, status: &TaskStatus) {
        self.0
            .push(format!("update {} {}", status.task_id, status.state));
    }
    async fn failure(&mut self, _: &Driver, agent_id: AgentId, status: Option<i32>) {
        self.0.push(format!("failure {agent_id} {status:?}"));
    }
    async fn agent_maintenance(&mut self, _: &Driver, agent_id: AgentId, drain: Option<Drain>) {
        let state = drain.map_or("undrained".to_string(), |d| {
            format!("draining since {}", d.since_unix_ms)
        });
        self.0.push(format!("maintenance {agent_id} {state}"));
    }
    async fn error(&mut self, _: &Driver, message: String) {
        self.0.push(format!("error {message}"));
    }
}

#[tokio::test]
async fn maintenance_notices_round_trip_and_reach_the_scheduler() {
    use agora_proto::convert::maintenance_to_wire;
    let agent = AgentId::new_unchecked("a1");
    let drain = Drain {
        since_unix_ms: 1_000,
        deadline_unix_ms: Some(61_000),
    };
    let mut rec = Recorder::default();
    for d in [Some(drain), None] {
        let ev = decode(wire(v1::event::Event::AgentMaintenance(
            maintenance_to_wire(&agent, d.as_ref()),
        )));
        assert_eq!(
            ev,
            Some(Event::AgentMaintenance {
                agent_id: agent.clone(),
                drain: d
            })
        );
        let flow = dispatch(&mut rec, &driver(), ev.expect("decoded"), true).await;
        assert_eq!(flow, Flow::Continue);
    }
    assert_eq!(
        rec.0,
        vec![
            "maintenance a1 draining since 1000",
            "maintenance a1 undrained"
        ]
    );
    let bad = v1::event::AgentMaintenance {
        agent_id: String::new(),
        draining: true,
        since_unix_ms: 1,
        deadline_unix_ms: None,
    };
    assert_eq!(
        decode(wire(v1::event::Event::AgentMaintenance(bad))),
        None,
        "a notice without an agent id is dropped"
    );
}

fn driver() -> Driver {
    Driver::new(
        FrameworkInfo::named("t"),
        BTreeSet::new(),
        Duration::from_secs(1),
    )
}

fn wire(e: v1::event::Event) -> v1::Event {
    v1::Event { event: Some(e) }
}

fn offer(id: &str) -> Offer {
    Offer {
        id: OfferId::new_unchecked(id),
        framework_id: FrameworkId::new_unchecked("f"),
        agent_id: AgentId::new_unchecked("a"),
        hostname: "h".into(),
        resources: Resources::cpus_mem_disk(1.0, 64.0, 0.0),
        attributes: Default::default(),
        role: Default::default(),
    }
}

fn status(task: &str, state: TaskState, uuid: bool) -> TaskStatus {
    let mut s = TaskStatus::new(TaskId::new_unchecked(task), state, StatusSource::Agent, 1.0);
    s.agent_id = Some(AgentId::new_unchecked("a"));
    s.uuid = uuid.then(uuid::Uuid::new_v4);
    s
}

#[test]
fn decode_maps_every_event_kind() {
    use v1::event as e;
    let sub = decode(wire(e::Event::Subscribed(e::Subscribed {
        framework_id: "f1".into(),
        heartbeat_interval_seconds: 0.2,
        stream_id: "s1".into(),
        master_id: "m".into(),
    })));
    assert_eq!(
        sub,
        Some(Event::Subscribed {
            framework_id: FrameworkId::new_unchecked("f1"),
            heartbeat_interval: Some(Duration::from_millis(200)),
            stream_id: "s1".into(),
            master_id: "m".into(),
        })
    );
    let mut bad = offer_to_wire(&offer("o2"));
    bad.resources[0].value = Some(v1::resource::Value::Scalar(-1.0));
    let offers = decode(wire(e::Event::Offers(e::Offers {
        offers: vec![offer_to_wire(&offer("o1")), bad],
    })));
    assert_eq!(
        offers,
        Some(Event::Offers(vec![offer("o1")])),
        "the malformed offer is dropped"
    );
    assert_eq!(
        decode(wire(e::Event::Rescind(e::Rescind {
            offer_id: "o1".into()
        }))),
        Some(Event::Rescind(OfferId::new_unchecked("o1")))
    );
    let st = status("t", TaskState::Running, true);
    assert_eq!(
        decode(wire(e::Event::Update(e::Update {
            status: Some(status_to_wire(&st))
        }))),
        Some(Event::Update(st))
    );
    assert_eq!(
        decode(wire(e::Event::Failure(e::Failure {
            agent_id: "a".into(),
            status: Some(3)
        }))),
        Some(Event::Failure {
            agent_id: AgentId::new_unchecked("a"),
            status: Some(3)
        })
    );
    assert_eq!(
        decode(wire(e::Event::Error(e::Error {
            message: "bye".into()
        }))),
        Some(Event::Error("bye".into()))
    );
    assert_eq!(
        decode(wire(e::Event::Heartbeat(e::Heartbeat {}))),
        Some(Event::Heartbeat)
    );
}

#[test]
fn decode_drops_unusable_events() {
    use v1::event as e;
    assert_eq!(decode(v1::Event { event: None }), None);
    assert_eq!(
        decode(wire(e::Event::Rescind(e::Rescind {
            offer_id: String::new()
        }))),
        None
    );
    assert_eq!(
        decode(wire(e::Event::Update(e::Update { status: None }))),
        None
    );
    let mut st = status_to_wire(&status("t", TaskState::Running, false));
    st.uuid = vec![1, 2];
    assert_eq!(
        decode(wire(e::Event::Update(e::Update { status: Some(st) }))),
        None
    );
    assert_eq!(
        decode(wire(e::Event::Failure(e::Failure {
            agent_id: "a b".into(),
            status: None
        }))),
        None
    );
    let sub = e::Subscribed {
        framework_id: String::new(),
        ..Default::default()
    };
    assert_eq!(decode(wire(e::Event::Subscribed(sub))), None);
}

#[test]
fn heartbeat_deadline_is_five_intervals_or_none() {
    assert_eq!(
        stream_deadline(Some(Duration::from_secs(15))),
        Some(Duration::from_secs(75))
    );
    assert_eq!(stream_deadline(None), None);
    assert_eq!(positive_seconds(0.0), None);
    assert_eq!(positive_seconds(f64::NAN), None);
    assert_eq!(positive_seconds(-1.0), None);
    assert_eq!(positive_seconds(0.5), Some(Duration::from_millis(500)));
}

#[tokio::test]
async fn dispatch_calls_back_in_order_and_plans_acks() {
    let d = driver();
    let mut rec = Recorder::default();
    let with_uuid = status("t1", TaskState::Running, true);
    let events = vec![
        (
            Event::Offers(vec![offer("o1"), offer("o2")]),
            Flow::Continue,
        ),
        (Event::Offers(vec![]), Flow::Continue),
        (Event::Rescind(OfferId::new_unchecked("o1")), Flow::Continue),
        (
            Event::Update(with_uuid.clone()),
            Flow::Acknowledge(with_uuid.clone()),
        ),
        (
            Event::Update(status("t2", TaskState::Unknown, false)),
            Flow::Continue,
        ),
        (
            Event::Failure {
                agent_id: AgentId::new_unchecked("a"),
                status: None,
            },
            Flow::Continue,
        ),
        (Event::Heartbeat, Flow::Continue),
        (
            Event::Error("go away".into()),
            Flow::Fatal("go away".into()),
        ),
    ];
    for (ev, want) in events {
        assert_eq!(dispatch(&mut rec, &d, ev, true).await, want);
    }
    assert_eq!(
        rec.0,
        [
            "offers 2",
            "rescinded o1",
            "update t1 TASK_RUNNING",
            "update t2 TASK_UNKNOWN",
            "failure a None",
            "error go away",
        ]
    );
}

#[tokio::test]
async fn manual_ack_mode_leaves_acks_to_the_author() {
    let d = driver();
    let mut rec = Recorder::default();
    let flow = dispatch(
        &mut rec,
        &d,
        Event::Update(status("t", TaskState::Finished, true)),
        false,
    )
    .await;
    assert_eq!(flow, Flow::Continue);
}

#[tokio::test]
async fn default_methods_are_harmless_without_a_connection() {
    struct Nothing;
    impl Scheduler for Nothing {}
    let d = driver();
    let mut s = Nothing;
    // The default offers() tries to decline, fails (not subscribed) and logs.
    assert_eq!(
        dispatch(&mut s, &d, Event::Offers(vec![offer("o")]), true).await,
        Flow::Continue
    );
    assert_eq!(
        dispatch(&mut s, &d, Event::Error("x".into()), true).await,
        Flow::Fatal("x".into())
    );
    // A &mut scheduler is a scheduler too.
    let mut rec = Recorder::default();
    dispatch(
        &mut &mut rec,
        &d,
        Event::Rescind(OfferId::new_unchecked("o")),
        true,
    )
    .await;
    assert_eq!(rec.0, ["rescinded o"]);
}
