//! The masters' group changed with etcdctl, as an etcd operator would:
//! `member add` first (through a follower), then the new master started
//! with `--join`; it publishes its own etcd address and serves; moved to a
//! new address with `member update` and a restart, it catches up; requests
//! etcd refuses are refused with etcd's errors and change nothing; the
//! leader itself is removed through a follower (it hands leadership over
//! first) and stops serving, and the rest go on.
use std::process::Command;

use serde_json::Value;

use super::group::MasterGroup;
use super::{EXTRA, SETTLE, etcdctl_present, keys_on, put_acknowledged};

/// etcdctl against `endpoint`: its exit status, stdout and stderr.
pub(super) fn etcdctl(endpoint: &str, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let out = Command::new("etcdctl")
        .args(["--endpoints", endpoint, "--command-timeout=10s"])
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// etcdctl that must succeed; its stdout.
pub(super) fn etcdctl_ok(endpoint: &str, args: &[&str]) -> anyhow::Result<String> {
    let (ok, out, err) = etcdctl(endpoint, args)?;
    anyhow::ensure!(ok, "etcdctl {}: {err}{out}", args.join(" "));
    Ok(out)
}

/// etcdctl that must fail; its stderr.
fn etcdctl_refused(endpoint: &str, args: &[&str]) -> anyhow::Result<String> {
    let (ok, out, err) = etcdctl(endpoint, args)?;
    anyhow::ensure!(!ok, "etcdctl {} succeeded: {out}", args.join(" "));
    Ok(err)
}

/// `member list -w json` on `endpoint`: each member's id and client URLs.
fn member_list(endpoint: &str) -> anyhow::Result<Vec<(u64, Vec<String>)>> {
    let listed: Value =
        serde_json::from_str(&etcdctl_ok(endpoint, &["member", "list", "-w", "json"])?)?;
    let members = listed["members"].as_array().cloned().unwrap_or_default();
    Ok(members
        .iter()
        .map(|m| {
            let urls = m["clientURLs"].as_array().cloned().unwrap_or_default();
            let urls = urls.iter().filter_map(|u| u.as_str().map(str::to_string));
            (m["ID"].as_u64().unwrap_or(0), urls.collect())
        })
        .collect())
}

#[tokio::test]
async fn etcdctl_adds_and_removes_masters() -> anyhow::Result<()> {
    if !etcdctl_present() {
        return Ok(());
    }
    let mut group = MasterGroup::loopback(3, EXTRA)?;
    let leader = group.agreed_leader(&[1, 2, 3], SETTLE).await?;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap_or(1);
    let at = |group: &MasterGroup, id: u64| group.members[&id].etcd.to_string();
    for i in 0..20 {
        put_acknowledged(&group.etcd_endpoints(), &format!("/em/k{i:02}"), "v").await?;
    }

    // Added before it runs, as etcd's runbook has it; through a follower.
    let (api4, etcd4) = group.reserve_joining(4)?;
    let peer_url = format!("--peer-urls=http://{api4}");
    // etcdctl's own printout: the id (in hex), and the environment for the
    // new member, whose initial cluster lists all four (etcdctl asks the
    // same member for the list right after the add).
    let added = etcdctl_ok(&at(&group, follower), &["member", "add", "m4", &peer_url])?;
    let id = added.split_whitespace().nth(1).unwrap_or_default();
    assert_eq!(
        u64::from_str_radix(id, 16).ok(),
        Some(4),
        "a fresh id: {added}"
    );
    let initial = (added.lines())
        .find_map(|line| line.strip_prefix("ETCD_INITIAL_CLUSTER="))
        .unwrap_or_default();
    assert_eq!(initial.split(',').count(), 4, "{added}");
    assert!(initial.contains(&format!("m4=http://{api4}")), "{added}");
    group.start(4)?;
    group.agreed_leader(&[1, 2, 3, 4], SETTLE).await?;
    let fourth = format!("http://{etcd4}");
    agora_tests::eventually("the new master has the keyspace", SETTLE, || async {
        (keys_on(&fourth, "/em/", true).await.ok()?.len() == 20).then_some(())
    })
    .await?;
    // It published its own etcd address (MemberAdd carries only the peer URL).
    agora_tests::eventually(
        "member list shows the new master's etcd URL",
        SETTLE,
        || async {
            let listed = member_list(&at(&group, 1)).ok()?;
            listed.contains(&(4, vec![fourth.clone()])).then_some(())
        },
    )
    .await?;
    put_acknowledged(
        std::slice::from_ref(&etcd4.to_string()),
        "/em/through-4",
        "1",
    )
    .await?;

    // Moved, as etcd's runbook moves a member: stopped, its peer URL
    // updated, restarted at the new address; it catches up from there.
    group.kill9(4);
    let moved = format!("--peer-urls=http://{}", group.move_api_port(4)?);
    etcdctl_ok(&at(&group, 1), &["member", "update", "4", &moved])?;
    let founders: Vec<String> = [1, 2, 3].map(|id| at(&group, id)).into();
    put_acknowledged(&founders, "/em/while-moved", "1").await?;
    group.start(4)?;
    agora_tests::eventually("the moved master catches up", SETTLE, || async {
        (keys_on(&fourth, "/em/", false).await.ok()?.len() == 22).then_some(())
    })
    .await?;

    // Requests etcd refuses, refused alike; the group stays as it was.
    let one = &at(&group, 1);
    let taken = format!("--peer-urls=http://{}", group.members[&2].api);
    let nobody = ["member", "update", "ffff", "--peer-urls=http://127.0.0.1:1"];
    let refusals: [(&[&str], &str); 8] = [
        (
            &["member", "add", "x", "--peer-urls=https://127.0.0.1:1"],
            "given member URLs are invalid",
        ),
        (
            &["member", "add", "x", "--peer-urls=http://a:1,http://b:2"],
            "given member URLs are invalid",
        ),
        (&["member", "add", "x", &taken], "Peer URLs already exists"),
        (
            &[
                "member",
                "add",
                "x",
                "--peer-urls=http://127.0.0.1:1",
                "--learner",
            ],
            "not supported",
        ),
        (&["member", "remove", "ffff"], "member not found"),
        (&nobody, "member not found"),
        (
            &["member", "update", "4", &taken],
            "Peer URLs already exists",
        ),
        (
            &["member", "promote", "4"],
            "can only promote a learner member",
        ),
    ];
    for (args, expected) in refusals {
        let said = etcdctl_refused(one, args)?;
        assert!(said.contains(expected), "etcdctl {args:?}: {said}");
    }
    let listed = member_list(one)?;
    let ids: Vec<u64> = listed.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 4, "{listed:?}");

    // The leader, removed through a follower: it hands leadership over and
    // stops serving; the other three go on with every key.
    let leader = group.agreed_leader(&[1, 2, 3, 4], SETTLE).await?;
    let asked = [1, 2, 3, 4]
        .into_iter()
        .find(|id| *id != leader)
        .unwrap_or(1);
    etcdctl_ok(
        &at(&group, asked),
        &["member", "remove", &format!("{leader:x}")],
    )?;
    let rest: Vec<u64> = [1, 2, 3, 4]
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let new_leader = group.agreed_leader(&rest, SETTLE).await?;
    assert_ne!(new_leader, leader);
    let listed = member_list(&at(&group, asked))?;
    let ids: Vec<u64> = listed.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, rest, "{listed:?}");
    let endpoints: Vec<String> = rest
        .iter()
        .map(|id| format!("http://{}", at(&group, *id)))
        .collect();
    put_acknowledged(&endpoints, "/em/after", "1").await?;
    for endpoint in &endpoints {
        assert_eq!(
            keys_on(endpoint, "/em/", false).await?.len(),
            23,
            "{endpoint}"
        );
    }
    let removed = at(&group, leader);
    agora_tests::eventually("the removed master refuses writes", SETTLE, || async {
        let (ok, _, _) = etcdctl(&removed, &["put", "/em/to-removed", "1"]).ok()?;
        (!ok).then_some(())
    })
    .await?;
    Ok(())
}
