//! The leader's end of the internal `Forward/Pipe` stream: batches of
//! forwarded requests in, batches of answers out, each matched by the
//! sender's id. Every item runs as its own future (a slow one does not hold
//! up the rest); answers that complete together leave in one message, which
//! under load is most of them: a whole batch commits in one Raft round.
//! The client's end is `raft_backend/pipe.rs`.

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::context::Context;
use crate::pb::forward::{AnswerBatch, AnswerItem, ForwardBatch};

/// Items of one stream being served at once. Past this the stream is not
/// read until some finish, so a sender cannot queue unbounded work here.
const MAX_PIPE_IN_FLIGHT: usize = 4096;
/// Answer batches waiting for the connection.
const ANSWER_BUFFER: usize = 64;

/// What the handler returns: the answer stream.
pub(crate) type AnswerStream = ReceiverStream<Result<AnswerBatch, Status>>;

/// Serves one Pipe stream on a task of its own; ends when the sender closes
/// its side and every item is answered, or when the server stops.
pub(crate) fn serve(ctx: Context, inbound: Streaming<ForwardBatch>) -> AnswerStream {
    let (answers, stream) = mpsc::channel(ANSWER_BUFFER);
    tokio::spawn(async move {
        tokio::select! {
            () = run(&ctx, inbound, &answers) => {}
            () = ctx.stopped() => {
                let _ = answers.send(Err(Status::unavailable("member shutting down"))).await;
            }
        }
    });
    ReceiverStream::new(stream)
}

async fn run(
    ctx: &Context,
    mut inbound: Streaming<ForwardBatch>,
    answers: &mpsc::Sender<Result<AnswerBatch, Status>>,
) {
    let mut running = FuturesUnordered::new();
    let mut open = true;
    while open || !running.is_empty() {
        tokio::select! {
            next = inbound.message(), if open && running.len() < MAX_PIPE_IN_FLIGHT => match next {
                Ok(Some(batch)) => {
                    for item in batch.items {
                        running.push(answer(ctx, item.id, item.command));
                    }
                }
                Ok(None) => open = false,
                Err(status) => {
                    tracing::debug!(%status, "forward pipe from a member failed");
                    return;
                }
            },
            Some(first) = running.next(), if !running.is_empty() => {
                let mut items = vec![first];
                // Whatever else is done already rides along.
                while let Some(Some(item)) = running.next().now_or_never() {
                    items.push(item);
                }
                if answers.send(Ok(AnswerBatch { items })).await.is_err() {
                    return; // the sender hung up
                }
            }
        }
    }
}

/// Serves one item; a request the backend refuses (garbage) is answered
/// with its status inside the answer, not by breaking the stream.
async fn answer(ctx: &Context, id: u64, command: Vec<u8>) -> AnswerItem {
    let answer = match ctx.backend.forwarded(command).await {
        Ok(answer) => answer,
        Err(status) => crate::raft_backend::refusal(&status),
    };
    AnswerItem { id, answer }
}
