//! The sequencer: carries out each transition's effects in the order the
//! loop produced them. A transition's store writes go to the writer first;
//! its SDK calls, events and the caller's answer wait until they are
//! durable, so nothing is launched, announced or acknowledged that a new
//! leader would not find in the store. A failed write ends the sequencer,
//! which ends the loop: leadership is given up.
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::api::error::ApiError;
use crate::state::apps::Deployed;
use crate::state::{Call, Effects, Event};
use crate::store::StoreWriter;

/// Transitions waiting for their writes at most (the loop waits beyond).
pub(crate) const SEQUENCER_QUEUE: usize = 256;
/// SDK calls queued at most for the calls task.
pub(crate) const CALL_QUEUE: usize = 4096;

/// One transition's effects and who waits for them.
pub(crate) struct Pending {
    pub(crate) effects: Effects,
    pub(crate) reply: Reply,
}

/// The answer owed to an API caller once the writes are durable.
pub(crate) enum Reply {
    None,
    Deployed(oneshot::Sender<Result<Deployed, ApiError>>, Deployed),
    MaybeDeployed(
        oneshot::Sender<Result<Option<Deployed>, ApiError>>,
        Option<Deployed>,
    ),
    Done(oneshot::Sender<Result<(), ApiError>>),
}

impl Reply {
    pub(crate) fn deployed(tx: oneshot::Sender<Result<Deployed, ApiError>>, d: Deployed) -> Reply {
        Reply::Deployed(tx, d)
    }

    pub(crate) fn maybe_deployed(
        tx: oneshot::Sender<Result<Option<Deployed>, ApiError>>,
        d: Option<Deployed>,
    ) -> Reply {
        Reply::MaybeDeployed(tx, d)
    }

    pub(crate) fn done(tx: oneshot::Sender<Result<(), ApiError>>) -> Reply {
        Reply::Done(tx)
    }

    fn succeed(self) {
        match self {
            Reply::None => {}
            Reply::Deployed(tx, d) => {
                let _ = tx.send(Ok(d));
            }
            Reply::MaybeDeployed(tx, d) => {
                let _ = tx.send(Ok(d));
            }
            Reply::Done(tx) => {
                let _ = tx.send(Ok(()));
            }
        }
    }

    fn fail(self, why: &str) {
        let e = || ApiError::Unavailable(format!("the change was not stored: {why}"));
        match self {
            Reply::None => {}
            Reply::Deployed(tx, _) => {
                let _ = tx.send(Err(e()));
            }
            Reply::MaybeDeployed(tx, _) => {
                let _ = tx.send(Err(e()));
            }
            Reply::Done(tx) => {
                let _ = tx.send(Err(e()));
            }
        }
    }
}

/// Runs the sequencer until the loop stops or a write fails.
pub(crate) async fn sequence(
    mut rx: mpsc::Receiver<Pending>,
    writer: StoreWriter,
    calls: mpsc::Sender<Call>,
    events: broadcast::Sender<Event>,
    probes: mpsc::Sender<crate::readiness::Probe>,
) {
    while let Some(p) = rx.recv().await {
        if !p.effects.writes.is_empty() {
            let outcome = match writer.submit(p.effects.writes) {
                Ok(done) => match done.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("the store writer stopped".to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            if let Err(why) = outcome {
                tracing::error!(error = %why, "a store write failed; giving up leadership");
                p.reply.fail(&why);
                return;
            }
        }
        for call in p.effects.calls {
            if calls.send(call).await.is_err() {
                return;
            }
        }
        for probe in p.effects.probes {
            if probes.send(probe).await.is_err() {
                return;
            }
        }
        for e in p.effects.events {
            // No subscribers is fine.
            let _ = events.send(e);
        }
        p.reply.succeed();
    }
}

/// Makes the SDK calls one at a time; a refused launch sends its instances
/// back to the loop.
pub(crate) async fn make_calls(
    mut rx: mpsc::Receiver<Call>,
    driver: agora_scheduler_sdk::Driver,
    back: mpsc::Sender<crate::event_loop::Command>,
) {
    while let Some(call) = rx.recv().await {
        let result = match call {
            Call::Launch {
                offer,
                tasks,
                refuse,
            } => {
                let ids: Vec<agora_marathon_planner::InstanceId> = tasks
                    .iter()
                    .map(|t| agora_marathon_planner::InstanceId::from_string(t.id.to_string()))
                    .collect();
                let r = driver.accept(vec![offer.id.clone()], tasks, refuse).await;
                if r.is_err() {
                    let _ = back
                        .send(crate::event_loop::Command::LaunchFailed(ids))
                        .await;
                }
                r
            }
            Call::Decline { offers, filter } => driver.decline(offers, Some(filter)).await,
            Call::Kill { task, agent } => driver.kill(&task, agent.as_ref(), None).await,
            Call::Reconcile(tasks) => driver.reconcile(tasks).await,
            Call::Suppress => driver.suppress(Vec::new()).await,
            Call::Revive => driver.revive(Vec::new()).await,
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "scheduler call failed");
        }
    }
}
