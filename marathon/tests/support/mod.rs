//! Harnesses shared by this crate's integration tests (each test binary
//! declares `mod support;` and uses part of it).
#![allow(dead_code)] // Each test binary uses a different part.

pub(crate) mod etcd;
pub(crate) mod http;
pub(crate) mod marathon;
