//! Task cgroups for the process runtime, on cgroup v1 (one directory per
//! controller) and v2 (one unified directory). cgroups-rs finds the
//! hierarchy, creates the groups and writes the limits; membership, OOM
//! counters and removal are plain file operations on the directories, which
//! keeps [`TaskCgroup`] a `Send` bag of paths.
use std::path::PathBuf;

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::hierarchies;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Cgroup, Controller, MaxValue};
use nix::sys::signal::Signal;
use tracing::{debug, warn};

use crate::{Limits, RuntimeError};

/// Controllers we use on v1. cpuacct only for accounting (usage figures).
const V1_CONTROLLERS: [&str; 4] = ["cpu", "cpuacct", "memory", "pids"];
/// Controllers we use on v2 (cpuacct does not exist there).
const V2_CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];
/// CFS period: the kernel default, 100 ms, as Docker and Mesos use.
pub(crate) const CFS_PERIOD_US: u64 = 100_000;
/// Smallest CFS quota the kernel accepts (1 ms).
const CFS_QUOTA_MIN_US: i64 = 1_000;
/// v1 cpu.shares per whole cpu (Docker and Mesos convention).
pub(crate) const CPU_SHARES_PER_CPU: u64 = 1024;
/// Smallest cpu.shares the kernel accepts.
const CPU_SHARES_MIN: u64 = 2;
/// Largest cpu.shares the kernel accepts.
const CPU_SHARES_MAX: u64 = 262_144;
/// Bytes per MB of `mem` (Mesos' MB are MiB).
pub(crate) const BYTES_PER_MB: i64 = 1024 * 1024;
/// Upper bound on SIGKILLing a cgroup empty: a fork bomb can refill it for a
/// while (pids.max bounds that), and this bounds us.
const KILL_ALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Pause between SIGKILL rounds, letting the killed processes exit.
const KILL_ALL_POLL: std::time::Duration = std::time::Duration::from_millis(20);
/// Attempts to remove a cgroup whose last processes are still exiting
/// (rmdir returns EBUSY until they are gone).
const REMOVE_ATTEMPTS: u32 = 20;
/// Pause between removal attempts.
const REMOVE_RETRY: std::time::Duration = std::time::Duration::from_millis(25);

/// Is this host cgroup v2-only (unified)?
pub(crate) fn is_v2() -> bool {
    hierarchies::is_cgroup2_unified_mode()
}

fn controllers() -> Vec<String> {
    let list: &[&str] = if is_v2() {
        &V2_CONTROLLERS
    } else {
        &V1_CONTROLLERS
    };
    list.iter().map(|s| s.to_string()).collect()
}

fn load(rel: &str) -> Cgroup {
    Cgroup::load_with_specified_controllers(hierarchies::auto(), rel, controllers())
}

/// v1 cpu.shares for `cpus` (in thousandths). Saturates: shares are
/// clamped to the kernel's range anyway.
pub(crate) fn cpu_shares(cpus_milli: i64) -> u64 {
    let shares = u64::try_from(cpus_milli)
        .unwrap_or(0)
        .saturating_mul(CPU_SHARES_PER_CPU)
        / 1000;
    shares.clamp(CPU_SHARES_MIN, CPU_SHARES_MAX)
}

/// A memory limit in bytes for `mem_mb`, or why there is none: a negative
/// amount, or one whose bytes do not fit the i64 the kernel and Docker
/// take (about 8.8e12 MB, above the model's largest scalar, so only a spec
/// built around the model's checks gets here).
pub(crate) fn mem_limit_bytes(mem_mb: agora_model::Scalar) -> Result<i64, RuntimeError> {
    let milli = mem_mb.milli();
    // milli × 2^20 fits i128 for every i64 milli.
    let bytes = i128::from(milli) * i128::from(BYTES_PER_MB) / 1000;
    match i64::try_from(bytes) {
        Ok(b) if b >= 0 => Ok(b),
        _ => Err(RuntimeError::InvalidSpec(format!(
            "memory limit of {} MB is not a byte count (0..={} bytes)",
            mem_mb.as_f64(),
            i64::MAX
        ))),
    }
}

/// v2 cpu.weight from v1 shares: the same linear map runc and systemd use
/// ([2, 262144] -> [1, 10000]).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// CFS quota (µs per [`CFS_PERIOD_US`]) for `cpus` (in thousandths).
/// Saturates for absurd cpus: the kernel then refuses the quota, naming it.
pub(crate) fn cfs_quota_us(cpus_milli: i64) -> i64 {
    (cpus_milli.saturating_mul(CFS_PERIOD_US as i64) / 1000).max(CFS_QUOTA_MIN_US)
}

