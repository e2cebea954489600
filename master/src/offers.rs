//! Offers: turning the allocator's plan (over `snapshot.rs`'s snapshot)
//! into offers verified against live state first, ACCEPT with validation,
//! DECLINE, RESCIND, offer timeouts and filters.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use agora_allocator::{AllocatorConfig, allocate};
use agora_model::{
    AgentId, FrameworkId, MonoTime, Offer, OfferId, Resources, Role, TaskSpec, TaskState,
    TaskStatusReason, TaskTemplate,
};
use tracing::{debug, info, warn};

use crate::config::MAX_REFUSE;
use crate::core::InvalidTask;
use crate::effects::{FrameworkEvent, ToAgent};
use crate::state::{AgentStatus, Filter, Master, OfferEntry, TaskEntry, TaskGoal, TaskKey};

/// Why the offers named in an ACCEPT cannot be used together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AcceptError {
    #[error("no offer ids")]
    NoOffers,
    #[error("offer {0} appears twice")]
    Duplicate(OfferId),
    #[error("offer {0} is no longer valid (unknown, used, declined or rescinded)")]
    Unknown(OfferId),
    #[error("offer {0} belongs to another framework")]
    OtherFramework(OfferId),
    #[error("offers from more than one agent in one ACCEPT")]
    SeveralAgents,
    #[error("offers for more than one role in one ACCEPT")]
    SeveralRoles,
    #[error("the offers' agent is no longer connected")]
    AgentGone,
}

/// The agent and role an ACCEPT's offers share.
struct AcceptTarget {
    agent: AgentId,
    role: Role,
}

impl Master {
    /// Records a new offer and adds it to its agent's and framework's tallies.
    fn insert_offer(&mut self, offer: Offer, now: MonoTime) {
        let on_known_agent = match self.agents.get_mut(&offer.agent_id) {
            Some(a) => {
                a.offered.add(&offer.resources);
                a.offers.insert(offer.id.clone());
                a.allocate(&offer.framework_id, &offer.role, &offer.resources);
                true
            }
            None => false,
        };
        if let Some(f) = self.frameworks.get_mut(&offer.framework_id) {
            f.offered.add(&offer.resources);
            f.offers.insert(offer.id.clone());
            if on_known_agent {
                f.allocate(&offer.role, &offer.resources);
            }
        }
        self.offers.insert(
            offer.id.clone(),
            OfferEntry {
                offer,
                created: now,
            },
        );
    }

    /// Removes an offer (without telling its framework) and its tallies.
    pub(crate) fn remove_offer(&mut self, id: &OfferId) -> Option<Offer> {
        let o = self.offers.remove(id)?.offer;
        let on_known_agent = match self.agents.get_mut(&o.agent_id) {
            Some(a) => {
                a.offered.subtract(&o.resources);
                a.offers.remove(id);
                a.unallocate(&o.framework_id, &o.role, &o.resources);
                true
            }
            None => false,
        };
        if let Some(f) = self.frameworks.get_mut(&o.framework_id) {
            f.offered.subtract(&o.resources);
            f.offers.remove(id);
            if on_known_agent {
                f.unallocate(&o.role, &o.resources);
            }
        }
        self.allocation_wanted = true;
        Some(o)
    }

    /// One allocation run: snapshot in, plan out, verify each allocation
    /// against live state, then offer. Frameworks whose event stream is
    /// backed up get nothing this time: offers they cannot read would only
    /// sit there, and their events would be dropped.
    pub(crate) fn allocate(&mut self, now: MonoTime, congested: &BTreeSet<FrameworkId>) {
        let snapshot = self.snapshot(now);
        let config = AllocatorConfig {
            filter_gpu_resources: self.cfg.filter_gpu_resources,
            ..Default::default()
        };
        self.allocation_seed = self.allocation_seed.wrapping_add(1);
        let plan = allocate(&snapshot, &config, now, self.allocation_seed);
        self.metrics.allocation_runs.inc();
        let mut per_framework: BTreeMap<FrameworkId, Vec<Offer>> = BTreeMap::new();
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
            if congested.contains(&alloc.framework) || self.is_draining(&alloc.agent) {
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
            self.insert_offer(offer.clone(), now);
            self.metrics.offers.inc();
            per_framework
                .entry(alloc.framework)
                .or_default()
                .push(offer);
        }
        for (fw, offers) in per_framework {
            debug!(framework = %fw, count = offers.len(), "sending offers");
            self.send_event(&fw, FrameworkEvent::Offers(offers));
        }
        self.allocation_wanted = false;
    }

