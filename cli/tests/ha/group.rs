//! A group of `agora master` processes for the HA tests: each on its own
//! ports (loopback) or in its own network namespace (a "host" whose link
//! can be cut), with its own data dir, killed with SIGKILL, paused with
//! SIGSTOP, restarted on the same address and data.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agora_tests::{eventually, http_get};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::netns::Hosts;

const AGORA: &str = env!("CARGO_BIN_EXE_agora");

/// Where one member runs.
pub(crate) struct Member {
    pub(crate) api: SocketAddr,
    pub(crate) etcd: SocketAddr,
    pub(crate) data: PathBuf,
    /// The network namespace it runs in, if any.
    pub(crate) netns: Option<String>,
    child: Option<Child>,
    /// Started with `--join` (added at run time).
    join: bool,
}

/// A group of masters under test.
pub(crate) struct MasterGroup {
    pub(crate) members: BTreeMap<u64, Member>,
    peers: String,
    extra: Vec<String>,
    _dir: tempfile::TempDir,
}

/// How long one HTTP request to a member may take: a paused (SIGSTOP)
/// member accepts connections in the kernel but never answers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// GET with [`REQUEST_TIMEOUT`]; `None` on any failure.
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    tokio::time::timeout(REQUEST_TIMEOUT, http_get(addr, path))
        .await
        .ok()?
        .ok()
}

/// `n` distinct loopback ports nobody listens on now. The listeners are all
/// held until every port is known: asked one at a time, the kernel may hand
/// the same port out twice (it did to the bench harness's `free_ports`).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let ports = listeners.iter().map(|l| Ok(l.local_addr()?.port()));
    ports.collect()
}

/// An API and an etcd address on loopback, on two free ports.
fn loopback_pair(ports: &[u16]) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let [api, etcd] = ports else {
        anyhow::bail!("two ports expected, got {ports:?}");
    };
    Ok((
        format!("127.0.0.1:{api}").parse()?,
        format!("127.0.0.1:{etcd}").parse()?,
    ))
}

impl MasterGroup {
    /// `n` masters on 127.0.0.1, each with its own ports.
    pub(crate) fn loopback(n: u64, extra: &[&str]) -> anyhow::Result<MasterGroup> {
        let mut group = Self::loopback_unstarted(n, extra)?;
        group.start_all()?;
        Ok(group)
    }

