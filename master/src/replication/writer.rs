//! The registry's durability through the masters' Raft log: the core's
//! proposals (already grouped per loop iteration) go to the log as one
//! entry per batch, and the loop hears `Durable` once the entry is applied
//! on this member, which means a majority has it on disk.
//!
//! Batches are pipelined: a new batch is proposed while earlier ones are
//! still replicating, and outcomes are reported in proposal order (the log
//! keeps that order), so `Durable { up_to }` never overtakes a failure.
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::{mpsc, oneshot};

use agora_raft::runner::{Proposal, ProposalResult};

use super::machine::MasterEntry;
use crate::registry::{LogEntry, WriteOutcome, WriterHandle};

/// Batches waiting for the writer (one per loop iteration that changed the
/// registry); a full queue makes the loop wait for the log.
const WRITER_QUEUE: usize = 1024;
/// Registry entries replicating at once; past this the writer stops taking
/// batches until the oldest is applied.
const MAX_IN_FLIGHT: usize = 64;

/// Starts a writer that proposes to the Raft runner behind `raft`.
pub(crate) fn spawn_replicated_writer(raft: mpsc::Sender<Proposal>) -> WriterHandle {
    let (ptx, prx) = mpsc::channel(WRITER_QUEUE);
    let (otx, orx) = mpsc::channel(WRITER_QUEUE);
    let task = tokio::spawn(run(raft, prx, otx));
    WriterHandle {
        proposals: ptx,
        outcomes: orx,
        task,
    }
}

type Flight = std::pin::Pin<Box<dyn Future<Output = (Vec<u64>, ProposalResult)> + Send>>;

async fn run(
    raft: mpsc::Sender<Proposal>,
    mut batches: mpsc::Receiver<Vec<(u64, LogEntry)>>,
    outcomes: mpsc::Sender<WriteOutcome>,
) {
    let mut in_flight: FuturesOrdered<Flight> = FuturesOrdered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        tokio::select! {
            batch = batches.recv(), if open && in_flight.len() < MAX_IN_FLIGHT => match batch {
                Some(mut batch) => {
                    while let Ok(more) = batches.try_recv() {
                        batch.extend(more);
                    }
                    in_flight.push_back(propose(&raft, batch).await);
                }
                None => open = false,
            },
            Some((seqs, result)) = in_flight.next() => {
                if outcomes.send(outcome(seqs, result)).await.is_err() {
                    return; // the loop is gone
                }
            }
        }
    }
}

/// Hands one batch to the runner; the returned future resolves with the
/// batch's sequence numbers and its fate.
async fn propose(raft: &mpsc::Sender<Proposal>, batch: Vec<(u64, LogEntry)>) -> Flight {
    let seqs: Vec<u64> = batch.iter().map(|(seq, _)| *seq).collect();
    let entries: Vec<LogEntry> = batch.into_iter().map(|(_, entry)| entry).collect();
    let (reply, answer) = oneshot::channel();
    let sent = raft
        .send((MasterEntry::Registry(entries).encode(), reply))
        .await
        .is_ok();
    Box::pin(async move {
        let result = if sent {
            answer.await.unwrap_or(Err(agora_raft::RaftError::Stopped))
        } else {
            Err(agora_raft::RaftError::Stopped)
        };
        (seqs, result)
    })
}

fn outcome(seqs: Vec<u64>, result: ProposalResult) -> WriteOutcome {
    match result {
        Ok(_) => WriteOutcome::Durable {
            up_to: seqs.last().copied().unwrap_or(0),
        },
        Err(error) => {
            tracing::warn!(%error, entries = seqs.len(), "registry changes not replicated");
            WriteOutcome::Failed {
                seqs,
                reason: error.to_string(),
            }
        }
    }
}
