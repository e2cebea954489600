//! Maintenance: the operator drains an agent (Mesos' agent draining and
//! maintenance primitives, reduced to what operators use). The drain is a
//! registry record (`DrainAgent`/`UndrainAgent`), so it survives a change of
//! leader. Once it is durable the agent's outstanding offers are rescinded,
//! the allocator sees it inactive (no new offers, its tasks keep running),
//! and every subscribed framework gets an `AgentMaintenance` event, also
//! sent again to a framework that (re)subscribes while the agent drains, so
//! that it moves its tasks away. Undraining is the same path back.
use agora_model::{AgentId, Drain, FrameworkId};
use tracing::info;

use crate::core::MaintenanceChange;
use crate::effects::{FrameworkEvent, Reply, ReplyToken};
use crate::error::CallError;
use crate::registry::RegistryCommand;
use crate::state::{AfterCommit, Master};

impl Master {
    /// The operator drains or undrains an agent. Answered once the change
    /// is durable (at once if it changes nothing). The drain's start is the
    /// time of the command, so every replica records the same.
    pub(crate) fn set_maintenance(
        &mut self,
        agent: &AgentId,
        change: MaintenanceChange,
        reply: ReplyToken,
    ) {
        self.metrics.message(match change {
            MaintenanceChange::Drain { .. } => "drain_agent",
            MaintenanceChange::Undrain => "undrain_agent",
        });
        if !self.registry.agents.contains_key(agent) {
            let e = CallError::NotFound(format!("agent {agent} is not known"));
            return self.reply(reply, Reply::Done(Err(e)));
        }
        let cmd = match change {
            MaintenanceChange::Drain { deadline } => {
                let since_unix_ms = self.unix_ms();
                let deadline_unix_ms =
                    deadline.map(|d| since_unix_ms.saturating_add(d.as_millis() as u64));
                RegistryCommand::DrainAgent {
                    id: agent.clone(),
                    drain: Drain {
                        since_unix_ms,
                        deadline_unix_ms,
                    },
                }
            }
            MaintenanceChange::Undrain => RegistryCommand::UndrainAgent { id: agent.clone() },
        };
        let after = AfterCommit::Maintenance {
            agent: agent.clone(),
            reply,
        };
        if self.propose(vec![cmd], after).is_some() {
            // Nothing changes: the offers and notices went out the first time.
            self.reply(reply, Reply::Done(Ok(())));
        }
    }

    /// The change is durable and applied: act on it, tell everyone, answer.
    pub(crate) fn maintenance_applied(&mut self, agent: &AgentId, reply: ReplyToken) {
        let drain = self.registry.drain_of(agent).copied();
        match drain {
            Some(d) => {
                info!(agent = %agent, deadline_unix_ms = ?d.deadline_unix_ms, "agent draining");
                self.rescind_agent_offers(agent);
            }
            None => {
                info!(agent = %agent, "agent no longer draining");
                self.allocation_wanted = true;
            }
        }
        let subscribed: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| f.connected())
            .map(|f| f.id.clone())
            .collect();
        for fw in subscribed {
            self.send_event(
                &fw,
                FrameworkEvent::AgentMaintenance {
                    agent: agent.clone(),
                    drain,
                },
            );
        }
        self.reply(reply, Reply::Done(Ok(())));
    }

    /// A framework that just (re)subscribed learns of every drain under way.
    pub(crate) fn announce_drains(&mut self, fw: &FrameworkId) {
        let drains: Vec<(AgentId, Drain)> = self
            .registry
            .maintenance
            .iter()
            .map(|(a, d)| (a.clone(), *d))
            .collect();
        for (agent, drain) in drains {
            let event = FrameworkEvent::AgentMaintenance {
                agent,
                drain: Some(drain),
            };
            self.send_event(fw, event);
        }
    }

    /// Whether the operator drains the agent (no new offers from it).
    pub(crate) fn is_draining(&self, agent: &AgentId) -> bool {
        self.registry.maintenance.contains_key(agent)
    }
}
