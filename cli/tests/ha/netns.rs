//! Separate "hosts" on this machine: one network namespace per host, each
//! with a veth pair into a bridge that the test process also sits on.
//! Taking a host's bridge-side veth down cuts it off from everyone (a
//! partition); bringing it up heals it. Needs root and `ip` (iproute2);
//! everything is removed on drop.
use std::process::Command;

/// One namespace and its link.
pub(crate) struct Host {
    /// The namespace's name (`ip netns exec NAME ...`).
    pub(crate) netns: String,
    /// Its address on the bridge.
    pub(crate) ip: String,
    /// The bridge-side end of its veth pair.
    veth: String,
}

/// A bridge and the hosts on it.
pub(crate) struct Hosts {
    pub(crate) hosts: Vec<Host>,
    bridge: String,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Whether a test can use namespaces here; with `CI=true` their absence
/// is a failure, elsewhere the test is skipped with a note.
pub(crate) fn usable() -> bool {
    if available() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "network namespaces need root and iproute2, and CI=true"
    );
    eprintln!("SKIPPED: network namespaces need root and iproute2");
    false
}

/// Whether namespaces can be made here (root and iproute2).
fn available() -> bool {
    running_as_root()
        && Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

impl Hosts {
    /// `n` hosts on a fresh bridge with a /24 of its own.
    pub(crate) fn new(n: usize) -> anyhow::Result<Hosts> {
        let tag = format!("{:04x}", rand_u16());
        let subnet = 100 + (u32::from(rand_u16()) % 150);
        let bridge = format!("agbr{tag}");
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        let mut hosts = Hosts {
            hosts: Vec::new(),
            bridge: bridge.clone(),
        };
        // Docker's FORWARD policy is DROP and bridged frames go through
        // iptables (br_netfilter): let the bridge's own traffic pass.
        forward_rule("-I", &bridge);
        ip(&[
            "addr",
            "add",
            &format!("10.{subnet}.77.1/24"),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 1..=n {
            let netns = format!("agns{tag}{i}");
            let (outer, inner) = (format!("agv{tag}{i}"), format!("agp{tag}{i}"));
            let addr = format!("10.{subnet}.77.{}", 10 + i);
            ip(&["netns", "add", &netns])?;
            hosts.hosts.push(Host {
                netns: netns.clone(),
                ip: addr.clone(),
                veth: outer.clone(),
            });
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ])?;
            ip(&["link", "set", &inner, "netns", &netns])?;
            ip(&["link", "set", &outer, "master", &bridge])?;
            ip(&["link", "set", &outer, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &netns, "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            inside(&["addr", "add", &format!("{addr}/24"), "dev", &inner])?;
            inside(&["link", "set", &inner, "up"])?;
            inside(&["link", "set", "lo", "up"])?;
        }
        Ok(hosts)
    }

    /// Cuts host `i` (0-based) off the bridge.
    pub(crate) fn cut(&self, i: usize) -> anyhow::Result<()> {
        ip(&["link", "set", &self.hosts[i].veth, "down"])
    }

    /// Puts host `i` back on the bridge.
    pub(crate) fn heal(&self, i: usize) -> anyhow::Result<()> {
        ip(&["link", "set", &self.hosts[i].veth, "up"])
    }

    /// Drops each packet host `i` sends or receives with probability
    /// `probability` (etcd's DropPeerNetwork fault), until
    /// [`Hosts::restore`]. iptables' `statistic` match inside the host's
    /// namespace: this machine's kernel has no netem.
    pub(crate) fn lossy(&self, i: usize, probability: f64) -> anyhow::Result<()> {
        let p = format!("{probability}");
        for chain in ["INPUT", "OUTPUT"] {
            self.iptables(
                i,
                &[
                    "-A",
                    chain,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ],
            )?;
        }
        Ok(())
    }

    /// Drops everything between hosts `i` and `j` (a partial partition:
    /// both still reach the third), until [`Hosts::restore`] of `i`.
    pub(crate) fn split(&self, i: usize, j: usize) -> anyhow::Result<()> {
        let other = self.hosts[j].ip.as_str();
        self.iptables(i, &["-A", "INPUT", "-s", other, "-j", "DROP"])?;
        self.iptables(i, &["-A", "OUTPUT", "-d", other, "-j", "DROP"])
    }

    /// Removes host `i`'s packet filters ([`Hosts::lossy`], [`Hosts::split`]).
    pub(crate) fn restore(&self, i: usize) -> anyhow::Result<()> {
        self.iptables(i, &["-F", "INPUT"])?;
        self.iptables(i, &["-F", "OUTPUT"])
    }

    fn iptables(&self, i: usize, args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.hosts[i].netns, "iptables"])
            .args(args)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "iptables {} in {}: {}",
            args.join(" "),
            self.hosts[i].netns,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = ip(&["netns", "del", &host.netns]);
            let _ = ip(&["link", "del", &host.veth]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
        forward_rule("-D", &self.bridge);
    }
}

/// Inserts (`-I`) or deletes (`-D`) the FORWARD rule accepting traffic
/// within `bridge`. Without iptables there is no filtering to open.
fn forward_rule(action: &str, bridge: &str) {
    let mut args = vec![action, "FORWARD"];
    if action == "-I" {
        args.push("1");
    }
    args.extend(["-i", bridge, "-o", bridge, "-j", "ACCEPT"]);
    let _ = Command::new("iptables").args(&args).output();
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) as u16
}

/// Whether this process runs as root (uid 0), from /proc.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}
