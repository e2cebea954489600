//! Integration tests against real servers. One test binary (one link).
// Test code: a panic is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod etcd_cluster;
mod recorder;
