//! The seam between the core and durability: the loop hands the writer
//! batches of `(seq, LogEntry)` and hears back which are durable. The
//! masters' writer replicates them through the Raft log
//! (`replication::writer`); the loop's unit tests use an in-memory one.
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::LogEntry;

/// What the writer reports after each batch.
#[derive(Debug)]
pub(crate) enum WriteOutcome {
    /// Every proposal with a sequence number up to this one is durable.
    Durable { up_to: u64 },
    /// These proposals could not be made durable (or it is not known
    /// whether they were); they must not be applied.
    Failed { seqs: Vec<u64>, reason: String },
}

/// The loop's end of the writer.
pub(crate) struct WriterHandle {
    pub(crate) proposals: mpsc::Sender<Vec<(u64, LogEntry)>>,
    pub(crate) outcomes: mpsc::Receiver<WriteOutcome>,
    pub(crate) task: JoinHandle<()>,
}

/// A writer that calls everything durable at once (unit tests of the loop).
#[cfg(test)]
pub(crate) fn spawn_memory_writer() -> WriterHandle {
    let (ptx, mut prx) = mpsc::channel::<Vec<(u64, LogEntry)>>(64);
    let (otx, orx) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        while let Some(batch) = prx.recv().await {
            if let Some((up_to, _)) = batch.last()
                && otx
                    .send(WriteOutcome::Durable { up_to: *up_to })
                    .await
                    .is_err()
            {
                return;
            }
        }
    });
    WriterHandle {
        proposals: ptx,
        outcomes: orx,
        task,
    }
}
