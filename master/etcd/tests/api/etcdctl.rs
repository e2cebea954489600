//! etcd's own command-line client (etcdctl 3.4, Debian's `etcd-client`
//! package) against the API. Skipped with a message where etcdctl is not
//! installed, unless `CI=true`: there a missing etcdctl is a failure.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::harness::TestServer;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Whether to run: false (with a note) if etcdctl is missing outside CI.
pub(crate) fn etcdctl_available() -> bool {
    let found = std::process::Command::new("etcdctl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "etcdctl is missing and CI=true: install Debian's etcd-client package"
        );
        // Straight to the process's stderr: libtest captures eprintln! of a
        // passing test, and a skip should be seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: etcdctl not installed (apt-get install etcd-client)"
        );
    }
    found
}

fn etcdctl(server: &TestServer) -> Command {
    etcdctl_at(&server.endpoint())
}

/// etcdctl pointed at `endpoint`, `host:port` or a URL.
fn etcdctl_at(endpoint: &str) -> Command {
    let mut command = Command::new("etcdctl");
    command
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--dial-timeout=3s")
        .arg("--command-timeout=10s")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs etcdctl to completion; answers (success, stdout, stderr).
pub(crate) async fn run(
    server: &TestServer,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    run_at(&server.endpoint(), args, stdin).await
}

/// [`run`] against `endpoint`, `host:port` or a URL.
async fn run_at(endpoint: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut command = etcdctl_at(endpoint);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
    }
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .expect("etcdctl hung")
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) async fn ok(server: &TestServer, args: &[&str]) -> String {
    let (success, stdout, stderr) = run(server, args, None).await;
    assert!(success, "etcdctl {args:?} failed: {stderr}");
    stdout
}

