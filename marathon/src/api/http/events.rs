//! `/v2/events`: Server-Sent Events with Marathon's event types, filtered
//! by `event_type=` (repeatable). Each subscriber reads a bounded broadcast
//! buffer; a subscriber that falls behind by more than it holds is dropped
//! (its stream ends) rather than slowing the leader, and reconnects.
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::json;
use tokio::sync::broadcast;

use super::Query;
use crate::leader::Shared;
use crate::state::Event;

/// Events buffered per subscriber before it is dropped.
pub(crate) const EVENT_BUFFER: usize = 4096;

pub(crate) async fn stream(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let wanted: Vec<String> = q.all("event_type").map(str::to_string).collect();
    let rx = shared.events.subscribe();
    let attached = json!({
        "remoteAddress": "",
        "eventType": "event_stream_attached",
        "timestamp": crate::event_loop::Clock::new().now().stamp(),
    });
    let first = (wanted.is_empty() || wanted.iter().any(|w| w == "event_stream_attached"))
        .then(|| sse("event_stream_attached", &attached));
    let events = follow(rx, wanted);
    let body = stream::iter(first.into_iter().map(Ok::<_, Infallible>)).chain(events);
    Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn sse(kind: &str, body: &serde_json::Value) -> SseEvent {
    SseEvent::default().event(kind).data(body.to_string())
}

fn follow(
    rx: broadcast::Receiver<Event>,
    wanted: Vec<String>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold((rx, wanted), |(mut rx, wanted)| async move {
        loop {
            match rx.recv().await {
                Ok(e) if wanted.is_empty() || wanted.iter().any(|w| w == e.kind) => {
                    return Some((Ok(sse(e.kind, &e.body)), (rx, wanted)));
                }
                Ok(_) => continue,
                // Fell behind or the leader went away: end the stream.
                Err(_) => return None,
            }
        }
    })
}
