//! Framework lifecycle: subscribe and re-subscribe (failover), disconnection
//! and the failover timeout, teardown, UPDATE_FRAMEWORK, SUPPRESS/REVIVE and
//! the event stream.
use std::collections::{BTreeSet, VecDeque};

use agora_model::{FrameworkId, FrameworkInfo, MonoTime, Role};
use agora_proto::v1;
use tokio::sync::mpsc;
use tonic::Status;
use tracing::{info, warn};

use crate::clock::unix_now;
use crate::event_loop::Subscription;
use crate::state::{FrameworkEntry, Master, TaskKey};

/// Events buffered per framework stream. A framework that falls this far
/// behind is disconnected (it will re-subscribe and reconcile) instead of
/// letting the master's memory grow without bound.
pub(crate) const FRAMEWORK_EVENT_BUFFER: usize = 4096;

/// Removed framework ids remembered so they cannot re-subscribe.
const MAX_REMOVED_FRAMEWORKS: usize = 100_000;

impl Master {
    pub(crate) fn subscribe(
        &mut self,
        mut info: FrameworkInfo,
        suppressed: Vec<Role>,
    ) -> Result<Subscription, Status> {
        for r in &suppressed {
            if !info.roles.contains(r) {
                return Err(Status::invalid_argument(format!(
                    "suppressed_roles: {r} is not one of the framework's roles"
                )));
            }
        }
        let id = match &info.id {
            Some(id) if self.removed_frameworks.contains(id) => {
                return Err(Status::permission_denied(format!(
                    "framework {id} has been removed"
                )));
            }
            Some(id) => id.clone(),
            None => FrameworkId::random(),
        };
        info.id = Some(id.clone());
        let (tx, rx) = mpsc::channel(FRAMEWORK_EVENT_BUFFER);
        let stream_id = uuid::Uuid::new_v4().to_string();
        let subscribed = v1::Event {
            event: Some(v1::event::Event::Subscribed(v1::event::Subscribed {
                framework_id: id.to_string(),
                heartbeat_interval_seconds: self.cfg.framework_heartbeat_interval.as_secs_f64(),
                stream_id: stream_id.clone(),
                master_id: self.master_id.clone(),
            })),
        };
        // Cannot fail: the channel is new and empty.
        let _ = tx.try_send(Ok(subscribed));
        let suppressed: BTreeSet<Role> = suppressed.into_iter().collect();
        match self.frameworks.get_mut(&id) {
            Some(f) => {
                if let Some(old) = f.tx.take() {
                    // Only one live subscription: tell the old one and close it.
                    let _ = old.try_send(Ok(error_event(
                        "framework failed over to a newer subscription",
                    )));
                }
                info!(framework = %id, name = %info.name, "framework re-subscribed");
                f.info = info;
                f.tx = Some(tx);
                f.stream_id = Some(stream_id.clone());
                f.failover_deadline = None;
                f.suppressed = suppressed;
            }
            None => {
                info!(framework = %id, name = %info.name, "framework subscribed");
                self.frameworks.insert(
                    id.clone(),
                    FrameworkEntry {
                        id: id.clone(),
                        info,
                        stream_id: Some(stream_id.clone()),
                        tx: Some(tx),
                        registered_unix: unix_now(),
                        failover_deadline: None,
                        suppressed,
                        filters: Vec::new(),
                        completed: VecDeque::new(),
                    },
                );
            }
        }
        // Offers made to an earlier subscription are void; make fresh ones.
        self.recover_framework_offers(&id);
        self.allocation_wanted = true;
        Ok(Subscription {
            framework_id: id,
            stream_id,
            events: rx,
        })
    }

    pub(crate) fn framework_stream_closed(
        &mut self,
        id: &FrameworkId,
        stream_id: &str,
        now: MonoTime,
    ) {
        let Some(f) = self.frameworks.get_mut(id) else {
            return;
        };
        if f.stream_id.as_deref() != Some(stream_id) {
            return; // an older subscription ended; the newer one lives on
        }
        self.disconnect_framework(id, now);
    }

    /// Marks a framework disconnected: its offers are recovered and its
    /// failover timer starts (Mesos: timeout 0 removes it at once).
    pub(crate) fn disconnect_framework(&mut self, id: &FrameworkId, now: MonoTime) {
        let Some(f) = self.frameworks.get_mut(id) else {
            return;
        };
        f.tx = None;
        f.stream_id = None;
        let timeout = f.info.failover_timeout;
        f.failover_deadline = Some(now.after(timeout));
        info!(framework = %id, failover_timeout_s = timeout.as_secs_f64(), "framework disconnected");
        self.recover_framework_offers(id);
        if timeout.is_zero() {
            self.remove_framework(id, "disconnected with failover_timeout 0");
        }
    }

