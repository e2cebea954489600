//! Agents: admission and re-registration (with task reconciliation), the
//! Attach stream, pings and the unreachable transition. Admission is
//! answered only once the agent's registry record is durable.
use std::collections::BTreeSet;

use agora_model::{AgentId, MonoTime, SessionId, TaskState, TaskStatusReason};
use tracing::{info, warn};

use crate::core::{AgentRegistration, FromAgent, ReportedTask};
use crate::effects::{FrameworkEvent, Registered, Reply, ReplyToken};
use crate::error::CallError;
use crate::registry::{AgentRecord, RegistryCommand};
use crate::state::{
    AfterCommit, AgentConn, AgentEntry, FrameworkConn, FrameworkEntry, Master, TaskEntry, TaskGoal,
    TaskKey,
};

/// A registration waiting for its registry record to be durable.
#[derive(Debug)]
pub(crate) struct PendingRegistration {
    pub(crate) id: AgentId,
    pub(crate) reg: AgentRegistration,
    pub(crate) session: SessionId,
    pub(crate) reply: ReplyToken,
}

impl Master {
    pub(crate) fn register_agent(
        &mut self,
        reg: AgentRegistration,
        session: SessionId,
        new_id: AgentId,
        reply: ReplyToken,
        now: MonoTime,
    ) {
        let id = reg.info.id.clone().unwrap_or(new_id);
        let record = AgentRecord {
            hostname: reg.info.hostname.clone(),
            port: reg.info.port,
            resources: reg.info.resources.clone(),
            attributes: reg.info.attributes.clone(),
        };
        let cmds = vec![
            RegistryCommand::AdmitAgent {
                id: id.clone(),
                record,
            },
            RegistryCommand::MarkReachable { id: id.clone() },
        ];
        let pending = PendingRegistration {
            id,
            reg,
            session,
            reply,
        };
        if let Some(after) = self.propose(cmds, AfterCommit::Register(Box::new(pending))) {
            self.continue_after(after, now);
        }
    }

    /// The agent's record is durable: admit it, reconcile what it reports
    /// with what we believe, and answer.
    pub(crate) fn finish_registration(&mut self, p: PendingRegistration, now: MonoTime) {
        let PendingRegistration {
            id,
            reg,
            session,
            reply,
        } = p;
        let reregistering = reg.info.id.is_some();
        let was_unreachable = self
            .agents
            .get(&id)
            .is_some_and(|a| matches!(a.conn, AgentConn::Unreachable { .. }));
        self.admit(&id, &reg, session.clone());
        info!(agent = %id, hostname = %reg.info.hostname, reregistering, was_unreachable, tasks = reg.tasks.len(), "agent registered");
        self.adopt_frameworks(&reg, now);
        self.reconcile_reported_tasks(&id, reg.tasks, was_unreachable);
        for (fw, st) in reg.updates {
            self.status_update(&id, &fw, st);
        }
        self.allocation_wanted = true;
        self.reply(
            reply,
            Reply::Registered(Ok(Registered {
                agent_id: id,
                session,
            })),
        );
    }

    /// Inserts or refreshes the agent's entry with a new session. An older
    /// session's stream is closed by the loop when it sees the new one.
    fn admit(&mut self, id: &AgentId, reg: &AgentRegistration, session: SessionId) {
        self.rescind_agent_offers(id);
        let now_unix = self.now_unix;
        let entry = self.agents.entry(id.clone()).or_insert_with(|| {
            AgentEntry::new(
                id.clone(),
                now_unix,
                AgentConn::Disconnected {
                    session: session.clone(),
                },
            )
        });
        entry.hostname = reg.info.hostname.clone();
        entry.port = reg.info.port;
        entry.total = reg.info.resources.clone();
        entry.attributes = reg.info.attributes.clone();
        entry.conn = AgentConn::Disconnected { session };
        entry.outstanding_ping = None;
        entry.misses = 0;
        entry.orphan_kills.clear();
    }

