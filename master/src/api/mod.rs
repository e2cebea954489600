//! gRPC handlers. They decode and validate requests into domain values, send
//! the event loop a `Command` with a oneshot reply and return its answer.
//! Architecture invariant: no master state is reachable from here.
pub(crate) mod agent;
pub(crate) mod scheduler;
mod status;
mod stream;
pub(crate) mod wire;

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::event_loop::Command;

/// Sends a command built around a reply channel and awaits the answer.
pub(crate) async fn ask<T>(
    tx: &mpsc::Sender<Command>,
    make: impl FnOnce(oneshot::Sender<Result<T, Status>>) -> Command,
) -> Result<T, Status> {
    let (reply, rx) = oneshot::channel();
    tx.send(make(reply))
        .await
        .map_err(|_| Status::unavailable("the master is shutting down"))?;
    rx.await
        .map_err(|_| Status::unavailable("the master is shutting down"))?
}
