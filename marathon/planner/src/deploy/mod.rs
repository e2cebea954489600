//! Deployments: [`plan`] turns (current, target) apps into ordered steps;
//! [`step`] decides, from the instances observed now, what one action of a
//! step needs next (launches and kills), and when it is done.
mod plan;
mod step;

pub use plan::{Apps, DeploymentAction, DeploymentPlan, Step, plan, plan_with_kills};
pub use step::{Action, StepInput, StepOutcome, StepStatus, capacity, step};
