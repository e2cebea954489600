//! Bad input from frameworks, one test per kind: unknown and already-used
//! offers, resources beyond the offer, duplicate task ids, offers from two
//! agents in one ACCEPT, unknown agents, calls before SUBSCRIBED, malformed
//! resources and ids, and an invalid FrameworkInfo.
use std::time::Duration;

use agora_proto::convert::resources_to_wire;
use agora_proto::v1;
use agora_scheduler_sdk::model::{
    AgentId, FrameworkInfo, OfferId, ResourceRequest, Resources, Role, StatusSource, TaskId,
    TaskState, TaskStatus, TaskStatusReason,
};
use agora_scheduler_sdk::{OfferResources, SchedulerDriver, SdkError, TaskBuilder};
use agora_tests::{TaskBehaviour, TestMaster};
use tokio_stream::StreamExt;

use crate::scheduler_support::{Ev, Fw, agent, builder, info, pa_info, small_task};

#[tokio::test]
async fn unknown_and_already_used_offer_ids_fail_the_tasks_with_invalid_offers()
-> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("bad-offers")).await;
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;

    // Unknown offer id: the call is accepted, the task is reported lost.
    let mut forged = offer.clone();
    forged.id = OfferId::new_unchecked("no-such-offer");
    fw.driver
        .launch(&forged, vec![small_task("t0", &offer)])
        .await?;
    let st = fw.update("t0").await;
    assert_eq!(
        (st.state, st.reason),
        (TaskState::Lost, TaskStatusReason::InvalidOffers)
    );
    assert!(st.message.contains("no longer valid"), "{}", st.message);

    // The real offer works once ...
    fw.driver
        .launch(&offer, vec![small_task("t1", &offer)])
        .await?;
    fw.state("t1", TaskState::Running).await;
    // ... and not twice.
    fw.driver
        .launch(&offer, vec![small_task("t2", &offer)])
        .await?;
    let st = fw.update("t2").await;
    assert_eq!(
        (st.state, st.reason),
        (TaskState::Lost, TaskStatusReason::InvalidOffers)
    );
    // Declining a used offer is harmless.
    fw.driver.decline(vec![offer.id.clone()], None).await?;
    fw.stop().await;

    // Partition-aware frameworks get TASK_DROPPED instead.
    let mut pa = Fw::start(&master, pa_info("bad-offers-pa")).await;
    let o = pa.offer_on(&agent_id).await;
    let mut forged = o.clone();
    forged.id = OfferId::new_unchecked("no-such-offer");
    pa.driver
        .launch(&forged, vec![small_task("t0", &o)])
        .await?;
    assert_eq!(pa.update("t0").await.state, TaskState::Dropped);
    pa.stop().await;
    Ok(())
}

