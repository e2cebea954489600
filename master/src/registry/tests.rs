use super::*;
use proptest::prelude::*;

fn rec(cpus: f64) -> AgentRecord {
    AgentRecord {
        hostname: "h".into(),
        port: 5051,
        resources: Resources::cpus_mem_disk(cpus, 64.0, 0.0),
        attributes: Default::default(),
    }
}

fn agent(n: u8) -> AgentId {
    AgentId::new_unchecked(format!("a{n}"))
}

#[test]
fn apply_is_deterministic_and_rejects_without_change() {
    let a = agent(1);
    let log = [
        RegistryCommand::AdmitAgent {
            id: a.clone(),
            record: rec(1.0),
        },
        RegistryCommand::MarkUnreachable {
            id: a.clone(),
            at_unix_ms: 7,
        },
        RegistryCommand::MarkUnreachable {
            id: a.clone(),
            at_unix_ms: 9,
        },
        RegistryCommand::SetWeight {
            role: Role::parse("web").unwrap(),
            weight: 2.0,
        },
    ];
    let mut r1 = Registry::default();
    let mut r2 = Registry::default();
    for c in log {
        r1.apply(&LogEntry::V1(c.clone())).unwrap();
        r2.apply(&LogEntry::V1(c)).unwrap();
    }
    assert_eq!(r1, r2);
    assert_eq!(r1.unreachable[&a], 7, "first unreachable time is kept");
    let before = r1.clone();
    let bad = [
        RegistryCommand::MarkReachable { id: agent(99) },
        RegistryCommand::SetWeight {
            role: Role::star(),
            weight: f64::NAN,
        },
    ];
    for c in bad {
        assert!(r1.apply(&LogEntry::V1(c)).is_err());
    }
    assert_eq!(r1, before);
}

fn drain(since_unix_ms: u64, deadline_unix_ms: Option<u64>) -> RegistryCommand {
    RegistryCommand::DrainAgent {
        id: agent(1),
        drain: Drain {
            since_unix_ms,
            deadline_unix_ms,
        },
    }
}

#[test]
fn drain_keeps_its_start_and_ends_with_undrain_or_removal() {
    let mut r = Registry::default();
    assert_eq!(
        r.apply(&LogEntry::V1(drain(5, None))),
        Err(RegistryReject::UnknownAgent(agent(1))),
        "only admitted agents drain"
    );
    assert!(r.maintenance.is_empty());
    r.apply(&LogEntry::V1(RegistryCommand::AdmitAgent {
        id: agent(1),
        record: rec(1.0),
    }))
    .unwrap();
    r.apply(&LogEntry::V1(drain(5, None))).unwrap();
    assert!(
        !r.changes(&drain(9, None)),
        "draining again changes nothing"
    );
    assert!(r.changes(&drain(9, Some(60))), "a new deadline is a change");
    r.apply(&LogEntry::V1(drain(9, Some(60)))).unwrap();
    assert_eq!(
        r.drain_of(&agent(1)),
        Some(&Drain {
            since_unix_ms: 5,
            deadline_unix_ms: Some(60)
        })
    );
    let undrain = RegistryCommand::UndrainAgent { id: agent(1) };
    assert!(r.changes(&undrain));
    r.apply(&LogEntry::V1(undrain.clone())).unwrap();
    assert!(r.drain_of(&agent(1)).is_none());
    assert!(
        !r.changes(&undrain),
        "undraining an agent that does not drain changes nothing"
    );
    r.apply(&LogEntry::V1(drain(7, None))).unwrap();
    r.apply(&LogEntry::V1(RegistryCommand::RemoveAgent { id: agent(1) }))
        .unwrap();
    assert!(
        r.maintenance.is_empty(),
        "a removed agent's drain goes with it"
    );
}

#[test]
fn unreachable_agents_expire_by_age_then_by_count() {
    let mut r = Registry::default();
    for (n, at) in [(1, 100), (2, 200), (3, 300)] {
        r.apply(&LogEntry::V1(RegistryCommand::AdmitAgent {
            id: agent(n),
            record: rec(1.0),
        }))
        .unwrap();
        r.apply(&LogEntry::V1(RegistryCommand::MarkUnreachable {
            id: agent(n),
            at_unix_ms: at,
        }))
        .unwrap();
    }
    let names = |v: Vec<AgentId>| v.into_iter().map(|i| i.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(r.expired_unreachable(1000, 750, 10)),
        vec!["a1", "a2"]
    );
    assert_eq!(
        names(r.expired_unreachable(300, 10_000, 1)),
        vec!["a1", "a2"]
    );
    assert!(r.expired_unreachable(300, 10_000, 3).is_empty());
}

#[test]
fn entries_are_versioned_on_the_wire() {
    let e = LogEntry::V1(RegistryCommand::MarkReachable { id: agent(1) });
    let json = serde_json::to_string(&e).unwrap();
    assert!(json.starts_with(r#"{"v":"V1""#), "{json}");
    assert_eq!(serde_json::from_str::<LogEntry>(&json).unwrap(), e);
}

fn command() -> impl Strategy<Value = RegistryCommand> {
    let id = (0u8..4).prop_map(agent);
    let fw = (0u8..3).prop_map(|n| FrameworkId::new_unchecked(format!("f{n}")));
    prop_oneof![
        (id.clone(), 1u8..3).prop_map(|(id, c)| RegistryCommand::AdmitAgent {
            id,
            record: rec(f64::from(c)),
        }),
        (id.clone(), 0u64..100)
            .prop_map(|(id, at_unix_ms)| RegistryCommand::MarkUnreachable { id, at_unix_ms }),
        id.clone()
            .prop_map(|id| RegistryCommand::MarkReachable { id }),
        id.clone()
            .prop_map(|id| RegistryCommand::RemoveAgent { id }),
        (id.clone(), 0u64..100, proptest::option::of(0u64..3)).prop_map(
            |(id, since_unix_ms, deadline_unix_ms)| RegistryCommand::DrainAgent {
                id,
                drain: Drain {
                    since_unix_ms,
                    deadline_unix_ms,
                },
            }
        ),
        id.prop_map(|id| RegistryCommand::UndrainAgent { id }),
        (fw.clone(), 0u64..3).prop_map(|(id, t)| RegistryCommand::PutFramework {
            record: FrameworkRecord {
                info: FrameworkInfo {
                    id: Some(id.clone()),
                    ..FrameworkInfo::named("f")
                },
                registered_unix_ms: t,
            },
            id,
        }),
        (fw, 0u64..100)
            .prop_map(|(id, at_unix_ms)| RegistryCommand::RemoveFramework { id, at_unix_ms }),
    ]
}

proptest! {
    /// Replaying a log gives the same registry, `changes` is exactly "apply
    /// would change something", and a JSON round trip loses nothing (what the
    /// store and, later, the replicated log rely on).
    #[test]
    fn log_replay_is_deterministic_and_changes_is_exact(
        log in proptest::collection::vec(command(), 0..40)
    ) {
        let mut a = Registry::default();
        for cmd in &log {
            let before = a.clone();
            let predicted = a.changes(cmd);
            let _ = a.apply(&LogEntry::V1(cmd.clone()));
            prop_assert_eq!(predicted, a != before, "{:?}", cmd);
        }
        let mut b = Registry::default();
        for cmd in &log {
            let json = serde_json::to_string(&LogEntry::V1(cmd.clone())).unwrap();
            let _ = b.apply(&serde_json::from_str(&json).unwrap());
        }
        prop_assert_eq!(&a, &b);
        let round: Registry = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        prop_assert_eq!(round, a);
    }
}
