//! Docker operations that need no runtime state: pulling images and running
//! health-check commands with `docker exec`.
use std::collections::BTreeMap;
use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use tracing::{info, warn};

use crate::docker_create::split_image;
use crate::{RuntimeError, proc};

/// Is this the daemon's "no such container/image" answer?
pub(crate) fn is_not_found(e: &DockerError) -> bool {
    status_code(e) == Some(404)
}

/// The HTTP status of a daemon error response.
pub(crate) fn status_code(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Makes sure `image` is present, pulling it when missing or forced.
pub(crate) async fn ensure_image(
    docker: &bollard::Docker,
    image: &str,
    force_pull: bool,
    pull_timeout: Duration,
) -> Result<(), RuntimeError> {
    let present = match docker.inspect_image(image).await {
        Ok(_) => true,
        Err(e) if is_not_found(&e) => false,
        Err(e) => return Err(e.into()),
    };
    if present && !force_pull {
        return Ok(());
    }
    let (from_image, tag) = split_image(image);
    let options = CreateImageOptionsBuilder::new()
        .from_image(&from_image)
        .tag(&tag)
        .build();
    let pull = async {
        let mut progress = docker.create_image(Some(options), None, None);
        while let Some(item) = progress.next().await {
            item?;
        }
        Ok::<(), DockerError>(())
    };
    let reason = match tokio::time::timeout(pull_timeout, pull).await {
        Ok(Ok(())) => {
            info!(image, "pulled image");
            return Ok(());
        }
        Ok(Err(e)) => format!("pull failed: {e}"),
        Err(_) => format!("pull did not finish within {:?}", pull_timeout),
    };
    if present {
        warn!(image, %reason, "force_pull failed; using the local image");
        return Ok(());
    }
    Err(RuntimeError::ImageNotFound {
        image: image.to_string(),
        reason,
    })
}

/// Runs `/bin/sh -c cmd` inside container `target` and returns its exit code.
pub(crate) async fn exec(
    docker: &bollard::Docker,
    target: &str,
    container_id: &str,
    cmd: &str,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<i32, RuntimeError> {
    let config = ExecConfig {
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), cmd.to_string()]),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = docker.create_exec(target, config).await.map_err(|e| {
        if is_not_found(&e) {
            RuntimeError::NotFound(container_id.to_string())
        } else {
            e.into()
        }
    })?;
    let run = async {
        let options = StartExecOptions {
            detach: false,
            tty: false,
            output_capacity: None,
        };
        if let StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&exec.id, Some(options)).await?
        {
            // Drain the output: the stream ends when the command exits.
            while let Some(item) = output.next().await {
                item?;
            }
        }
        Ok::<(), DockerError>(())
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r?,
        Err(_) => {
            // The Engine API cannot kill an exec; its pid is a host pid.
            if let Ok(info) = docker.inspect_exec(&exec.id).await
                && let Some(pid) = info
                    .pid
                    .and_then(|p| u32::try_from(p).ok())
                    .filter(|p| *p > 0)
            {
                let _ = proc::signal_pid(pid, Signal::SIGKILL);
            }
            return Err(RuntimeError::Timeout(timeout, format!("command {cmd:?}")));
        }
    }
    let info = docker.inspect_exec(&exec.id).await?;
    info.exit_code
        .and_then(|c| i32::try_from(c).ok())
        .ok_or_else(|| RuntimeError::Launch(format!("exec {cmd:?} has no exit code")))
}
