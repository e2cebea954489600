//! The space quota, as an etcd operator meets it: writes past the quota
//! are refused with etcd's "database space exceeded" and the NOSPACE
//! alarm, which `etcdctl alarm list` and `endpoint status` show; reads and
//! deletes go on; compaction, defragmentation and `etcdctl alarm disarm`
//! bring writes back. Nothing acknowledged before the refusal is lost.

use std::sync::Arc;

use agora_etcd::{Limits, LocalConfig, ServerConfig, SystemClock};
use etcd_client::{DeleteOptions, GetOptions};

use crate::etcdctl::{etcdctl_available, ok, run};
use crate::harness::TestServer;

const QUOTA_BYTES: u64 = 64 * 1024;
const NOSPACE: &str = "etcdserver: mvcc: database space exceeded";

async fn ok_with_stdin(server: &TestServer, args: &[&str], stdin: &str) -> String {
    let (success, stdout, stderr) = run(server, args, Some(stdin)).await;
    assert!(success, "etcdctl {args:?} failed: {stderr}");
    stdout
}

async fn quota_server() -> TestServer {
    let server = ServerConfig {
        limits: Limits {
            quota_backend_bytes: QUOTA_BYTES,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    TestServer::start_with(LocalConfig::default(), server, Arc::new(SystemClock::new())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_meets_the_space_quota_and_recovers_as_with_etcd() {
    if !etcdctl_available() {
        return;
    }
    let server = quota_server().await;
    let value = "v".repeat(4096);
    let mut acknowledged = 0;
    let refusal = loop {
        let key = format!("q/{acknowledged:03}");
        let (success, _, stderr) = run(&server, &["put", &key, &value], None).await;
        if !success {
            break stderr;
        }
        acknowledged += 1;
        assert!(
            acknowledged < 100,
            "100 puts of 4 KiB passed a 64 KiB quota"
        );
    };
    assert!(refusal.contains(NOSPACE), "{refusal}");
    assert!(
        acknowledged >= 8,
        "only {acknowledged} puts fitted in 64 KiB"
    );

    let alarms = ok(&server, &["alarm", "list"]).await;
    assert!(alarms.contains("memberID:1 alarm:NOSPACE"), "{alarms}");
    let status = ok(&server, &["endpoint", "status", "-w", "json"]).await;
    assert!(status.contains("alarm:NOSPACE"), "{status}");
    // The alarm refuses even a write that would fit, and lease grants.
    let (success, _, stderr) = run(&server, &["put", "tiny", "x"], None).await;
    assert!(!success && stderr.contains(NOSPACE), "{stderr}");
    let (success, _, stderr) = run(&server, &["lease", "grant", "60"], None).await;
    assert!(!success && stderr.contains(NOSPACE), "{stderr}");
    // A txn that only reads still answers.
    let read = ok_with_stdin(&server, &["txn"], "\nget q/000 --print-value-only\n\n\n").await;
    assert!(read.contains("SUCCESS"), "{read}");

    // Reads go on, and every acknowledged put is there.
    let keys = ok(&server, &["get", "q/", "--prefix", "--keys-only"]).await;
    let listed = keys.lines().filter(|line| line.starts_with("q/")).count();
    assert_eq!(listed as i64, acknowledged, "{keys}");
    // The operator frees space: delete, compact at the delete, defragment,
    // disarm.
    let mut client = server.client().await;
    let deleted = client
        .delete("q/", Some(DeleteOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(deleted.deleted(), acknowledged);
    let revision = deleted.header().unwrap().revision();
    ok(
        &server,
        &["compaction", "--physical", &revision.to_string()],
    )
    .await;
    ok(&server, &["defrag"]).await;
    let (success, _, stderr) = run(&server, &["put", "tiny", "x"], None).await;
    assert!(
        !success && stderr.contains(NOSPACE),
        "the alarm stands until disarmed: {stderr}"
    );
    let disarmed = ok(&server, &["alarm", "disarm"]).await;
    assert!(disarmed.contains("memberID:1 alarm:NOSPACE"), "{disarmed}");
    assert_eq!(ok(&server, &["alarm", "list"]).await, "");

    // The space is back: all but one as many puts fit again (the deletes'
    // tombstones stay until a compaction past them, as etcd's).
    let refill = acknowledged - 1;
    for i in 0..refill {
        ok(&server, &["put", &format!("r/{i:03}"), &value]).await;
    }
    let again = client
        .get(
            "r/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!(again.count(), refill);
    server.shutdown().await;
}
