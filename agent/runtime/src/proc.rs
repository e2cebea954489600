//! `/proc` and signal helpers for processes that may not be our children
//! (after an agent restart), guarded against pid reuse by start time.
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// The fields of `/proc/<pid>/stat` we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Process state letter (`R`, `S`, `Z`, `X`, ...).
    pub(crate) state: char,
    /// Start time in clock ticks since boot (field 22).
    pub(crate) start_time: u64,
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields are
/// counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// Reads `/proc/<pid>/stat`; `None` if the process does not exist.
pub(crate) fn stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// The start time of `pid`, for [`crate::ContainerHandle::pid_start_time`].
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.start_time)
}

/// Is `pid` a live process (not a zombie) with the expected start time?
/// A zombie has exited: only its parent's wait is missing, which for a
/// recovered task is not ours to do.
pub(crate) fn is_alive(pid: u32, expected_start: Option<u64>) -> bool {
    match stat(pid) {
        None => false,
        Some(s) if s.state == 'Z' || s.state == 'X' => false,
        Some(s) => expected_start.is_none_or(|t| t == s.start_time),
    }
}

/// Sends `sig` to one process; a process that is already gone is not an error.
pub(crate) fn signal_pid(pid: u32, sig: Signal) -> Result<(), nix::Error> {
    let Ok(raw) = i32::try_from(pid) else {
        return Ok(());
    };
    match signal::kill(Pid::from_raw(raw), sig) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sends `sig` to a process group; an empty group is not an error.
pub(crate) fn signal_group(pgid: u32, sig: Signal) -> Result<(), nix::Error> {
    let Ok(raw) = i32::try_from(pgid) else {
        return Ok(());
    };
    match signal::killpg(Pid::from_raw(raw), sig) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (we ird) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_time, 987654);
    }

    #[test]
    fn own_process_is_alive_and_start_time_guards_reuse() {
        let me = std::process::id();
        let t = start_time(me).unwrap();
        assert!(is_alive(me, Some(t)));
        assert!(!is_alive(me, Some(t + 1)));
        assert!(!is_alive(u32::MAX - 1, None));
    }
}
