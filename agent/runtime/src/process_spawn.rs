//! Building and starting the supervised process of a process-runtime task.
//!
//! Every task runs under a tiny `/bin/sh` supervisor (the *wrapper*) that is
//! the session and process-group leader. It waits on a pipe until the agent
//! has moved it into the task cgroup (so not even the first fork escapes the
//! limits), runs the task, and writes the task's exit code to
//! `<sandbox>/.agora_exit_status`. That file is how the exit code of a task
//! survives an agent restart: a recovered task is no longer our child, so
//! there is no `waitpid` to give it to us. The wrapper traps SIGTERM/INT/HUP
//! (as a no-op) so that a kill's SIGTERM reaches the task while the wrapper
//! lives on to record how the task ended; the trap is not inherited by the
//! task (handled signals are reset on exec, ignored ones would not be).
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use agora_model::CommandSpec;
use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;
use tracing::warn;

use crate::cgroups::TaskCgroup;
use crate::{ContainerHandle, RuntimeError, proc};

/// The supervisor script, run as `sh -c WRAPPER agora-wrapper <status file> <argv...>`.
pub(crate) const WRAPPER: &str = r#"trap : TERM INT HUP QUIT
read -r _go || exit 125
s="$1"; shift
"$@" </dev/null
c=$?
echo "$c" > "$s"
exit "$c""#;

/// Health-check commands run as `sh -c EXEC_GATE agora-exec <cmd>`: they too
/// wait to be put into the task's cgroup before running.
pub(crate) const EXEC_GATE: &str = r#"read -r _go || exit 125
exec /bin/sh -c "$1" </dev/null"#;

pub(crate) use crate::EXIT_STATUS_FILE;

/// PATH used when the agent's environment for the task has none (the one
/// Mesos uses for command tasks), so that bare program names still resolve.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The task's argv (what the wrapper runs).
pub(crate) fn task_argv(cmd: &CommandSpec) -> Result<Vec<String>, RuntimeError> {
    if cmd.value.trim().is_empty() {
        return Err(RuntimeError::InvalidSpec("command value is empty".into()));
    }
    if cmd.shell {
        return Ok(vec!["/bin/sh".into(), "-c".into(), cmd.value.clone()]);
    }
    let mut argv = vec![cmd.value.clone()];
    argv.extend(cmd.arguments.iter().cloned());
    Ok(argv)
}

/// Finds the program of a non-shell command the way `execvp` will, so a
/// missing executable is reported at launch instead of as exit code 127.
pub(crate) fn resolve_program(
    program: &str,
    sandbox: &Path,
    path_var: &str,
) -> Result<PathBuf, RuntimeError> {
    let is_exec = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let p = if Path::new(program).is_absolute() {
            PathBuf::from(program)
        } else {
            sandbox.join(program)
        };
        return if is_exec(&p) {
            Ok(p)
        } else {
            Err(RuntimeError::CommandNotFound(format!(
                "{program}: no such executable file"
            )))
        };
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| is_exec(p))
        .ok_or_else(|| {
            RuntimeError::CommandNotFound(format!("{program}: not found in PATH {path_var}"))
        })
}

/// A local user's uid and gid from `/etc/passwd` (name or numeric uid).
pub(crate) fn lookup_user(user: &str) -> Result<(u32, u32), RuntimeError> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| RuntimeError::io("read /etc/passwd", e))?;
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                *f.first()?,
                f.get(2)?.parse::<u32>().ok()?,
                f.get(3)?.parse::<u32>().ok()?,
            ))
        })
        .find(|(name, uid, _)| *name == user || uid.to_string() == user)
        .map(|(_, uid, gid)| (uid, gid))
        .ok_or_else(|| RuntimeError::InvalidSpec(format!("unknown user {user:?}")))
}

/// Opens (appending, creating) a sandbox log file for a child's stdio.
pub(crate) fn log_file(sandbox: &Path, name: &str) -> Result<std::fs::File, RuntimeError> {
    let path = sandbox.join(name);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| RuntimeError::io(format!("open {}", path.display()), e))
}

