//! The Watch service: one bidirectional stream carries many watchers.
//!
//! Each stream gets a session task that owns the stream's watchers. The
//! client names watchers with per-stream ids (etcd's: chosen by the client
//! or counted up from 0); the backend's hub has its own ids, so the session
//! maps between them. All of a stream's watchers share one sink, so what
//! the backend sends (events, cancellations, progress) reaches the client
//! in the order it was sent. Events are acknowledged to the backend once
//! they are queued for the client; a client that stops reading therefore
//! stops acknowledging, and agora-kv cancels its caught-up watchers as too
//! slow (the reason goes to the client) instead of buffering without bound.

use std::collections::HashMap;
use std::pin::{Pin, pin};
use std::sync::Arc;

use agora_kv::{CancelReason, KvError, Revision, WatchId, WatchUpdate};
use futures_util::Stream;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::ApiError;
use crate::backend::WatchMessage;
use crate::context::Context;
use crate::convert;
use crate::pb::etcdserverpb as pb;
use crate::pb::mvccpb;
use crate::require_leader::{no_leader, requires_leader, stream_must_end};

pub(crate) struct WatchApi {
    pub(crate) ctx: Context,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

/// The watch id etcd uses for answers that concern the whole stream.
const STREAM_WIDE: i64 = -1;
/// The watch id etcd answers a create request it refused with.
const NOT_CREATED: i64 = -1;
/// etcd's cancel reason for a range that ends at or before its start.
const EMPTY_RANGE: &str = "mvcc: watcher range is empty";
/// etcd's cancel reason for a client-chosen id already in use.
const DUPLICATE_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";

#[tonic::async_trait]
impl pb::watch_server::Watch for WatchApi {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<Streaming<pb::WatchRequest>>,
    ) -> Result<Response<WatchStream>, Status> {
        let required = requires_leader(request.metadata());
        let inbound = request.into_inner();
        let (out, responses) = mpsc::channel(self.ctx.config.stream_buffer.max(1));
        let session = Session::new(self.ctx.clone(), out);
        tokio::spawn(session.run(inbound, required));
        Ok(Response::new(Box::pin(ReceiverStream::new(responses))))
    }
}

/// The client went away: nothing more to send.
struct Closed;

struct Session {
    ctx: Context,
    out: mpsc::Sender<Result<pb::WatchResponse, Status>>,
    sink: mpsc::UnboundedSender<WatchMessage>,
    updates: mpsc::UnboundedReceiver<WatchMessage>,
    /// Client id -> hub id, and back.
    by_client: HashMap<i64, WatchId>,
    by_hub: HashMap<WatchId, i64>,
    /// Next id to try for a watcher the client did not name.
    next_client_id: i64,
}

impl Session {
    fn new(ctx: Context, out: mpsc::Sender<Result<pb::WatchResponse, Status>>) -> Session {
        let (sink, updates) = mpsc::unbounded_channel();
        Session {
            ctx,
            out,
            sink,
            updates,
            by_client: HashMap::new(),
            by_hub: HashMap::new(),
            next_client_id: 0,
        }
    }

    /// Serves the stream until it ends; a stream that `required` a leader
    /// also ends (with etcd's error) once this member has lost it.
    async fn run(mut self, mut inbound: Streaming<pb::WatchRequest>, required: bool) {
        let ctx = self.ctx.clone();
        let backend = Arc::clone(&ctx.backend);
        let mut leader_lost = pin!(stream_must_end(&*backend, required));
        loop {
            let step = tokio::select! {
                () = &mut leader_lost => {
                    let _ = self.out.send(Err(no_leader())).await;
                    Err(Closed)
                }
                request = inbound.message() => match request {
                    Ok(Some(request)) => self.request(request).await,
                    Ok(None) => Err(Closed),
                    Err(status) => {
                        tracing::debug!(%status, "watch stream broke");
                        Err(Closed)
                    }
                },
                // The session holds a sender, so this never yields None.
                Some(message) = self.updates.recv() => self.update(message).await,
                () = ctx.stopped() => Err(Closed),
            };
            if step.is_err() {
                break;
            }
        }
        for id in self.by_hub.keys() {
            self.ctx.backend.cancel_watch(*id);
        }
    }

    async fn send(&self, response: pb::WatchResponse) -> Result<(), Closed> {
        self.out.send(Ok(response)).await.map_err(|_| Closed)
    }

