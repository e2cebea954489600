//! `StoreWriter`: the ordered, bounded write queue in front of the store.
//!
//! One task owns the queue and writes batches strictly in submission order.
//! Batches already queued when the task is free are group-committed: as many
//! as fit in one Txn go out together, and each submitter hears the outcome
//! of its own batch once it is durable. An unavailable etcd is retried with
//! capped, jittered backoff up to a deadline; past it, the batch in hand and
//! every batch queued behind it fail, and the writer closes (fail-stop):
//! writing later batches without the failed ones would break the order the
//! caller relies on, so the caller must reload its state and start a new
//! writer.

use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Op, Store, StoreError, Write, fits_one_txn, plan_txns};

/// First pause after a failed attempt.
const BACKOFF_START: Duration = Duration::from_millis(50);
/// Longest pause between attempts: etcd usually comes back within a leader
/// election (about a second), so waiting longer only delays the writes.
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// One submitted batch and where its outcome goes.
struct Queued {
    ops: Vec<Op>,
    /// Dropped by the submitter if it stops caring; sending then fails harmlessly.
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The submitting side of the writer task; clones share one queue.
#[derive(Clone)]
pub struct StoreWriter {
    store: Store,
    /// Bounded: a full queue is [`StoreError::Busy`], never a wait. Closed by
    /// the task when it fails a batch (fail-stop) and when it ends.
    queue: mpsc::Sender<Queued>,
}

impl StoreWriter {
    pub(super) fn spawn(store: Store, queue: usize, retry_deadline: Duration) -> StoreWriter {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(run(store.clone(), rx, retry_deadline));
        StoreWriter { store, queue: tx }
    }

    /// Queues `batch` and returns where its outcome will arrive. Never blocks:
    /// a full queue is [`StoreError::Busy`], a stopped writer
    /// [`StoreError::Closed`], and an invalid write (bad key,
    /// [`StoreError::TooLarge`]) is refused here, with nothing queued.
    pub fn submit(
        &self,
        batch: Vec<Write>,
    ) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        let ops = self.store.prepare(batch)?;
        let (done, outcome) = oneshot::channel();
        match self.queue.try_send(Queued { ops, done }) {
            Ok(()) => Ok(outcome),
            Err(mpsc::error::TrySendError::Full(_)) => Err(StoreError::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(StoreError::Closed),
        }
    }
}

/// The writer task: group, write, report; stop at the first failure.
async fn run(store: Store, mut rx: mpsc::Receiver<Queued>, retry_deadline: Duration) {
    // A batch taken from the queue that did not fit in the previous group.
    let mut carried: Option<Queued> = None;
    loop {
        let first = match carried.take() {
            Some(batch) => batch,
            None => match rx.recv().await {
                Some(batch) => batch,
                None => break,
            },
        };
        let mut ops_n = first.ops.len();
        let mut bytes: usize = first.ops.iter().map(Op::bytes).sum();
        let mut group = vec![first];
        // Group commit: only a batch that fits one Txn is joined by others, so
        // every batch that was atomic alone stays atomic.
        if fits_one_txn(ops_n, bytes) {
            while let Ok(next) = rx.try_recv() {
                let next_bytes: usize = next.ops.iter().map(Op::bytes).sum();
                if fits_one_txn(ops_n + next.ops.len(), bytes + next_bytes) {
                    ops_n += next.ops.len();
                    bytes += next_bytes;
                    group.push(next);
                } else {
                    carried = Some(next);
                    break;
                }
            }
        }
        let ops: Vec<Op> = group.iter().flat_map(|b| b.ops.iter().cloned()).collect();
        match write_with_retry(&store, ops, retry_deadline).await {
            Ok(()) => {
                for batch in group {
                    let _ = batch.done.send(Ok(()));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, batches = group.len(), "store writer failed; failing queued batches and closing");
                rx.close();
                let queued = std::iter::from_fn(|| rx.try_recv().ok());
                for batch in group.into_iter().chain(carried.take()).chain(queued) {
                    let _ = batch.done.send(Err(err.clone()));
                }
                return;
            }
        }
    }
    tracing::debug!("store writer stopped: every handle dropped");
}

/// Writes `ops` as planned Txns, retrying an unavailable etcd until
/// `retry_deadline` has passed since the first failure with no success.
/// Retrying a Txn that may have landed is safe: puts and deletes are
/// idempotent, and nothing else is written in between.
async fn write_with_retry(
    store: &Store,
    ops: Vec<Op>,
    retry_deadline: Duration,
) -> Result<(), StoreError> {
    for txn in plan_txns(ops) {
        let mut failing_since: Option<Instant> = None;
        let mut backoff = BACKOFF_START;
        loop {
            let timeout = match failing_since {
                Some(since) => store
                    .request_timeout
                    .min(retry_deadline.saturating_sub(since.elapsed()))
                    .max(Duration::from_millis(10)),
                None => store.request_timeout,
            };
            match store.commit_within(txn.clone(), timeout).await {
                Ok(()) => break,
                Err(err) if err.is_retryable() => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    let left = retry_deadline.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        return Err(err);
                    }
                    tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, "store write failed; retrying");
                    let jitter = rand::rng().random_range(0.5..1.0);
                    tokio::time::sleep(backoff.mul_f64(jitter).min(left)).await;
                    backoff = (backoff * 2).min(BACKOFF_CAP);
                }
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}
