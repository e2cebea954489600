//! The `Driver` handle: every scheduler call, sent as a unary gRPC with the
//! framework id and stream id of the current subscription.
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use agora_model::{
    AgentId, FrameworkId, FrameworkInfo, Offer, OfferId, Role, TaskId, TaskSpec, TaskStatus,
};
use agora_proto::convert::{framework_to_wire, task_to_wire};
use agora_proto::leader::{is_not_leader, leader_hint};
use agora_proto::v1;
use agora_proto::v1::scheduler_client::SchedulerClient;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::error::SdkError;

/// A cheap, cloneable handle to a running driver, passed to every
/// [`Scheduler`](crate::Scheduler) callback and available before `run` via
/// [`SchedulerDriver::driver`](crate::SchedulerDriver::driver).
///
/// Calls fail fast with [`SdkError::NotSubscribed`] before the first
/// subscription and [`SdkError::Disconnected`] while re-subscribing (also
/// while following a redirect to the leading master); they are never
/// queued, because a queued ACCEPT would name offers the master has already
/// rescinded. A call answered "not the leading master" fails with
/// [`SdkError::Disconnected`] and makes the driver re-subscribe, at the
/// leader the answer named.
#[derive(Clone)]
pub struct Driver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state();
        f.debug_struct("Driver")
            .field("framework_id", &st.framework.id)
            .field("subscribed", &st.session.is_some())
            .finish()
    }
}

struct Inner {
    /// What the driver knows about its framework and subscription. A std
    /// mutex: it is never held across an await, and critical sections are a
    /// few field copies.
    state: Mutex<State>,
    /// `true` once `stop()` or a successful `teardown()` asked `run` to
    /// return. A watch channel so the run loop can await the flip while it
    /// waits for events or sleeps between reconnects.
    stop: watch::Sender<bool>,
    /// Set while a TEARDOWN is in flight: the master answers it with an
    /// ERROR event ("framework removed") that may reach the run loop before
    /// the call returns, and must then end `run` with `Ok`, not `Fatal`.
    tearing_down: AtomicBool,
    /// Upper bound on one unary call (Mesos guidance: ~75 s for requests
    /// other than SUBSCRIBE).
    call_timeout: Duration,
}

struct State {
    /// The FrameworkInfo re-subscriptions send; `id` is filled in from the
    /// first SUBSCRIBED, so every re-subscription fails over the same framework.
    framework: FrameworkInfo,
    /// Roles currently suppressed; sent with every SUBSCRIBE so suppression
    /// survives reconnects (the master resets it on subscription).
    suppressed: BTreeSet<Role>,
    /// The live subscription, if any.
    session: Option<Session>,
    /// Whether any subscription ever succeeded, to tell "not yet" from "lost".
    ever_subscribed: bool,
}

/// One live subscription: where calls go and how they identify themselves.
#[derive(Clone)]
pub(crate) struct Session {
    /// Client on a connection of its own, separate from the event stream's
    /// (as Mesos requires calls on other connections), so a large backlog of
    /// unread events cannot stall calls in HTTP/2 flow control.
    pub(crate) client: SchedulerClient<Channel>,
    pub(crate) framework_id: FrameworkId,
    pub(crate) stream_id: String,
    /// Set by a call the master refused as "not the leading master" (with
    /// the leader it named, if any); the run loop watches it and ends the
    /// subscription, so a master that lost leadership but kept the event
    /// stream open does not leave every call failing until heartbeats stop.
    /// One channel per session, so a refusal never ends a later session.
    pub(crate) refused: Arc<watch::Sender<Refusal>>,
}

/// `Some(leader hint)` once a call of the session was refused by a standby.
pub(crate) type Refusal = Option<Option<String>>;

type CallResult = Result<tonic::Response<v1::CallResponse>, tonic::Status>;