    /// Removes an offer and tells its framework (RESCIND).
    pub(crate) fn rescind_offer(&mut self, id: &OfferId) {
        if let Some(o) = self.remove_offer(id) {
            self.send_event(&o.framework_id, FrameworkEvent::Rescind(id.clone()));
        }
    }

    /// Drops a framework's offers without telling it (it has no stream, or a new one).
    pub(crate) fn drop_framework_offers(&mut self, fw: &FrameworkId) {
        let ids: Vec<OfferId> = self
            .frameworks
            .get(fw)
            .map(|f| f.offers.iter().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            self.remove_offer(&id);
        }
    }

    /// Rescinds every offer on an agent (it went away).
    pub(crate) fn rescind_agent_offers(&mut self, agent: &AgentId) {
        let ids: Vec<OfferId> = self
            .agents
            .get(agent)
            .map(|a| a.offers.iter().cloned().collect())
            .unwrap_or_default();
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

    /// Records a refusal; a newer one for the same agent and role replaces
    /// the older, so filters stay bounded by agents × roles per framework.
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
            f.filters.insert(
                (agent.clone(), role.clone()),
                Filter {
                    resources,
                    expires: now.after(d),
                },
            );
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
            if self
                .offers
                .get(id)
                .is_none_or(|o| &o.offer.framework_id != fw)
            {
                debug!(framework = %fw, offer = %id, "DECLINE of an unknown offer ignored");
                continue;
            }
            if let Some(o) = self.remove_offer(id) {
                self.add_filter(fw, &o.agent_id, &o.role, o.resources, d, now);
            }
        }
    }

    /// The offers of an ACCEPT, checked as a set before any is touched.
    fn validate_offers(
        &self,
        fw: &FrameworkId,
        offer_ids: &[OfferId],
    ) -> Result<AcceptTarget, AcceptError> {
        let mut target: Option<AcceptTarget> = None;
        let mut seen = BTreeSet::new();
        for id in offer_ids {
            if !seen.insert(id) {
                return Err(AcceptError::Duplicate(id.clone()));
            }
            let o = match self.offers.get(id) {
                None => return Err(AcceptError::Unknown(id.clone())),
                Some(o) if &o.offer.framework_id != fw => {
                    return Err(AcceptError::OtherFramework(id.clone()));
                }
                Some(o) => &o.offer,
            };
            match &target {
                Some(t) if t.agent != o.agent_id => return Err(AcceptError::SeveralAgents),
                Some(t) if t.role != o.role => return Err(AcceptError::SeveralRoles),
                Some(_) => {}
                None => {
                    target = Some(AcceptTarget {
                        agent: o.agent_id.clone(),
                        role: o.role.clone(),
                    })
                }
            }
        }
        let target = target.ok_or(AcceptError::NoOffers)?;
        let connected = self
            .agents
            .get(&target.agent)
            .is_some_and(|a| a.status() == AgentStatus::Connected);
        if !connected {
            return Err(AcceptError::AgentGone);
        }
        Ok(target)
    }

    /// ACCEPT: validates the offers, then each task; invalid tasks get a
    /// terminal update with a reason, valid ones are launched; the unused
    /// remainder returns to the pool behind a filter. Never over-commits.
    pub(crate) fn accept(
        &mut self,
        fw: &FrameworkId,
        offer_ids: Vec<OfferId>,
        tasks: Vec<Result<TaskTemplate, InvalidTask>>,
        refuse_seconds: Option<f64>,
        now: MonoTime,
    ) {
        let target = match self.validate_offers(fw, &offer_ids) {
            Ok(t) => t,
            Err(e) => return self.refuse_accept(fw, &offer_ids, &tasks, &e),
        };
        let mut pool = Resources::new();
        for id in &offer_ids {
            if let Some(o) = self.remove_offer(id) {
                pool.add(&o.resources);
            }
        }
        let mut launched: Vec<TaskSpec> = Vec::new();
        for t in tasks {
            match self.place_task(fw, &target.agent, t, &pool, &launched) {
                Ok(spec) => {
                    pool.subtract(&spec.resources);
                    launched.push(spec);
                }
                Err(bad) => {
                    info!(framework = %fw, task = %bad.task_id, reason = %bad.reason, "invalid task");
                    self.update_for_unknown_task(
                        fw,
                        // Echoed back as the framework sent it; never stored.
                        agora_model::TaskId::new_unchecked(bad.task_id),
                        Some(&target.agent),
                        TaskState::Error,
                        TaskStatusReason::TaskInvalid,
                        &bad.reason,
                    );
                }
            }
        }
        for spec in launched {
            self.launch(fw, &target.role, spec);
        }
        let d = self.refuse_duration(refuse_seconds);
        self.add_filter(fw, &target.agent, &target.role, pool, d, now);
        self.allocation_wanted = true;
    }

    /// A bad set of offers: valid ones named go back to the pool, as in
    /// Mesos, and every task is dropped with the reason.
    fn refuse_accept(
        &mut self,
        fw: &FrameworkId,
        offer_ids: &[OfferId],
        tasks: &[Result<TaskTemplate, InvalidTask>],
        e: &AcceptError,
    ) {
        info!(framework = %fw, error = %e, "ACCEPT with invalid offers");
        for id in offer_ids {
            if self
                .offers
                .get(id)
                .is_some_and(|o| &o.offer.framework_id == fw)
            {
                self.remove_offer(id);
            }
        }
        let dropped = self.lost_state_for(fw, TaskState::Dropped);
        for t in tasks {
            let id = match t {
                Ok(t) => t.id().clone(),
                Err(bad) => agora_model::TaskId::new_unchecked(bad.task_id.clone()),
            };
            self.update_for_unknown_task(
                fw,
                id,
                None,
                dropped,
                TaskStatusReason::InvalidOffers,
                &e.to_string(),
            );
        }
    }

    /// Binds a template to the offers' agent, checking what needs the offers.
    fn place_task(
        &self,
        fw: &FrameworkId,
        agent: &AgentId,
        t: Result<TaskTemplate, InvalidTask>,
        pool: &Resources,
        launched: &[TaskSpec],
    ) -> Result<TaskSpec, InvalidTask> {
        let t = t?;
        let invalid = |reason: String| InvalidTask {
            task_id: t.id().to_string(),
            reason,
        };
        if let Some(req) = &t.requested_agent
            && req != agent
        {
            return Err(invalid(format!(
                "agent_id {req} does not match the offers' agent {agent}"
            )));
        }
        let key = TaskKey {
            framework: fw.clone(),
            task: t.id().clone(),
        };
        if self.tasks.contains_key(&key) || launched.iter().any(|l| &l.id == t.id()) {
            return Err(invalid(format!("task id {} is already in use", t.id())));
        }
        if !pool.contains(t.resources()) {
            return Err(invalid(format!(
                "task uses more resources ({}) than the offers have left ({})",
                t.resources(),
                pool
            )));
        }
        Ok(t.bind(agent.clone()))
    }

    fn launch(&mut self, fw: &FrameworkId, role: &Role, spec: TaskSpec) {
        let key = TaskKey {
            framework: fw.clone(),
            task: spec.id.clone(),
        };
        let Some(framework) = self.frameworks.get(fw).map(|f| f.info.clone()) else {
            return;
        };
        let agent_id = spec.agent_id.clone();
        let msg = ToAgent::Launch {
            framework: Box::new(framework),
            task: Box::new(spec.clone()),
        };
        self.insert_task(
            key,
            TaskEntry {
                spec,
                framework: fw.clone(),
                role: role.clone(),
                state: TaskState::Staging,
                last_status: None,
                healthy: None,
                goal: TaskGoal::Run,
            },
        );
        self.metrics.message("launch_task");
        self.send_to_agent(&agent_id, msg);
    }
}
