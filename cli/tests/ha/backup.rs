//! Backups: `etcdctl snapshot save` (and `agora snapshot save`) against a
//! running group of processes, every member killed with SIGKILL, and a new
//! group on new ports and empty data dirs founded from the file with
//! `agora snapshot restore`: every key comes back with its value and
//! revisions, a leased key with its lease, nothing written after the
//! backup, and the new group takes writes from the old revision on.
use std::collections::BTreeMap;

use etcd_client::{GetOptions, PutOptions};

use super::group::{MasterGroup, run_in_netns};
use super::{EXTRA, SETTLE, etcd, etcdctl_present};

/// Keys written before the backup.
const KEYS: usize = 60;

/// Every key under `prefix` with its value and mod revision, read on
/// `endpoint` (linearizable), and the store's revision.
async fn keyspace(
    endpoint: &str,
    prefix: &str,
) -> anyhow::Result<(BTreeMap<String, (String, i64)>, i64)> {
    let mut client = etcd(&[endpoint.to_string()]).await?;
    let got = client
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await?;
    let revision = got.header().map_or(0, |h| h.revision());
    let keys = got.kvs().iter().map(|kv| {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        let value = String::from_utf8_lossy(kv.value()).into_owned();
        (key, (value, kv.mod_revision()))
    });
    Ok((keys.collect(), revision))
}

#[tokio::test]
async fn a_group_restored_from_a_backup_has_every_key_and_lease_and_goes_on() -> anyhow::Result<()>
{
    if !etcdctl_present() {
        return Ok(());
    }
    let mut old = MasterGroup::loopback(3, EXTRA)?;
    let leader = old.agreed_leader(&[1, 2, 3], SETTLE).await?;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap_or(1);
    let leader_ep = format!("http://{}", old.members[&leader].etcd);
    let mut client = etcd(std::slice::from_ref(&leader_ep)).await?;
    for i in 0..KEYS {
        client
            .put(format!("/b/k{i:02}"), format!("v{i}"), None)
            .await?;
    }
    client.put("/b/k00", "rewritten", None).await?;
    client.delete("/b/k01", None).await?;
    let lease = client.lease_grant(600, None).await?.id();
    let leased = PutOptions::new().with_lease(lease);
    client.put("/b/leased", "held", Some(leased)).await?;
    let (before, revision) = keyspace(&leader_ep, "/b/").await?;
    assert_eq!(before.len(), KEYS);

    // Saved from a follower with etcdctl (it has applied everything the
    // leader acknowledged by the time it answers a linearizable read).
    let follower_ep = format!("http://{}", old.members[&follower].etcd);
    keyspace(&follower_ep, "/b/").await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("agora.backup");
    let file_text = file.display().to_string();
    let saved = std::process::Command::new("etcdctl")
        .args(["--endpoints", &follower_ep, "snapshot", "save", &file_text])
        .env("ETCDCTL_API", "3")
        .output()?;
    anyhow::ensure!(
        saved.status.success(),
        "etcdctl snapshot save: {}",
        String::from_utf8_lossy(&saved.stderr)
    );
    // `agora snapshot save` writes the same kind of file, from the leader.
    let second = dir.path().join("second.backup");
    let agora = |args: &[&str]| run_in_netns(&old.members[&leader], "agora", args);
    agora(&[
        "snapshot",
        "save",
        &second.display().to_string(),
        "--etcd",
        &leader_ep,
    ])?;
    for saved in [&file, &second] {
        agora_raft::decode_backup(&std::fs::read(saved)?)?;
    }
    client
        .put("/b/after-backup", "lost with the old group", None)
        .await?;
    for id in [1, 2, 3] {
        old.kill9(id);
    }

    // The new group: new ports, empty data dirs, the same file for all.
    let mut new = MasterGroup::loopback_unstarted(3, EXTRA)?;
    for (id, member) in &new.members {
        let data = member.data.display().to_string();
        let id = id.to_string();
        let args = [
            "snapshot",
            "restore",
            &file_text,
            "--id",
            &id,
            "--peers",
            new.peers(),
            "--data-dir",
            &data,
        ];
        let out = run_in_netns(member, "agora", &args)?;
        assert!(out.contains("restored member"), "{out}");
    }
    // A second restore never writes over a data dir.
    let member = &new.members[&1];
    let data = member.data.display().to_string();
    let again = ["snapshot", "restore", &file_text, "--data-dir", &data];
    let refused = run_in_netns(member, "agora", &again).unwrap_err();
    assert!(refused.to_string().contains("not empty"), "{refused}");

    new.start_all()?;
    let new_leader = new.agreed_leader(&[1, 2, 3], SETTLE).await?;
    let new_ep = format!("http://{}", new.members[&new_leader].etcd);
    let (after, new_revision) = keyspace(&new_ep, "/b/").await?;
    assert_eq!(after, before, "the keyspace as it was backed up");
    assert!(new_revision >= revision, "{new_revision} < {revision}");
    let mut client = etcd(std::slice::from_ref(&new_ep)).await?;
    let ttl = client.lease_time_to_live(lease, None).await?.ttl();
    assert!(ttl > 0, "the lease survived the restore: ttl {ttl}");
    // New writes continue the revisions, through any member.
    let other = [1, 2, 3]
        .into_iter()
        .find(|id| *id != new_leader)
        .unwrap_or(1);
    let other_ep = format!("http://{}", new.members[&other].etcd);
    let put = etcd(std::slice::from_ref(&other_ep))
        .await?
        .put("/b/new", "v", None)
        .await?;
    let put_revision = put.header().map_or(0, |h| h.revision());
    assert!(
        put_revision > new_revision,
        "{put_revision} <= {new_revision}"
    );
    let (later, _) = keyspace(&other_ep, "/b/").await?;
    assert_eq!(later.len(), KEYS + 1);
    assert!(later.contains_key("/b/new"));
    Ok(())
}
