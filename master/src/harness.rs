//! `MasterHarness`: drives the sans-IO core with inputs and a controlled
//! clock and records every effect, in the manner of Nomad's scheduler
//! harness. Proposals become durable when the test says so (or at once with
//! `auto_commit`), so the order propose → durable → applied → reply can be
//! checked. Table tests are in `harness/cases.rs`, property tests over random
//! sequences in `harness/props.rs`.
use std::collections::BTreeSet;
use std::time::Duration;

use agora_model::{
    AgentId, FrameworkId, FrameworkInfo, MonoTime, Offer, OfferId, Resources, SessionId, StreamId,
    TaskId, TaskState, TaskStatus, TaskTemplate, testkit,
};
use agora_proto::convert::AgentInfo;

use crate::config::MasterConfig;
use crate::core::{AgentRegistration, FromAgent, Input, ReportedTask, SchedulerCall};
use crate::effects::{Effect, FrameworkEvent, Reply, ReplyToken, ToAgent};
use crate::registry::Registry;
use crate::state::Master;

mod cases;
mod maintenance;
mod props;

pub(crate) struct MasterHarness {
    pub(crate) master: Master,
    pub(crate) now: MonoTime,
    /// Every effect so far, in order.
    pub(crate) log: Vec<Effect>,
    /// Proposal sequence numbers not yet durable.
    pub(crate) undurable: Vec<u64>,
    /// Make every proposal durable right after the input that made it.
    pub(crate) auto_commit: bool,
    next: u64,
}

/// A subscribed framework as the harness tracks it.
#[derive(Debug, Clone)]
pub(crate) struct Fw {
    pub(crate) id: FrameworkId,
    pub(crate) stream: StreamId,
}

/// A registered, attached agent.
#[derive(Debug, Clone)]
pub(crate) struct Ag {
    pub(crate) id: AgentId,
    pub(crate) session: SessionId,
    pub(crate) resources: Resources,
}

impl MasterHarness {
    pub(crate) fn new(cfg: MasterConfig) -> MasterHarness {
        MasterHarness::with_registry(cfg, Registry::default())
    }

