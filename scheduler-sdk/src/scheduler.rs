//! The `Scheduler` trait a framework implements.
use std::future::Future;

use agora_model::{AgentId, Drain, FrameworkId, Offer, OfferId, TaskStatus};

use crate::calls::Driver;

/// A framework's reactions to master events. Every method has a default, so
/// implement only what you need; implementations can be `async fn`.
///
/// The driver calls these one at a time, in the order the master sent the
/// events, so `&mut self` needs no locking. A slow callback delays the next
/// event (not the heartbeat check: missed heartbeats are only counted while
/// the driver is waiting for events).
pub trait Scheduler: Send {
    /// The master accepted the subscription. Called again after every
    /// re-subscription (same `framework_id`), which is the moment to
    /// reconcile.
    fn subscribed(
        &mut self,
        driver: &Driver,
        framework_id: &FrameworkId,
    ) -> impl Future<Output = ()> + Send {
        let _ = (driver, framework_id);
        async {}
    }

    /// New resource offers. Offers not accepted or declined stay allocated to
    /// the framework (Mesos semantics), so the default declines them all
    /// with the master's default filter instead of hoarding them.
    fn offers(&mut self, driver: &Driver, offers: Vec<Offer>) -> impl Future<Output = ()> + Send {
        async move {
            let ids: Vec<OfferId> = offers.into_iter().map(|o| o.id).collect();
            if let Err(e) = driver.decline(ids, None).await {
                tracing::debug!(error = %e, "default offers(): decline failed");
            }
        }
    }

    /// An offer is no longer valid (agent lost, offer timeout, ...).
    fn rescinded(&mut self, driver: &Driver, offer_id: OfferId) -> impl Future<Output = ()> + Send {
        let _ = (driver, offer_id);
        async {}
    }

    /// A task status update. With auto-acknowledgement (the default) the
    /// driver acknowledges it after this returns; otherwise call
    /// [`Driver::acknowledge`]. Updates may be delivered more than once.
    fn update(&mut self, driver: &Driver, status: &TaskStatus) -> impl Future<Output = ()> + Send {
        let _ = (driver, status);
        async {}
    }

    /// An agent was removed, or an executor ended with `status`.
    fn failure(
        &mut self,
        driver: &Driver,
        agent_id: AgentId,
        status: Option<i32>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (driver, agent_id, status);
        async {}
    }

    /// The operator drains `agent_id` (`Some`): it makes no new offers, and
    /// its tasks should be moved elsewhere (Mesos' inverse offers); or the
    /// drain is over (`None`). Sent again after every (re)subscription for
    /// each agent that still drains.
    fn agent_maintenance(
        &mut self,
        driver: &Driver,
        agent_id: AgentId,
        drain: Option<Drain>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (driver, agent_id, drain);
        async {}
    }

    /// The master sent an ERROR event (or refused the subscription); the
    /// driver stops afterwards and `run` returns [`SdkError::Fatal`](crate::SdkError::Fatal).
    fn error(&mut self, driver: &Driver, message: String) -> impl Future<Output = ()> + Send {
        let _ = (driver, message);
        async {}
    }

    /// The event stream broke; the driver is re-subscribing. Calls fail with
    /// `SdkError::Disconnected` until `subscribed` is called again.
    fn disconnected(&mut self, driver: &Driver) -> impl Future<Output = ()> + Send {
        let _ = driver;
        async {}
    }
}

/// Lets a caller keep its scheduler: `driver.run(&mut my_scheduler)` and
/// inspect it after `run` returns.
impl<S: Scheduler + ?Sized> Scheduler for &mut S {
    fn subscribed(
        &mut self,
        driver: &Driver,
        framework_id: &FrameworkId,
    ) -> impl Future<Output = ()> + Send {
        (**self).subscribed(driver, framework_id)
    }
    fn offers(&mut self, driver: &Driver, offers: Vec<Offer>) -> impl Future<Output = ()> + Send {
        (**self).offers(driver, offers)
    }
    fn rescinded(&mut self, driver: &Driver, offer_id: OfferId) -> impl Future<Output = ()> + Send {
        (**self).rescinded(driver, offer_id)
    }
    fn update(&mut self, driver: &Driver, status: &TaskStatus) -> impl Future<Output = ()> + Send {
        (**self).update(driver, status)
    }
    fn failure(
        &mut self,
        driver: &Driver,
        agent_id: AgentId,
        status: Option<i32>,
    ) -> impl Future<Output = ()> + Send {
        (**self).failure(driver, agent_id, status)
    }
    fn agent_maintenance(
        &mut self,
        driver: &Driver,
        agent_id: AgentId,
        drain: Option<Drain>,
    ) -> impl Future<Output = ()> + Send {
        (**self).agent_maintenance(driver, agent_id, drain)
    }
    fn error(&mut self, driver: &Driver, message: String) -> impl Future<Output = ()> + Send {
        (**self).error(driver, message)
    }
    fn disconnected(&mut self, driver: &Driver) -> impl Future<Output = ()> + Send {
        (**self).disconnected(driver)
    }
}
