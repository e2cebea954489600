//! Tests of the JSON layer: `cases.rs` holds table tests with Marathon's
//! documented app definitions, every invalid field with its path and
//! malformed JSON; `props.rs` holds property tests (render→parse round
//! trips, no panic on any JSON or bytes).
mod cases;
mod props;