/// The wrapper command, ready to spawn: own session (setsid), cleared
/// environment, cwd = sandbox, stdin a pipe (the cgroup gate).
pub(crate) fn wrapper_command(
    container_id: &str,
    sandbox: &Path,
    argv: &[String],
    env: &BTreeMap<String, String>,
    user: Option<(u32, u32)>,
    stdout: std::fs::File,
    stderr: std::fs::File,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(WRAPPER)
        .arg(format!("agora-wrapper:{container_id}"))
        .arg(sandbox.join(EXIT_STATUS_FILE))
        .args(argv)
        .env_clear()
        .envs(env)
        .current_dir(sandbox)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(false);
    if !env.contains_key("PATH") {
        cmd.env("PATH", DEFAULT_PATH);
    }
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    new_session(&mut cmd);
    cmd
}

/// Makes the child a session (and process group) leader, so the task is
/// detached from the agent's terminal/session and one `killpg` reaches it.
#[allow(unsafe_code)]
fn new_session(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // setsid(2), which is async-signal-safe; it allocates nothing and touches
    // no locks or shared state of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
}

/// Runs `sh -c cmd` in the task's context for a COMMAND health check: its
/// cgroup, sandbox (cwd) and the given environment, in a process group of
/// its own so that a timeout kills the whole check. Returns the exit code
/// (128 + N for death by signal N).
pub(crate) async fn exec_in_task(
    handle: &ContainerHandle,
    cg: Option<&TaskCgroup>,
    cmd: &str,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<i32, RuntimeError> {
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(EXEC_GATE)
        .arg("agora-exec")
        .arg(cmd)
        .env_clear()
        .envs(env)
        .current_dir(&handle.sandbox)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if !env.contains_key("PATH") {
        command.env("PATH", DEFAULT_PATH);
    }
    let mut child = command
        .spawn()
        .map_err(|e| RuntimeError::Launch(format!("spawn health check: {e}")))?;
    let pid = child.id().unwrap_or(0);
    if let Some(cg) = cg.filter(|c| c.exists())
        && let Err(e) = cg.add_pid(pid)
    {
        // The check still tells whether the task works; it just is not
        // accounted to the task.
        warn!(container_id = %handle.container_id, error = %e, "health check runs outside the task cgroup");
    }
    if let Some(mut gate) = child.stdin.take() {
        gate.write_all(b"go\n")
            .await
            .map_err(|e| RuntimeError::io("open exec gate", e))?;
    }
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))),
        Ok(Err(e)) => Err(RuntimeError::io("wait for health check", e)),
        Err(_) => {
            let _ = proc::signal_group(pid, Signal::SIGKILL);
            let _ = child.wait().await;
            Err(RuntimeError::Timeout(timeout, format!("command {cmd:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_for_shell_and_plain_commands() {
        assert_eq!(
            task_argv(&CommandSpec::shell("echo hi")).unwrap(),
            ["/bin/sh", "-c", "echo hi"]
        );
        let plain = CommandSpec {
            value: "sleep".into(),
            arguments: vec!["1".into()],
            ..Default::default()
        };
        assert_eq!(task_argv(&plain).unwrap(), ["sleep", "1"]);
        assert!(task_argv(&CommandSpec::shell(" ")).is_err());
    }

    #[test]
    fn resolves_programs_like_execvp() {
        let dir = tempfile::tempdir().unwrap();
        assert!(resolve_program("sh", dir.path(), DEFAULT_PATH).is_ok());
        assert!(resolve_program("/bin/sh", dir.path(), "").is_ok());
        let err = resolve_program("no-such-program-agora", dir.path(), DEFAULT_PATH).unwrap_err();
        assert!(matches!(err, RuntimeError::CommandNotFound(_)), "{err}");
        assert!(resolve_program("./missing", dir.path(), DEFAULT_PATH).is_err());
    }

    #[test]
    fn looks_up_root() {
        assert_eq!(lookup_user("root").unwrap(), (0, 0));
        assert_eq!(lookup_user("0").unwrap(), (0, 0));
        assert!(lookup_user("no-such-user-agora").is_err());
    }
}