/// Starts a long-running etcdctl and returns its first `n` output lines.
async fn first_lines(
    server: &TestServer,
    args: &[&str],
    n: usize,
) -> (tokio::process::Child, Vec<String>) {
    let mut child = etcdctl(server)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut got = Vec::new();
    while got.len() < n {
        let line = tokio::time::timeout(TIMEOUT, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("etcdctl {args:?} printed only {got:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("etcdctl {args:?} ended after {got:?}"));
        got.push(line);
    }
    (child, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_put_get_prefix_delete_and_txn() {
    if !etcdctl_available() {
        return;
    }
    let server = TestServer::start().await;
    assert_eq!(ok(&server, &["put", "app/a", "1"]).await, "OK\n");
    ok(&server, &["put", "app/b", "2"]).await;
    ok(&server, &["put", "zzz", "3"]).await;
    assert_eq!(ok(&server, &["get", "app/a"]).await, "app/a\n1\n");
    assert_eq!(
        ok(&server, &["get", "--prefix", "app/"]).await,
        "app/a\n1\napp/b\n2\n"
    );
    let json = ok(&server, &["get", "app/a", "-w", "json"]).await;
    assert!(json.contains("\"revision\":4"), "{json}");

    let txn = "value(\"app/a\") = \"1\"\n\nput app/a 10\n\nput app/a failed\n\n";
    let (success, stdout, stderr) = run(&server, &["txn"], Some(txn)).await;
    assert!(success, "{stderr}");
    assert!(stdout.starts_with("SUCCESS"), "{stdout}");
    assert_eq!(
        ok(&server, &["get", "app/a", "--print-value-only"]).await,
        "10\n"
    );

    assert_eq!(ok(&server, &["del", "--prefix", "app/"]).await, "2\n");
    assert_eq!(ok(&server, &["get", "--prefix", "app/"]).await, "");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_watch_from_a_revision() {
    if !etcdctl_available() {
        return;
    }
    let server = TestServer::start().await;
    ok(&server, &["put", "w", "1"]).await; // revision 2
    ok(&server, &["put", "w", "2"]).await; // revision 3
    let (mut watch, lines) = first_lines(&server, &["watch", "w", "--rev=2"], 6).await;
    assert_eq!(lines, ["PUT", "w", "1", "PUT", "w", "2"]);
    watch.kill().await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_lease_grant_keep_alive_and_errors() {
    if !etcdctl_available() {
        return;
    }
    let server = TestServer::start().await;
    let granted = ok(&server, &["lease", "grant", "60"]).await;
    // "lease 1 granted with TTL(60s)"
    let id = granted.split_whitespace().nth(1).unwrap().to_string();
    assert!(granted.contains("granted with TTL(60s)"), "{granted}");
    let kept = ok(&server, &["lease", "keep-alive", "--once", &id]).await;
    assert!(kept.contains("keepalived with TTL(60)"), "{kept}");
    ok(&server, &["put", "--lease", &id, "leased", "v"]).await;
    let ttl = ok(&server, &["lease", "timetolive", "--keys", &id]).await;
    assert!(
        ttl.contains("granted with TTL(60s)") && ttl.contains("leased"),
        "{ttl}"
    );
    let leases = ok(&server, &["lease", "list"]).await;
    assert!(leases.contains(&id), "{leases}");
    ok(&server, &["lease", "revoke", &id]).await;
    assert_eq!(ok(&server, &["get", "leased"]).await, "");

    let (success, _, stderr) = run(&server, &["put", "--lease", "abc", "k", "v"], None).await;
    assert!(!success);
    assert!(
        stderr.contains("etcdserver: requested lease not found"),
        "{stderr}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_lock_and_elect() {
    if !etcdctl_available() {
        return;
    }
    let server = TestServer::start().await;
    // With a command, etcdctl holds the lock while it runs, then releases.
    let out = ok(&server, &["lock", "mylock", "echo", "locked"]).await;
    assert_eq!(out, "locked\n");
    let again = ok(&server, &["lock", "mylock", "echo", "again"]).await;
    assert_eq!(again, "again\n");

    let (mut leader, lines) = first_lines(&server, &["elect", "myelection", "first"], 2).await;
    assert!(lines[0].starts_with("myelection/"), "{lines:?}");
    assert_eq!(lines[1], "first");
    let (mut observer, seen) = first_lines(&server, &["elect", "-l", "myelection"], 2).await;
    assert_eq!(seen[1], "first");
    observer.kill().await.unwrap();
    leader.kill().await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_member_list_and_endpoint_status() {
    if !etcdctl_available() {
        return;
    }
    let server = TestServer::start().await;
    let members = ok(&server, &["member", "list"]).await;
    let expected = format!(
        "1, started, agora, http://127.0.0.1:2380, http://{}, false\n",
        server.addr
    );
    assert_eq!(members, expected);
    let status = ok(&server, &["endpoint", "status"]).await;
    assert!(status.contains("3.4.0"), "{status}");
    assert!(status.contains(", true, false, 1,"), "{status}");
    // etcdctl 3.4 prints the health report on stderr.
    let (healthy, stdout, stderr) = run(&server, &["endpoint", "health"], None).await;
    assert!(healthy, "{stdout}{stderr}");
    assert!(
        stderr.contains("is healthy"),
        "stdout: {stdout} stderr: {stderr}"
    );
    server.shutdown().await;
}

/// The endpoint form etcd documents, a URL with a scheme, works as the
/// bare `host:port` does (etcdctl 3.4 sends only `host:port` as the HTTP/2
/// :authority), and so do `--cluster` commands, which dial the client URLs
/// MemberList reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_with_an_http_url_endpoint() {
    if !etcdctl_available() {
        return;
    }
    let server = TestServer::start().await;
    let url = format!("http://{}", server.addr);
    let ok_at = |args: &'static [&'static str]| {
        let url = url.clone();
        async move {
            let (success, stdout, stderr) = run_at(&url, args, None).await;
            assert!(
                success,
                "etcdctl --endpoints={url} {args:?} failed: {stderr}"
            );
            stdout
        }
    };
    assert_eq!(ok_at(&["put", "k", "v"]).await, "OK\n");
    assert_eq!(ok_at(&["get", "k"]).await, "k\nv\n");
    let members = ok_at(&["member", "list"]).await;
    assert!(members.contains(&format!(", {url}, false")), "{members}");
    let status = ok_at(&["endpoint", "status", "--cluster"]).await;
    assert!(status.starts_with(&format!("{url}, 1, 3.4.0,")), "{status}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_sees_etcds_errors() {
    if !etcdctl_available() {
        return;
    }
    let server = TestServer::start().await;
    for value in ["1", "2", "3"] {
        ok(&server, &["put", "k", value]).await;
    }
    ok(&server, &["compaction", "3"]).await;
    let (success, _, stderr) = run(&server, &["get", "k", "--rev=1"], None).await;
    assert!(!success);
    assert!(
        stderr.contains("etcdserver: mvcc: required revision has been compacted"),
        "{stderr}"
    );
    // The value comes on stdin when it is not an argument.
    let big = "x".repeat(1_700_000);
    let (success, _, stderr) = run(&server, &["put", "big"], Some(&big)).await;
    assert!(!success);
    assert!(
        stderr.contains("etcdserver: request is too large"),
        "{stderr}"
    );
    let txn = "\nput a 1\nput a 2\n\n\n";
    let (success, _, stderr) = run(&server, &["txn"], Some(txn)).await;
    assert!(!success);
    assert!(
        stderr.contains("etcdserver: duplicate key given in txn request"),
        "{stderr}"
    );
    assert_eq!(
        ok(&server, &["get", "k", "--print-value-only"]).await,
        "3\n"
    );
    server.shutdown().await;
}
