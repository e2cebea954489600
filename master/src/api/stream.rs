//! A response stream that tells the event loop when the client goes away,
//! so a disconnected framework or agent is noticed at once rather than at the
//! next heartbeat.
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::event_loop::Command;

/// The channel carries boxed messages: tokio allocates a channel's slots 32
/// at a time, and a wire message inline (with a `Status` beside it) is
/// several hundred bytes, so 10,000 idle agent streams held ~20 KB each in
/// slots. Boxed, a block of slots is 256 bytes.
pub(crate) struct NotifyOnDrop<T> {
    inner: ReceiverStream<Box<T>>,
    on_drop: Option<(mpsc::Sender<Command>, Command)>,
}

impl<T> NotifyOnDrop<T> {
    pub(crate) fn new(
        rx: mpsc::Receiver<Box<T>>,
        tx: mpsc::Sender<Command>,
        on_drop: Command,
    ) -> Self {
        NotifyOnDrop {
            inner: ReceiverStream::new(rx),
            on_drop: Some((tx, on_drop)),
        }
    }
}

impl<T> Stream for NotifyOnDrop<T> {
    type Item = Result<T, tonic::Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|m| m.map(|b| Ok(*b)))
    }
}

impl<T> Drop for NotifyOnDrop<T> {
    fn drop(&mut self) {
        if let Some((tx, cmd)) = self.on_drop.take() {
            // Drop cannot await; if the queue is momentarily full, hand the
            // send to a task rather than lose the notification.
            if let Err(mpsc::error::TrySendError::Full(cmd)) = tx.try_send(cmd)
                && let Ok(rt) = tokio::runtime::Handle::try_current()
            {
                rt.spawn(async move {
                    let _ = tx.send(cmd).await;
                });
            }
        }
    }
}
