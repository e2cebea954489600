//! Framework lifecycle: subscribe and re-subscribe (failover), disconnection
//! and the failover timeout, teardown, UPDATE_FRAMEWORK, SUPPRESS/REVIVE and
//! heartbeats. Frameworks are in the registry, so a subscription is answered
//! only once it is durable and survives a change of master.
use agora_model::{FrameworkId, FrameworkInfo, MonoTime, OfferId, Role, StreamId};
use tracing::{info, warn};

use crate::effects::{Effect, FrameworkEvent, Reply, ReplyToken};
use crate::error::CallError;
use crate::registry::{FrameworkRecord, RegistryCommand};
use crate::state::{AfterCommit, FrameworkConn, FrameworkEntry, Master, TaskKey};

/// A subscription waiting for its registry entry to be durable.
#[derive(Debug)]
pub(crate) struct PendingSubscription {
    pub(crate) id: FrameworkId,
    pub(crate) info: FrameworkInfo,
    pub(crate) suppressed: Vec<Role>,
    pub(crate) stream: StreamId,
    pub(crate) reply: ReplyToken,
}

fn check_suppressed(info: &FrameworkInfo, suppressed: &[Role]) -> Result<(), CallError> {
    match suppressed.iter().find(|r| !info.roles.contains(r)) {
        Some(r) => Err(CallError::InvalidArgument(format!(
            "suppressed_roles: {r} is not one of the framework's roles"
        ))),
        None => Ok(()),
    }
}

impl Master {
    pub(crate) fn subscribe(
        &mut self,
        mut info: FrameworkInfo,
        suppressed: Vec<Role>,
        stream: StreamId,
        new_id: FrameworkId,
        reply: ReplyToken,
        now: MonoTime,
    ) {
        if let Err(e) = check_suppressed(&info, &suppressed) {
            self.out.push(Effect::CloseFramework { stream });
            return self.reply(reply, Reply::Subscribed(Err(e)));
        }
        let id = info.id.clone().unwrap_or(new_id);
        if self.framework_removed(&id) {
            self.out.push(Effect::CloseFramework { stream });
            let e = CallError::PermissionDenied(format!("framework {id} has been removed"));
            return self.reply(reply, Reply::Subscribed(Err(e)));
        }
        info.id = Some(id.clone());
        let cmd = self.put_framework(&id, info.clone());
        let pending = PendingSubscription {
            id,
            info,
            suppressed,
            stream,
            reply,
        };
        if let Some(after) = self.propose(vec![cmd], AfterCommit::Subscribe(Box::new(pending))) {
            self.continue_after(after, now);
        }
    }

    /// The registry command that records `info`, keeping the first
    /// registration time of a framework the registry already knows.
    fn put_framework(&self, id: &FrameworkId, info: FrameworkInfo) -> RegistryCommand {
        let registered_unix_ms = self
            .registry
            .frameworks
            .get(id)
            .map_or_else(|| self.unix_ms(), |r| r.registered_unix_ms);
        RegistryCommand::PutFramework {
            id: id.clone(),
            record: FrameworkRecord {
                info,
                registered_unix_ms,
            },
        }
    }

