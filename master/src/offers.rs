//! Offers: building the allocator's snapshot, turning its plan into offers
//! (verified against live state first), ACCEPT with validation, DECLINE,
//! RESCIND, offer timeouts and filters.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use agora_allocator::{AllocatorConfig, allocate};
use agora_model::{
    AgentId, FrameworkId, MonoTime, Offer, OfferId, Resources, Role, TaskSpec, TaskState,
    TaskStatusReason,
};
use agora_proto::{convert, v1};
use tracing::{debug, info, warn};

use crate::config::MAX_REFUSE;
use crate::state::{AgentStatus, Filter, Master, OfferEntry, TaskEntry, TaskKey};

impl Master {
    /// Resources held by non-terminal tasks on an agent.
    pub(crate) fn used_on_agent(&self, agent: &AgentId) -> Resources {
        let mut used = Resources::new();
        if let Some(a) = self.agents.get(agent) {
            for key in &a.tasks {
                if let Some(t) = self.tasks.get(key) {
                    used.add(&t.spec.resources);
                }
            }
        }
        used
    }

    /// Resources in outstanding offers on an agent.
    pub(crate) fn offered_on_agent(&self, agent: &AgentId) -> Resources {
        let mut r = Resources::new();
        for o in self.offers.values().filter(|o| &o.offer.agent_id == agent) {
            r.add(&o.offer.resources);
        }
        r
    }

    /// One allocation run: snapshot in, plan out, verify each allocation
    /// against live state, then offer.
    pub(crate) fn allocate(&mut self, now: MonoTime) {
        let started = std::time::Instant::now();
        let snapshot = self.snapshot(now);
        let config = AllocatorConfig {
            filter_gpu_resources: self.cfg.filter_gpu_resources,
            ..Default::default()
        };
        self.allocation_seed = self.allocation_seed.wrapping_add(1);
        let plan = allocate(&snapshot, &config, now, self.allocation_seed);
        self.metrics.allocation_runs.inc();
        let mut per_framework: BTreeMap<FrameworkId, Vec<v1::Offer>> = BTreeMap::new();
        let mut free: HashMap<AgentId, Resources> = snapshot
            .agents
            .into_iter()
            .map(|a| (a.id, a.free))
            .collect();
        for alloc in plan {
            // Verify at commit: the plan was computed from a snapshot; only
            // offer what is still free and to frameworks still connected.
            let Some(agent_free) = free.get_mut(&alloc.agent) else {
                continue;
            };
            if !agent_free.contains(&alloc.resources) || alloc.resources.is_empty() {
                warn!(agent = %alloc.agent, "allocator plan exceeds free resources; skipped");
                continue;
            }
            let Some(f) = self.frameworks.get(&alloc.framework) else {
                continue;
            };
            if !f.connected() || !f.info.roles.contains(&alloc.role) {
                continue;
            }
            let Some(agent) = self.agents.get(&alloc.agent) else {
                continue;
            };
            agent_free.subtract(&alloc.resources);
            let offer = Offer {
                id: OfferId::random(),
                framework_id: alloc.framework.clone(),
                agent_id: alloc.agent.clone(),
                hostname: agent.hostname.clone(),
                resources: alloc.resources,
                attributes: agent.attributes.clone(),
                role: alloc.role,
            };
            per_framework
                .entry(alloc.framework)
                .or_default()
                .push(convert::offer_to_wire(&offer));
            self.offers.insert(
                offer.id.clone(),
                OfferEntry {
                    offer,
                    created: now,
                },
            );
        }
        for (fw, offers) in per_framework {
            debug!(framework = %fw, count = offers.len(), "sending offers");
            self.send_event(
                &fw,
                v1::Event {
                    event: Some(v1::event::Event::Offers(v1::event::Offers { offers })),
                },
            );
        }
        self.metrics
            .allocation_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// Removes an offer and tells its framework (RESCIND).
    pub(crate) fn rescind_offer(&mut self, id: &OfferId) {
        if let Some(o) = self.offers.remove(id) {
            let ev = v1::Event {
                event: Some(v1::event::Event::Rescind(v1::event::Rescind {
                    offer_id: id.to_string(),
                })),
            };
            self.send_event(&o.offer.framework_id, ev);
            self.allocation_wanted = true;
        }
    }

    /// Drops a framework's offers without telling it (it has no stream, or a new one).
    pub(crate) fn recover_framework_offers(&mut self, fw: &FrameworkId) {
        let before = self.offers.len();
        self.offers.retain(|_, o| &o.offer.framework_id != fw);
        if self.offers.len() != before {
            self.allocation_wanted = true;
        }
    }

    /// Rescinds every offer on an agent (it went away).
    pub(crate) fn rescind_agent_offers(&mut self, agent: &AgentId) {
        let ids: Vec<OfferId> = self
            .offers
            .values()
            .filter(|o| &o.offer.agent_id == agent)
            .map(|o| o.offer.id.clone())
            .collect();
        for id in ids {
            self.rescind_offer(&id);
        }
    }

    pub(crate) fn expire_offers(&mut self, now: MonoTime) {
        let Some(timeout) = self.cfg.offer_timeout else {
            return;
        };
        let expired: Vec<OfferId> = self
            .offers
            .values()
            .filter(|o| now.since(o.created) >= timeout)
            .map(|o| o.offer.id.clone())
            .collect();
        for id in expired {
            debug!(offer = %id, "offer timed out");
            self.rescind_offer(&id);
        }
    }

    fn refuse_duration(&self, refuse_seconds: Option<f64>) -> Duration {
        match refuse_seconds {
            // Mesos: negative or absent means the default; cap at 365 days.
            Some(s) if s.is_finite() && s >= 0.0 => {
                Duration::from_secs_f64(s.min(MAX_REFUSE.as_secs_f64()))
            }
            _ => self.cfg.default_refuse,
        }
    }

    fn add_filter(
        &mut self,
        fw: &FrameworkId,
        agent: &AgentId,
        role: &Role,
        resources: Resources,
        d: Duration,
        now: MonoTime,
    ) {
        if resources.is_empty() || d.is_zero() {
            return;
        }
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.filters.push(Filter {
                agent: agent.clone(),
                role: role.clone(),
                resources,
                expires: now.after(d),
            });
        }
    }