    /// Frameworks the agent knows but we don't (a master without them in its
    /// registry): adopt them as disconnected, with time to re-subscribe.
    fn adopt_frameworks(&mut self, reg: &AgentRegistration, now: MonoTime) {
        for fi in &reg.frameworks {
            let Some(fid) = fi.id.clone() else { continue };
            if self.frameworks.contains_key(&fid) || self.framework_removed(&fid) {
                continue;
            }
            let wait = fi.failover_timeout.max(self.cfg.agent_reregister_timeout);
            let f = FrameworkEntry::new(
                fi.clone(),
                fid.clone(),
                FrameworkConn::Failover {
                    deadline: now.after(wait),
                },
                self.now_unix,
            );
            self.frameworks.insert(fid, f);
        }
    }

    /// Reconciles what the agent runs with what we believe it runs.
    fn reconcile_reported_tasks(
        &mut self,
        id: &AgentId,
        tasks: Vec<ReportedTask>,
        was_unreachable: bool,
    ) {
        let reported: BTreeSet<TaskKey> = tasks
            .iter()
            .map(|t| TaskKey {
                framework: t.framework.clone(),
                task: t.spec.id.clone(),
            })
            .collect();
        let believed: Vec<TaskKey> = self
            .agents
            .get(id)
            .map(|a| a.tasks.iter().cloned().collect())
            .unwrap_or_default();
        for key in believed.into_iter().filter(|k| !reported.contains(k)) {
            let state = self.lost_state_for(&key.framework, TaskState::Gone);
            self.master_task_update(
                &key,
                state,
                TaskStatusReason::AgentRestarted,
                "task is not on the re-registered agent",
            );
        }
        let mut orphans = Vec::new();
        for t in tasks {
            let key = TaskKey {
                framework: t.framework.clone(),
                task: t.spec.id.clone(),
            };
            if t.state.is_terminal() {
                // Ended while we were apart; its update (still unacknowledged,
                // replayed after this) tells the framework. It holds no resources.
                if let Some(e) = self.tasks.get_mut(&key) {
                    let old = e.state;
                    e.state = t.state;
                    self.count_state_change(old, t.state);
                    self.finish_task(&key);
                }
                continue;
            }
            let fw = self.frameworks.get(&t.framework);
            let removed = fw.is_none();
            let pa = fw.is_some_and(|f| f.partition_aware());
            if removed || (was_unreachable && !pa && !self.tasks.contains_key(&key)) {
                // The framework is gone, or we already told a non-partition-aware
                // framework the task was lost: it must not come back (Mesos kills it).
                orphans.push((t.framework.clone(), t.spec.id.clone()));
                continue;
            }
            self.readopt_task(key, t);
        }
        if let Some(a) = self.agents.get_mut(id) {
            a.orphan_kills = orphans;
        }
    }

    /// A live task the agent reports: (re)inserted with the reported state,
    /// keeping what we knew of it (role, goal, last status).
    fn readopt_task(&mut self, key: TaskKey, t: ReportedTask) {
        let default_role = self
            .frameworks
            .get(&t.framework)
            .and_then(|f| f.info.roles.first().cloned())
            .unwrap_or_default();
        let old = self.remove_task(&key);
        let prev_state = old.as_ref().map(|e| e.state);
        let entry = TaskEntry {
            spec: t.spec,
            framework: t.framework,
            role: old.as_ref().map_or(default_role, |e| e.role.clone()),
            state: t.state,
            last_status: old.as_ref().and_then(|e| e.last_status.clone()),
            healthy: t.healthy,
            goal: match old.as_ref().map(|e| e.goal) {
                Some(TaskGoal::Kill { grace, .. }) => TaskGoal::Kill { grace, sent: false },
                _ => TaskGoal::Run,
            },
        };
        self.insert_task(key.clone(), entry);
        if prev_state == Some(TaskState::Unreachable) {
            // Tell the partition-aware framework the task is back.
            self.master_task_update(
                &key,
                t.state,
                TaskStatusReason::Reconciliation,
                "agent re-registered",
            );
        }
    }