    pub(crate) fn finish_subscription(&mut self, p: PendingSubscription) {
        let PendingSubscription {
            id,
            info,
            suppressed,
            stream,
            reply,
        } = p;
        if self.framework_removed(&id) {
            // Torn down while the subscription was being written.
            self.out.push(Effect::CloseFramework { stream });
            let e = CallError::PermissionDenied(format!("framework {id} has been removed"));
            return self.reply(reply, Reply::Subscribed(Err(e)));
        }
        self.out.push(Effect::ToFramework {
            framework: id.clone(),
            stream: stream.clone(),
            event: FrameworkEvent::Subscribed {
                framework_id: id.clone(),
                stream_id: stream.clone(),
                heartbeat_interval: self.cfg.framework_heartbeat_interval,
            },
        });
        let suppressed = suppressed.into_iter().collect();
        let now_unix = self.now_unix;
        match self.frameworks.get_mut(&id) {
            Some(f) => {
                if let FrameworkConn::Subscribed { stream: old } = &f.conn {
                    // Only one live subscription: tell the old one and close it.
                    let old = old.clone();
                    self.out.push(Effect::ToFramework {
                        framework: id.clone(),
                        stream: old.clone(),
                        event: FrameworkEvent::Error(
                            "framework failed over to a newer subscription".into(),
                        ),
                    });
                    self.out.push(Effect::CloseFramework { stream: old });
                }
                info!(framework = %id, name = %info.name, "framework re-subscribed");
                f.info = info;
                f.conn = FrameworkConn::Subscribed { stream };
                f.suppressed = suppressed;
            }
            None => {
                info!(framework = %id, name = %info.name, "framework subscribed");
                let mut f = FrameworkEntry::new(
                    info,
                    id.clone(),
                    FrameworkConn::Subscribed { stream },
                    now_unix,
                );
                f.suppressed = suppressed;
                self.frameworks.insert(id.clone(), f);
            }
        }
        // Offers made to an earlier subscription are void; make fresh ones.
        self.drop_framework_offers(&id);
        self.announce_drains(&id);
        self.allocation_wanted = true;
        self.reply(reply, Reply::Subscribed(Ok(id)));
    }

    pub(crate) fn framework_stream_closed(
        &mut self,
        id: &FrameworkId,
        stream: &StreamId,
        now: MonoTime,
    ) {
        let current = self.frameworks.get(id).and_then(|f| f.stream());
        if current != Some(stream) {
            return; // an older subscription ended; the newer one lives on
        }
        self.disconnect_framework(id, now);
    }

    /// Events the framework's stream had no room for. Offers among them go
    /// back to the pool (the framework never saw them); nothing else needs
    /// redoing: agents resend updates until they are acknowledged.
    pub(crate) fn framework_events_dropped(
        &mut self,
        id: &FrameworkId,
        stream: &StreamId,
        offers: &[OfferId],
    ) {
        self.metrics.message("framework_events_dropped");
        if self.frameworks.get(id).and_then(|f| f.stream()) != Some(stream) {
            return;
        }
        for oid in offers {
            if self
                .offers
                .get(oid)
                .is_some_and(|o| &o.offer.framework_id == id)
            {
                self.remove_offer(oid);
            }
        }
    }

    /// Marks a framework disconnected: its offers are recovered and its
    /// failover timer starts (Mesos: timeout 0 removes it at once).
    pub(crate) fn disconnect_framework(&mut self, id: &FrameworkId, now: MonoTime) {
        let Some(f) = self.frameworks.get_mut(id) else {
            return;
        };
        let timeout = f.info.failover_timeout;
        f.conn = FrameworkConn::Failover {
            deadline: now.after(timeout),
        };
        info!(framework = %id, failover_timeout_s = timeout.as_secs_f64(), "framework disconnected");
        self.drop_framework_offers(id);
        if timeout.is_zero() {
            self.remove_framework(id, "disconnected with failover_timeout 0", None, now);
        }
    }

    /// Removes a framework: its offers go back, its tasks are killed, and it
    /// may not re-subscribe (durably). Task records stay until agents report
    /// them ended. `reply` (TEARDOWN) is answered once the removal is durable.
    pub(crate) fn remove_framework(
        &mut self,
        id: &FrameworkId,
        why: &str,
        reply: Option<ReplyToken>,
        now: MonoTime,
    ) {
        info!(framework = %id, why, "removing framework");
        self.drop_framework_offers(id);
        for key in self.framework_task_keys(id) {
            self.kill(&key, None);
        }
        if let Some(f) = self.frameworks.remove(id)
            && let FrameworkConn::Subscribed { stream } = f.conn
        {
            self.out.push(Effect::ToFramework {
                framework: id.clone(),
                stream: stream.clone(),
                event: FrameworkEvent::Error(format!("framework removed: {why}")),
            });
            self.out.push(Effect::CloseFramework { stream });
        }
        let cmd = RegistryCommand::RemoveFramework {
            id: id.clone(),
            at_unix_ms: self.unix_ms(),
        };
        let after = reply.map_or(AfterCommit::Nothing, AfterCommit::Reply);
        if let Some(after) = self.propose(vec![cmd], after) {
            self.continue_after(after, now);
        }
        self.allocation_wanted = true;
    }