    pub(crate) fn decline(
        &mut self,
        fw: &FrameworkId,
        offer_ids: &[OfferId],
        refuse_seconds: Option<f64>,
        now: MonoTime,
    ) {
        let d = self.refuse_duration(refuse_seconds);
        for id in offer_ids {
            match self.offers.get(id) {
                Some(o) if &o.offer.framework_id == fw => {
                    let Some(o) = self.offers.remove(id) else {
                        continue;
                    };
                    self.add_filter(
                        fw,
                        &o.offer.agent_id,
                        &o.offer.role,
                        o.offer.resources,
                        d,
                        now,
                    );
                    self.allocation_wanted = true;
                }
                _ => debug!(framework = %fw, offer = %id, "DECLINE of an unknown offer ignored"),
            }
        }
    }

    /// ACCEPT: validates the offers, then each task; invalid tasks get a
    /// terminal update with a reason, valid ones are launched; the unused
    /// remainder returns to the pool behind a filter. Never over-commits.
    pub(crate) fn accept(
        &mut self,
        fw: &FrameworkId,
        offer_ids: Vec<OfferId>,
        tasks: Vec<v1::TaskInfo>,
        refuse_seconds: Option<f64>,
        now: MonoTime,
    ) {
        let pa = self.frameworks.get(fw).is_some_and(|f| f.partition_aware());
        let dropped = if pa {
            TaskState::Dropped
        } else {
            TaskState::Lost
        };
        // Validate the offers as a set before touching any of them.
        let mut problem: Option<String> = None;
        let mut agent: Option<AgentId> = None;
        let mut role: Option<Role> = None;
        let mut seen = BTreeSet::new();
        for id in &offer_ids {
            if !seen.insert(id.clone()) {
                problem = Some(format!("offer {id} appears twice"));
                break;
            }
            match self.offers.get(id) {
                None => {
                    problem = Some(format!(
                        "offer {id} is no longer valid (unknown, used, declined or rescinded)"
                    ));
                    break;
                }
                Some(o) if &o.offer.framework_id != fw => {
                    problem = Some(format!("offer {id} belongs to another framework"));
                    break;
                }
                Some(o) => {
                    if agent.as_ref().is_some_and(|a| a != &o.offer.agent_id) {
                        problem = Some("offers from more than one agent in one ACCEPT".to_string());
                        break;
                    }
                    if role.as_ref().is_some_and(|r| r != &o.offer.role) {
                        problem = Some("offers for more than one role in one ACCEPT".to_string());
                        break;
                    }
                    agent = Some(o.offer.agent_id.clone());
                    role = Some(o.offer.role.clone());
                }
            }
        }
        if offer_ids.is_empty() {
            problem = Some("no offer ids".to_string());
        }
        let agent_ok = agent.as_ref().is_some_and(|a| {
            self.agents
                .get(a)
                .is_some_and(|e| e.status == AgentStatus::Connected)
        });
        if problem.is_none() && !agent_ok {
            problem = Some("the offers' agent is no longer connected".to_string());
        }
        let (Some(agent), Some(role), None) = (agent, role, problem.clone()) else {
            let msg = problem.unwrap_or_default();
            info!(framework = %fw, %msg, "ACCEPT with invalid offers");
            // Valid offers named in a bad ACCEPT go back to the pool, as in Mesos.
            for id in &offer_ids {
                if self
                    .offers
                    .get(id)
                    .is_some_and(|o| &o.offer.framework_id == fw)
                {
                    self.offers.remove(id);
                    self.allocation_wanted = true;
                }
            }
            for t in &tasks {
                self.master_update_raw(
                    fw,
                    &t.task_id,
                    None,
                    dropped,
                    TaskStatusReason::InvalidOffers,
                    &msg,
                );
            }
            return;
        };
        let mut pool = Resources::new();
        for id in &offer_ids {
            if let Some(o) = self.offers.remove(id) {
                pool.add(&o.offer.resources);
            }
        }
        let mut launched = Vec::new();
        for t in tasks {
            match self.validate_task(fw, &agent, &t, &pool, &launched) {
                Ok(spec) => {
                    pool.subtract(&spec.resources);
                    launched.push(spec);
                }
                Err(msg) => {
                    info!(framework = %fw, task = %t.task_id, %msg, "invalid task");
                    self.master_update_raw(
                        fw,
                        &t.task_id,
                        Some(&agent),
                        TaskState::Error,
                        TaskStatusReason::TaskInvalid,
                        &msg,
                    );
                }
            }
        }
        for spec in launched {
            self.launch(fw, &role, spec);
        }
        let d = self.refuse_duration(refuse_seconds);
        self.add_filter(fw, &agent, &role, pool, d, now);
        self.allocation_wanted = true;
    }

