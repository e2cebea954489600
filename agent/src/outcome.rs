//! What a container's end (or a launch failure) means for the task: pure
//! mapping from runtime facts to a status update's state and reason.
use agora_model::{StatusSource, TaskState, TaskStatusReason};
use agora_runtime::{ExitStatus, RuntimeError};

use crate::checkpoint::KillCause;

/// A status update to report, before it gets its uuid and timestamp.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) state: TaskState,
    pub(crate) reason: TaskStatusReason,
    pub(crate) message: String,
    pub(crate) exit_code: Option<i32>,
    pub(crate) healthy: Option<bool>,
    pub(crate) source: StatusSource,
}

impl Outcome {
    pub(crate) fn new(
        state: TaskState,
        reason: TaskStatusReason,
        message: impl Into<String>,
    ) -> Outcome {
        Outcome {
            state,
            reason,
            message: message.into(),
            exit_code: None,
            healthy: None,
            source: StatusSource::Agent,
        }
    }
}

/// The status reason for a launch failure.
pub(crate) fn launch_failure_reason(e: &RuntimeError) -> TaskStatusReason {
    match e {
        RuntimeError::ImageNotFound { .. } => TaskStatusReason::ContainerImageNotFound,
        RuntimeError::CommandNotFound(_) => TaskStatusReason::CommandNotFound,
        _ => TaskStatusReason::ContainerLaunchFailed,
    }
}

/// The terminal update for a container that ended: killed on request (with
/// the kill's cause), finished, failed (OOM, command not found, non-zero
/// exit) or lost track of (`Err`).
pub(crate) fn exit_outcome(
    kill: Option<KillCause>,
    was_running: bool,
    result: &Result<ExitStatus, RuntimeError>,
) -> Outcome {
    let mut o = match (kill, result) {
        (Some(cause), r) => {
            let reason = if cause == KillCause::Requested && !was_running {
                TaskStatusReason::TaskKilledDuringLaunch
            } else {
                cause.reason()
            };
            let detail = r.as_ref().map(|s| s.message.clone()).unwrap_or_default();
            let message = match cause {
                KillCause::Requested => "killed on request",
                KillCause::Unhealthy => "killed after failing health checks",
                KillCause::AgentShutdown => "killed because the agent was shut down",
            };
            let message = if detail.is_empty() {
                message.to_string()
            } else {
                format!("{message}: {detail}")
            };
            Outcome::new(TaskState::Killed, reason, message)
        }
        (None, Ok(s)) if s.success() => Outcome::new(
            TaskState::Finished,
            TaskStatusReason::Unspecified,
            s.message.clone(),
        ),
        (None, Ok(s)) if s.oom_killed => Outcome::new(
            TaskState::Failed,
            TaskStatusReason::ContainerLimitationMemory,
            format!("memory limit exceeded: {}", s.message),
        ),
        (None, Ok(s)) if s.command_not_found => Outcome::new(
            TaskState::Failed,
            TaskStatusReason::CommandNotFound,
            s.message.clone(),
        ),
        (None, Ok(s)) => Outcome::new(
            TaskState::Failed,
            TaskStatusReason::Unspecified,
            s.message.clone(),
        ),
        (None, Err(e)) => Outcome::new(
            TaskState::Failed,
            TaskStatusReason::ExecutorTerminated,
            format!("lost track of the container: {e}"),
        ),
    };
    o.exit_code = result.as_ref().ok().and_then(|s| s.code);
    o.source = StatusSource::Executor;
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32) -> ExitStatus {
        ExitStatus {
            code: Some(code),
            message: format!("exit {code}"),
            ..Default::default()
        }
    }

    #[test]
    fn exits_map_to_states_and_reasons() {
        let o = exit_outcome(None, true, &Ok(exit(0)));
        assert_eq!((o.state, o.exit_code), (TaskState::Finished, Some(0)));
        let o = exit_outcome(None, true, &Ok(exit(3)));
        assert_eq!(
            (o.state, o.reason, o.exit_code),
            (TaskState::Failed, TaskStatusReason::Unspecified, Some(3))
        );
        let oom = ExitStatus {
            code: Some(137),
            signal: Some(9),
            oom_killed: true,
            ..Default::default()
        };
        assert_eq!(
            exit_outcome(None, true, &Ok(oom)).reason,
            TaskStatusReason::ContainerLimitationMemory
        );
        let cnf = ExitStatus {
            code: Some(127),
            command_not_found: true,
            ..Default::default()
        };
        assert_eq!(
            exit_outcome(None, true, &Ok(cnf)).reason,
            TaskStatusReason::CommandNotFound
        );
        let lost = exit_outcome(None, true, &Err(RuntimeError::NotFound("x".into())));
        assert_eq!(
            (lost.state, lost.reason),
            (TaskState::Failed, TaskStatusReason::ExecutorTerminated)
        );
    }

    #[test]
    fn kills_map_to_killed_with_the_cause() {
        let sig = Ok(ExitStatus {
            code: Some(143),
            signal: Some(15),
            ..Default::default()
        });
        let o = exit_outcome(Some(KillCause::Requested), true, &sig);
        assert_eq!(
            (o.state, o.reason, o.exit_code),
            (TaskState::Killed, TaskStatusReason::Unspecified, Some(143))
        );
        let o = exit_outcome(Some(KillCause::Unhealthy), true, &sig);
        assert_eq!(o.reason, TaskStatusReason::TaskUnhealthy);
        let o = exit_outcome(Some(KillCause::Requested), false, &sig);
        assert_eq!(o.reason, TaskStatusReason::TaskKilledDuringLaunch);
        // Even a clean exit after a kill request is reported as killed.
        assert_eq!(
            exit_outcome(Some(KillCause::Requested), true, &Ok(exit(0))).state,
            TaskState::Killed
        );
    }

    #[test]
    fn launch_errors_map_to_reasons() {
        let e = RuntimeError::ImageNotFound {
            image: "x".into(),
            reason: "no".into(),
        };
        assert_eq!(
            launch_failure_reason(&e),
            TaskStatusReason::ContainerImageNotFound
        );
        assert_eq!(
            launch_failure_reason(&RuntimeError::CommandNotFound("x".into())),
            TaskStatusReason::CommandNotFound
        );
        assert_eq!(
            launch_failure_reason(&RuntimeError::Launch("x".into())),
            TaskStatusReason::ContainerLaunchFailed
        );
    }
}