    pub(crate) fn framework_task_keys(&self, id: &FrameworkId) -> Vec<TaskKey> {
        self.tasks_of(id).map(|(k, _)| k.clone()).collect()
    }

    /// UPDATE_FRAMEWORK: takes effect at once; answered once durable.
    pub(crate) fn update_framework(
        &mut self,
        id: &FrameworkId,
        mut info: FrameworkInfo,
        suppressed: Vec<Role>,
        reply: ReplyToken,
    ) -> Result<(), CallError> {
        if info.id.as_ref().is_some_and(|x| x != id) {
            return Err(CallError::InvalidArgument(
                "framework_info.framework_id: does not match the caller".into(),
            ));
        }
        check_suppressed(&info, &suppressed)?;
        info.id = Some(id.clone());
        let Some(f) = self.frameworks.get_mut(id) else {
            return Err(CallError::FailedPrecondition(format!(
                "framework {id} is not subscribed"
            )));
        };
        let dropped_roles: Vec<Role> = f
            .info
            .roles
            .iter()
            .filter(|r| !info.roles.contains(r))
            .cloned()
            .collect();
        f.info = info.clone();
        f.suppressed = suppressed.into_iter().collect();
        f.filters
            .retain(|(_, role), _| !dropped_roles.contains(role));
        let stale: Vec<OfferId> = f
            .offers
            .iter()
            .filter(|o| {
                self.offers
                    .get(*o)
                    .is_some_and(|e| dropped_roles.contains(&e.offer.role))
            })
            .cloned()
            .collect();
        for oid in stale {
            self.rescind_offer(&oid);
        }
        self.allocation_wanted = true;
        let cmd = self.put_framework(id, info);
        if let Some(AfterCommit::Reply(token)) = self.propose(vec![cmd], AfterCommit::Reply(reply))
        {
            self.reply(token, Reply::Done(Ok(())));
        }
        Ok(())
    }

    /// The roles a SUPPRESS or REVIVE names: all of the framework's if none.
    fn named_roles(f: &FrameworkEntry, roles: &[Role]) -> Vec<Role> {
        if roles.is_empty() {
            f.info.roles.clone()
        } else {
            roles.to_vec()
        }
    }

    pub(crate) fn suppress(&mut self, id: &FrameworkId, roles: &[Role]) {
        let Some(f) = self.frameworks.get_mut(id) else {
            return;
        };
        for r in Self::named_roles(f, roles) {
            if f.info.roles.contains(&r) {
                f.suppressed.insert(r);
            } else {
                warn!(framework = %id, role = %r, "SUPPRESS of a role the framework does not have");
            }
        }
    }

    /// REVIVE: un-suppress and clear the filters of the roles (all if empty).
    pub(crate) fn revive(&mut self, id: &FrameworkId, roles: &[Role]) {
        let Some(f) = self.frameworks.get_mut(id) else {
            return;
        };
        let roles = Self::named_roles(f, roles);
        for r in &roles {
            f.suppressed.remove(r);
        }
        f.filters.retain(|(_, role), _| !roles.contains(role));
        self.allocation_wanted = true;
    }

    pub(crate) fn heartbeat_frameworks(&mut self) {
        let ids: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| f.connected())
            .map(|f| f.id.clone())
            .collect();
        for id in ids {
            self.send_event(&id, FrameworkEvent::Heartbeat);
        }
    }

    pub(crate) fn housekeeping(&mut self, now: MonoTime) {
        let expired: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| matches!(f.conn, FrameworkConn::Failover { deadline } if deadline <= now))
            .map(|f| f.id.clone())
            .collect();
        for id in expired {
            self.remove_framework(&id, "failover timeout expired", None, now);
        }
        self.expire_offers(now);
        self.expire_recovered_agents(now);
        for f in self.frameworks.values_mut() {
            f.filters.retain(|_, flt| flt.expires > now);
        }
    }
}
