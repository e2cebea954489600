//! One quantity per resource dimension, with exact (fixed-point) sums.
use agora_model::{Resources, Scalar};
use serde::Serialize;

/// cpus, mem (MB), disk (MB), gpus, and the number of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Amount {
    /// CPUs.
    pub cpus: Scalar,
    /// Memory, MB.
    pub mem: Scalar,
    /// Disk, MB.
    pub disk: Scalar,
    /// GPUs.
    pub gpus: Scalar,
    /// Host ports.
    pub ports: u64,
}

impl Amount {
    /// The dimensions of `r` (every role).
    pub fn of(r: &Resources) -> Amount {
        Amount {
            cpus: r.scalar("cpus"),
            mem: r.scalar("mem"),
            disk: r.scalar("disk"),
            gpus: r.scalar("gpus"),
            ports: r.ports().count(),
        }
    }

    /// `self + other`.
    pub fn plus(self, o: Amount) -> Amount {
        Amount {
            cpus: self.cpus + o.cpus,
            mem: self.mem + o.mem,
            disk: self.disk + o.disk,
            gpus: self.gpus + o.gpus,
            ports: self.ports + o.ports,
        }
    }

    /// `self - other`, floored at zero per dimension.
    pub fn minus(self, o: Amount) -> Amount {
        Amount {
            cpus: self.cpus.saturating_sub(o.cpus),
            mem: self.mem.saturating_sub(o.mem),
            disk: self.disk.saturating_sub(o.disk),
            gpus: self.gpus.saturating_sub(o.gpus),
            ports: self.ports.saturating_sub(o.ports),
        }
    }
}
