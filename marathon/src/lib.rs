//! Agora's Marathon: long-running apps over a Marathon 1.x-compatible v2
//! REST API, as a framework on the scheduler SDK (issue 8). Decisions
//! (validation rules, placement, deployment plans) are taken by the pure
//! `agora-marathon-planner` crate; this crate owns the edges.
//!
//! # What exists now
//! - `api/json/`: Marathon v2 app definitions as serde types (camelCase,
//!   every field optional, unknown fields ignored like Marathon) and the
//!   ISO-8601 form of versions.
//! - `api/convert.rs`: [`api::convert::parse_app`] (request body → planner
//!   `App` with Marathon's defaults, or a 400/422 with every field error and
//!   its Marathon path); `api/convert/render.rs`: [`api::convert::app_to_json`]
//!   (GET bodies). The only place JSON meets planner types.
//! - `api/tests/`: table tests (`cases.rs`) and property tests (`props.rs`).
//! - `api/error.rs`: [`api::error::ApiError`] → Marathon's status codes and
//!   bodies (400, 404, 409 locked/exists, 422), as plain data.
//!
//! # What will come (see `../shared/reference/code-review.md` §4)
//! The HTTP server (axum handlers for `/v2/apps`, groups, deployments,
//! tasks, queue, info, leader, events), the event loop owning state, the
//! SDK framework and launch queue, the store on the coordination service
//! and leader election. None of it exists yet.
//!
//! API boundary: plain data types and free functions; no IO here yet.
#![forbid(unsafe_code)]

pub mod api;
pub mod election;
pub mod store;
