//! Turning raw exit information into an [`ExitStatus`] with a message a
//! human can act on.
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use nix::sys::signal::Signal;

use crate::{ExitStatus, STDERR_FILE};

/// Exit code of `sh` (and Docker) when the command does not exist.
pub(crate) const EXIT_COMMAND_NOT_FOUND: i32 = 127;
/// Exit code of `sh` when the command exists but cannot be executed.
pub(crate) const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Shells and Docker report death by signal N as exit code 128 + N.
const SIGNAL_EXIT_BASE: i32 = 128;
/// Highest real-time signal number on Linux; codes above 128 + this are
/// ordinary exit codes.
const MAX_SIGNAL: i32 = 64;
/// How much of the end of stderr we read for the message: enough for a
/// last line, small enough to never matter for a huge log.
const STDERR_TAIL_BYTES: u64 = 4096;
/// Longest stderr excerpt put into a message (status updates are small).
const STDERR_LINE_MAX: usize = 300;

/// Infers the signal from a `128 + N` exit code.
pub(crate) fn signal_from_code(code: i32) -> Option<i32> {
    (code > SIGNAL_EXIT_BASE && code <= SIGNAL_EXIT_BASE + MAX_SIGNAL)
        .then_some(code - SIGNAL_EXIT_BASE)
}

/// A signal's name for messages, e.g. `SIGKILL`.
pub(crate) fn signal_name(sig: i32) -> String {
    Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// Builds an [`ExitStatus`] from what is known. `code` follows the shell
/// convention (signals as 128 + N); `signal` is set when known directly.
pub(crate) fn describe(
    code: Option<i32>,
    signal: Option<i32>,
    oom_killed: bool,
    stderr_tail: Option<String>,
) -> ExitStatus {
    let signal = signal.or_else(|| code.and_then(signal_from_code));
    let code = code.or_else(|| signal.map(|s| SIGNAL_EXIT_BASE + s));
    let command_not_found = code == Some(EXIT_COMMAND_NOT_FOUND);
    let mut message = if oom_killed {
        "Memory limit exceeded: the task was killed by the OOM killer".to_string()
    } else if command_not_found {
        "Command not found (exit code 127)".to_string()
    } else if code == Some(EXIT_NOT_EXECUTABLE) {
        "Command is not executable (exit code 126)".to_string()
    } else if let Some(s) = signal {
        format!("Command terminated by signal {}", signal_name(s))
    } else if let Some(c) = code {
        format!("Command exited with status {c}")
    } else {
        "Command exited; its exit status is unknown".to_string()
    };
    let failed = code != Some(0) || oom_killed;
    if let (true, Some(line)) = (failed, stderr_tail) {
        message.push_str(": ");
        message.push_str(&line);
    }
    ExitStatus {
        code,
        signal,
        oom_killed,
        command_not_found,
        message,
    }
}

/// The last non-empty line of `<sandbox>/stderr`, shortened, if any.
pub(crate) fn stderr_tail(sandbox: &Path) -> Option<String> {
    let mut f = std::fs::File::open(sandbox.join(STDERR_FILE)).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(STDERR_TAIL_BYTES)))
        .ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    let mut line = line.to_string();
    if line.len() > STDERR_LINE_MAX {
        let mut cut = STDERR_LINE_MAX;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_codes_are_decoded() {
        let s = describe(Some(137), None, false, None);
        assert_eq!((s.code, s.signal), (Some(137), Some(9)));
        assert!(s.message.contains("SIGKILL"), "{}", s.message);
        let s = describe(None, Some(15), false, None);
        assert_eq!((s.code, s.signal), (Some(143), Some(15)));
        let s = describe(Some(255), None, false, None);
        assert_eq!(s.signal, None);
    }

    #[test]
    fn command_not_found_and_stderr_are_reported() {
        let s = describe(
            Some(127),
            None,
            false,
            Some("sh: 1: nope: not found".into()),
        );
        assert!(s.command_not_found);
        assert!(s.message.contains("nope: not found"), "{}", s.message);
        assert!(describe(Some(0), None, false, Some("noise".into())).success());
        assert!(
            !describe(Some(0), None, false, Some("noise".into()))
                .message
                .contains("noise")
        );
        assert!(describe(Some(137), None, true, None).oom_killed);
    }

    #[test]
    fn stderr_tail_takes_last_non_empty_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STDERR_FILE), "first\nlast one\n\n").unwrap();
        assert_eq!(stderr_tail(dir.path()).as_deref(), Some("last one"));
        assert_eq!(stderr_tail(&dir.path().join("missing")), None);
    }
}
