//! Concurrent KV histories against the masters' etcd API while leaders are
//! killed, paused, cut off, cut off from one follower only, or made to
//! lose half their packets, checked for linearizability (agora-lincheck);
//! then every member holds the same keyspace.
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use agora_lincheck::{RecordConfig, Verdict, check, record};
use nix::sys::signal::Signal;

use super::group::MasterGroup;
use super::netns::Hosts;

/// Operations per run: the issue asks for at least 10,000.
const OPS: usize = 10_000;

/// What the nemesis does to the leader of the moment.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    Kill,
    Pause,
    /// The leader's link down: cut off from everyone.
    Cut,
    /// Half the leader's packets dropped, both ways.
    Lossy,
    /// The leader cut off from one follower only; both still reach the
    /// third member (a partial, "bridge" partition).
    Bridge,
}

fn config(seed: u64) -> RecordConfig {
    RecordConfig {
        key_prefix: prefix(seed),
        clients: 8,
        keys: 8,
        max_ops: OPS,
        // Long enough for 10,000 ops on a loaded 2-core CI machine (about
        // 35 s on a quiet one); the run ends at `max_ops` first.
        max_duration: Duration::from_secs(300),
        op_timeout: Duration::from_millis(1500),
        seed,
    }
}

fn prefix(seed: u64) -> String {
    format!("/lin/{seed}/")
}

/// The store's revision now, through any member.
async fn revision(endpoints: &[String]) -> anyhow::Result<i64> {
    for endpoint in endpoints {
        let Ok(mut client) = etcd_client::Client::connect([endpoint.as_str()], None).await else {
            continue;
        };
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(3), client.get("/", None)).await
            && let Some(header) = r.header()
        {
            return Ok(header.revision());
        }
    }
    anyhow::bail!("no member answered")
}

/// Records a history while `faults` hit the leader one after another
/// (each held ~1.5 s, then healed, then 1.5 s of calm); returns after
/// checking it and the members' agreement.
pub(crate) async fn run(
    group: &mut MasterGroup,
    hosts: Option<&Hosts>,
    faults: &[Fault],
    seed: u64,
) -> anyhow::Result<()> {
    let ids: Vec<u64> = group.members.keys().copied().collect();
    group.agreed_leader(&ids, super::SETTLE).await?;
    let endpoints = group.etcd_endpoints();
    let start = revision(&endpoints).await? + 1;
    let done = AtomicBool::new(false);
    let until = AtomicI64::new(i64::MAX);
    let recording = async {
        let history = record(&endpoints, config(seed)).await;
        until.store(
            revision(&endpoints).await.unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
        done.store(true, Ordering::Relaxed);
        history
    };
    let watched_prefix = prefix(seed);
    let watching = super::watch_check::follow(&endpoints, &watched_prefix, start, &done, &until);
    let nemesis = async {
        let mut applied = 0;
        for fault in faults {
            if done.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let leader = group.agreed_leader(&ids, super::SETTLE).await?;
            inject(group, hosts, leader, *fault)?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            heal(group, hosts, leader, *fault)?;
            applied += 1;
        }
        anyhow::Ok(applied)
    };
    // The nemesis needs `group` mutably only between awaits of its own.
    let (history, applied, watched) = tokio::join!(recording, nemesis, watching);
    let applied = applied?;
    let result = check(&history);
    eprintln!(
        "agora seed {seed}: {} ops ({} unknown), {applied} faults {faults:?}, checked in {:?}",
        history.ops.len(),
        history.unknown(),
        result.stats.elapsed
    );
    if let Verdict::NotLinearizable(v) = &result.verdict {
        anyhow::bail!("not linearizable: {v}");
    }
    anyhow::ensure!(
        result.verdict == Verdict::Linearizable,
        "{:?}",
        result.verdict
    );
    anyhow::ensure!(history.ops.len() >= OPS, "only {} ops", history.ops.len());
    anyhow::ensure!(applied >= 1, "no fault was injected during the recording");
    watched.check()?;
    let last = until.load(Ordering::Relaxed);
    anyhow::ensure!(
        watched.revisions.first() == Some(&start) && watched.revisions.last() == Some(&last),
        "the watcher saw revisions {:?}..{:?}, the writes were {start}..{last}",
        watched.revisions.first(),
        watched.revisions.last()
    );
    eprintln!(
        "watch: {} events {start}..{last} in order, no gap, no duplicate, over {} connections",
        watched.revisions.len(),
        watched.resumes
    );
    group.agreed_leader(&ids, super::SETTLE).await?;
    same_keyspace_everywhere(group).await
}

fn inject(
    group: &mut MasterGroup,
    hosts: Option<&Hosts>,
    leader: u64,
    fault: Fault,
) -> anyhow::Result<()> {
    let host = usize::try_from(leader - 1)?;
    match (fault, hosts) {
        (Fault::Kill, _) => group.kill9(leader),
        (Fault::Pause, _) => group.signal(leader, Signal::SIGSTOP)?,
        (Fault::Cut, Some(hosts)) => hosts.cut(host)?,
        (Fault::Lossy, Some(hosts)) => hosts.lossy(host, 0.5)?,
        (Fault::Bridge, Some(hosts)) => hosts.split(host, (host + 1) % hosts.hosts.len())?,
        (Fault::Cut | Fault::Lossy | Fault::Bridge, None) => {
            anyhow::bail!("{fault:?} needs network namespaces")
        }
    }
    Ok(())
}

fn heal(
    group: &mut MasterGroup,
    hosts: Option<&Hosts>,
    leader: u64,
    fault: Fault,
) -> anyhow::Result<()> {
    let host = usize::try_from(leader - 1)?;
    match (fault, hosts) {
        (Fault::Kill, _) => group.start(leader)?,
        (Fault::Pause, _) => group.signal(leader, Signal::SIGCONT)?,
        (Fault::Cut, Some(hosts)) => hosts.heal(host)?,
        (Fault::Lossy | Fault::Bridge, Some(hosts)) => hosts.restore(host)?,
        (Fault::Cut | Fault::Lossy | Fault::Bridge, None) => {}
    }
    Ok(())
}

/// Every member reaches the same applied index and state hash (the
/// registry and the keyspace), as `/members` reports them.
async fn same_keyspace_everywhere(group: &MasterGroup) -> anyhow::Result<()> {
    let ids: Vec<u64> = group.members.keys().copied().collect();
    agora_tests::eventually(
        "equal state hashes on every member",
        super::SETTLE,
        || async {
            let mut seen = None;
            for id in &ids {
                let view = group.members_view_with(*id, "/members?hash=true").await?;
                let here = (
                    view["state_hash_index"].as_u64()?,
                    view["state_hash"].as_u64()?,
                );
                if seen.is_some_and(|s| s != here) {
                    return None;
                }
                seen = Some(here);
            }
            seen
        },
    )
    .await?;
    Ok(())
}