impl Driver {
    pub(crate) fn new(
        framework: FrameworkInfo,
        suppressed: BTreeSet<Role>,
        call_timeout: Duration,
    ) -> Driver {
        let (stop, _) = watch::channel(false);
        Driver {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    framework,
                    suppressed,
                    session: None,
                    ever_subscribed: false,
                }),
                stop,
                tearing_down: AtomicBool::new(false),
                call_timeout,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated
        // (every update is a single assignment), so a poisoned lock is safe to use.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn subscribe_request(&self) -> v1::SubscribeRequest {
        let st = self.state();
        v1::SubscribeRequest {
            framework_info: Some(framework_to_wire(&st.framework)),
            suppressed_roles: st.suppressed.iter().map(ToString::to_string).collect(),
        }
    }

    pub(crate) fn install(&self, session: Session) {
        let mut st = self.state();
        if let Some(old) = &st.framework.id
            && *old != session.framework_id
        {
            tracing::warn!(old = %old, new = %session.framework_id, "master assigned a different framework id");
        }
        st.framework.id = Some(session.framework_id.clone());
        st.session = Some(session);
        st.ever_subscribed = true;
    }

    pub(crate) fn clear_session(&self) {
        self.state().session = None;
    }

    pub(crate) fn stop_receiver(&self) -> watch::Receiver<bool> {
        self.inner.stop.subscribe()
    }

    /// The framework id, once the master assigned one (or the one the
    /// FrameworkInfo came with, for a failing-over scheduler).
    pub fn framework_id(&self) -> Option<FrameworkId> {
        self.state().framework.id.clone()
    }

    /// The FrameworkInfo the driver subscribes with.
    pub fn framework_info(&self) -> FrameworkInfo {
        self.state().framework.clone()
    }

    /// Is there a live subscription right now?
    pub fn is_subscribed(&self) -> bool {
        self.state().session.is_some()
    }

    /// Roles the driver believes are suppressed.
    pub fn suppressed_roles(&self) -> Vec<Role> {
        self.state().suppressed.iter().cloned().collect()
    }

    /// Asks `run` to return `Ok(())`. The event stream is closed, so the
    /// master treats the framework as disconnected: its tasks survive for
    /// `failover_timeout`, and another driver may fail over to it.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }

    /// Has `stop` (or a successful `teardown`) been called?
    pub fn is_stopped(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Sends one call with the current subscription's header.
    async fn call<F, Fut>(&self, what: &'static str, f: F) -> Result<(), SdkError>
    where
        F: FnOnce(SchedulerClient<Channel>, v1::CallHeader) -> Fut,
        Fut: Future<Output = CallResult>,
    {
        let (session, ever) = {
            let st = self.state();
            (st.session.clone(), st.ever_subscribed)
        };
        let Some(session) = session else {
            return Err(if ever {
                SdkError::Disconnected(format!("{what}: re-subscribing to a master"))
            } else {
                SdkError::NotSubscribed(format!("{what}: not subscribed yet"))
            });
        };
        let header = v1::CallHeader {
            framework_id: session.framework_id.to_string(),
            stream_id: session.stream_id,
        };
        let refused = session.refused;
        match tokio::time::timeout(self.inner.call_timeout, f(session.client, header)).await {
            Err(_) => Err(SdkError::Disconnected(format!(
                "{what}: no answer within {:?}",
                self.inner.call_timeout
            ))),
            Ok(Err(status)) => {
                tracing::debug!(call = what, code = ?status.code(), message = status.message(), "call failed");
                if is_not_leader(&status) {
                    refused.send_replace(Some(leader_hint(&status)));
                }
                Err(status.into())
            }
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// ACCEPT: launches `tasks` on the resources of `offer_ids` (all from one
    /// agent). Unused resources are declined with `refuse` (the master's
    /// default, 5 s, if `None`). No local checks: the master validates.
    pub async fn accept(
        &self,
        offer_ids: Vec<OfferId>,
        tasks: Vec<TaskSpec>,
        refuse: Option<Duration>,
    ) -> Result<(), SdkError> {
        let operations = if tasks.is_empty() {
            Vec::new()
        } else {
            let task_infos = tasks.iter().map(task_to_wire).collect();
            vec![v1::Operation {
                operation: Some(v1::operation::Operation::Launch(v1::operation::Launch {
                    task_infos,
                })),
            }]
        };
        let req = |header| v1::AcceptRequest {
            header: Some(header),
            offer_ids: offer_ids.iter().map(ToString::to_string).collect(),
            operations,
            filters: filters(refuse),
        };
        self.call("accept", |mut c, h| async move { c.accept(req(h)).await })
            .await
    }

    /// Shorthand for accepting one offer: launches `tasks` on it, declining
    /// the rest with the default filter. Sets each task's agent to the offer's.
    pub async fn launch(&self, offer: &Offer, mut tasks: Vec<TaskSpec>) -> Result<(), SdkError> {
        for t in &mut tasks {
            t.agent_id = offer.agent_id.clone();
        }
        self.accept(vec![offer.id.clone()], tasks, None).await
    }

    /// DECLINE: gives offers back; the master will not re-offer their
    /// resources to this framework for `refuse` (default 5 s).
    pub async fn decline(
        &self,
        offer_ids: Vec<OfferId>,
        refuse: Option<Duration>,
    ) -> Result<(), SdkError> {
        let req = |header| v1::DeclineRequest {
            header: Some(header),
            offer_ids: offer_ids.iter().map(ToString::to_string).collect(),
            filters: filters(refuse),
        };
        self.call("decline", |mut c, h| async move { c.decline(req(h)).await })
            .await
    }

    /// KILL: kills a task (on `agent_id` if known), giving it `grace`
    /// between SIGTERM and SIGKILL instead of its own kill policy.
    pub async fn kill(
        &self,
        task_id: &TaskId,
        agent_id: Option<&AgentId>,
        grace: Option<Duration>,
    ) -> Result<(), SdkError> {
        let req = |header| v1::KillRequest {
            header: Some(header),
            task_id: task_id.to_string(),
            agent_id: agent_id.map(ToString::to_string).unwrap_or_default(),
            kill_policy: grace.map(|g| v1::KillPolicy {
                grace_period_seconds: Some(g.as_secs_f64()),
            }),
        };
        self.call("kill", |mut c, h| async move { c.kill(req(h)).await })
            .await
    }

    /// ACKNOWLEDGE: confirms a status update so the agent stops resending it.
    /// Updates without a uuid need no acknowledgement; this returns `Ok` for
    /// them without sending anything.
    pub async fn acknowledge(&self, status: &TaskStatus) -> Result<(), SdkError> {
        let Some(uuid) = status.uuid else {
            return Ok(());
        };
        let req = |header| v1::AcknowledgeRequest {
            header: Some(header),
            agent_id: status
                .agent_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            task_id: status.task_id.to_string(),
            uuid: uuid.as_bytes().to_vec(),
        };
        self.call("acknowledge", |mut c, h| async move {
            c.acknowledge(req(h)).await
        })
        .await
    }

    /// Acknowledges many updates in one call (updates without a uuid are
    /// skipped). The master relays every valid one even if another in the
    /// batch names an unknown agent; the error then names the first such.
    pub async fn acknowledge_many(&self, statuses: &[TaskStatus]) -> Result<(), SdkError> {
        let acknowledgements: Vec<_> = statuses
            .iter()
            .filter_map(|s| {
                let uuid = s.uuid?;
                Some(v1::acknowledge_many_request::Acknowledgement {
                    agent_id: s
                        .agent_id
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    task_id: s.task_id.to_string(),
                    uuid: uuid.as_bytes().to_vec(),
                })
            })
            .collect();
        if acknowledgements.is_empty() {
            return Ok(());
        }
        let req = |header| v1::AcknowledgeManyRequest {
            header: Some(header),
            acknowledgements,
        };
        self.call("acknowledge_many", |mut c, h| async move {
            c.acknowledge_many(req(h)).await
        })
        .await
    }

    /// RECONCILE: asks for the latest state of `tasks` (explicit), or of all
    /// the framework's non-terminal tasks if `tasks` is empty (implicit).
    /// Answers arrive as `update` callbacks with reason RECONCILIATION.
    pub async fn reconcile(&self, tasks: Vec<(TaskId, Option<AgentId>)>) -> Result<(), SdkError> {
        let req = |header| v1::ReconcileRequest {
            header: Some(header),
            tasks: tasks
                .iter()
                .map(|(t, a)| v1::reconcile_request::ReconcileTask {
                    task_id: t.to_string(),
                    agent_id: a.as_ref().map(ToString::to_string).unwrap_or_default(),
                })
                .collect(),
        };
        self.call(
            "reconcile",
            |mut c, h| async move { c.reconcile(req(h)).await },
        )
        .await
    }

    /// SUPPRESS: no more offers for `roles` (all the framework's roles if
    /// empty) until [`revive`](Driver::revive). Remembered across reconnects.
    pub async fn suppress(&self, roles: Vec<Role>) -> Result<(), SdkError> {
        let wire = roles.iter().map(ToString::to_string).collect();
        self.call("suppress", |mut c, h| async move {
            c.suppress(v1::SuppressRequest {
                header: Some(h),
                roles: wire,
            })
            .await
        })
        .await?;
        let mut st = self.state();
        let all = if roles.is_empty() {
            st.framework.roles.clone()
        } else {
            roles
        };
        st.suppressed.extend(all);
        Ok(())
    }

    /// REVIVE: offers again for `roles` (all if empty), and clears the
    /// filters of earlier declines for them.
    pub async fn revive(&self, roles: Vec<Role>) -> Result<(), SdkError> {
        let wire = roles.iter().map(ToString::to_string).collect();
        self.call("revive", |mut c, h| async move {
            c.revive(v1::ReviveRequest {
                header: Some(h),
                roles: wire,
            })
            .await
        })
        .await?;
        let mut st = self.state();
        if roles.is_empty() {
            st.suppressed.clear();
        } else {
            st.suppressed.retain(|r| !roles.contains(r));
        }
        Ok(())
    }

    /// TEARDOWN: the master kills all the framework's tasks and forgets it.
    /// On success the driver stops (`run` returns `Ok`).
    pub async fn teardown(&self) -> Result<(), SdkError> {
        self.inner.tearing_down.store(true, Ordering::SeqCst);
        let res = self
            .call("teardown", |mut c, h| async move {
                c.teardown(v1::TeardownRequest { header: Some(h) }).await
            })
            .await;
        match res {
            Ok(()) => {
                self.stop();
                Ok(())
            }
            Err(e) => {
                self.inner.tearing_down.store(false, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// Is a TEARDOWN in flight or done?
    pub(crate) fn is_tearing_down(&self) -> bool {
        self.inner.tearing_down.load(Ordering::SeqCst)
    }

    /// UPDATE_FRAMEWORK: changes roles, capabilities, failover timeout and
    /// other FrameworkInfo fields without re-subscribing. The id is always the
    /// current one; suppressed roles no longer in `info.roles` are dropped.
    pub async fn update_framework(&self, mut info: FrameworkInfo) -> Result<(), SdkError> {
        let suppressed: BTreeSet<Role> = {
            let st = self.state();
            info.id = st.framework.id.clone();
            st.suppressed
                .iter()
                .filter(|r| info.roles.contains(r))
                .cloned()
                .collect()
        };
        let req = |header| v1::UpdateFrameworkRequest {
            header: Some(header),
            framework_info: Some(framework_to_wire(&info)),
            suppressed_roles: suppressed.iter().map(ToString::to_string).collect(),
        };
        self.call("update_framework", |mut c, h| async move {
            c.update_framework(req(h)).await
        })
        .await?;
        let mut st = self.state();
        st.framework = info;
        st.suppressed = suppressed;
        Ok(())
    }
}

fn filters(refuse: Option<Duration>) -> Option<v1::Filters> {
    refuse.map(|d| v1::Filters {
        refuse_seconds: Some(d.as_secs_f64()),
    })
}

#[cfg(test)]
mod tests;
