//! A response stream that tells the event loop when the client goes away,
//! so a disconnected framework or agent is noticed at once rather than at the
//! next heartbeat.
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::event_loop::Command;

pub(crate) struct NotifyOnDrop<T> {
    inner: ReceiverStream<T>,
    on_drop: Option<(mpsc::Sender<Command>, Command)>,
}

impl<T> NotifyOnDrop<T> {
    pub(crate) fn new(rx: mpsc::Receiver<T>, tx: mpsc::Sender<Command>, on_drop: Command) -> Self {
        NotifyOnDrop {
            inner: ReceiverStream::new(rx),
            on_drop: Some((tx, on_drop)),
        }
    }
}

impl<T> Stream for NotifyOnDrop<T> {
    type Item = T;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.inner).poll_next(cx)
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
