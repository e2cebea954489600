//! Property tests over random sequences of agent registration, loss and
//! return, subscribe, allocate, accept, decline, kill, status updates and
//! acknowledgements, agent drains and undrains. After every step: no agent
//! is over-committed and the tallies equal a recount; no offer id is made
//! twice; no offer is outstanding on a draining agent; an acknowledged update
//! is never sent again. At the end, once every agent has come back and
//! finished its tasks: every launched task of a framework that still exists
//! has reached it in a terminal state, and nothing is left live.
use std::collections::{BTreeMap, BTreeSet};

use agora_model::{AgentId, Capability, FrameworkId, MonoTime, Resources, Role, TaskSpec, testkit};

use crate::state::AgentStatus;
use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Register,
    Lose(usize),
    /// The agent's stream closes; it stays known (disconnected, its tasks
    /// held) until it returns or misses its pings.
    Disconnect(usize),
    Return(usize),
    Subscribe {
        partition_aware: bool,
    },
    Allocate,
    Accept {
        fw: usize,
        offer: usize,
        tasks: u8,
    },
    Decline {
        fw: usize,
        offer: usize,
    },
    Kill {
        task: usize,
    },
    AgentRuns {
        task: usize,
    },
    AgentFinishes {
        task: usize,
    },
    Ack {
        update: usize,
    },
    Tick,
    /// The operator drains the agent, or ends its drain.
    Maintenance {
        agent: usize,
        drain: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Register),
        1 => (0usize..8).prop_map(Op::Lose),
        1 => (0usize..8).prop_map(Op::Disconnect),
        1 => (0usize..8).prop_map(Op::Return),
        1 => any::<bool>().prop_map(|partition_aware| Op::Subscribe { partition_aware }),
        3 => Just(Op::Allocate),
        4 => (0usize..4, 0usize..8, 1u8..4).prop_map(|(fw, offer, tasks)| Op::Accept { fw, offer, tasks }),
        1 => (0usize..4, 0usize..8).prop_map(|(fw, offer)| Op::Decline { fw, offer }),
        1 => (0usize..32).prop_map(|task| Op::Kill { task }),
        2 => (0usize..32).prop_map(|task| Op::AgentRuns { task }),
        2 => (0usize..32).prop_map(|task| Op::AgentFinishes { task }),
        2 => (0usize..32).prop_map(|update| Op::Ack { update }),
        1 => Just(Op::Tick),
        1 => (0usize..8, any::<bool>()).prop_map(|(agent, drain)| Op::Maintenance { agent, drain }),
    ]
}

/// One simulated agent's tasks and their states.
type AgentTasks = BTreeMap<(FrameworkId, TaskId), (TaskSpec, TaskState)>;

/// What the simulated agents and frameworks know, built only from effects.
#[derive(Default)]
struct World {
    agents: Vec<Ag>,
    lost: BTreeSet<usize>,
    fws: Vec<Fw>,
    /// Tasks each agent runs (from Launch messages), with their state.
    running: BTreeMap<AgentId, AgentTasks>,
    launched: Vec<(AgentId, FrameworkId, TaskId)>,
    offers_seen: BTreeSet<OfferId>,
    outstanding: Vec<Offer>,
    /// Updates that reached frameworks and carry a uuid, not yet acked.
    to_ack: Vec<(FrameworkId, TaskStatus)>,
    acked: BTreeSet<uuid::Uuid>,
    terminal_seen: BTreeSet<(FrameworkId, TaskId)>,
    next_task: usize,
}

impl World {
    /// Framework `fw`'s `offer`-th outstanding offer, no longer outstanding.
    fn take_offer(&mut self, fw: usize, offer: usize) -> Option<(Fw, Offer)> {
        let f = self.fws.get(fw).cloned()?;
        let o = self
            .outstanding
            .iter()
            .filter(|o| o.framework_id == f.id)
            .nth(offer)
            .cloned()?;
        self.outstanding.retain(|x| x.id != o.id);
        Some((f, o))
    }

