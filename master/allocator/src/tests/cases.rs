//! Hand-written cases, one behaviour each.
use std::collections::BTreeSet;

use agora_model::{FrameworkId, MonoTime, Resources};

use super::{AllocatorHarness, agent, framework, res, role};
use crate::{Allocation, allocate};

/// A typical Mesos agent: the default ports and a few cpus.
const SMALL_AGENT: &str = "cpus:4;mem:4096;disk:10000;ports:[31000-32000]";

fn fw_id(id: &str) -> FrameworkId {
    FrameworkId::new_unchecked(id)
}

fn offered_cpus(plan: &[Allocation], fw: &FrameworkId) -> f64 {
    plan.iter()
        .filter(|a| &a.framework == fw)
        .map(|a| a.resources.cpus().as_f64())
        .sum()
}

#[test]
fn single_framework_gets_every_agent_whole() {
    let mut h = AllocatorHarness::new();
    let agents = h.agents(5, SMALL_AGENT);
    let fw = h.add_framework(framework("fw-1", &["*"]));
    let plan = h.cycle();
    assert_eq!(plan.len(), 5);
    for a in &plan {
        assert_eq!(a.framework, fw);
        assert!(a.role.is_star());
        assert_eq!(a.resources, res(SMALL_AGENT));
    }
    let got: BTreeSet<_> = plan.iter().map(|a| a.agent.clone()).collect();
    assert_eq!(got, agents.into_iter().collect());
}

#[test]
fn weighted_roles_converge_to_one_to_two_dominant_shares() {
    let mut h = AllocatorHarness::new();
    h.agents(10, "cpus:8;mem:32768");
    h.snapshot.role_weights.insert(role("a"), 1.0);
    h.snapshot.role_weights.insert(role("b"), 2.0);
    let fa = h.add_framework(framework("fw-a", &["a"]));
    let fb = h.add_framework(framework("fw-b", &["b"]));
    // Each framework launches one cpu-dominant task per offer and declines
    // the rest; the next cycle sees the tasks as `allocated`.
    let task = res("cpus:1;mem:512");
    for cycle in 0..1_000 {
        h.seed = cycle;
        let plan = h.cycle();
        let launched = plan.iter().filter(|offer| h.launch(offer, &task)).count();
        if launched == 0 {
            break;
        }
    }
    let cpus = |h: &mut AllocatorHarness, id: &FrameworkId| {
        h.framework_mut(id)
            .allocated
            .values()
            .map(|r| r.cpus().as_f64())
            .sum::<f64>()
    };
    let (a, b) = (cpus(&mut h, &fa), cpus(&mut h, &fb));
    assert_eq!(a + b, 80.0, "the cluster fills up");
    // 80 cpus at 1:2 is 26.7 : 53.3; allow one task of rounding either way.
    assert!((26.0..=28.0).contains(&a), "a={a} b={b}");
}

#[test]
fn weights_split_one_cycle_in_proportion() {
    let mut h = AllocatorHarness::new();
    h.agents(30, SMALL_AGENT);
    h.snapshot.role_weights.insert(role("heavy"), 2.0);
    let light = h.add_framework(framework("fw-light", &["light"]));
    let heavy = h.add_framework(framework("fw-heavy", &["heavy"]));
    let plan = h.cycle();
    assert_eq!(offered_cpus(&plan, &light), 40.0);
    assert_eq!(offered_cpus(&plan, &heavy), 80.0);
}

#[test]
fn suppressed_role_gets_nothing() {
    let mut h = AllocatorHarness::new();
    h.snapshot
        .agents
        .push(agent("agent-0", "cpus:4;mem:4096;cpus(a):2;mem(a):512"));
    let mut multi = framework("fw-multi", &["a", "b"]);
    multi.suppressed_roles.insert(role("a"));
    let multi = h.add_framework(multi);
    let mut quiet = framework("fw-quiet", &["c"]);
    quiet.suppressed_roles.insert(role("c"));
    let quiet = h.add_framework(quiet);
    let plan = h.cycle();
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert_eq!(plan[0].framework, multi);
    assert_eq!(plan[0].role, role("b"));
    assert_eq!(
        plan[0].resources,
        res("cpus:4;mem:4096"),
        "role a's reservation stays unoffered"
    );
    assert!(h.last_offers_to(&quiet).is_empty());
}

