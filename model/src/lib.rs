//! Agora's domain types, shared by every crate: id newtypes, the resource
//! algebra (fixed-point scalars, port ranges, sets, roles and static
//! reservations) with its Mesos text and JSON forms, agent attributes, task
//! states and reasons, and the validated framework and task descriptions.
//!
//! Architecture invariant: this crate does no IO and knows nothing of tokio,
//! tonic or the wire format. Wire types are converted into these types once,
//! in `agora-proto`.
#![forbid(unsafe_code)]

pub mod attributes;
pub mod error;
pub mod framework;
pub mod ids;
pub mod maintenance;
pub mod ranges;
pub mod resources;
pub mod scalar;
pub mod status;
pub mod task;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
pub mod utc;

mod parse;

pub use attributes::{Attribute, AttributeValue, Attributes};
pub use error::{ModelError, ParseError};
pub use framework::{Capability, FrameworkInfo};
pub use ids::{AgentId, FrameworkId, OfferId, Role, SessionId, StreamId, TaskId};
pub use maintenance::Drain;
pub use ranges::Ranges;
pub use resources::{ResourceRequest, Resources, Value};
pub use scalar::Scalar;
pub use status::{Offer, StatusSource, TaskStatus};
pub use task::{
    CommandSpec, DockerNetwork, DockerSpec, HealthCheck, HealthCheckKind, PortMapping, TaskSpec,
    TaskState, TaskStatusReason, TaskTemplate,
};
pub use time::MonoTime;