    fn absorb(&mut self, effects: &[Effect]) -> Result<(), TestCaseError> {
        for e in effects {
            match e {
                Effect::ToFramework {
                    framework, event, ..
                } => match event {
                    FrameworkEvent::Offers(offers) => {
                        for o in offers {
                            prop_assert!(self.offers_seen.insert(o.id.clone()), "offer id reused");
                            self.outstanding.push(o.clone());
                        }
                    }
                    FrameworkEvent::Rescind(id) => self.outstanding.retain(|o| &o.id != id),
                    FrameworkEvent::Update(st) => {
                        if let Some(u) = st.uuid {
                            prop_assert!(
                                !self.acked.contains(&u),
                                "acknowledged update sent again"
                            );
                            self.to_ack.push((framework.clone(), st.clone()));
                        }
                        if st.state.is_terminal() {
                            self.terminal_seen
                                .insert((framework.clone(), st.task_id.clone()));
                        }
                    }
                    _ => {}
                },
                Effect::ToAgent { agent, msg, .. } => match msg {
                    ToAgent::Launch { framework, task } => {
                        let fw = framework
                            .id
                            .clone()
                            .unwrap_or_else(|| FrameworkId::new_unchecked("?"));
                        self.launched
                            .push((agent.clone(), fw.clone(), task.id.clone()));
                        self.running.entry(agent.clone()).or_default().insert(
                            (fw, task.id.clone()),
                            ((**task).clone(), TaskState::Staging),
                        );
                    }
                    ToAgent::Acknowledge { uuid, .. } => {
                        self.acked.insert(*uuid);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(())
    }
}

fn check_invariants(h: &MasterHarness) -> Result<(), TestCaseError> {
    let m = &h.master;
    for a in m.agents.values() {
        let mut used = Resources::new();
        for k in &a.tasks {
            used.add(&m.tasks[k].spec.resources);
        }
        let mut offered = Resources::new();
        for o in m.offers.values().filter(|o| o.offer.agent_id == a.id) {
            offered.add(&o.offer.resources);
        }
        prop_assert_eq!(&a.used, &used, "agent used tally");
        prop_assert_eq!(&a.offered, &offered, "agent offered tally");
        prop_assert!(
            a.total.contains(&used.plus(&offered)),
            "agent over-committed"
        );
    }
    for o in m.offers.values() {
        prop_assert!(
            !m.is_draining(&o.offer.agent_id),
            "an offer is outstanding on a draining agent"
        );
    }
    let live: usize = m.task_counts.values().sum();
    prop_assert_eq!(live, m.tasks.len(), "task counts");
    check_allocation_tallies(m)?;
    check_snapshot_against_usage_list(m, h.now)
}

/// Per-agent (framework, role) tallies equal a recount of tasks and
/// offers; per-framework role tallies equal the sum over agents.
fn check_allocation_tallies(m: &Master) -> Result<(), TestCaseError> {
    let mut by_agent: BTreeMap<(AgentId, FrameworkId, Role), Resources> = BTreeMap::new();
    for t in m.tasks.values() {
        if m.agents.contains_key(&t.spec.agent_id) {
            by_agent
                .entry((t.spec.agent_id.clone(), t.framework.clone(), t.role.clone()))
                .or_default()
                .add(&t.spec.resources);
        }
    }
    for o in m.offers.values().map(|o| &o.offer) {
        if m.agents.contains_key(&o.agent_id) {
            by_agent
                .entry((o.agent_id.clone(), o.framework_id.clone(), o.role.clone()))
                .or_default()
                .add(&o.resources);
        }
    }
    by_agent.retain(|_, r| !r.is_empty());
    let mut kept = BTreeMap::new();
    for a in m.agents.values() {
        for ((fw, role), r) in &a.allocated {
            kept.insert((a.id.clone(), fw.clone(), role.clone()), r.clone());
        }
    }
    prop_assert_eq!(&kept, &by_agent, "agent (framework, role) tallies");
    for f in m.frameworks.values() {
        let mut want: BTreeMap<Role, Resources> = BTreeMap::new();
        for ((_, fw, role), r) in &by_agent {
            if *fw == f.id {
                want.entry(role.clone()).or_default().add(r);
            }
        }
        prop_assert_eq!(&f.allocated, &want, "framework role tally of {}", f.id);
    }
    Ok(())
}

/// The snapshot from tallies equals the one summed from a list of every
/// task and offer on connected agents.
fn check_snapshot_against_usage_list(m: &Master, now: MonoTime) -> Result<(), TestCaseError> {
    use agora_allocator::{AgentInput, UsageInput, build_snapshot};
    let connected = |id: &AgentId| {
        m.agents
            .get(id)
            .is_some_and(|a| a.status() == AgentStatus::Connected)
    };
    let tasks = m
        .tasks
        .values()
        .map(|t| (&t.spec.agent_id, &t.framework, &t.role, &t.spec.resources));
    let offers = m.offers.values().map(|o| {
        (
            &o.offer.agent_id,
            &o.offer.framework_id,
            &o.offer.role,
            &o.offer.resources,
        )
    });
    let mut want = build_snapshot(
        m.agents
            .values()
            .filter(|a| a.status() == AgentStatus::Connected)
            .map(|a| AgentInput {
                id: &a.id,
                total: &a.total,
            }),
        m.frameworks.values().map(|f| m.framework_input(f, now)),
        tasks
            .chain(offers)
            .filter(|(agent, ..)| connected(agent))
            .map(|(agent, framework, role, resources)| UsageInput {
                agent,
                framework,
                role,
                resources,
            }),
        m.role_weights(),
    );
    // Draining agents are in the snapshot, inactive.
    for a in &mut want.agents {
        a.active = !m.is_draining(&a.id);
    }
    let got = m.snapshot(now);
    prop_assert_eq!(got.agents, want.agents, "snapshot agents");
    prop_assert_eq!(got.frameworks, want.frameworks, "snapshot frameworks");
    Ok(())
}

fn step(h: &mut MasterHarness, w: &mut World, op: Op) -> Result<(), TestCaseError> {
    let effects = match op {
        Op::Register => {
            let ag = h.register(testkit::agent_resources());
            w.agents.push(ag);
            vec![]
        }
        Op::Lose(i) => match w.agents.get(i) {
            Some(ag) if !w.lost.contains(&i) => {
                w.lost.insert(i);
                let ag = ag.clone();
                h.lose_agent(&ag)
            }
            _ => vec![],
        },
        Op::Disconnect(i) => match w.agents.get(i) {
            Some(ag) if !w.lost.contains(&i) => {
                w.lost.insert(i);
                h.input(Input::AgentStreamClosed {
                    agent: ag.id.clone(),
                    session: ag.session.clone(),
                })
            }
            _ => vec![],
        },
        Op::Return(i) => match w.agents.get(i) {
            Some(ag) if w.lost.contains(&i) => {
                w.lost.remove(&i);
                let reported = w
                    .running
                    .get(&ag.id)
                    .map(|m| {
                        m.iter()
                            .map(|((fw, _), (spec, state))| ReportedTask {
                                framework: fw.clone(),
                                spec: spec.clone(),
                                state: *state,
                                healthy: None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let back = h.register_with(Some(ag.id.clone()), ag.resources.clone(), reported);
                w.agents[i] = back;
                vec![]
            }
            _ => vec![],
        },
        Op::Subscribe { partition_aware } => {
            let mut info = testkit::framework("fw");
            info.failover_timeout = std::time::Duration::from_secs(3600);
            if partition_aware {
                info.capabilities.insert(Capability::PartitionAware);
            }
            let fw = h.subscribe(info);
            w.fws.push(fw);
            vec![]
        }
        Op::Allocate => h.allocate(),
        Op::Accept { fw, offer, tasks } => {
            let Some((f, o)) = w.take_offer(fw, offer) else {
                return Ok(());
            };
            let templates = (0..tasks)
                .map(|_| {
                    w.next_task += 1;
                    template(
                        &format!("t{}", w.next_task),
                        Resources::cpus_mem_disk(1.0, 512.0, 0.0),
                    )
                })
                .collect();
            h.accept(&f, std::slice::from_ref(&o.id), templates)
        }
        Op::Decline { fw, offer } => {
            let Some((f, o)) = w.take_offer(fw, offer) else {
                return Ok(());
            };
            h.call(
                &f,
                SchedulerCall::Decline {
                    offer_ids: vec![o.id],
                    refuse_seconds: Some(1.0),
                },
            )
            .0
        }
        Op::Kill { task } => {
            let Some((_, fw, t)) = w.launched.get(task).cloned() else {
                return Ok(());
            };
            let Some(f) = w.fws.iter().find(|f| f.id == fw).cloned() else {
                return Ok(());
            };
            h.call(
                &f,
                SchedulerCall::Kill {
                    task: t,
                    agent: None,
                    grace: None,
                },
            )
            .0
        }
        Op::AgentRuns { task } | Op::AgentFinishes { task } => {
            let finish = matches!(op, Op::AgentFinishes { .. });
            let Some((agent, fw, t)) = w.launched.get(task).cloned() else {
                return Ok(());
            };
            let Some(i) = w.agents.iter().position(|a| a.id == agent) else {
                return Ok(());
            };
            if w.lost.contains(&i) {
                return Ok(());
            }
            let Some((_, state)) = w
                .running
                .get_mut(&agent)
                .and_then(|m| m.get_mut(&(fw.clone(), t.clone())))
            else {
                return Ok(());
            };
            if state.is_terminal() {
                return Ok(());
            }
            *state = if finish {
                TaskState::Finished
            } else {
                TaskState::Running
            };
            let st = status(&t, *state);
            let ag = w.agents[i].clone();
            h.agent_update(&ag, &fw, st)
        }
        Op::Ack { update } => {
            if update >= w.to_ack.len() {
                return Ok(());
            }
            let (fw, st) = w.to_ack.remove(update);
            let Some(f) = w.fws.iter().find(|f| f.id == fw).cloned() else {
                return Ok(());
            };
            let (Some(agent), Some(uuid)) = (st.agent_id.clone(), st.uuid) else {
                return Ok(());
            };
            h.call(
                &f,
                SchedulerCall::Acknowledge {
                    agent,
                    task: st.task_id.clone(),
                    uuid,
                },
            )
            .0
        }
        Op::Tick => {
            h.advance(std::time::Duration::from_secs(2));
            h.input(Input::Housekeeping)
        }
        Op::Maintenance { agent, drain } => match w.agents.get(agent).cloned() {
            Some(a) => {
                let change = if drain {
                    crate::core::MaintenanceChange::Drain { deadline: None }
                } else {
                    crate::core::MaintenanceChange::Undrain
                };
                let reply = h.token();
                h.input(Input::SetMaintenance {
                    agent: a.id,
                    change,
                    reply,
                })
            }
            None => vec![],
        },
    };
    w.absorb(&effects)?;
    check_invariants(h)
}

/// Every lost agent comes back and every agent finishes what it runs.
fn drain(h: &mut MasterHarness, w: &mut World) -> Result<(), TestCaseError> {
    for i in w.lost.clone() {
        step(h, w, Op::Return(i))?;
    }
    for task in 0..w.launched.len() {
        step(h, w, Op::AgentFinishes { task })?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn random_sequences_keep_the_core_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let mut h = MasterHarness::new(MasterConfig::default());
        let mut w = World::default();
        for op in ops {
            step(&mut h, &mut w, op)?;
        }
        drain(&mut h, &mut w)?;
        prop_assert!(h.master.tasks.is_empty(), "tasks left live: {:?}", h.master.tasks.keys().collect::<Vec<_>>());
        for (_, fw, t) in &w.launched {
            if h.master.frameworks.contains_key(fw) {
                prop_assert!(w.terminal_seen.contains(&(fw.clone(), t.clone())), "task {} never reached its framework as terminal", t);
            }
        }
    }
}