#[test]
fn filter_blocks_only_while_unexpired() {
    let mut h = AllocatorHarness::new();
    h.agents(2, SMALL_AGENT);
    let fw = h.add_framework(framework("fw-1", &["*"]));
    let plan = h.cycle();
    h.decline(&plan[0], 5_000);
    let filtered = plan[0].agent.clone();

    h.now = MonoTime(h.now.0 + 4_999);
    let plan = h.cycle();
    assert_eq!(plan.len(), 1);
    assert_ne!(plan[0].agent, filtered, "the other agent is not filtered");

    h.now = MonoTime(h.now.0 + 1);
    assert_eq!(h.cycle().len(), 2, "a filter expiring now no longer blocks");
    assert_eq!(h.last_offers_to(&fw).len(), 2);
}

#[test]
fn filter_blocks_only_offers_it_contains() {
    let mut h = AllocatorHarness::new();
    h.agents(1, SMALL_AGENT);
    let fw = h.add_framework(framework("fw-1", &["*"]));
    let plan = h.cycle();
    let mut smaller = plan[0].clone();
    smaller.resources = res("cpus:2;mem:4096;disk:10000;ports:[31000-32000]");
    h.decline(&smaller, 5_000);
    assert_eq!(h.cycle().len(), 1, "more than was refused is offered again");

    h.agent_mut(&plan[0].agent).free = res("cpus:1;mem:1024");
    assert!(h.cycle().is_empty(), "less than was refused stays filtered");
    assert!(h.last_offers_to(&fw).is_empty());
}

#[test]
fn filtered_framework_falls_through_to_the_next_in_its_role() {
    let mut h = AllocatorHarness::new();
    h.agents(1, SMALL_AGENT);
    let first = h.add_framework(framework("fw-a", &["r"]));
    let second = h.add_framework(framework("fw-b", &["r"]));
    let plan = h.cycle();
    assert_eq!(plan[0].framework, first, "ties go to the lower id");
    h.decline(&plan[0], 5_000);
    let plan = h.cycle();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].framework, second);
}

#[test]
fn lower_share_framework_in_a_role_goes_first() {
    let mut h = AllocatorHarness::new();
    h.agents(4, SMALL_AGENT);
    let mut big = framework("fw-a", &["r"]);
    big.allocated.insert(role("r"), res("cpus:4"));
    h.add_framework(big);
    let small = h.add_framework(framework("fw-b", &["r"]));
    let plan = h.cycle();
    assert_eq!(plan[0].framework, small);
    // After one agent fw-b ties fw-a at a quarter of the cluster, the lower
    // id goes first, and from then on they alternate.
    assert_eq!(offered_cpus(&plan, &small), 8.0);
}

#[test]
fn reserved_resources_only_go_to_their_role() {
    let mut h = AllocatorHarness::new();
    h.snapshot.agents.push(agent(
        "agent-mixed",
        "cpus:4;mem:4096;cpus(web):2;mem(web):1024",
    ));
    h.snapshot
        .agents
        .push(agent("agent-web", "cpus(web):2;mem(web):1024"));
    let batch = h.add_framework(framework("fw-batch", &["batch"]));
    let web = h.add_framework(framework("fw-web", &["web"]));
    let plan = h.cycle();
    assert_eq!(plan.len(), 3, "{plan:?}");
    for a in &plan {
        if a.framework == batch {
            assert_eq!(
                a.resources,
                res("cpus:4;mem:4096"),
                "batch never sees web's reservation"
            );
        } else {
            assert_eq!(a.framework, web);
            assert_eq!(a.resources, res("cpus(web):2;mem(web):1024"));
        }
    }
    assert_eq!(h.last_offers_to(&batch).len(), 1);
}

#[test]
fn role_first_in_order_takes_unreserved_and_its_reservation() {
    let mut h = AllocatorHarness::new();
    h.snapshot.agents.push(agent(
        "agent-0",
        "cpus:4;mem:4096;cpus(web):2;mem(web):1024",
    ));
    let mut batch = framework("fw-batch", &["batch"]);
    batch.allocated.insert(role("batch"), res("cpus:1"));
    h.add_framework(batch);
    let web = h.add_framework(framework("fw-web", &["web"]));
    let plan = h.cycle();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].framework, web);
    assert_eq!(
        plan[0].resources,
        res("cpus:4;mem:4096;cpus(web):2;mem(web):1024")
    );
}

