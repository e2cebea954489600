//! Marathon's v2 REST API: wire types ([`json`]), their conversion to and
//! from the planner's `App` ([`convert`]), Marathon's error bodies
//! ([`error`]), response bodies from the state (`render`) and the axum
//! server (`http`).
pub mod convert;
pub mod error;
pub(crate) mod http;
pub mod json;
pub(crate) mod render;

#[cfg(test)]
mod tests;

/// The per-subscriber event buffer of `/v2/events`.
pub(crate) fn http_event_buffer() -> usize {
    http::events_buffer()
}
