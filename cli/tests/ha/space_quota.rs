//! The keyspace's space quota on a group of `agora master` processes, as an
//! etcd operator meets it: etcdctl fills the keyspace through a follower
//! until the quota refuses a put with etcd's "database space exceeded";
//! every member lists the NOSPACE alarm that follower raised; the alarm
//! survives a kill -9 and restart of the leader (it is in the replicated
//! state, on disk); nothing acknowledged is lost; and etcd's runbook
//! (delete, compact, defragment, disarm) brings writes back.
use serde_json::Value;

use super::etcd_members::{etcdctl, etcdctl_ok};
use super::group::MasterGroup;
use super::{EXTRA, SETTLE, etcdctl_present, keys_on};

const QUOTA: &str = "262144";
const NOSPACE: &str = "etcdserver: mvcc: database space exceeded";

/// Whether member `endpoint` lists `member`'s NOSPACE alarm.
fn lists_nospace_of(endpoint: &str, member: u64) -> bool {
    etcdctl_ok(endpoint, &["alarm", "list"])
        .is_ok_and(|listed| listed.contains(&format!("memberID:{member} alarm:NOSPACE")))
}

#[tokio::test]
async fn the_space_quota_refuses_writes_on_every_member_across_a_leader_kill() -> anyhow::Result<()>
{
    if !etcdctl_present() {
        return Ok(());
    }
    let extra = [EXTRA, &["--etcd-quota-backend-bytes", QUOTA]].concat();
    let mut group = MasterGroup::loopback(3, &extra)?;
    let leader = group.agreed_leader(&[1, 2, 3], SETTLE).await?;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap_or(1);
    let at = |group: &MasterGroup, id: u64| group.members[&id].etcd.to_string();

    let value = "v".repeat(8192);
    let mut acknowledged = 0;
    let refusal = loop {
        let key = format!("/quota/k{acknowledged:03}");
        let (ok, _, err) = etcdctl(&at(&group, follower), &["put", &key, &value])?;
        if !ok {
            break err;
        }
        acknowledged += 1;
        anyhow::ensure!(
            acknowledged < 100,
            "100 puts of 8 KiB passed a 256 KiB quota"
        );
    };
    assert!(refusal.contains(NOSPACE), "{refusal}");
    assert!(acknowledged >= 16, "only {acknowledged} puts fitted");
    for id in [1, 2, 3] {
        let endpoint = at(&group, id);
        agora_tests::eventually("every member lists the alarm", SETTLE, || async {
            lists_nospace_of(&endpoint, follower).then_some(())
        })
        .await?;
    }
    // What an operator's alert watches: the keyspace's bytes near its quota.
    let (_, metrics) = agora_tests::http_get(group.members[&follower].api, "/metrics").await?;
    let gauge = |name: &str| -> Option<u64> {
        let line = metrics.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    assert_eq!(gauge("agora_master_etcd_quota_bytes "), Some(262_144));
    let held = gauge("agora_master_etcd_keyspace_bytes ").unwrap_or_default();
    assert!(held > 240_000, "keyspace bytes {held}");
    let view = group.members_view(follower).await.unwrap_or_default();
    assert_eq!(view["etcd"]["nospace_alarm"], true, "/members: {view}");
    assert_eq!(view["etcd"]["quota_bytes"], 262_144, "/members: {view}");

    // kill -9 of the leader; back from its disk, it still refuses.
    group.kill9(leader);
    group.start(leader)?;
    group.agreed_leader(&[1, 2, 3], SETTLE).await?;
    let restarted = at(&group, leader);
    agora_tests::eventually("the restarted leader lists the alarm", SETTLE, || async {
        lists_nospace_of(&restarted, follower).then_some(())
    })
    .await?;
    let (ok, _, err) = etcdctl(&restarted, &["put", "/quota/tiny", "x"])?;
    assert!(!ok && err.contains(NOSPACE), "{err}");
    for id in [1, 2, 3] {
        let keys = keys_on(&format!("http://{}", at(&group, id)), "/quota/", true).await?;
        assert_eq!(
            keys.len(),
            acknowledged,
            "member {id} lost an acknowledged put"
        );
    }

    // etcd's runbook: delete, compact at the delete, defragment, disarm.
    let deleted: Value = serde_json::from_str(&etcdctl_ok(
        &restarted,
        &["del", "--prefix", "/quota/", "-w", "json"],
    )?)?;
    let revision = deleted["header"]["revision"].as_i64().unwrap_or_default();
    assert_eq!(
        deleted["deleted"].as_u64(),
        Some(acknowledged as u64),
        "{deleted}"
    );
    etcdctl_ok(
        &restarted,
        &["compaction", "--physical", &revision.to_string()],
    )?;
    etcdctl_ok(&restarted, &["defrag", "--cluster"])?;
    let disarmed = etcdctl_ok(&restarted, &["alarm", "disarm"])?;
    assert!(disarmed.contains("alarm:NOSPACE"), "{disarmed}");
    for id in [1, 2, 3] {
        assert_eq!(
            etcdctl_ok(&at(&group, id), &["alarm", "list"])?,
            "",
            "member {id}"
        );
    }
    for i in 0..acknowledged / 2 {
        etcdctl_ok(
            &at(&group, follower),
            &["put", &format!("/quota/r{i:03}"), &value],
        )?;
    }
    Ok(())
}