    async fn request(&mut self, request: pb::WatchRequest) -> Result<(), Closed> {
        use pb::watch_request::RequestUnion;
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => self.create(create).await,
            Some(RequestUnion::CancelRequest(cancel)) => self.cancel(cancel.watch_id).await,
            Some(RequestUnion::ProgressRequest(_)) => {
                let ids = self.by_hub.keys().copied().collect();
                self.ctx.backend.request_progress(ids, self.sink.clone());
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn create(&mut self, create: pb::WatchCreateRequest) -> Result<(), Closed> {
        // etcd's checks and order (`mvcc.watchStream.Watch`): the range,
        // then the id. A refused watcher is answered under id -1 and uses
        // up no id.
        if empty_range(&create) {
            let refused = self.created(NOT_CREATED, true, EMPTY_RANGE.to_string());
            return self.send(refused).await;
        }
        let auto = create.watch_id == 0;
        let Some(client_id) = self.free_id(create.watch_id) else {
            let refused = self.created(NOT_CREATED, true, DUPLICATE_ID.to_string());
            return self.send(refused).await;
        };
        let request = convert::watch_request(create);
        match self.ctx.backend.watch(request, self.sink.clone()).await {
            Ok((hub_id, revision)) => {
                self.take_id(client_id, auto);
                self.by_client.insert(client_id, hub_id);
                self.by_hub.insert(hub_id, client_id);
                let mut created = self.created(client_id, false, String::new());
                created.header = self.ctx.headers().at(revision);
                self.send(created).await
            }
            // As etcd: the watcher is created, then cancelled as compacted.
            Err(ApiError::Kv(KvError::Compacted { compact_revision })) => {
                self.take_id(client_id, auto);
                self.send(self.created(client_id, false, String::new()))
                    .await?;
                let mut cancelled = self.response(client_id);
                cancelled.canceled = true;
                cancelled.compact_revision = compact_revision;
                self.send(cancelled).await
            }
            Err(e) => {
                self.send(self.created(NOT_CREATED, true, e.to_string()))
                    .await
            }
        }
    }

    /// The client's id if it chose a free one, the next free one if it
    /// chose none (0); `None` if its choice is taken. Takes nothing (a
    /// refused watcher uses up no id): see [`Session::take_id`].
    fn free_id(&self, wanted: i64) -> Option<i64> {
        if wanted != 0 {
            return (!self.by_client.contains_key(&wanted)).then_some(wanted);
        }
        let mut id = self.next_client_id;
        while self.by_client.contains_key(&id) {
            id = id.saturating_add(1);
        }
        Some(id)
    }

    /// Counts the server's own ids on past `id` once a watcher holds it
    /// (`auto`: the server picked it), as etcd does; ids the client picks
    /// do not move the count.
    fn take_id(&mut self, id: i64, auto: bool) {
        if auto {
            self.next_client_id = id.saturating_add(1);
        }
    }

    async fn cancel(&mut self, client_id: i64) -> Result<(), Closed> {
        // etcd ignores a cancel of an id it does not know.
        let Some(hub_id) = self.by_client.remove(&client_id) else {
            return Ok(());
        };
        self.by_hub.remove(&hub_id);
        self.ctx.backend.cancel_watch(hub_id);
        let mut cancelled = self.response(client_id);
        cancelled.canceled = true;
        self.send(cancelled).await
    }

    async fn update(&mut self, message: WatchMessage) -> Result<(), Closed> {
        let (update, revision) = match message {
            WatchMessage::Update { update, revision } => (update, revision),
            WatchMessage::Progress { revision } => {
                let mut progress = self.response(STREAM_WIDE);
                progress.header = self.ctx.headers().at(revision);
                return self.send(progress).await;
            }
        };
        match update {
            WatchUpdate::Events { watch_id, events } => self.events(watch_id, events).await,
            WatchUpdate::Progress { watch_id, revision } => {
                let Some(&client_id) = self.by_hub.get(&watch_id) else {
                    return Ok(());
                };
                let mut progress = self.response(client_id);
                progress.header = self.ctx.headers().at(revision);
                self.send(progress).await
            }
            WatchUpdate::Cancelled {
                watch_id,
                reason,
                resume_revision,
            } => {
                self.cancelled(watch_id, reason, resume_revision, revision)
                    .await
            }
        }
    }

    async fn events(
        &mut self,
        hub_id: WatchId,
        events: Vec<agora_kv::Event>,
    ) -> Result<(), Closed> {
        let Some(&client_id) = self.by_hub.get(&hub_id) else {
            // Cancelled by the client meanwhile: drop, but free the budget.
            self.ctx.backend.acknowledge(hub_id, events.len());
            return Ok(());
        };
        let limit = self.ctx.config.limits.max_request_bytes;
        for batch in batches(events.into_iter().map(convert::event).collect(), limit) {
            let count = batch.len();
            let last = batch
                .last()
                .and_then(|e| e.kv.as_ref())
                .map_or(0, |kv| kv.mod_revision);
            let mut response = self.response(client_id);
            response.header = self.ctx.headers().at(last);
            response.events = batch;
            self.send(response).await?;
            self.ctx.backend.acknowledge(hub_id, count);
        }
        Ok(())
    }

    async fn cancelled(
        &mut self,
        hub_id: WatchId,
        reason: CancelReason,
        resume_revision: Revision,
        revision: Revision,
    ) -> Result<(), Closed> {
        let Some(client_id) = self.by_hub.remove(&hub_id) else {
            return Ok(());
        };
        self.by_client.remove(&client_id);
        let mut response = self.response(client_id);
        response.header = self.ctx.headers().at(revision);
        response.canceled = true;
        match reason {
            CancelReason::Compacted { compact_revision } => {
                response.compact_revision = compact_revision;
            }
            CancelReason::SlowConsumer => {
                tracing::info!(client_id, resume_revision, "slow watcher cancelled");
                response.cancel_reason = format!(
                    "agora: watcher cancelled, too slow a consumer; watch again from revision {resume_revision}"
                );
            }
        }
        self.send(response).await
    }

    fn response(&self, client_id: i64) -> pb::WatchResponse {
        pb::WatchResponse {
            header: self.ctx.header_now(),
            watch_id: client_id,
            ..Default::default()
        }
    }

    fn created(&self, client_id: i64, canceled: bool, reason: String) -> pb::WatchResponse {
        pb::WatchResponse {
            created: true,
            canceled,
            cancel_reason: reason,
            ..self.response(client_id)
        }
    }
}

/// Whether etcd refuses the watch's range as empty: an explicit end (not
/// `"\0"`, which means every key from `key` on) at or before its start,
/// where an empty key starts at `"\0"`, as etcd reads it.
fn empty_range(create: &pb::WatchCreateRequest) -> bool {
    let start: &[u8] = if create.key.is_empty() {
        &[0]
    } else {
        &create.key
    };
    let end = create.range_end.as_slice();
    !end.is_empty() && end != [0] && start >= end
}

/// Splits events into responses of at most about `limit` encoded bytes, only
/// between revisions: a client sees a revision whole, in one response (etcd
/// splits one revision only when asked to fragment, which Agora does not),
/// and no response outgrows what clients accept by default.
fn batches(events: Vec<mvccpb::Event>, limit: usize) -> Vec<Vec<mvccpb::Event>> {
    let mut batches = Vec::new();
    let mut batch: Vec<mvccpb::Event> = Vec::new();
    let mut bytes = 0usize;
    let revision = |e: &mvccpb::Event| e.kv.as_ref().map_or(0, |kv| kv.mod_revision);
    for event in events {
        let size = event.encoded_len();
        let new_revision = batch
            .last()
            .is_some_and(|last| revision(last) != revision(&event));
        if new_revision && bytes.saturating_add(size) > limit {
            batches.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
        batch.push(event);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(revision: i64, value_bytes: usize) -> mvccpb::Event {
        mvccpb::Event {
            kv: Some(mvccpb::KeyValue {
                key: b"k".to_vec(),
                mod_revision: revision,
                value: vec![0; value_bytes],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn empty_ranges_are_etcds() {
        let range = |key: &[u8], range_end: &[u8]| pb::WatchCreateRequest {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
            ..Default::default()
        };
        assert!(empty_range(&range(b"b", b"a")));
        assert!(empty_range(&range(b"a", b"a")));
        assert!(!empty_range(&range(b"\0", b"\0\0")));
        assert!(!empty_range(&range(b"a", b"b")));
        assert!(!empty_range(&range(b"a", b"")), "one key");
        assert!(!empty_range(&range(b"z", b"\0")), "every key from z");
        assert!(
            !empty_range(&range(b"", b"a")),
            "an empty key starts at \\0"
        );
        assert!(!empty_range(&range(b"", b"\0")), "every key");
    }

    #[test]
    fn large_batches_split_only_between_revisions() {
        let events = vec![event(2, 600), event(2, 600), event(3, 600), event(4, 10)];
        let sizes: Vec<Vec<i64>> = batches(events, 1000)
            .iter()
            .map(|b| {
                b.iter()
                    .map(|e| e.kv.as_ref().unwrap().mod_revision)
                    .collect()
            })
            .collect();
        assert_eq!(sizes, vec![vec![2, 2], vec![3, 4]]);
    }
}