#[tokio::test]
async fn tasks_beyond_the_offer_or_with_duplicate_ids_get_task_error() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("bad-tasks")).await;
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;
    let big = |id: &str, cpus: f64| {
        TaskBuilder::new(id)
            .shell("x")
            .resources(Resources::cpus_mem_disk(cpus, 32.0, 0.0))
            .build(&agent_id)
            .expect("structurally valid")
    };
    // t1 takes 0.6 cpus; t1 again is a duplicate; t2 wants 0.6 of the 0.4 left; t3 fits.
    let tasks = vec![
        big("t1", 0.6),
        big("t1", 0.1),
        big("t2", 0.6),
        big("t3", 0.4),
    ];
    fw.driver
        .accept(vec![offer.id.clone()], tasks, None)
        .await?;
    let dup = fw
        .expect("TASK_ERROR for the duplicate", |e| match e {
            Ev::Update(s) if s.task_id.as_str() == "t1" && s.state == TaskState::Error => {
                Some(s.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(dup.reason, TaskStatusReason::TaskInvalid);
    assert!(dup.message.contains("already in use"), "{}", dup.message);
    let beyond = fw.state("t2", TaskState::Error).await;
    assert!(
        beyond.message.contains("more resources"),
        "{}",
        beyond.message
    );
    fw.state("t1", TaskState::Running).await;
    fw.state("t3", TaskState::Running).await;

    // Re-using a running task's id in a later ACCEPT is a duplicate too.
    fw.driver.revive(vec![]).await?;
    let (_agent2, agent2) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let o2 = fw.offer_on(&agent2).await;
    fw.driver.launch(&o2, vec![small_task("t3", &o2)]).await?;
    let st = fw.state("t3", TaskState::Error).await;
    assert!(st.message.contains("already in use"), "{}", st.message);
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn offers_from_two_agents_in_one_accept_are_refused_and_returned() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("two-agents")).await;
    let (_a1, id1) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let (_a2, id2) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let o1 = fw.offer_on(&id1).await;
    let o2 = fw.offer_on(&id2).await;
    fw.driver
        .accept(
            vec![o1.id.clone(), o2.id.clone()],
            vec![small_task("t1", &o1)],
            None,
        )
        .await?;
    let st = fw.update("t1").await;
    assert_eq!(
        (st.state, st.reason),
        (TaskState::Lost, TaskStatusReason::InvalidOffers)
    );
    assert!(st.message.contains("more than one agent"), "{}", st.message);
    // Both offers went back to the pool without a filter and are offered again.
    fw.offer_on(&id1).await;
    fw.offer_on(&id2).await;
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn unknown_agents_are_rejected_or_reported() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("unknown-agent")).await;
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;

    // ACKNOWLEDGE naming an agent the master does not know.
    let mut st = TaskStatus::new(
        TaskId::new_unchecked("t"),
        TaskState::Running,
        StatusSource::Agent,
        0.0,
    );
    st.agent_id = Some(AgentId::new_unchecked("no-such-agent"));
    st.uuid = Some(uuid::Uuid::new_v4());
    let err = fw.driver.acknowledge(&st).await.expect_err("unknown agent");
    assert!(
        matches!(err, SdkError::Rejected(ref m) if m.contains("unknown agent")),
        "{err:?}"
    );

    // A task addressed to another agent than its offer's.
    let mut res = OfferResources::new(&offer);
    let carved = res.take(&ResourceRequest::new(0.1, 32.0)).expect("fits");
    let elsewhere = TaskBuilder::new("t1")
        .shell("x")
        .resources(carved)
        .build(&AgentId::new_unchecked("elsewhere"))?;
    fw.driver
        .accept(vec![offer.id.clone()], vec![elsewhere], None)
        .await?;
    let st = fw.state("t1", TaskState::Error).await;
    assert!(st.message.contains("does not match"), "{}", st.message);
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn calls_before_subscribed_or_on_a_stale_stream_are_refused() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    // The SDK refuses locally before its first subscription (nothing is sent).
    let unreachable = SchedulerDriver::builder(["127.0.0.1:1"], info("early")).build()?;
    let early = unreachable
        .driver()
        .decline(vec![OfferId::new_unchecked("o")], None)
        .await;
    assert!(
        matches!(early, Err(SdkError::NotSubscribed(_))),
        "{early:?}"
    );

    // The master refuses calls of a framework that never subscribed ...
    let mut client = v1::scheduler_client::SchedulerClient::connect(master.endpoint()).await?;
    let header = |fw: &str, stream: &str| {
        Some(v1::CallHeader {
            framework_id: fw.into(),
            stream_id: stream.into(),
        })
    };
    let err = client
        .revive(v1::ReviveRequest {
            header: header("nobody", "s"),
            roles: vec![],
        })
        .await
        .expect_err("not subscribed");
    assert!(matches!(SdkError::from(err), SdkError::NotSubscribed(_)));
    // ... and calls without a header.
    let err = client
        .revive(v1::ReviveRequest {
            header: None,
            roles: vec![],
        })
        .await
        .expect_err("no header");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // A subscription replaced by a newer one: its stream id is stale.
    let info = v1::FrameworkInfo {
        name: "stale".into(),
        failover_timeout_seconds: 30.0,
        ..Default::default()
    };
    let mut first = client
        .subscribe(v1::SubscribeRequest {
            framework_info: Some(info.clone()),
            suppressed_roles: vec![],
        })
        .await?
        .into_inner();
    let (fw, stream1) = match first.next().await {
        Some(Ok(v1::Event {
            event: Some(v1::event::Event::Subscribed(s)),
        })) => (s.framework_id, s.stream_id),
        other => anyhow::bail!("expected SUBSCRIBED, got {other:?}"),
    };
    let again = v1::FrameworkInfo {
        framework_id: fw.clone(),
        ..info
    };
    let _second = client
        .subscribe(v1::SubscribeRequest {
            framework_info: Some(again),
            suppressed_roles: vec![],
        })
        .await?
        .into_inner();
    let err = client
        .revive(v1::ReviveRequest {
            header: header(&fw, &stream1),
            roles: vec![],
        })
        .await
        .expect_err("stale stream");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    Ok(())
}

#[tokio::test]
async fn malformed_resources_and_ids_are_refused() -> anyhow::Result<()> {
    // The SDK cannot even express malformed resource strings.
    for bad in [
        "cpus:-1",
        "cpus:abc",
        "mem:",
        "ports:[2-1]",
        "gpus:0.5",
        "cpus(a b):1",
        "ports:[1-70000]",
    ] {
        assert!(Resources::parse(bad).is_err(), "{bad} parsed");
    }
    let master = TestMaster::start().await;
    // Suppressed, so the agent's offer goes to the raw framework below.
    let fw =
        Fw::start_with(builder(&master, info("malformed")).suppressed_roles([Role::star()])).await;
    let (_agent, _agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;

    // Malformed ids are refused synchronously.
    let err = fw
        .driver
        .decline(vec![OfferId::new_unchecked("a b")], None)
        .await
        .expect_err("bad offer id");
    assert!(
        matches!(err, SdkError::Rejected(ref m) if m.contains("offer_ids[0]")),
        "{err:?}"
    );
    let err = fw
        .driver
        .kill(&TaskId::new_unchecked(""), None, None)
        .await
        .expect_err("empty task id");
    assert!(
        matches!(err, SdkError::Rejected(ref m) if m.contains("task_id")),
        "{err:?}"
    );

    // A raw client on the framework's own subscription sends resources the
    // model would never produce; each such task fails with TASK_ERROR.
    let mut raw = v1::scheduler_client::SchedulerClient::connect(master.endpoint()).await?;
    let scalar = |name: &str, v: f64| v1::Resource {
        name: name.into(),
        role: String::new(),
        value: Some(v1::resource::Value::Scalar(v)),
    };
    let cases: Vec<(&str, Vec<v1::Resource>)> = vec![
        ("negative", vec![scalar("cpus", -1.0), scalar("mem", 32.0)]),
        ("nan", vec![scalar("cpus", f64::NAN), scalar("mem", 32.0)]),
        ("no-name", vec![scalar("", 1.0), scalar("mem", 32.0)]),
        (
            "cpus-as-set",
            vec![
                v1::Resource {
                    name: "cpus".into(),
                    role: String::new(),
                    value: Some(v1::resource::Value::Set(v1::StringSet {
                        items: vec!["x".into()],
                    })),
                },
                scalar("mem", 32.0),
            ],
        ),
        (
            "bad-role",
            vec![
                v1::Resource {
                    role: "a b".into(),
                    ..scalar("cpus", 0.1)
                },
                scalar("mem", 32.0),
            ],
        ),
        (
            "no-value",
            vec![
                v1::Resource {
                    value: None,
                    ..scalar("cpus", 0.1)
                },
                scalar("mem", 32.0),
            ],
        ),
    ];
    let ok = resources_to_wire(&Resources::cpus_mem_disk(0.1, 32.0, 0.0));
    let mut task_infos: Vec<v1::TaskInfo> = cases
        .iter()
        .map(|(id, resources)| v1::TaskInfo {
            task_id: (*id).into(),
            resources: resources.clone(),
            command: Some(v1::CommandInfo {
                shell: true,
                value: "x".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    task_infos.push(v1::TaskInfo {
        task_id: "fine".into(),
        resources: ok,
        command: Some(v1::CommandInfo {
            shell: true,
            value: "x".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    // Raw wire messages need a raw subscription (the SDK keeps its stream id private).
    let fresh = v1::FrameworkInfo {
        name: "raw".into(),
        ..Default::default()
    };
    let mut events = raw
        .subscribe(v1::SubscribeRequest {
            framework_info: Some(fresh),
            suppressed_roles: vec![],
        })
        .await?
        .into_inner();
    let mut header = None;
    let mut raw_offer = None;
    while raw_offer.is_none() {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next()).await?;
        match ev {
            Some(Ok(v1::Event {
                event: Some(v1::event::Event::Subscribed(s)),
            })) => {
                header = Some(v1::CallHeader {
                    framework_id: s.framework_id,
                    stream_id: s.stream_id,
                });
            }
            Some(Ok(v1::Event {
                event: Some(v1::event::Event::Offers(o)),
            })) => raw_offer = o.offers.first().cloned(),
            Some(Ok(_)) => {}
            other => anyhow::bail!("raw stream ended: {other:?}"),
        }
    }
    let raw_offer = raw_offer.expect("an offer");
    raw.accept(v1::AcceptRequest {
        header: header.clone(),
        offer_ids: vec![raw_offer.offer_id],
        operations: vec![v1::Operation {
            operation: Some(v1::operation::Operation::Launch(v1::operation::Launch {
                task_infos,
            })),
        }],
        filters: None,
    })
    .await?;
    let mut errors = std::collections::BTreeMap::new();
    while errors.len() < cases.len() {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next()).await?;
        if let Some(Ok(v1::Event {
            event: Some(v1::event::Event::Update(u)),
        })) = ev
        {
            let s = u.status.expect("status");
            if s.task_id != "fine" {
                assert_eq!(
                    s.state,
                    v1::TaskState::TaskError as i32,
                    "{}: {}",
                    s.task_id,
                    s.message
                );
                assert!(
                    s.message.contains("resources"),
                    "{}: {}",
                    s.task_id,
                    s.message
                );
                errors.insert(s.task_id, s.message);
            }
        }
    }
    assert_eq!(errors.len(), cases.len(), "{errors:?}");
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_invalid_framework_info_is_fatal() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut nameless = Fw::spawn(builder(&master, FrameworkInfo::named("")));
    let err = nameless.finished().await.expect_err("empty name");
    assert!(
        matches!(err, SdkError::Fatal(ref m) if m.contains("name")),
        "{err:?}"
    );
    nameless
        .expect("error callback", |e| {
            matches!(e, Ev::Error(m) if !m.is_empty()).then_some(())
        })
        .await;

    let mut two_roles = info("two-roles");
    two_roles.roles = vec![Role::parse("a")?, Role::parse("b")?];
    let err = Fw::spawn(builder(&master, two_roles))
        .finished()
        .await
        .expect_err("no MULTI_ROLE");
    assert!(
        matches!(err, SdkError::Fatal(ref m) if m.contains("MULTI_ROLE")),
        "{err:?}"
    );
    Ok(())
}