    pub(crate) fn attach_agent(
        &mut self,
        id: &AgentId,
        session: &SessionId,
    ) -> Result<(), CallError> {
        let Some(a) = self.agents.get_mut(id) else {
            return Err(CallError::NotFound(format!(
                "agent {id} is not registered; call Register first"
            )));
        };
        match &a.conn {
            AgentConn::Unreachable { .. } => {
                return Err(CallError::FailedPrecondition(format!(
                    "agent {id} is unreachable; register again"
                )));
            }
            c if c.session() != Some(session) => {
                return Err(CallError::FailedPrecondition(format!(
                    "session {session} is not the agent's current registration"
                )));
            }
            _ => {}
        }
        a.conn = AgentConn::Connected {
            session: session.clone(),
        };
        a.misses = 0;
        a.outstanding_ping = None;
        let orphans = std::mem::take(&mut a.orphan_kills);
        let keys: Vec<TaskKey> = a.tasks.iter().cloned().collect();
        info!(agent = %id, "agent attached");
        for (framework, task) in orphans {
            let key = TaskKey { framework, task };
            if self.tasks.contains_key(&key) {
                self.kill(&key, None);
            } else {
                self.send_to_agent(
                    id,
                    crate::effects::ToAgent::Kill {
                        framework: key.framework,
                        task: key.task,
                        grace: None,
                    },
                );
            }
        }
        // Kills asked for while the agent was away.
        for key in keys {
            if let Some(TaskGoal::Kill { grace, sent: false }) =
                self.tasks.get(&key).map(|t| t.goal)
            {
                self.kill(&key, grace);
            }
        }
        self.allocation_wanted = true;
        Ok(())
    }

