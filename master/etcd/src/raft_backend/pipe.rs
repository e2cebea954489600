//! A member's end of the `Forward/Pipe` stream to the leader: one task per
//! leader owns the stream, sends whatever requests are queued as one batch
//! and hands each answer back by id. The leader's end is `pipe_server.rs`.
//!
//! Outcomes follow the forwarding rules (`forward.rs`): a request still in
//! the queue when the pipe could not connect or broke was never sent
//! ([`Outcome::NeverSent`], safe to retry); one sent on a stream that then
//! broke has an unknown outcome ([`Outcome::Lost`]).

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use crate::pb::forward::forward_client::ForwardClient;
use crate::pb::forward::{AnswerBatch, ForwardBatch, ForwardItem};

/// Requests waiting for the pipe's task.
const PIPE_QUEUE: usize = 1024;
/// Most requests in one batch message.
const MAX_PIPE_BATCH: usize = 256;
/// Requests sent and not answered. Past this the pipe stops taking from its
/// queue (callers then wait in `send`): the leader answers every item, so
/// this only bites when it is slow.
const MAX_PIPE_UNANSWERED: usize = 4096;
/// Longest wait for the leader to accept the stream once connected.
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Batches handed to the open stream.
const STREAM_BUFFER: usize = 16;

/// How a piped request ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The leader's answer bytes.
    Answered(Vec<u8>),
    /// Never left this member: asking again is safe.
    NeverSent,
    /// Sent on a stream that broke: it may or may not have taken effect.
    Lost,
}

/// One queued request.
struct Queued {
    command: Vec<u8>,
    reply: oneshot::Sender<Outcome>,
}

/// The sending end of a pipe; the task ends when this is dropped or the
/// stream breaks (then `is_closed`, and the owner opens a new pipe).
#[derive(Clone)]
pub(super) struct Pipe {
    queue: mpsc::Sender<Queued>,
}

impl Pipe {
    /// Starts a pipe to the Forward service at `endpoint` on the current
    /// runtime. It connects at once; requests queue meanwhile.
    pub(super) fn open(endpoint: Endpoint, leader: u64) -> Pipe {
        let (queue, requests) = mpsc::channel(PIPE_QUEUE);
        tokio::spawn(run(endpoint, leader, requests));
        Pipe { queue }
    }

    /// Whether the task has ended (broken stream, failed connection).
    pub(super) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Queues `command`; the answer comes on the returned receiver. A pipe
    /// that just ended answers `NeverSent`.
    pub(super) async fn send(&self, command: Vec<u8>) -> oneshot::Receiver<Outcome> {
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(queued)) =
            self.queue.send(Queued { command, reply }).await
        {
            let _ = queued.reply.send(Outcome::NeverSent);
        }
        answer
    }
}

/// The pipe's task: connect, then move batches out and answers back until
/// the stream or every sender is gone.
async fn run(endpoint: Endpoint, leader: u64, mut requests: mpsc::Receiver<Queued>) {
    let mut unanswered: HashMap<u64, oneshot::Sender<Outcome>> = HashMap::new();
    match endpoint.connect().await {
        Ok(channel) => {
            let mut client = ForwardClient::new(channel);
            let (batches, outgoing) = mpsc::channel(STREAM_BUFFER);
            let call = client.pipe(ReceiverStream::new(outgoing));
            let mut sender = Sender {
                batches,
                next_id: 0,
            };
            // The call resolves once the leader answers with headers, which it
            // does at once; meanwhile requests queue. A leader that accepted
            // the connection and hangs must not hold them forever.
            match tokio::time::timeout(OPEN_TIMEOUT, call).await {
                Err(_) => tracing::debug!(leader, "forward pipe not answered"),
                Ok(Err(status)) => tracing::debug!(leader, %status, "forward pipe refused"),
                Ok(Ok(response)) => {
                    let answers = response.into_inner();
                    pump(&mut sender, &mut requests, answers, &mut unanswered).await;
                }
            }
        }
        Err(error) => tracing::debug!(leader, %error, "cannot reach the leader's etcd port"),
    }
    // Whatever was sent has an unknown fate; whatever is queued never left.
    for (_, reply) in unanswered.drain() {
        let _ = reply.send(Outcome::Lost);
    }
    requests.close();
    while let Ok(queued) = requests.try_recv() {
        let _ = queued.reply.send(Outcome::NeverSent);
    }
}

struct Sender {
    batches: mpsc::Sender<ForwardBatch>,
    next_id: u64,
}

/// Moves requests out and answers back until the stream ends or fails, or
/// every sender is gone and every sent request answered.
async fn pump(
    sender: &mut Sender,
    requests: &mut mpsc::Receiver<Queued>,
    mut answers: tonic::Streaming<AnswerBatch>,
    unanswered: &mut HashMap<u64, oneshot::Sender<Outcome>>,
) {
    let mut open = true;
    while open || !unanswered.is_empty() {
        tokio::select! {
            first = requests.recv(), if open && unanswered.len() < MAX_PIPE_UNANSWERED => {
                let Some(first) = first else {
                    // Forgotten by its owner: finish what was sent.
                    open = false;
                    continue;
                };
                let batch = take_batch(first, requests, sender, unanswered);
                if let Err(mpsc::error::SendError(batch)) = sender.batches.send(batch).await {
                    // The stream is gone and this batch never entered it.
                    for item in batch.items {
                        if let Some(reply) = unanswered.remove(&item.id) {
                            let _ = reply.send(Outcome::NeverSent);
                        }
                    }
                    return;
                }
            }
            next = answers.message() => match next {
                Ok(Some(batch)) => {
                    for item in batch.items {
                        if let Some(reply) = unanswered.remove(&item.id) {
                            // The caller may have given up (timeout): nothing to tell.
                            let _ = reply.send(Outcome::Answered(item.answer));
                        }
                    }
                }
                Ok(None) => return,
                Err(status) => {
                    tracing::debug!(%status, "forward pipe broke");
                    return;
                }
            },
        }
    }
}

/// `first` and whatever else is queued (up to [`MAX_PIPE_BATCH`]) as one
/// batch, each registered as unanswered under a fresh id.
fn take_batch(
    first: Queued,
    requests: &mut mpsc::Receiver<Queued>,
    sender: &mut Sender,
    unanswered: &mut HashMap<u64, oneshot::Sender<Outcome>>,
) -> ForwardBatch {
    let mut items = Vec::new();
    let mut next = Some(first);
    while let Some(queued) = next.take() {
        sender.next_id += 1;
        unanswered.insert(sender.next_id, queued.reply);
        items.push(ForwardItem {
            id: sender.next_id,
            command: queued.command,
        });
        if items.len() < MAX_PIPE_BATCH && unanswered.len() < MAX_PIPE_UNANSWERED {
            next = requests.try_recv().ok();
        }
    }
    ForwardBatch { items }
}
