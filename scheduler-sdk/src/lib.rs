//! Write Agora frameworks in Rust: implement the async [`Scheduler`] trait,
//! hand it to a [`SchedulerDriver`], and make calls through the [`Driver`]
//! handle every callback receives.
//!
//! The driver subscribes to a master (gRPC `Scheduler.Subscribe`), keeps the
//! subscription alive (re-subscribing with the same framework id, with
//! capped jittered backoff, when the stream breaks or heartbeats stop),
//! acknowledges status updates for you, and turns the wire protocol into
//! `agora-model` types. With a replicated group of masters it subscribes
//! at the leader: a standby refuses every call with `UNAVAILABLE` "not the
//! leading master" and the leader's `host:port` in the `agora-leader`
//! metadata, and the driver follows that hint at once (see
//! [`SchedulerDriver`] for the details and the bounds). [`OfferResources`] carves several tasks out of one
//! offer and [`TaskBuilder`] makes a validated task in a few calls.
//!
//! A complete framework that runs one command and exits (also
//! `examples/hello.rs`):
//!
//! ```no_run
//! use agora_scheduler_sdk::model::{FrameworkInfo, Offer, ResourceRequest, TaskStatus};
//! use agora_scheduler_sdk::{Driver, OfferResources, Scheduler, SchedulerDriver, TaskBuilder};
//!
//! struct Hello {
//!     launched: bool,
//! }
//!
//! impl Scheduler for Hello {
//!     async fn offers(&mut self, driver: &Driver, offers: Vec<Offer>) {
//!         for offer in offers {
//!             let carved = OfferResources::new(&offer).take(&ResourceRequest::new(0.1, 32.0));
//!             if let (false, Some(res)) = (self.launched, carved) {
//!                 let task = TaskBuilder::new("hello-1")
//!                     .shell("echo hello")
//!                     .resources(res)
//!                     .build(&offer.agent_id);
//!                 if let Ok(task) = task {
//!                     self.launched = driver.launch(&offer, vec![task]).await.is_ok();
//!                     continue;
//!                 }
//!             }
//!             let _ = driver.decline(vec![offer.id], None).await;
//!         }
//!     }
//!
//!     async fn update(&mut self, driver: &Driver, status: &TaskStatus) {
//!         println!("{} is {}", status.task_id, status.state);
//!         if status.state.is_terminal() {
//!             driver.stop();
//!         }
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), agora_scheduler_sdk::SdkError> {
//!     let framework = FrameworkInfo::named("hello");
//!     SchedulerDriver::builder(["127.0.0.1:5050"], framework)
//!         .run(Hello { launched: false })
//!         .await
//! }
//! ```
//!
//! # Layout
//! - `scheduler.rs`: the [`Scheduler`] trait.
//! - `driver.rs`: [`SchedulerDriver`] and its builder: subscribe, reconnect,
//!   the event loop.
//! - `calls.rs`: the [`Driver`] handle, one method per scheduler call.
//! - `events.rs`: wire events → model events, and dispatch to callbacks (no IO).
//! - `carve.rs`, `task.rs`: [`OfferResources`], [`TaskBuilder`].
//! - `backoff.rs`: [`Backoff`]. `error.rs`: [`SdkError`].
//! - `batch.rs`: [`BatchLauncher`]/[`run_batch`], a ready-made "run N tasks"
//!   framework (the `launch_n` example).
//!
//! **API Boundary:** frameworks see only `agora-model` types (re-exported as
//! [`model`]); the wire types stay inside the SDK.
//!
//! **Delivery semantics (Mesos):** status updates are at-least-once, so
//! `update` must tolerate duplicates; offers and master-generated updates
//! can be lost when the connection breaks, so reconcile in `subscribed`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
mod batch;
mod calls;
mod carve;
mod driver;
mod error;
mod events;
mod scheduler;
mod task;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use agora_model as model;
pub use backoff::{Backoff, DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN};
pub use batch::{BatchJob, BatchLauncher, BatchReport, run_batch};
pub use calls::Driver;
pub use carve::OfferResources;
pub use driver::{
    CONNECT_TIMEOUT, DEFAULT_CALL_TIMEOUT, MAX_UNACKED, SUBSCRIBE_TIMEOUT, SchedulerDriver,
    SchedulerDriverBuilder,
};
pub use error::SdkError;
pub use events::MISSED_HEARTBEATS;
pub use scheduler::Scheduler;
pub use task::TaskBuilder;

#[cfg(test)]
mod tests {
    /// The crate docs' example cannot be a doctest (doctests are off
    /// workspace-wide), so it is kept identical to `examples/hello.rs`,
    /// which `cargo check --all-targets` compiles.
    #[test]
    fn crate_doc_example_is_examples_hello() {
        let lib = include_str!("lib.rs");
        let start = lib
            .find("//! ```no_run\n")
            .map(|i| i + "//! ```no_run\n".len());
        let doc: String = lib[start.unwrap_or(0)..]
            .lines()
            .take_while(|l| *l != "//! ```")
            .map(|l| {
                l.strip_prefix("//! ")
                    .or_else(|| l.strip_prefix("//!"))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let hello = include_str!("../examples/hello.rs");
        let code = &hello[hello.find("use ").unwrap_or(0)..];
        assert_eq!(
            doc.trim(),
            code.trim(),
            "src/lib.rs example and examples/hello.rs differ"
        );
    }
}
