//! Integration tests of both runtimes against the real Docker daemon and
//! real cgroups (root). With `CI=true` an unreachable daemon or unusable
//! cgroups fail the tests; elsewhere they are skipped with a note.
#![allow(clippy::unwrap_used)]

mod common;
mod docker;
mod process;