    /// Like [`MasterGroup::loopback`], with no member started yet (their
    /// data dirs do not exist): for a group restored from a backup.
    pub(crate) fn loopback_unstarted(n: u64, extra: &[&str]) -> anyhow::Result<MasterGroup> {
        let ports = free_ports(2 * n as usize)?;
        let addrs = (1..=n)
            .zip(ports.chunks(2))
            .map(|(id, pair)| {
                let (api, etcd) = loopback_pair(pair)?;
                Ok((id, api, etcd, None))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Self::build(addrs, extra)
    }

    /// Starts every member.
    pub(crate) fn start_all(&mut self) -> anyhow::Result<()> {
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in ids {
            self.start(id)?;
        }
        Ok(())
    }

    /// The founding peer list, as `--peers` takes it.
    pub(crate) fn peers(&self) -> &str {
        &self.peers
    }

    /// One master per network namespace of `hosts`, on fixed ports.
    pub(crate) fn on_hosts(hosts: &Hosts, extra: &[&str]) -> anyhow::Result<MasterGroup> {
        let addrs = (hosts.hosts.iter().enumerate())
            .map(|(i, host)| {
                let id = i as u64 + 1;
                let api: SocketAddr = format!("{}:5050", host.ip).parse()?;
                let etcd: SocketAddr = format!("{}:2379", host.ip).parse()?;
                Ok((id, api, etcd, Some(host.netns.clone())))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut group = Self::build(addrs, extra)?;
        group.start_all()?;
        Ok(group)
    }

    /// The group's members and data dirs, none started.
    fn build(
        addrs: Vec<(u64, SocketAddr, SocketAddr, Option<String>)>,
        extra: &[&str],
    ) -> anyhow::Result<MasterGroup> {
        let dir = tempfile::tempdir()?;
        let peers = addrs
            .iter()
            .map(|(id, api, etcd, _)| format!("{id}={api}/{}", etcd.port()))
            .collect::<Vec<_>>()
            .join(",");
        let members = addrs
            .into_iter()
            .map(|(id, api, etcd, netns)| {
                let data = dir.path().join(format!("m{id}"));
                let member = Member {
                    api,
                    etcd,
                    data,
                    netns,
                    child: None,
                    join: false,
                };
                (id, member)
            })
            .collect();
        Ok(MasterGroup {
            members,
            peers,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            _dir: dir,
        })
    }

    /// Starts a new, empty master on loopback with `--join`: it waits for
    /// `agora members add`. Returns its `(api, etcd)` addresses.
    pub(crate) fn start_joining(&mut self, id: u64) -> anyhow::Result<(SocketAddr, SocketAddr)> {
        let addresses = self.reserve_joining(id)?;
        self.start(id)?;
        Ok(addresses)
    }

    /// Gives member `id` loopback addresses and a data dir, to be started
    /// later with `--join` (after `etcdctl member add`, say). Returns its
    /// `(api, etcd)` addresses.
    pub(crate) fn reserve_joining(&mut self, id: u64) -> anyhow::Result<(SocketAddr, SocketAddr)> {
        let (api, etcd) = loopback_pair(&free_ports(2)?)?;
        let data = self._dir.path().join(format!("m{id}"));
        let member = Member {
            api,
            etcd,
            data,
            netns: None,
            child: None,
            join: true,
        };
        self.members.insert(id, member);
        self.peers = format!("{},{id}={api}/{}", self.peers, etcd.port());
        Ok((api, etcd))
    }

    /// Gives stopped member `id` a new master (peer) port on loopback: in
    /// its address and in the peer list members start with. Returns it.
    pub(crate) fn move_api_port(&mut self, id: u64) -> anyhow::Result<SocketAddr> {
        let ports = free_ports(1)?;
        let new: SocketAddr = format!("127.0.0.1:{}", ports[0]).parse()?;
        let member =
            (self.members.get_mut(&id)).ok_or_else(|| anyhow::anyhow!("no member {id}"))?;
        let old = std::mem::replace(&mut member.api, new);
        self.peers = self
            .peers
            .replace(&format!("{id}={old}"), &format!("{id}={new}"));
        Ok(new)
    }

    /// Starts (or restarts) member `id` with its address and data.
    pub(crate) fn start(&mut self, id: u64) -> anyhow::Result<()> {
        let member = self
            .members
            .get_mut(&id)
            .ok_or_else(|| anyhow::anyhow!("no member {id}"))?;
        // A joining member gets its id as etcdctl prints ids (`0x` and hex).
        let id_arg = if member.join {
            format!("0x{id:x}")
        } else {
            id.to_string()
        };
        let mut args: Vec<String> = vec![
            "master".into(),
            "--id".into(),
            id_arg,
            "--peers".into(),
            self.peers.clone(),
            "--listen".into(),
            member.api.to_string(),
            "--etcd-listen".into(),
            member.etcd.to_string(),
            "--data-dir".into(),
            member.data.display().to_string(),
        ];
        if member.join {
            args.push("--join".into());
        }
        args.extend(self.extra.iter().cloned());
        let mut command = match &member.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, AGORA]);
                c
            }
            None => Command::new(AGORA),
        };
        let log = std::fs::File::create(member.data.with_extension("log"))?;
        let child = command
            .args(&args)
            .env("AGORA_LOG", "info,agora_raft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        member.child = Some(child);
        Ok(())
    }

    /// SIGKILL member `id` and reap it.
    pub(crate) fn kill9(&mut self, id: u64) {
        if let Some(child) = self.members.get_mut(&id).and_then(|m| m.child.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(m) = self.members.get_mut(&id) {
            m.child = None;
        }
    }

    /// SIGSTOP (`pause`) or SIGCONT member `id`.
    pub(crate) fn signal(&self, id: u64, signal: Signal) -> anyhow::Result<()> {
        let child = self
            .members
            .get(&id)
            .and_then(|m| m.child.as_ref())
            .ok_or_else(|| anyhow::anyhow!("member {id} is not running"))?;
        let pid = i32::try_from(child.id())?;
        kill(Pid::from_raw(pid), signal)?;
        Ok(())
    }

    /// `http://host:port` of every member's etcd API.
    pub(crate) fn etcd_endpoints(&self) -> Vec<String> {
        self.members
            .values()
            .map(|m| format!("http://{}", m.etcd))
            .collect()
    }

    /// `/members` of member `id`, if it answers.
    pub(crate) async fn members_view(&self, id: u64) -> Option<serde_json::Value> {
        self.members_view_with(id, "/members").await
    }

    /// `path` (a `/members` view) of member `id`, if it answers.
    pub(crate) async fn members_view_with(&self, id: u64, path: &str) -> Option<serde_json::Value> {
        let member = self.members.get(&id)?;
        let (code, body) = get(member.api, path).await?;
        if code != 200 {
            return None;
        }
        serde_json::from_str(&body).ok()
    }

    /// The leader that every running member in `among` agrees on, whose
    /// core is active (its /state answers 200), within `timeout`.
    pub(crate) async fn agreed_leader(
        &self,
        among: &[u64],
        timeout: Duration,
    ) -> anyhow::Result<u64> {
        eventually("an agreed leader", timeout, || async {
            let mut leader = None;
            for id in among {
                let view = self.members_view(*id).await?;
                let seen = view["leader_id"].as_u64()?;
                if leader.is_some_and(|l| l != seen) {
                    return None;
                }
                leader = Some(seen);
            }
            let leader = leader?;
            let api = self.members.get(&leader)?.api;
            let (code, _) = get(api, "/state").await?;
            (code == 200).then_some(leader)
        })
        .await
        .inspect_err(|_| self.print_logs())
    }
}

impl Drop for MasterGroup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        for member in self.members.values_mut() {
            if let Some(child) = member.child.as_mut() {
                // A paused member must be woken to die cleanly.
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl MasterGroup {
    /// The tail of every member's log, for a failing test's output.
    fn print_logs(&self) {
        for (id, member) in &self.members {
            let log =
                std::fs::read_to_string(member.data.with_extension("log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            eprintln!("--- member {id} ({}) log tail ---\n{tail}", member.api);
        }
    }
}

/// Runs `program args` inside `member`'s network namespace (or here, for
/// a loopback member); its stdout, or an error with its stderr.
pub(crate) fn run_in_netns(
    member: &Member,
    program: &str,
    args: &[&str],
) -> anyhow::Result<String> {
    let program = if program == "agora" { AGORA } else { program };
    let mut command = match &member.netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    };
    let out = command.args(args).env("AGORA_LOG", "error").output()?;
    anyhow::ensure!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
