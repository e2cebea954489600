//! One allocation cycle of `agora_allocator::allocate` at Mesos benchmark
//! scale: `HierarchicalAllocator_BENCHMARK_Test.DeclineOffers/21` is 10,000
//! agents x 1,000 frameworks producing 10,000 offers (1.06 s per cycle in
//! Mesos 1.7). Snapshots are built once, outside the timing.
//!
//! `allocate` is timed up to returning its plan; dropping the plan is not
//! timed, because the master keeps those resources as outstanding offers.
//! The `+drop` variant times the drop as well, to show what it costs.
//!
//! The `snapshot` group times building the snapshot the master builds
//! before every cycle (`master/src/snapshot.rs`), over plain inputs shaped
//! like the master's maps: 10,000 agents, 1,000 frameworks with 10 active
//! filters each, and 50,000 tasks. Three inputs are timed: the tasks listed
//! by framework (`build_snapshot`, the master's input before issue 6), the
//! per-(agent, framework, role) tallies agent by agent (its first step in
//! issue 6), and what it gives now, per-agent and per-framework tallies
//! (`build_snapshot_from_tallies`).
//!
//! Run: `cargo bench -p agora-benches --bench allocator`.
use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use agora_allocator::{
    AgentInput, AgentTallyInput, AgentView, AllocatorConfig, ClusterSnapshot, FrameworkInput,
    FrameworkTallyInput, FrameworkView, OfferFilter, UsageInput, allocate, build_snapshot,
    build_snapshot_from_tallies,
};
use agora_model::{AgentId, FrameworkId, MonoTime, Resources, Role};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// The agent of the Mesos benchmarks, with the default port range.
const AGENT: &str = "cpus:32;mem:131072;disk:1000000;ports:[31000-32000]";
/// `now` of every cycle; filters are set to straddle it.
const NOW: MonoTime = MonoTime(1_000_000);
/// Active filters per framework in the "declined" shape: 10,000 in all, as
/// many as there are agents, like frameworks that just declined a cycle.
const FILTERS_PER_FRAMEWORK: usize = 10;

/// A cycle takes milliseconds; fewer, shorter samples keep one run of all
/// rows near two minutes on a shared 2-core machine, so that five runs can
/// be compared (BENCHMARKS.md reports each run and their median).
const SAMPLES: usize = 20;
/// See [`SAMPLES`].
const MEASURE_SECS: u64 = 5;

/// The shape also timed with dropping the plan included.
const WITH_DROP: &str = "10000x1000/own_role";

/// How the frameworks are spread over roles, and whether they hold filters.
#[derive(Clone, Copy)]
struct Shape {
    agents: usize,
    frameworks: usize,
    roles: usize,
    filters: bool,
}

