//! The offer cycle through the scheduler SDK: offers, DECLINE filters,
//! SUPPRESS/REVIVE, RESCIND, and weighted DRF between two roles.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use agora_scheduler_sdk::model::{Offer, Resources, Role};
use agora_scheduler_sdk::{Driver, Scheduler, SchedulerDriver, TaskBuilder};
use agora_tests::{TaskBehaviour, TestMaster, eventually};

use crate::scheduler_support::{Ev, Fw, agent, builder, info, small_task, state_framework};

#[tokio::test]
async fn offers_carry_the_agents_resources_and_stay_outstanding() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("offers")).await;
    let res = "cpus:2;mem:1024;disk:100;ports:[31000-31009]";
    let (_agent, agent_id) = agent(&master, res, TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;
    assert_eq!(offer.framework_id, fw.id);
    assert_eq!(offer.resources, Resources::parse(res)?);
    assert!(offer.role.is_star());
    assert_eq!(offer.hostname, "sim");
    // An outstanding offer is not offered again, and /state lists it.
    assert!(
        fw.offers_within(Duration::from_millis(400))
            .await
            .is_empty()
    );
    let f = state_framework(&master, &fw.id)
        .await
        .expect("framework in /state");
    assert_eq!(f["offers"][0]["id"], offer.id.as_str());
    assert_eq!(f["offered_resources"]["cpus"], 2.0);
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn declined_resources_come_back_only_after_refuse_seconds() -> anyhow::Result<()> {
    let mut cfg = TestMaster::fast_config();
    cfg.default_refuse = Duration::from_millis(700);
    let master = TestMaster::start_with(cfg).await;
    let mut fw = Fw::start(&master, info("decline")).await;
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;

    // An explicit filter of 1.5 s.
    let offer = fw.offer_on(&agent_id).await;
    let t0 = Instant::now();
    fw.driver
        .decline(vec![offer.id], Some(Duration::from_millis(1500)))
        .await?;
    let again = fw.offer_on(&agent_id).await;
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "re-offered after only {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(3000),
        "re-offered only after {waited:?}"
    );

    // No filter given: the master's default (700 ms here).
    let t0 = Instant::now();
    fw.driver.decline(vec![again.id], None).await?;
    let again = fw.offer_on(&agent_id).await;
    let waited = t0.elapsed();
    assert!(
        (Duration::from_millis(600)..Duration::from_millis(2000)).contains(&waited),
        "default filter: {waited:?}"
    );

    // refuse_seconds 0: straight back at the next allocation.
    let t0 = Instant::now();
    fw.driver
        .decline(vec![again.id.clone()], Some(Duration::ZERO))
        .await?;
    let back = fw.offer_on(&agent_id).await;
    assert!(
        t0.elapsed() < Duration::from_millis(600),
        "refuse 0 took {:?}",
        t0.elapsed()
    );

    // ACCEPT's filter applies to the unused remainder too.
    let t0 = Instant::now();
    fw.driver
        .accept(
            vec![back.id.clone()],
            vec![small_task("t1", &back)],
            Some(Duration::from_millis(1200)),
        )
        .await?;
    fw.state("t1", agora_scheduler_sdk::model::TaskState::Running)
        .await;
    let rest = fw.offer_on(&agent_id).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(1100),
        "remainder re-offered after {:?}",
        t0.elapsed()
    );
    assert_eq!(rest.resources.cpus().as_f64(), 0.9);
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn suppress_stops_offers_and_revive_restores_them_clearing_filters() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("suppress")).await;
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;

    fw.driver.suppress(vec![]).await?;
    fw.driver
        .decline(vec![offer.id], Some(Duration::ZERO))
        .await?;
    assert!(
        fw.offers_within(Duration::from_millis(600))
            .await
            .is_empty(),
        "offers while suppressed"
    );
    let f = state_framework(&master, &fw.id).await.expect("framework");
    assert_eq!(f["suppressed_roles"], serde_json::json!(["*"]));
    assert_eq!(fw.driver.suppressed_roles(), vec![Role::star()]);

    fw.driver.revive(vec![]).await?;
    let offer = fw.offer_on(&agent_id).await;
    // REVIVE also clears decline filters: a 60 s filter does not hold the offer back.
    fw.driver
        .decline(vec![offer.id], Some(Duration::from_secs(60)))
        .await?;
    assert!(
        fw.offers_within(Duration::from_millis(400))
            .await
            .is_empty()
    );
    let t0 = Instant::now();
    fw.driver.revive(vec![]).await?;
    fw.offer_on(&agent_id).await;
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "revive took {:?}",
        t0.elapsed()
    );
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn subscribing_suppressed_gets_no_offers_until_revive_and_keeps_it_across_resubscription()
-> anyhow::Result<()> {
    let mut master = TestMaster::start().await;
    let b = builder(&master, info("born-suppressed")).suppressed_roles([Role::star()]);
    let mut fw = Fw::start_with(b).await;
    let (_agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    assert!(
        fw.offers_within(Duration::from_millis(600))
            .await
            .is_empty(),
        "offers while suppressed"
    );

    // The master restarts: the driver re-subscribes, still suppressed.
    master.restart().await?;
    fw.expect("disconnected", |e| {
        matches!(e, Ev::Disconnected).then_some(())
    })
    .await;
    fw.expect("re-subscribed", |e| {
        matches!(e, Ev::Subscribed(_)).then_some(())
    })
    .await;
    assert!(
        fw.offers_within(Duration::from_millis(800))
            .await
            .is_empty(),
        "offers after re-subscribing"
    );

    fw.driver.revive(vec![]).await?;
    fw.offer_on(&agent_id).await;
    fw.stop().await;
    Ok(())
}

#[tokio::test]
async fn offers_are_rescinded_when_their_agent_goes_away() -> anyhow::Result<()> {
    let master = TestMaster::start().await;
    let mut fw = Fw::start(&master, info("rescind")).await;
    let (agent, agent_id) = agent(&master, "cpus:1;mem:256", TaskBehaviour::RunForever).await;
    let offer = fw.offer_on(&agent_id).await;
    agent.stop().await;
    let id = fw
        .expect("RESCIND", |e| match e {
            Ev::Rescinded(id) => Some(id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(id, offer.id);
    // Using the rescinded offer now fails the task with REASON_INVALID_OFFERS.
    fw.driver
        .launch(&offer, vec![small_task("late", &offer)])
        .await?;
    let st = fw.update("late").await;
    assert_eq!(st.state, agora_scheduler_sdk::model::TaskState::Lost);
    assert_eq!(
        st.reason,
        agora_scheduler_sdk::model::TaskStatusReason::InvalidOffers
    );
    fw.stop().await;
    Ok(())
}

/// Accepts every offer whole, one task per offer: the greediest framework.
struct Greedy {
    launched: usize,
}

impl Scheduler for Greedy {
    async fn offers(&mut self, driver: &Driver, offers: Vec<Offer>) {
        for offer in offers {
            self.launched += 1;
            let task = TaskBuilder::new(format!("g-{}", self.launched))
                .shell("sleep 1000")
                .resources(offer.resources.clone())
                .build(&offer.agent_id);
            match task {
                Ok(t) => {
                    let _ = driver.launch(&offer, vec![t]).await;
                }
                Err(e) => panic!("task: {e}"),
            }
        }
    }
}

#[tokio::test]
async fn two_roles_weighted_1_and_2_converge_to_weighted_drf_shares() -> anyhow::Result<()> {
    let mut cfg = TestMaster::fast_config();
    cfg.role_weights = BTreeMap::from([("a".to_string(), 1.0), ("b".to_string(), 2.0)]);
    let master = TestMaster::start_with(cfg).await;
    let mut drivers = Vec::new();
    for role in ["a", "b"] {
        let mut i = info(&format!("greedy-{role}"));
        i.roles = vec![Role::parse(role)?];
        let d = SchedulerDriver::builder([master.host_port()], i).build()?;
        let handle = d.driver();
        drivers.push((role, handle, tokio::spawn(d.run(Greedy { launched: 0 }))));
    }
    for (_, handle, _) in &drivers {
        eventually(
            "both frameworks subscribed",
            Duration::from_secs(5),
            || async { handle.framework_id() },
        )
        .await?;
    }
    // Twelve identical agents, each worth one task: weighted DRF gives role b
    // twice role a's dominant share, i.e. 8 agents to 4.
    let mut agents = Vec::new();
    for _ in 0..12 {
        agents.push(agent(&master, "cpus:1;mem:128", TaskBehaviour::RunForever).await);
    }
    let used = |f: &serde_json::Value| f["used_resources"]["cpus"].as_f64().unwrap_or(0.0);
    let shares = eventually("all 12 agents used", Duration::from_secs(10), || async {
        let state = master.state().await.ok()?;
        let mut shares = BTreeMap::new();
        for f in state["frameworks"].as_array()? {
            shares.insert(f["roles"][0].as_str()?.to_string(), used(f));
        }
        (shares.values().sum::<f64>() == 12.0).then_some(shares)
    })
    .await?;
    assert_eq!(
        shares,
        BTreeMap::from([("a".to_string(), 4.0), ("b".to_string(), 8.0)])
    );
    for (_, handle, run) in drivers {
        handle.stop();
        run.await??;
    }
    Ok(())
}