    fn validate_task(
        &self,
        fw: &FrameworkId,
        agent: &AgentId,
        t: &v1::TaskInfo,
        pool: &Resources,
        launched: &[TaskSpec],
    ) -> Result<TaskSpec, String> {
        let spec = convert::task_from_wire(t, agent).map_err(|e| e.to_string())?;
        if !t.agent_id.is_empty() && t.agent_id != agent.as_str() {
            return Err(format!(
                "agent_id {} does not match the offers' agent {agent}",
                t.agent_id
            ));
        }
        let key = TaskKey {
            framework: fw.clone(),
            task: spec.id.clone(),
        };
        if self.tasks.contains_key(&key) || launched.iter().any(|l| l.id == spec.id) {
            return Err(format!("task id {} is already in use", spec.id));
        }
        if !pool.contains(&spec.resources) {
            return Err(format!(
                "task uses more resources ({}) than the offers have left ({})",
                spec.resources, pool
            ));
        }
        Ok(spec)
    }

    fn launch(&mut self, fw: &FrameworkId, role: &Role, spec: TaskSpec) {
        let key = TaskKey {
            framework: fw.clone(),
            task: spec.id.clone(),
        };
        let framework_info = self
            .frameworks
            .get(fw)
            .map(|f| convert::framework_to_wire(&f.info));
        let msg = v1::MasterMessage {
            message: Some(v1::master_message::Message::Launch(
                v1::master_message::Launch {
                    framework: framework_info,
                    task: Some(convert::task_to_wire(&spec)),
                },
            )),
        };
        let agent_id = spec.agent_id.clone();
        self.tasks.insert(
            key.clone(),
            TaskEntry {
                spec,
                framework: fw.clone(),
                role: role.clone(),
                state: TaskState::Staging,
                last_status: None,
                healthy: None,
                kill_requested: false,
            },
        );
        if let Some(a) = self.agents.get_mut(&agent_id) {
            a.tasks.insert(key);
        }
        self.metrics.message("launch_task");
        self.send_to_agent(&agent_id, msg);
    }

    /// A master-generated update for a task that may not exist (bad ACCEPT):
    /// not acknowledged, not retried (as in Mesos).
    pub(crate) fn master_update_raw(
        &mut self,
        fw: &FrameworkId,
        task_id: &str,
        agent: Option<&AgentId>,
        state: TaskState,
        reason: TaskStatusReason,
        message: &str,
    ) {
        let status = v1::TaskStatus {
            task_id: task_id.to_string(),
            state: convert::state_to_wire(state),
            message: message.to_string(),
            source: v1::task_status::Source::Master as i32,
            reason: convert::reason_to_wire(reason),
            agent_id: agent.map(ToString::to_string).unwrap_or_default(),
            uuid: Vec::new(),
            timestamp: crate::clock::unix_now(),
            healthy: None,
            exit_code: None,
            framework_id: fw.to_string(),
        };
        self.send_event(
            fw,
            v1::Event {
                event: Some(v1::event::Event::Update(v1::event::Update {
                    status: Some(status),
                })),
            },
        );
    }
}
