//! Agents: admission and re-registration (with task reconciliation), the
//! Attach stream, pings and the unreachable transition.
use std::collections::BTreeSet;

use agora_model::{AgentId, MonoTime, Resources, TaskState, TaskStatusReason};
use agora_proto::{convert, v1};
use tonic::Status;
use tracing::{error, info, warn};

use crate::clock::unix_now;
use crate::event_loop::AgentRegistration;
use crate::registry::{AgentRecord, RegistryCommand};
use crate::state::{AgentEntry, AgentStatus, AgentTx, FrameworkEntry, Master, TaskEntry, TaskKey};

impl Master {
    /// Applies a registry change and persists it. A failed write is logged
    /// and the in-memory registry keeps the change (the file catches up on
    /// the next successful write); the replicated log replaces this later.
    pub(crate) fn apply_registry(&mut self, cmd: RegistryCommand) {
        if let Err(e) = self.registry.apply(&cmd) {
            warn!(error = %e, "registry command rejected");
            return;
        }
        if let Err(e) = self.store.save(&self.registry) {
            error!(error = %e, "could not persist the registry");
        }
    }

    pub(crate) fn register_agent(
        &mut self,
        reg: AgentRegistration,
        now: MonoTime,
    ) -> Result<v1::RegisterResponse, Status> {
        let AgentRegistration {
            info,
            tasks,
            frameworks,
            updates,
        } = reg;
        let id = info.id.clone().unwrap_or_else(AgentId::random);
        let session = uuid::Uuid::new_v4().to_string();
        let reregistering = info.id.is_some();
        self.apply_registry(RegistryCommand::AdmitAgent {
            id: id.clone(),
            record: AgentRecord {
                hostname: info.hostname.clone(),
                port: info.port,
                resources: info.resources.to_string(),
            },
        });
        if self.registry.unreachable.contains_key(&id) {
            self.apply_registry(RegistryCommand::MarkReachable { id: id.clone() });
        }
        let was_unreachable = self
            .agents
            .get(&id)
            .is_some_and(|a| a.status == AgentStatus::Unreachable);
        // An older session's stream, if any, is closed by dropping its sender.
        self.rescind_agent_offers(&id);
        let entry = self.agents.entry(id.clone()).or_insert_with(|| AgentEntry {
            id: id.clone(),
            hostname: String::new(),
            port: 0,
            total: Resources::new(),
            attributes: Default::default(),
            status: AgentStatus::Disconnected,
            session: String::new(),
            tx: None,
            ping_seq: 0,
            outstanding_ping: None,
            misses: 0,
            registered_unix: unix_now(),
            unreachable_since_unix: None,
            reregister_deadline: None,
            tasks: BTreeSet::new(),
            pending_kills: Vec::new(),
        });
        entry.hostname = info.hostname.clone();
        entry.port = info.port;
        entry.total = info.resources.clone();
        entry.attributes = info.attributes.clone();
        entry.status = AgentStatus::Disconnected;
        entry.session = session.clone();
        entry.tx = None;
        entry.outstanding_ping = None;
        entry.misses = 0;
        entry.unreachable_since_unix = None;
        entry.reregister_deadline = None;
        entry.pending_kills.clear();
        info!(agent = %id, hostname = %info.hostname, reregistering, was_unreachable, tasks = tasks.len(), "agent registered");

        // Frameworks the agent knows but we don't (a master restart): adopt
        // them as disconnected, with time to re-subscribe.
        for fi in frameworks {
            let Some(fid) = fi.id.clone() else { continue };
            if self.frameworks.contains_key(&fid) || self.removed_frameworks.contains(&fid) {
                continue;
            }
            let wait = fi.failover_timeout.max(self.cfg.agent_reregister_timeout);
            self.frameworks.insert(
                fid.clone(),
                FrameworkEntry {
                    id: fid.clone(),
                    info: fi,
                    stream_id: None,
                    tx: None,
                    registered_unix: unix_now(),
                    failover_deadline: Some(now.after(wait)),
                    suppressed: BTreeSet::new(),
                    filters: Vec::new(),
                    completed: Default::default(),
                },
            );
        }

        // Reconcile what the agent runs with what we believe it runs.
        let reported: BTreeSet<TaskKey> = tasks
            .iter()
            .map(|t| TaskKey {
                framework: t.framework.clone(),
                task: t.spec.id.clone(),
            })
            .collect();
        let believed: Vec<TaskKey> = self
            .agents
            .get(&id)
            .map(|a| a.tasks.iter().cloned().collect())
            .unwrap_or_default();
        for key in believed {
            if !reported.contains(&key) {
                let pa = self
                    .frameworks
                    .get(&key.framework)
                    .is_some_and(|f| f.partition_aware());
                let state = if pa { TaskState::Gone } else { TaskState::Lost };
                self.master_task_update(
                    &key,
                    state,
                    TaskStatusReason::AgentRestarted,
                    "task is not on the re-registered agent",
                );
            }
        }
        let mut kills = Vec::new();
        for t in tasks {
            let key = TaskKey {
                framework: t.framework.clone(),
                task: t.spec.id.clone(),
            };
            if t.state.is_terminal() {
                // Ended while we were apart; its update (still unacknowledged,
                // reported below) tells the framework. It holds no resources.
                if self.tasks.contains_key(&key) {
                    if let Some(e) = self.tasks.get_mut(&key) {
                        e.state = t.state;
                    }
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
                kills.push((t.framework.clone(), t.spec.id.clone()));
                continue;
            }
            let role = fw
                .and_then(|f| f.info.roles.first().cloned())
                .unwrap_or_default();
            let prev_state = self.tasks.get(&key).map(|e| e.state);
            let kill_requested = self.tasks.get(&key).is_some_and(|e| e.kill_requested);
            let role = self.tasks.get(&key).map(|e| e.role.clone()).unwrap_or(role);
            self.tasks.insert(
                key.clone(),
                TaskEntry {
                    spec: t.spec,
                    framework: t.framework.clone(),
                    role,
                    state: t.state,
                    last_status: self.tasks.get(&key).and_then(|e| e.last_status.clone()),
                    healthy: t.healthy,
                    kill_requested,
                },
            );
            if let Some(a) = self.agents.get_mut(&id) {
                a.tasks.insert(key.clone());
            }
            if kill_requested {
                kills.push((key.framework.clone(), key.task.clone()));
            }
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
        if let Some(a) = self.agents.get_mut(&id) {
            a.pending_kills = kills;
        }
        for (fw, st) in updates {
            self.status_update(&id, &fw, st);
        }
        self.allocation_wanted = true;
        Ok(v1::RegisterResponse {
            agent_id: id.to_string(),
            session_id: session,
            ping_interval_seconds: self.cfg.agent_ping_interval.as_secs_f64(),
            master_id: self.master_id.clone(),
        })
    }

    pub(crate) fn attach_agent(
        &mut self,
        id: &AgentId,
        session: &str,
        tx: AgentTx,
    ) -> Result<(), Status> {
        let Some(a) = self.agents.get_mut(id) else {
            return Err(Status::not_found(format!(
                "agent {id} is not registered; call Register first"
            )));
        };
        if a.session != session {
            return Err(Status::failed_precondition(format!(
                "session {session} is not the agent's current registration"
            )));
        }
        if a.status == AgentStatus::Unreachable {
            return Err(Status::failed_precondition(format!(
                "agent {id} is unreachable; register again"
            )));
        }
        a.tx = Some(tx);
        a.status = AgentStatus::Connected;
        a.misses = 0;
        a.outstanding_ping = None;
        let kills = std::mem::take(&mut a.pending_kills);
        info!(agent = %id, "agent attached");
        for (fw, task) in kills {
            let key = TaskKey {
                framework: fw.clone(),
                task: task.clone(),
            };
            if self.tasks.contains_key(&key) {
                self.send_kill(&key, None);
            } else {
                let msg = v1::MasterMessage {
                    message: Some(v1::master_message::Message::Kill(
                        v1::master_message::Kill {
                            framework_id: fw.to_string(),
                            task_id: task.to_string(),
                            kill_policy: None,
                        },
                    )),
                };
                self.send_to_agent(id, msg);
            }
        }
        // Kills asked for while the agent was away.
        let requested: Vec<TaskKey> = self
            .agents
            .get(id)
            .map(|a| {
                a.tasks
                    .iter()
                    .filter(|k| self.tasks.get(*k).is_some_and(|t| t.kill_requested))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for key in requested {
            if let Some(t) = self.tasks.get_mut(&key) {
                t.kill_requested = false;
            }
            self.send_kill(&key, None);
        }
        self.allocation_wanted = true;
        Ok(())
    }

    pub(crate) fn agent_message(
        &mut self,
        id: &AgentId,
        session: &str,
        msg: v1::agent_message::Message,
    ) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        if a.session != session {
            return; // a stale stream from an older registration
        }
        match msg {
            v1::agent_message::Message::Hello(_) => {}
            v1::agent_message::Message::Pong(p) => {
                if a.outstanding_ping == Some(p.seq) {
                    a.outstanding_ping = None;
                    a.misses = 0;
                }
            }
            v1::agent_message::Message::StatusUpdate(u) => {
                let Some(status) = u.status.as_ref() else {
                    return;
                };
                let fw = agora_model::FrameworkId::parse(u.framework_id.clone());
                match (fw, convert::status_from_wire(status)) {
                    (Ok(fw), Ok(st)) => self.status_update(id, &fw, st),
                    (Err(e), _) => {
                        warn!(agent = %id, error = %e, "status update with a bad framework id dropped")
                    }
                    (_, Err(e)) => {
                        warn!(agent = %id, error = %e, "malformed status update dropped")
                    }
                }
            }
            v1::agent_message::Message::ResourcesChanged(rc) => {
                match convert::resources_from_wire(&rc.resources, "resources") {
                    Ok(r) => {
                        a.total = r;
                        self.rescind_agent_offers(id);
                        self.allocation_wanted = true;
                    }
                    Err(e) => warn!(agent = %id, error = %e, "bad resources change ignored"),
                }
            }
        }
    }

    pub(crate) fn agent_stream_closed(&mut self, id: &AgentId, session: &str) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        if a.session != session {
            return;
        }
        a.tx = None;
        if a.status == AgentStatus::Connected {
            a.status = AgentStatus::Disconnected;
            info!(agent = %id, "agent stream closed; waiting for it to re-register");
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
            match a.status {
                AgentStatus::Unreachable | AgentStatus::Recovered => continue,
                AgentStatus::Connected | AgentStatus::Disconnected => {}
            }
            if a.outstanding_ping.is_some() || a.tx.is_none() {
                a.misses += 1;
            }
            if a.misses >= max {
                lost.push(a.id.clone());
                continue;
            }
            if a.tx.is_some() {
                a.ping_seq += 1;
                a.outstanding_ping = Some(a.ping_seq);
                pings.push((a.id.clone(), a.ping_seq));
            }
        }
        for (id, seq) in pings {
            let msg = v1::MasterMessage {
                message: Some(v1::master_message::Message::Ping(
                    v1::master_message::Ping { seq },
                )),
            };
            self.send_to_agent(&id, msg);
        }
        for id in lost {
            self.mark_unreachable(&id);
        }
    }

    /// The agent stopped answering: its offers go, its tasks become
    /// TASK_UNREACHABLE (partition-aware frameworks) or TASK_LOST (others).
    pub(crate) fn mark_unreachable(&mut self, id: &AgentId) {
        let Some(a) = self.agents.get_mut(id) else {
            return;
        };
        warn!(agent = %id, hostname = %a.hostname, "agent unreachable");
        a.status = AgentStatus::Unreachable;
        a.tx = None;
        a.unreachable_since_unix = Some(unix_now());
        let keys: Vec<TaskKey> = a.tasks.iter().cloned().collect();
        let at_unix_ms = (unix_now() * 1000.0) as u64;
        self.apply_registry(RegistryCommand::MarkUnreachable {
            id: id.clone(),
            at_unix_ms,
        });
        self.rescind_agent_offers(id);
        for key in keys {
            let pa = self
                .frameworks
                .get(&key.framework)
                .is_some_and(|f| f.partition_aware());
            let state = if pa {
                TaskState::Unreachable
            } else {
                TaskState::Lost
            };
            self.master_task_update(
                &key,
                state,
                TaskStatusReason::AgentDisconnected,
                "agent is unreachable",
            );
        }
        // Mesos sends FAILURE to every framework when it loses an agent.
        let failure = v1::Event {
            event: Some(v1::event::Event::Failure(v1::event::Failure {
                agent_id: id.to_string(),
                status: None,
            })),
        };
        let connected: Vec<_> = self
            .frameworks
            .values()
            .filter(|f| f.connected())
            .map(|f| f.id.clone())
            .collect();
        for fw in connected {
            self.send_event(&fw, failure.clone());
        }
        self.allocation_wanted = true;
    }

    /// Forgets unreachable agents past the registry's age or count limit
    /// (Mesos does the same). Their remaining tasks leave the live set; a
    /// framework that reconciles them hears TASK_UNKNOWN.
    pub(crate) fn gc_unreachable_agents(&mut self) {
        let now_ms = (unix_now() * 1000.0) as u64;
        let max_age_ms =
            u64::try_from(self.cfg.registry_max_agent_age.as_millis()).unwrap_or(u64::MAX);
        let expired = self.registry.expired_unreachable(
            now_ms,
            max_age_ms,
            self.cfg.registry_max_agent_count,
        );
        for id in expired {
            info!(agent = %id, "forgetting an agent unreachable past the registry's limits");
            self.apply_registry(RegistryCommand::RemoveAgent { id: id.clone() });
            if let Some(a) = self.agents.remove(&id) {
                for key in a.tasks {
                    self.tasks.remove(&key);
                }
            }
        }
    }

    /// Agents known from the registry after a master restart that did not
    /// re-register in time become unreachable.
    pub(crate) fn expire_recovered_agents(&mut self, now: MonoTime) {
        let expired: Vec<AgentId> = self
            .agents
            .values()
            .filter(|a| {
                a.status == AgentStatus::Recovered
                    && a.reregister_deadline.is_some_and(|d| d <= now)
            })
            .map(|a| a.id.clone())
            .collect();
        for id in expired {
            self.mark_unreachable(&id);
        }
    }
}