    /// Removes a framework: its offers go back, its tasks are killed, and it
    /// may not re-subscribe. Task records stay until agents report them ended.
    pub(crate) fn remove_framework(&mut self, id: &FrameworkId, why: &str) {
        info!(framework = %id, why, "removing framework");
        self.recover_framework_offers(id);
        let keys: Vec<TaskKey> = self.framework_task_keys(id);
        for key in keys {
            self.send_kill(&key, None);
        }
        if let Some(f) = self.frameworks.remove(id)
            && let Some(tx) = f.tx
        {
            let _ = tx.try_send(Ok(error_event(&format!("framework removed: {why}"))));
        }
        if self.removed_frameworks.len() >= MAX_REMOVED_FRAMEWORKS
            && let Some(first) = self.removed_frameworks.iter().next().cloned()
        {
            self.removed_frameworks.remove(&first);
        }
        self.removed_frameworks.insert(id.clone());
        self.allocation_wanted = true;
    }

    pub(crate) fn framework_task_keys(&self, id: &FrameworkId) -> Vec<TaskKey> {
        self.tasks_of(id).map(|(k, _)| k.clone()).collect()
    }

    pub(crate) fn update_framework(
        &mut self,
        id: &FrameworkId,
        mut info: FrameworkInfo,
        suppressed: Vec<Role>,
    ) -> Result<(), Status> {
        if info.id.as_ref().is_some_and(|x| x != id) {
            return Err(Status::invalid_argument(
                "framework_info.framework_id: does not match the caller",
            ));
        }
        for r in &suppressed {
            if !info.roles.contains(r) {
                return Err(Status::invalid_argument(format!(
                    "suppressed_roles: {r} is not one of the framework's roles"
                )));
            }
        }
        info.id = Some(id.clone());
        let Some(f) = self.frameworks.get_mut(id) else {
            return Err(Status::failed_precondition(format!(
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
        f.info = info;
        f.suppressed = suppressed.into_iter().collect();
        f.filters.retain(|flt| !dropped_roles.contains(&flt.role));
        let stale: Vec<_> = self
            .offers
            .values()
            .filter(|o| &o.offer.framework_id == id && dropped_roles.contains(&o.offer.role))
            .map(|o| o.offer.id.clone())
            .collect();
        for oid in stale {
            self.rescind_offer(&oid);
        }
        self.allocation_wanted = true;
        Ok(())
    }

    pub(crate) fn suppress(&mut self, id: &FrameworkId, roles: &[Role]) {
        let Some(f) = self.frameworks.get_mut(id) else {
            return;
        };
        let roles: Vec<Role> = if roles.is_empty() {
            f.info.roles.clone()
        } else {
            roles.to_vec()
        };
        for r in roles {
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
        let roles: Vec<Role> = if roles.is_empty() {
            f.info.roles.clone()
        } else {
            roles.to_vec()
        };
        for r in &roles {
            f.suppressed.remove(r);
        }
        f.filters.retain(|flt| !roles.contains(&flt.role));
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
            self.send_event(
                &id,
                v1::Event {
                    event: Some(v1::event::Event::Heartbeat(v1::event::Heartbeat {})),
                },
            );
        }
    }

    /// Sends without blocking the loop. A full or closed stream disconnects
    /// the framework; it re-subscribes and reconciles, losing nothing that
    /// matters (status updates are retried by agents until acknowledged).
    pub(crate) fn send_event(&mut self, id: &FrameworkId, ev: v1::Event) -> bool {
        let Some(f) = self.frameworks.get_mut(id) else {
            return false;
        };
        let Some(tx) = &f.tx else { return false };
        match tx.try_send(Ok(ev)) {
            Ok(()) => true,
            Err(e) => {
                warn!(framework = %id, error = %e, "framework event stream unusable; disconnecting it");
                f.tx = None;
                // Now is not available here; disconnect at the next housekeeping tick.
                f.stream_id = None;
                f.failover_deadline = None;
                self.metrics.message("framework_stream_overflow");
                false
            }
        }
    }

    pub(crate) fn housekeeping(&mut self, now: MonoTime) {
        // Frameworks whose stream broke inside send_event get their failover timer now.
        let broken: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| f.tx.is_none() && f.failover_deadline.is_none())
            .map(|f| f.id.clone())
            .collect();
        for id in broken {
            self.disconnect_framework(&id, now);
        }
        let expired: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| f.tx.is_none() && f.failover_deadline.is_some_and(|d| d <= now))
            .map(|f| f.id.clone())
            .collect();
        for id in expired {
            self.remove_framework(&id, "failover timeout expired");
        }
        self.expire_offers(now);
        self.expire_recovered_agents(now);
        for f in self.frameworks.values_mut() {
            f.filters.retain(|flt| flt.expires > now);
        }
    }
}

pub(crate) fn error_event(message: &str) -> v1::Event {
    v1::Event {
        event: Some(v1::event::Event::Error(v1::event::Error {
            message: message.to_string(),
        })),
    }
}