#[test]
fn gpu_agents_only_go_to_gpu_aware_frameworks() {
    let mut h = AllocatorHarness::new();
    h.snapshot
        .agents
        .push(agent("agent-gpu", "cpus:4;mem:4096;gpus:1"));
    h.snapshot.agents.push(agent("agent-cpu", SMALL_AGENT));
    let plain = h.add_framework(framework("fw-plain", &["*"]));
    let plan = h.cycle();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].agent.as_str(), "agent-cpu");

    let mut gpu = framework("fw-gpu", &["*"]);
    gpu.gpu_aware = true;
    let gpu = h.add_framework(gpu);
    let plan = h.cycle();
    let on_gpu: Vec<_> = plan
        .iter()
        .filter(|a| a.agent.as_str() == "agent-gpu")
        .collect();
    assert_eq!(on_gpu.len(), 1);
    assert_eq!(on_gpu[0].framework, gpu);

    h.snapshot.frameworks.retain(|f| f.id == plain);
    h.config.filter_gpu_resources = false;
    assert_eq!(
        h.cycle().len(),
        2,
        "with filtering off everyone may get GPU agents"
    );
}

#[test]
fn inactive_agents_and_frameworks_get_nothing() {
    let mut h = AllocatorHarness::new();
    let agents = h.agents(3, SMALL_AGENT);
    h.agent_mut(&agents[0]).active = false;
    let mut idle = framework("fw-idle", &["*"]);
    idle.active = false;
    let idle = h.add_framework(idle);
    let plan = h.cycle();
    assert!(plan.is_empty());

    let live = h.add_framework(framework("fw-live", &["*"]));
    let plan = h.cycle();
    assert_eq!(plan.len(), 2);
    assert!(
        plan.iter()
            .all(|a| a.framework == live && a.agent != agents[0])
    );
    assert!(h.last_offers_to(&idle).is_empty());
}

#[test]
fn inactive_frameworks_still_count_towards_their_role() {
    let mut h = AllocatorHarness::new();
    h.agents(1, SMALL_AGENT);
    let mut gone = framework("fw-gone", &["a"]);
    gone.active = false;
    gone.allocated.insert(role("a"), res("cpus:2"));
    h.add_framework(gone);
    h.add_framework(framework("fw-a", &["a"]));
    let b = h.add_framework(framework("fw-b", &["b"]));
    let plan = h.cycle();
    assert_eq!(
        plan[0].framework, b,
        "role a already holds 2 cpus through fw-gone"
    );
}

#[test]
fn excluded_resources_do_not_count_in_shares() {
    let mut h = AllocatorHarness::new();
    h.config.filter_gpu_resources = false;
    h.snapshot
        .agents
        .push(agent("agent-0", "cpus:16;mem:16384;gpus:1"));
    let mut a = framework("fw-a", &["a"]);
    a.allocated.insert(role("a"), res("gpus:1"));
    h.add_framework(a);
    let mut b = framework("fw-b", &["b"]);
    b.allocated.insert(role("b"), res("cpus:4"));
    h.add_framework(b);
    h.snapshot.agents[0].free = res("cpus:12;mem:16384");
    assert_eq!(
        h.cycle()[0].framework,
        fw_id("fw-b"),
        "a holds all gpus: share 1.0"
    );
    h.config.fair_sharing_excluded = vec!["gpus".to_string()];
    assert_eq!(
        h.cycle()[0].framework,
        fw_id("fw-a"),
        "without gpus a's share is 0"
    );
}

#[test]
fn agents_below_the_minimum_are_not_offered() {
    let mut h = AllocatorHarness::new();
    h.snapshot.agents.push(agent(
        "agent-0",
        "cpus:0.005;mem:16;disk:1000;ports:[31000-32000]",
    ));
    h.add_framework(framework("fw-1", &["*"]));
    assert!(h.cycle().is_empty());
}

#[test]
fn same_seed_same_plan_regardless_of_input_order() {
    let mut h = AllocatorHarness::new();
    h.agents(50, SMALL_AGENT);
    for i in 0..5 {
        h.add_framework(framework(&format!("fw-{i}"), &[&format!("role-{}", i % 3)]));
    }
    h.seed = 42;
    let first = h.cycle();
    assert_eq!(h.cycle(), first);

    let mut shuffled = h.snapshot.clone();
    shuffled.agents.reverse();
    shuffled.frameworks.reverse();
    assert_eq!(allocate(&shuffled, &h.config, h.now, 42), first);

    let order = |p: &[Allocation]| p.iter().map(|a| a.agent.clone()).collect::<Vec<_>>();
    h.seed = 43;
    assert_ne!(
        order(&h.cycle()),
        order(&first),
        "the seed drives the agent order"
    );
}

#[test]
fn empty_cluster_or_no_frameworks_gives_an_empty_plan() {
    let mut h = AllocatorHarness::new();
    assert!(h.cycle().is_empty());
    h.agents(2, SMALL_AGENT);
    assert!(h.cycle().is_empty());
    h.add_framework(framework("fw-1", &["*"]));
    h.snapshot
        .agents
        .iter_mut()
        .for_each(|a| a.free = Resources::new());
    assert!(h.cycle().is_empty());
}
