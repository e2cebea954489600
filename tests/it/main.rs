//! integration tests
mod master_smoke;