    pub(crate) fn on_agent_message(&mut self, id: &AgentId, session: &SessionId, msg: FromAgent) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        if a.conn.session() != Some(session) {
            return; // a stale stream from an older registration
        }
        match msg {
            FromAgent::Pong { seq } => {
                if a.outstanding_ping == Some(seq) {
                    a.outstanding_ping = None;
                    a.misses = 0;
                }
            }
            FromAgent::StatusUpdate { framework, status } => {
                self.status_update(id, &framework, status)
            }
            FromAgent::ResourcesChanged(r) => {
                a.total = r;
                self.rescind_agent_offers(id);
                self.allocation_wanted = true;
            }
        }
    }

    pub(crate) fn agent_stream_closed(&mut self, id: &AgentId, session: &SessionId) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        if a.conn.open_session() != Some(session) {
            return;
        }
        a.conn = AgentConn::Disconnected {
            session: session.clone(),
        };
        info!(agent = %id, "agent stream closed; waiting for it to re-register");
        let keys: Vec<TaskKey> = a.tasks.iter().cloned().collect();
        for key in keys {
            // Kills sent on the closed stream may not have arrived; resend on attach.
            if let Some(t) = self.tasks.get_mut(&key)
                && let TaskGoal::Kill { grace, .. } = t.goal
            {
                t.goal = TaskGoal::Kill { grace, sent: false };
            }
        }
        self.rescind_agent_offers(id);
    }

    /// Pings connected agents; counts a miss for every ping not answered by
    /// the next tick and for every tick an agent has no stream.
    pub(crate) fn ping_agents(&mut self) {
        let max = self.cfg.max_agent_ping_misses;
        let mut lost = Vec::new();
        let mut pings = Vec::new();
        for a in self.agents.values_mut() {
            let open = match &a.conn {
                AgentConn::Unreachable { .. } | AgentConn::Recovered { .. } => continue,
                AgentConn::Connected { .. } => true,
                AgentConn::Disconnected { .. } => false,
            };
            if a.outstanding_ping.is_some() || !open {
                a.misses += 1;
            }
            if a.misses >= max {
                lost.push(a.id.clone());
                continue;
            }
            if open {
                a.ping_seq += 1;
                a.outstanding_ping = Some(a.ping_seq);
                pings.push((a.id.clone(), a.ping_seq));
            }
        }
        for (id, seq) in pings {
            self.send_to_agent(&id, crate::effects::ToAgent::Ping { seq });
        }
        for id in lost {
            self.mark_unreachable(&id);
        }
    }

    /// The agent stopped answering: its offers go at once; once the mark is
    /// durable its tasks become TASK_UNREACHABLE (partition-aware frameworks)
    /// or TASK_LOST (others).
    pub(crate) fn mark_unreachable(&mut self, id: &AgentId) {
        let since_unix = self.now_unix;
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        warn!(agent = %id, hostname = %a.hostname, "agent unreachable");
        a.conn = AgentConn::Unreachable { since_unix };
        self.rescind_agent_offers(id);
        let cmd = RegistryCommand::MarkUnreachable {
            id: id.clone(),
            at_unix_ms: self.unix_ms(),
        };
        if let Some(AfterCommit::Unreachable(agent)) =
            self.propose(vec![cmd], AfterCommit::Unreachable(id.clone()))
        {
            self.report_unreachable_tasks(&agent);
        }
        self.allocation_wanted = true;
    }

    pub(crate) fn report_unreachable_tasks(&mut self, id: &AgentId) {
        let Some(a) = self.agents.get(id) else {
            return;
        };
        if !matches!(a.conn, AgentConn::Unreachable { .. }) {
            return; // it came back before the mark was durable
        }
        let keys: Vec<TaskKey> = a.tasks.iter().cloned().collect();
        for key in keys {
            let state = self.lost_state_for(&key.framework, TaskState::Unreachable);
            self.master_task_update(
                &key,
                state,
                TaskStatusReason::AgentDisconnected,
                "agent is unreachable",
            );
        }
        // Mesos sends FAILURE to every framework when it loses an agent.
        let connected: Vec<_> = self
            .frameworks
            .values()
            .filter(|f| f.connected())
            .map(|f| f.id.clone())
            .collect();
        for fw in connected {
            self.send_event(&fw, FrameworkEvent::Failure(id.clone()));
        }
        self.allocation_wanted = true;
    }

    /// Forgets unreachable agents past the registry's age or count limit
    /// (Mesos does the same). Their remaining tasks leave the live set; a
    /// framework that reconciles them hears TASK_UNKNOWN.
    pub(crate) fn gc_unreachable_agents(&mut self) {
        let max_age_ms =
            u64::try_from(self.cfg.registry_max_agent_age.as_millis()).unwrap_or(u64::MAX);
        let expired = self.registry.expired_unreachable(
            self.unix_ms(),
            max_age_ms,
            self.cfg.registry_max_agent_count,
        );
        for id in expired {
            if !self.agents.contains_key(&id) {
                continue; // removal already in flight
            }
            info!(agent = %id, "forgetting an agent unreachable past the registry's limits");
            let _ = self.propose(
                vec![RegistryCommand::RemoveAgent { id: id.clone() }],
                AfterCommit::Nothing,
            );
            let keys: Vec<TaskKey> = self
                .agents
                .get(&id)
                .map(|a| a.tasks.iter().cloned().collect())
                .unwrap_or_default();
            for key in keys {
                self.remove_task(&key);
            }
            self.agents.remove(&id);
        }
    }

    /// Agents known from the registry after a master start that did not
    /// re-register in time become unreachable.
    pub(crate) fn expire_recovered_agents(&mut self, now: MonoTime) {
        let expired: Vec<AgentId> = self
            .agents
            .values()
            .filter(|a| matches!(a.conn, AgentConn::Recovered { deadline } if deadline <= now))
            .map(|a| a.id.clone())
            .collect();
        for id in expired {
            self.mark_unreachable(&id);
        }
    }
}