    pub(crate) fn with_registry(cfg: MasterConfig, registry: Registry) -> MasterHarness {
        MasterHarness {
            master: Master::new(cfg, registry, "m".into(), "leader".into(), 1000.0, 7),
            now: MonoTime(0),
            log: Vec::new(),
            undurable: Vec::new(),
            auto_commit: true,
            next: 0,
        }
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    pub(crate) fn advance(&mut self, d: Duration) {
        self.now = self.now.after(d);
    }

    /// Handles one input; returns its effects (and those of the commit that
    /// follows when `auto_commit` is on).
    pub(crate) fn input(&mut self, input: Input) -> Vec<Effect> {
        let unix = 1000.0 + self.now.0 as f64 / 1000.0;
        let mut effects = self.master.handle(input, self.now, unix);
        for e in &effects {
            if let Effect::Propose { seq, .. } = e {
                self.undurable.push(*seq);
            }
        }
        if self.auto_commit && !self.undurable.is_empty() {
            effects.extend(self.commit());
        }
        self.log.extend(effects.iter().cloned());
        effects
    }

    /// Makes every outstanding proposal durable.
    pub(crate) fn commit(&mut self) -> Vec<Effect> {
        let Some(up_to) = self.undurable.iter().max().copied() else {
            return Vec::new();
        };
        self.undurable.clear();
        let unix = 1000.0 + self.now.0 as f64 / 1000.0;
        let effects = self.master.handle(Input::Durable { up_to }, self.now, unix);
        let mut more = Vec::new();
        for e in &effects {
            if let Effect::Propose { seq, .. } = e {
                self.undurable.push(*seq);
            }
        }
        if !self.undurable.is_empty() {
            more = self.commit();
        }
        effects.into_iter().chain(more).collect()
    }

    // ---- frameworks ----

    pub(crate) fn subscribe(&mut self, info: FrameworkInfo) -> Fw {
        let stream = StreamId::new_unchecked(self.fresh("s"));
        let new_id = FrameworkId::new_unchecked(self.fresh("f"));
        let token = self.token();
        let effects = self.input(Input::Subscribe {
            info,
            suppressed: vec![],
            stream: stream.clone(),
            new_id,
            reply: token,
        });
        match reply_of(&effects, token) {
            Some(Reply::Subscribed(Ok(id))) => Fw {
                id: id.clone(),
                stream,
            },
            other => panic!("subscribe answered {other:?}"),
        }
    }

    /// A SUBSCRIBE naming an existing framework id on a new stream; returns
    /// its effects and the token its answer carries.
    pub(crate) fn resubscribe(
        &mut self,
        id: &FrameworkId,
        stream: &str,
    ) -> (Vec<Effect>, ReplyToken) {
        let token = self.token();
        let effects = self.input(Input::Subscribe {
            info: FrameworkInfo {
                id: Some(id.clone()),
                ..testkit::framework("fw")
            },
            suppressed: vec![],
            stream: StreamId::new_unchecked(stream),
            new_id: FrameworkId::new_unchecked("unused"),
            reply: token,
        });
        (effects, token)
    }

    pub(crate) fn token(&mut self) -> ReplyToken {
        self.next += 1;
        self.next
    }

    /// A scheduler call; returns its effects and its answer (None while its
    /// change is not durable).
    pub(crate) fn call(
        &mut self,
        fw: &Fw,
        call: SchedulerCall,
    ) -> (Vec<Effect>, Option<Result<(), String>>) {
        let token = self.token();
        let effects = self.input(Input::Call {
            framework: fw.id.clone(),
            stream: fw.stream.clone(),
            call,
            reply: token,
        });
        let answer = match reply_of(&effects, token) {
            Some(Reply::Done(r)) => Some(r.clone().map_err(|e| e.to_string())),
            Some(other) => panic!("a call answered {other:?}"),
            None => None,
        };
        (effects, answer)
    }

    pub(crate) fn accept(
        &mut self,
        fw: &Fw,
        offers: &[OfferId],
        tasks: Vec<TaskTemplate>,
    ) -> Vec<Effect> {
        let (effects, answer) = self.call(
            fw,
            SchedulerCall::Accept {
                offer_ids: offers.to_vec(),
                tasks: tasks.into_iter().map(Ok).collect(),
                refuse_seconds: None,
            },
        );
        assert_eq!(answer, Some(Ok(())));
        effects
    }

    pub(crate) fn allocate(&mut self) -> Vec<Effect> {
        self.input(Input::Allocate {
            congested: BTreeSet::new(),
        })
    }

    // ---- agents ----

    pub(crate) fn register(&mut self, resources: Resources) -> Ag {
        self.register_with(None, resources, vec![])
    }

    /// Registers (or re-registers `id` reporting `tasks`) and attaches.
    pub(crate) fn register_with(
        &mut self,
        id: Option<AgentId>,
        resources: Resources,
        tasks: Vec<ReportedTask>,
    ) -> Ag {
        let session = SessionId::new_unchecked(self.fresh("session"));
        let new_id = AgentId::new_unchecked(self.fresh("a"));
        let token = self.token();
        let reg = AgentRegistration {
            info: AgentInfo {
                id,
                hostname: "host".into(),
                port: 5051,
                resources: resources.clone(),
                attributes: Default::default(),
            },
            tasks,
            frameworks: vec![],
            updates: vec![],
        };
        let effects = self.input(Input::RegisterAgent {
            reg: Box::new(reg),
            session: session.clone(),
            new_id,
            reply: token,
        });
        let id = match reply_of(&effects, token) {
            Some(Reply::Registered(Ok(r))) => r.agent_id.clone(),
            other => panic!("register answered {other:?}"),
        };
        let token = self.token();
        let effects = self.input(Input::AttachAgent {
            agent: id.clone(),
            session: session.clone(),
            reply: token,
        });
        assert!(matches!(
            reply_of(&effects, token),
            Some(Reply::Done(Ok(())))
        ));
        Ag {
            id,
            session,
            resources,
        }
    }

    pub(crate) fn agent_update(
        &mut self,
        ag: &Ag,
        fw: &FrameworkId,
        status: TaskStatus,
    ) -> Vec<Effect> {
        self.input(Input::FromAgent {
            agent: ag.id.clone(),
            session: ag.session.clone(),
            msg: FromAgent::StatusUpdate {
                framework: fw.clone(),
                status,
            },
        })
    }

    /// The agent's stream closes and it misses pings until unreachable;
    /// every other agent answers its pings meanwhile.
    pub(crate) fn lose_agent(&mut self, ag: &Ag) -> Vec<Effect> {
        let mut effects = self.input(Input::AgentStreamClosed {
            agent: ag.id.clone(),
            session: ag.session.clone(),
        });
        for _ in 0..self.master.cfg.max_agent_ping_misses {
            let tick = self.input(Input::PingAgents);
            let pings: Vec<(AgentId, SessionId, u64)> = tick
                .iter()
                .filter_map(|e| match e {
                    Effect::ToAgent {
                        agent,
                        session,
                        msg: ToAgent::Ping { seq },
                    } if agent != &ag.id => Some((agent.clone(), session.clone(), *seq)),
                    _ => None,
                })
                .collect();
            effects.extend(tick);
            for (agent, session, seq) in pings {
                effects.extend(self.input(Input::FromAgent {
                    agent,
                    session,
                    msg: FromAgent::Pong { seq },
                }));
            }
        }
        effects
    }
}

// ---- reading effects ----

pub(crate) fn reply_of(effects: &[Effect], token: ReplyToken) -> Option<&Reply> {
    effects.iter().find_map(|e| match e {
        Effect::Reply { token: t, reply } if *t == token => Some(reply),
        _ => None,
    })
}

pub(crate) fn offers_in(effects: &[Effect], fw: &FrameworkId) -> Vec<Offer> {
    events_in(effects, fw)
        .into_iter()
        .flat_map(|e| match e {
            FrameworkEvent::Offers(o) => o.clone(),
            _ => vec![],
        })
        .collect()
}

pub(crate) fn events_in<'a>(effects: &'a [Effect], fw: &FrameworkId) -> Vec<&'a FrameworkEvent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ToFramework {
                framework, event, ..
            } if framework == fw => Some(event),
            _ => None,
        })
        .collect()
}

pub(crate) fn updates_in(effects: &[Effect], fw: &FrameworkId) -> Vec<TaskStatus> {
    events_in(effects, fw)
        .into_iter()
        .filter_map(|e| match e {
            FrameworkEvent::Update(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) fn to_agent_in<'a>(effects: &'a [Effect], agent: &AgentId) -> Vec<&'a ToAgent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ToAgent { agent: a, msg, .. } if a == agent => Some(msg),
            _ => None,
        })
        .collect()
}

pub(crate) fn proposals_in(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Propose { .. }))
        .count()
}

/// A template for `task` on the offers' agent (`testkit::task` defaults).
pub(crate) fn template(task: &str, resources: Resources) -> TaskTemplate {
    let spec = agora_model::TaskSpec {
        resources,
        ..testkit::task(task)
    };
    TaskTemplate::new(None, spec)
}

pub(crate) fn status(task: &TaskId, state: TaskState) -> TaskStatus {
    testkit::update(task, state)
}
