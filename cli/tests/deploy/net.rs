//! Addresses for one run: a private /24 no other network on this machine
//! uses (the compose network has fixed addresses, see deploy/README.md),
//! and host ports for the agents, which share the host's network.
use std::net::{Ipv4Addr, TcpListener};

use super::compose::docker;

/// Ports per agent for its tasks: the app needs one per instance, and a
/// rolling upgrade one more.
const TASK_PORTS: u16 = 20;
/// Where task port ranges are looked for: below Linux's ephemeral range and
/// above the 21000s the in-process agent tests use.
const TASK_PORT_SEARCH: std::ops::Range<u16> = 24000..30000;

/// A first-three-octets prefix `10.213.N` whose /24 overlaps no route and
/// no Docker network here; `seed` spreads concurrent runs apart.
pub(crate) fn free_subnet(seed: u32) -> anyhow::Result<String> {
    let taken = taken_networks();
    (0..256u32)
        .map(|i| (seed + i) % 256)
        .map(|n| Ipv4Addr::new(10, 213, n as u8, 0))
        .find(|net| !taken.iter().any(|t| overlaps((*net, 24), *t)))
        .map(|net| {
            let [a, b, c, _] = net.octets();
            format!("{a}.{b}.{c}")
        })
        .ok_or_else(|| anyhow::anyhow!("every 10.213.N.0/24 is in use"))
}

/// Routes and Docker networks' subnets, as (address, prefix length).
fn taken_networks() -> Vec<(Ipv4Addr, u8)> {
    let routes = std::process::Command::new("ip")
        .args(["-4", "-o", "route", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let ids = docker(&["network", "ls", "-q"]).unwrap_or_default();
    let mut args = vec![
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
    ];
    args.extend(ids.split_whitespace());
    let docker_nets = docker(&args).unwrap_or_default();
    routes
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .chain(docker_nets.split_whitespace())
        .filter_map(parse_cidr)
        .collect()
}

fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = text.split_once('/').unwrap_or((text, "32"));
    Some((addr.parse().ok()?, len.parse().ok().filter(|l| *l <= 32)?))
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let len = a.1.min(b.1);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(a.0) & mask == u32::from(b.0) & mask
}

/// `n` distinct ports nothing listens on now (held together while chosen,
/// so none is picked twice).
pub(crate) fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let held = (0..n)
        .map(|_| TcpListener::bind("0.0.0.0:0"))
        .collect::<Result<Vec<_>, _>>()?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// `n` ranges of [`TASK_PORTS`] ports, each free now, as `FIRST-LAST`.
pub(crate) fn task_port_ranges(n: usize, seed: u32) -> anyhow::Result<Vec<String>> {
    let slots = (TASK_PORT_SEARCH.end - TASK_PORT_SEARCH.start) / TASK_PORTS;
    let mut ranges = Vec::new();
    for i in 0..u32::from(slots) {
        let slot = ((seed + i) % u32::from(slots)) as u16;
        let first = TASK_PORT_SEARCH.start + slot * TASK_PORTS;
        let last = first + TASK_PORTS - 1;
        if (first..=last).all(|p| TcpListener::bind(("0.0.0.0", p)).is_ok()) {
            ranges.push(format!("{first}-{last}"));
            if ranges.len() == n {
                return Ok(ranges);
            }
        }
    }
    anyhow::bail!("no {n} free ranges of {TASK_PORTS} ports in {TASK_PORT_SEARCH:?}")
}

#[test]
fn overlap_of_cidrs() {
    let net = |s| parse_cidr(s).unwrap();
    assert!(overlaps(net("10.213.5.0/24"), net("10.0.0.0/8")));
    assert!(overlaps(net("10.213.5.0/24"), net("10.213.5.7")));
    assert!(!overlaps(net("10.213.5.0/24"), net("10.213.6.0/24")));
    assert!(!overlaps(net("10.213.5.0/24"), net("172.17.0.0/16")));
    assert!(overlaps(net("10.213.5.0/24"), net("0.0.0.0/0")));
}