fn cluster(shape: Shape) -> ClusterSnapshot {
    let total = Resources::parse(AGENT).unwrap_or_default();
    let agents = (0..shape.agents)
        .map(|i| {
            // Some agents already run tasks, so free differs from total.
            let used = Resources::cpus_mem_disk((i % 8) as f64, (i % 8) as f64 * 4096.0, 0.0);
            AgentView {
                id: agent_id(i),
                free: total.minus(&used),
                total: total.clone(),
                active: true,
            }
        })
        .collect();
    let frameworks = (0..shape.frameworks)
        .map(|i| {
            let role = Role::parse(format!("role-{}", i % shape.roles)).unwrap_or_default();
            // Varied holdings so the DRF order is not just id order.
            let held = Resources::cpus_mem_disk((i % 16) as f64, (i % 13) as f64 * 4096.0, 0.0);
            let filters = if shape.filters {
                (0..FILTERS_PER_FRAMEWORK)
                    .map(|k| OfferFilter {
                        agent: agent_id((i * 7919 + k * 104_729) % shape.agents),
                        resources: total.clone(),
                        // Every other filter has expired and must be ignored.
                        expires: MonoTime(if k % 2 == 0 { NOW.0 + 5_000 } else { NOW.0 - 1 }),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            FrameworkView {
                id: FrameworkId::new_unchecked(format!("framework-{i:04}")),
                roles: vec![role.clone()],
                suppressed_roles: BTreeSet::new(),
                active: true,
                gpu_aware: false,
                allocated: BTreeMap::from([(role, held)]),
                filters,
            }
        })
        .collect();
    ClusterSnapshot {
        agents,
        role_weights: BTreeMap::new(),
        frameworks,
    }
}

/// Runs `iters` cycles with fresh seeds and returns the time spent in
/// `allocate` (plus, with `time_drop`, in dropping the previous plan).
///
/// Like a running master, which still holds the last cycle's offers while
/// the next cycle runs, the previous plan is dropped only after the next one
/// is made. This keeps the heap in a steady state: dropping each plan at once
/// lets glibc return its ~15 MB to the OS, so that every cycle pays
/// thousands of page faults or not depending on heap history (we saw 2,300
/// per cycle in one bench order and almost none in another).
fn cycles(
    snapshot: &ClusterSnapshot,
    config: &AllocatorConfig,
    iters: u64,
    time_drop: bool,
) -> Duration {
    let mut timed = Duration::ZERO;
    let mut previous = allocate(snapshot, config, NOW, 0);
    for seed in 1..=iters {
        let start = Instant::now();
        let plan = allocate(black_box(snapshot), config, NOW, seed);
        if time_drop {
            drop(std::mem::replace(&mut previous, plan));
            timed += start.elapsed();
        } else {
            timed += start.elapsed();
            drop(std::mem::replace(&mut previous, plan));
        }
    }
    timed
}

fn agent_id(i: usize) -> AgentId {
    AgentId::new_unchecked(format!("agent-{i:05}"))
}

fn bench_allocate(c: &mut Criterion) {
    let config = AllocatorConfig::default();
    let mut group = c.benchmark_group("allocate");
    group
        .sample_size(SAMPLES)
        .measurement_time(Duration::from_secs(MEASURE_SECS));
    let shapes = [
        (
            "1000x100/own_role",
            Shape {
                agents: 1_000,
                frameworks: 100,
                roles: 100,
                filters: false,
            },
        ),
        (
            "10000x1000/own_role",
            Shape {
                agents: 10_000,
                frameworks: 1_000,
                roles: 1_000,
                filters: false,
            },
        ),
        (
            "10000x1000/50_roles",
            Shape {
                agents: 10_000,
                frameworks: 1_000,
                roles: 50,
                filters: false,
            },
        ),
        (
            "10000x1000/declined",
            Shape {
                agents: 10_000,
                frameworks: 1_000,
                roles: 1_000,
                filters: true,
            },
        ),
    ];
    for (name, shape) in shapes {
        let snapshot = cluster(shape);
        // Like the Mesos benchmark, every agent is offered exactly once.
        assert_eq!(
            allocate(&snapshot, &config, NOW, 1).len(),
            shape.agents,
            "{name}"
        );
        group.bench_with_input(
            BenchmarkId::from_parameter(name),
            &snapshot,
            |b, snapshot| b.iter_custom(|iters| cycles(snapshot, &config, iters, false)),
        );
        if name == WITH_DROP {
            let id = BenchmarkId::from_parameter(format!("{name}+drop"));
            group.bench_with_input(id, &snapshot, |b, snapshot| {
                b.iter_custom(|iters| cycles(snapshot, &config, iters, true))
            });
        }
    }
    group.finish();
}

/// Tasks in the snapshot-building shape: 5 per agent, 50 per framework.
const TASKS: usize = 50_000;

/// One task as the master keeps it, reduced to what the snapshot reads.
struct Task {
    agent: AgentId,
    framework: FrameworkId,
    role: Role,
    resources: Resources,
}

/// One framework as the master keeps it, reduced likewise.
struct Framework {
    id: FrameworkId,
    roles: Vec<Role>,
    suppressed: BTreeSet<Role>,
    filters: Vec<OfferFilter>,
}

/// What one agent holds per (framework, role): the master's running tally.
type AgentTally = Vec<((FrameworkId, Role), Resources)>;

/// The master's state at 10,000 agents x 1,000 frameworks x 50,000 tasks.
struct MasterState {
    agents: Vec<(AgentId, Resources)>,
    frameworks: Vec<Framework>,
    tasks: Vec<Task>,
    /// The same tasks as the master kept them in the first step of issue 6:
    /// summed per agent and (framework, role), in agent order.
    tallies: Vec<(AgentId, AgentTally)>,
    /// The same tasks as the master keeps them now: what is used on each
    /// agent (aligned with `agents`) and what each framework holds per role
    /// (aligned with `frameworks`), both kept as tasks come and go.
    agent_used: Vec<Resources>,
    framework_held: Vec<BTreeMap<Role, Resources>>,
}

fn master_state() -> MasterState {
    let (n_agents, n_frameworks) = (10_000, 1_000);
    let total = Resources::parse(AGENT).unwrap_or_default();
    let agents: Vec<(AgentId, Resources)> = (0..n_agents)
        .map(|i| (agent_id(i), total.clone()))
        .collect();
    let frameworks: Vec<Framework> = (0..n_frameworks)
        .map(|i| Framework {
            id: FrameworkId::new_unchecked(format!("framework-{i:04}")),
            roles: vec![Role::parse(format!("role-{i}")).unwrap_or_default()],
            suppressed: BTreeSet::new(),
            filters: (0..FILTERS_PER_FRAMEWORK)
                .map(|k| OfferFilter {
                    agent: agent_id((i * 7919 + k * 104_729) % n_agents),
                    resources: total.clone(),
                    expires: MonoTime(NOW.0 + 5_000),
                })
                .collect(),
        })
        .collect();
    // Listed by framework, as the master's task map is keyed; each
    // framework's tasks are spread over agents, each task with one port.
    let tasks: Vec<Task> = (0..TASKS)
        .map(|t| {
            let fw = t / (TASKS / n_frameworks);
            let port = 31_000 + (t / n_agents) as u64;
            let resources = Resources::cpus_mem_disk(0.5, 1024.0, 100.0)
                .with_ranges("ports", agora_model::Ranges::single(port, port));
            Task {
                agent: agent_id((t * 7919) % n_agents),
                framework: FrameworkId::new_unchecked(format!("framework-{fw:04}")),
                role: Role::parse(format!("role-{fw}")).unwrap_or_default(),
                resources,
            }
        })
        .collect();
    let mut by_agent: BTreeMap<AgentId, BTreeMap<(FrameworkId, Role), Resources>> = BTreeMap::new();
    for t in &tasks {
        by_agent
            .entry(t.agent.clone())
            .or_default()
            .entry((t.framework.clone(), t.role.clone()))
            .or_default()
            .add(&t.resources);
    }
    let agent_used = agents
        .iter()
        .map(|(id, _): &(AgentId, Resources)| {
            let mut used = Resources::new();
            for held in by_agent.get(id).into_iter().flat_map(|m| m.values()) {
                used.add(held);
            }
            used
        })
        .collect();
    let framework_held = frameworks
        .iter()
        .map(|f: &Framework| {
            let mut held: BTreeMap<Role, Resources> = BTreeMap::new();
            for t in tasks.iter().filter(|t| t.framework == f.id) {
                held.entry(t.role.clone()).or_default().add(&t.resources);
            }
            held
        })
        .collect();
    let tallies = by_agent
        .into_iter()
        .map(|(a, m)| (a, m.into_iter().collect()))
        .collect();
    MasterState {
        agents,
        frameworks,
        tasks,
        tallies,
        agent_used,
        framework_held,
    }
}

/// What `Master::snapshot` does now: agents with what is used on them, and
/// frameworks with what they hold per role (a copy of the small map).
fn snapshot_of_master_tallies(state: &MasterState) -> ClusterSnapshot {
    let none = Resources::new();
    build_snapshot_from_tallies(
        state
            .agents
            .iter()
            .zip(&state.agent_used)
            .map(|((id, total), used)| AgentTallyInput {
                id,
                total,
                used,
                offered: &none,
            }),
        frameworks_of(state)
            .zip(&state.framework_held)
            .map(|(framework, held)| FrameworkTallyInput {
                framework,
                allocated: held.clone(),
            }),
        BTreeMap::new(),
    )
}

/// What `Master::snapshot` did in the first step of issue 6: agents,
/// frameworks and each agent's (framework, role) tallies, agent by agent.
fn snapshot_of_tallies(state: &MasterState) -> ClusterSnapshot {
    build_snapshot(
        agents_of(state),
        frameworks_of(state),
        state.tallies.iter().flat_map(|(agent, held)| {
            held.iter()
                .map(move |((framework, role), resources)| UsageInput {
                    agent,
                    framework,
                    role,
                    resources,
                })
        }),
        BTreeMap::new(),
    )
}

fn agents_of(state: &MasterState) -> impl Iterator<Item = AgentInput<'_>> {
    state
        .agents
        .iter()
        .map(|(id, total)| AgentInput { id, total })
}

fn frameworks_of(state: &MasterState) -> impl Iterator<Item = FrameworkInput<'_>> {
    state.frameworks.iter().map(|f| FrameworkInput {
        id: &f.id,
        roles: &f.roles,
        suppressed_roles: &f.suppressed,
        active: true,
        gpu_aware: false,
        filters: f.filters.clone(),
    })
}

/// The same from a list of every task, framework by framework (the master's
/// input before issue 6, kept to compare).
fn snapshot_of(state: &MasterState) -> ClusterSnapshot {
    build_snapshot(
        agents_of(state),
        frameworks_of(state),
        state.tasks.iter().map(|t| UsageInput {
            agent: &t.agent,
            framework: &t.framework,
            role: &t.role,
            resources: &t.resources,
        }),
        BTreeMap::new(),
    )
}

fn bench_snapshot(c: &mut Criterion) {
    let state = master_state();
    let built = snapshot_of(&state);
    // Every task is charged to its agent and its framework's role.
    assert_eq!(built.agents.len(), state.agents.len());
    let used: f64 = built
        .agents
        .iter()
        .map(|a| a.total.cpus().as_f64() - a.free.cpus().as_f64())
        .sum();
    assert_eq!(used, 0.5 * TASKS as f64);
    assert_eq!(
        allocate(&built, &AllocatorConfig::default(), NOW, 1).len(),
        state.agents.len()
    );
    let mut group = c.benchmark_group("snapshot");
    group
        .sample_size(SAMPLES)
        .measurement_time(Duration::from_secs(MEASURE_SECS));
    let tallied = snapshot_of_tallies(&state);
    let free = |s: &ClusterSnapshot| -> Vec<f64> {
        s.agents.iter().map(|a| a.free.cpus().as_f64()).collect()
    };
    assert_eq!(free(&tallied), free(&built), "both inputs charge the same");
    let from_master = snapshot_of_master_tallies(&state);
    assert_eq!(from_master.agents, built.agents, "master tallies: agents");
    assert_eq!(
        from_master.frameworks, built.frameworks,
        "master tallies: frameworks"
    );
    for (name, build) in [
        (
            "10000x1000x50000_tasks",
            snapshot_of as fn(&MasterState) -> ClusterSnapshot,
        ),
        (
            "10000x1000x50000_tasks_as_agent_tallies",
            snapshot_of_tallies,
        ),
        (
            "10000x1000x50000_tasks_from_master_tallies",
            snapshot_of_master_tallies,
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // As with plans, keep the previous snapshot until the next is
                // built, so the heap is in the steady state of a running master.
                let mut previous = build(&state);
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let next = build(black_box(&state));
                    timed += start.elapsed();
                    drop(std::mem::replace(&mut previous, next));
                }
                timed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_allocate, bench_snapshot);
criterion_main!(benches);
