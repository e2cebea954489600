//! The SDK side: a [`Scheduler`] that only forwards callbacks into the
//! loop's bounded queue (awaiting a full queue is the backpressure that
//! slows the master's stream), never deciding anything itself.
use agora_model::{AgentId, Drain, FrameworkId, Offer, OfferId, TaskStatus};
use agora_scheduler_sdk::{Driver, Scheduler};
use tokio::sync::mpsc;

use crate::event_loop::Command;

/// Forwards SDK callbacks to the loop.
pub(crate) struct Forwarder {
    pub(crate) tx: mpsc::Sender<Command>,
}

impl Scheduler for Forwarder {
    async fn subscribed(&mut self, _driver: &Driver, framework_id: &FrameworkId) {
        tracing::info!(framework = %framework_id, "subscribed to the master");
        let _ = self
            .tx
            .send(Command::Subscribed(framework_id.clone()))
            .await;
    }

    async fn offers(&mut self, _driver: &Driver, offers: Vec<Offer>) {
        let _ = self.tx.send(Command::Offers(offers)).await;
    }

    async fn rescinded(&mut self, _driver: &Driver, _offer_id: OfferId) {
        // Launches on a rescinded offer fail and come back as LaunchFailed.
    }

    async fn update(&mut self, _driver: &Driver, status: &TaskStatus) {
        let _ = self
            .tx
            .send(Command::Update(Box::new(status.clone())))
            .await;
    }

    async fn agent_maintenance(&mut self, _driver: &Driver, agent: AgentId, drain: Option<Drain>) {
        let _ = self.tx.send(Command::AgentMaintenance(agent, drain)).await;
    }

    async fn error(&mut self, _driver: &Driver, message: String) {
        tracing::error!(%message, "the master refused the framework");
    }

    async fn disconnected(&mut self, _driver: &Driver) {
        tracing::warn!("disconnected from the master; re-subscribing");
    }
}
