//! Host resource detection. The parsers are pure functions over the text of
//! `/proc` files and directory listings; `detect` does the reading.
//!
//! Rules (Mesos' `Containerizer::resources` rules, documented here because
//! they decide what the cluster may over-commit):
//! - cpus: the cores this process may run on (`available_parallelism`, which
//!   honours affinity and cgroup quotas).
//! - mem: machine memory minus a reserve for the OS and the agent: 1 GB when
//!   the machine has at least 2 GB, otherwise half of it.
//! - disk: the work dir's filesystem size minus 5 GB when it has at least
//!   10 GB, otherwise half of it.
//! - ports: `[31000-32000]`. gpus: the number of `/dev/nvidia<N>` devices.
use std::path::Path;

use agora_model::resources::{CPUS, DISK, GPUS, MEM, PORTS};
use agora_model::{Ranges, Resources, Scalar};

/// Default port range offered by an agent (Mesos default).
pub const DEFAULT_PORTS: (u64, u64) = (31000, 32000);

/// `MemTotal` of `/proc/meminfo`, in MB.
pub fn parse_meminfo_total_mb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    let unit = parts.next().unwrap_or("kB");
    match unit {
        "kB" => Some(value / 1024),
        "B" => Some(value / (1024 * 1024)),
        _ => None,
    }
}

/// Memory to offer from a machine of `total_mb`: keep 1 GB for the OS and
/// the agent when there are at least 2 GB, else half.
pub fn mem_to_offer_mb(total_mb: u64) -> u64 {
    if total_mb >= 2048 {
        total_mb - 1024
    } else {
        total_mb / 2
    }
}

/// Disk to offer from a filesystem of `total_mb`: keep 5 GB when there are
/// at least 10 GB, else half.
pub fn disk_to_offer_mb(total_mb: u64) -> u64 {
    if total_mb >= 10 * 1024 {
        total_mb - 5 * 1024
    } else {
        total_mb / 2
    }
}

/// Number of GPUs given the names in `/dev`: `nvidia0`, `nvidia1`, ...
/// (`nvidiactl`, `nvidia-uvm` are control devices, not GPUs).
pub fn count_nvidia_gpus<'a>(dev_names: impl IntoIterator<Item = &'a str>) -> u64 {
    dev_names
        .into_iter()
        .filter(|n| {
            n.strip_prefix("nvidia")
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        })
        .count() as u64
}

/// The facts detection needs, gathered from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFacts {
    /// Cores available to this process.
    pub cores: u64,
    /// Machine memory in MB.
    pub mem_total_mb: u64,
    /// Size of the work dir's filesystem in MB.
    pub disk_total_mb: u64,
    /// GPU devices found.
    pub gpus: u64,
}

/// The resources to offer for the given host facts (pure).
pub fn resources_for(facts: HostFacts) -> Resources {
    // Host quantities are far below Scalar's maximum; an absurd value
    // becomes zero rather than a panic.
    let units = |v: u64| Scalar::from_f64(v as f64).unwrap_or(Scalar::ZERO);
    let mut r = Resources::new()
        .with_scalar(CPUS, units(facts.cores.max(1)))
        .with_scalar(MEM, units(mem_to_offer_mb(facts.mem_total_mb)))
        .with_scalar(DISK, units(disk_to_offer_mb(facts.disk_total_mb)))
        .with_ranges(PORTS, Ranges::single(DEFAULT_PORTS.0, DEFAULT_PORTS.1));
    if facts.gpus > 0 {
        r = r.with_scalar(GPUS, units(facts.gpus));
    }
    r
}

/// Size and usage of the filesystem holding `path`, in MB: `(total, used)`.
pub fn filesystem_usage_mb(path: &Path) -> std::io::Result<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    let frag = st.fragment_size() as u64;
    let total = st.blocks() as u64 * frag;
    let free = st.blocks_free() as u64 * frag;
    Ok((
        total / (1024 * 1024),
        total.saturating_sub(free) / (1024 * 1024),
    ))
}

/// Reads the host facts. Unreadable sources count as zero (the agent then
/// offers nothing of that kind rather than inventing capacity).
pub fn host_facts(work_dir: &Path) -> HostFacts {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    let mem_total_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| parse_meminfo_total_mb(&t))
        .unwrap_or(0);
    let disk_total_mb = filesystem_usage_mb(work_dir).map(|(t, _)| t).unwrap_or(0);
    let gpus = std::fs::read_dir("/dev")
        .map(|rd| {
            let names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            count_nvidia_gpus(names.iter().map(String::as_str))
        })
        .unwrap_or(0);
    HostFacts {
        cores,
        mem_total_mb,
        disk_total_mb,
        gpus,
    }
}

/// Detects the resources to offer (see the module doc for the rules).
pub fn detect(work_dir: &Path) -> Resources {
    resources_for(host_facts(work_dir))
}

/// The kernel's hostname, or `localhost` if it cannot be read.
pub fn detect_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_is_parsed_in_mb() {
        let text = "MemTotal:       24684032 kB\nMemFree:        23386944 kB\n";
        assert_eq!(parse_meminfo_total_mb(text), Some(24105));
        assert_eq!(parse_meminfo_total_mb("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_total_mb("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn memory_reserve_rule() {
        assert_eq!(mem_to_offer_mb(24105), 23081);
        assert_eq!(mem_to_offer_mb(2048), 1024);
        assert_eq!(mem_to_offer_mb(1500), 750);
        assert_eq!(mem_to_offer_mb(0), 0);
    }

    #[test]
    fn disk_reserve_rule() {
        assert_eq!(disk_to_offer_mb(100 * 1024), 95 * 1024);
        assert_eq!(disk_to_offer_mb(4000), 2000);
    }

    #[test]
    fn only_numbered_nvidia_devices_are_gpus() {
        let names = [
            "nvidia0",
            "nvidia1",
            "nvidiactl",
            "nvidia-uvm",
            "null",
            "nvidia",
        ];
        assert_eq!(count_nvidia_gpus(names), 2);
    }

    #[test]
    fn resources_from_facts() {
        let r = resources_for(HostFacts {
            cores: 2,
            mem_total_mb: 4096,
            disk_total_mb: 4000,
            gpus: 0,
        });
        assert_eq!(
            r,
            Resources::parse("cpus:2;mem:3072;disk:2000;ports:[31000-32000]").unwrap()
        );
        let g = resources_for(HostFacts {
            cores: 0,
            mem_total_mb: 0,
            disk_total_mb: 0,
            gpus: 1,
        });
        assert_eq!(g.gpus(), Scalar::from_units(1));
        assert_eq!(g.cpus(), Scalar::from_units(1));
    }

    #[test]
    fn detection_on_this_host_is_sane() {
        let dir = tempfile::tempdir().unwrap();
        let r = detect(dir.path());
        assert!(r.cpus() >= Scalar::from_units(1));
        assert!(!r.ports().is_empty());
    }
}