/// One task's cgroup: its directory in every hierarchy we use.
#[derive(Debug, Clone)]
pub(crate) struct TaskCgroup {
    /// Path relative to each hierarchy root.
    rel: String,
    /// Absolute directories (one on v2, one per controller on v1).
    dirs: Vec<PathBuf>,
    /// The directory holding the memory controller's files.
    memory_dir: Option<PathBuf>,
    v2: bool,
}

impl TaskCgroup {
    /// Paths of the cgroup `rel`, which may or may not exist.
    pub(crate) fn open(rel: &str) -> TaskCgroup {
        let cg = load(rel);
        let v2 = cg.v2();
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut memory_dir = None;
        for sub in cg.subsystems() {
            let dir = sub.to_controller().path().to_path_buf();
            if sub.controller_name() == "memory" {
                memory_dir = Some(dir.clone());
            }
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        TaskCgroup {
            rel: rel.to_string(),
            dirs,
            memory_dir,
            v2,
        }
    }

    /// Creates the cgroup `rel` and applies `limits`.
    pub(crate) fn create(rel: &str, limits: &Limits) -> Result<TaskCgroup, RuntimeError> {
        let cg = load(rel);
        cg.create()
            .map_err(|e| RuntimeError::cgroup(rel, format!("create: {e}")))?;
        let this = TaskCgroup::open(rel);
        if let Err(e) = apply_limits(&cg, limits) {
            this.remove_empty();
            return Err(RuntimeError::cgroup(rel, e));
        }
        debug!(cgroup = rel, v2 = this.v2, ?limits, "created task cgroup");
        Ok(this)
    }

    /// Path relative to the hierarchy roots.
    pub(crate) fn rel(&self) -> &str {
        &self.rel
    }

    /// Does the cgroup (still) exist?
    pub(crate) fn exists(&self) -> bool {
        self.dirs.iter().any(|d| d.is_dir())
    }

    /// Moves process `pid` (with all its threads) into the cgroup.
    pub(crate) fn add_pid(&self, pid: u32) -> Result<(), RuntimeError> {
        for dir in &self.dirs {
            std::fs::write(dir.join("cgroup.procs"), pid.to_string()).map_err(|e| {
                RuntimeError::cgroup(
                    &self.rel,
                    format!("add pid {pid} to {}: {e}", dir.display()),
                )
            })?;
        }
        Ok(())
    }

    /// Every process in the cgroup (union over the hierarchies).
    pub(crate) fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .dirs
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// How many times the OOM killer fired in this cgroup: `oom_kill` in
    /// `memory.oom_control` (v1) or `memory.events` (v2).
    pub(crate) fn oom_kills(&self) -> u64 {
        let Some(dir) = &self.memory_dir else {
            return 0;
        };
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        std::fs::read_to_string(dir.join(file))
            .map(|t| parse_oom_kill(&t))
            .unwrap_or(0)
    }

    /// Removes the cgroup directories (must be empty of processes; retries
    /// briefly while the last ones finish exiting). Missing is fine.
    pub(crate) async fn remove(&self) -> Result<(), RuntimeError> {
        for dir in &self.dirs {
            let mut attempt = 0;
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e)
                        if attempt + 1 < REMOVE_ATTEMPTS
                            && e.raw_os_error() == Some(libc::EBUSY) =>
                    {
                        attempt += 1;
                        tokio::time::sleep(REMOVE_RETRY).await;
                    }
                    Err(e) => {
                        return Err(RuntimeError::cgroup(
                            &self.rel,
                            format!("remove {}: {e}", dir.display()),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// SIGKILLs every process in the cgroup except `spare` (the wrapper,
    /// which must outlive the task to record its exit) until none is left,
    /// or [`KILL_ALL_TIMEOUT`] passes.
    pub(crate) async fn kill_all(&self, spare: Option<u32>) {
        let deadline = tokio::time::Instant::now() + KILL_ALL_TIMEOUT;
        loop {
            let pids: Vec<u32> = self
                .pids()
                .into_iter()
                .filter(|p| Some(*p) != spare)
                .collect();
            if pids.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                warn!(cgroup = %self.rel, ?pids, "processes survive SIGKILL");
                return;
            }
            for p in pids {
                let _ = crate::proc::signal_pid(p, Signal::SIGKILL);
            }
            tokio::time::sleep(KILL_ALL_POLL).await;
        }
    }

    /// Best-effort immediate removal of a cgroup that never held processes.
    fn remove_empty(&self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Reads `oom_kill N` out of `memory.oom_control` / `memory.events`.
pub(crate) fn parse_oom_kill(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == "oom_kill")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Names of the child cgroups of `parent_rel` (e.g. the task cgroups of one
/// agent), read from the first hierarchy.
pub(crate) fn children(parent_rel: &str) -> Vec<String> {
    let parent = TaskCgroup::open(parent_rel);
    let Some(dir) = parent.memory_dir.as_ref().or(parent.dirs.first()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Checks that we can create (and remove) cgroups under `parent_rel`.
pub(crate) fn probe(parent_rel: &str) -> Result<(), RuntimeError> {
    let cg = load(parent_rel);
    cg.create()
        .map_err(|e| RuntimeError::cgroup(parent_rel, format!("create: {e}")))?;
    let t = TaskCgroup::open(parent_rel);
    match t.dirs.iter().find(|d| !d.is_dir()) {
        Some(d) => Err(RuntimeError::cgroup(
            parent_rel,
            format!("{} was not created", d.display()),
        )),
        None if t.dirs.is_empty() => Err(RuntimeError::cgroup(
            parent_rel,
            "no usable cgroup controllers",
        )),
        None => Ok(()),
    }
}

fn apply_limits(cg: &Cgroup, limits: &Limits) -> Result<(), String> {
    let v2 = cg.v2();
    if !limits.cpus.is_zero() {
        let cpu: &CpuController = cg.controller_of().ok_or("no cpu controller")?;
        let shares = cpu_shares(limits.cpus.milli());
        let value = if v2 { shares_to_weight(shares) } else { shares };
        cpu.set_shares(value)
            .map_err(|e| format!("cpu shares {value}: {e}"))?;
        let quota = cfs_quota_us(limits.cpus.milli());
        cpu.set_cfs_quota_and_period(Some(quota), Some(CFS_PERIOD_US))
            .map_err(|e| format!("cfs quota {quota}: {e}"))?;
    }
    if !limits.mem_mb.is_zero() {
        let mem: &MemController = cg.controller_of().ok_or("no memory controller")?;
        let bytes = mem_limit_bytes(limits.mem_mb).map_err(|e| e.to_string())?;
        mem.set_limit(bytes)
            .map_err(|e| format!("memory limit {bytes}: {e}"))?;
        // No swap, as Docker does with memory-swap = memory: a task over its
        // limit must be OOM-killed, not slowed down by swapping. The swap
        // files only exist with swap accounting enabled.
        let dir = mem.path();
        if v2 {
            if dir.join("memory.swap.max").exists() {
                std::fs::write(dir.join("memory.swap.max"), "0")
                    .map_err(|e| format!("memory.swap.max: {e}"))?;
            }
        } else if dir.join("memory.memsw.limit_in_bytes").exists() {
            mem.set_memswap_limit(bytes)
                .map_err(|e| format!("memsw limit {bytes}: {e}"))?;
        }
    }
    if let Some(max) = limits.pids {
        let pids: &PidController = cg.controller_of().ok_or("no pids controller")?;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        pids.set_pid_max(MaxValue::Value(max))
            .map_err(|e| format!("pids.max {max}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_conversions_match_docker() {
        assert_eq!(cpu_shares(1000), 1024);
        assert_eq!(cpu_shares(500), 512);
        assert_eq!(cpu_shares(1), 2);
        assert_eq!(cfs_quota_us(1500), 150_000);
        assert_eq!(cfs_quota_us(1), 1_000);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
    }

    #[test]
    fn absurd_limits_do_not_overflow() {
        use agora_model::Scalar;
        use agora_model::scalar::MAX_SCALAR_MILLI;
        assert_eq!(
            mem_limit_bytes(Scalar::from_units(512)).ok(),
            Some(512 << 20)
        );
        assert_eq!(
            mem_limit_bytes(Scalar::from_milli(1500)).ok(),
            Some(1_572_864)
        );
        assert_eq!(mem_limit_bytes(Scalar::ZERO).ok(), Some(0));
        // The largest scalar the model accepts still converts.
        assert!(mem_limit_bytes(Scalar::from_milli(MAX_SCALAR_MILLI)).is_ok());
        for bad in [i64::MAX, i64::MAX / 1000, -1, i64::MIN] {
            let err = mem_limit_bytes(Scalar::from_milli(bad)).map_err(|e| e.to_string());
            assert!(
                err.as_ref().is_err_and(|e| e.contains("memory limit")),
                "{bad}: {err:?}"
            );
        }
        assert_eq!(cpu_shares(i64::MAX), CPU_SHARES_MAX);
        assert_eq!(cfs_quota_us(i64::MAX), i64::MAX / 1000);
    }

    #[test]
    fn parses_oom_kill_counters() {
        assert_eq!(
            parse_oom_kill("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            2
        );
        assert_eq!(
            parse_oom_kill("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
            1
        );
        assert_eq!(parse_oom_kill(""), 0);
    }
}
