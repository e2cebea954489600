//! A real 3-member etcd (Debian's etcd-server 3.4) on loopback: record
//! 10,000+ ops from 8 clients while the leader is killed with SIGKILL and
//! restarted, then check the history. etcd is linearizable, so any
//! violation is a bug in the recorder or the checker (or in etcd).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agora_lincheck::{
    Call, History, Operation, Outcome, RecordConfig, Ret, Verdict, check, record,
};
use etcd_client::{Client, ConnectOptions};

const MEMBERS: usize = 3;

/// The etcd binary, if installed.
fn etcd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
}

/// Three members whose processes are killed on drop, also on a panic.
struct EtcdCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    // (client port, peer port) per member
    ports: Vec<(u16, u16)>,
    children: Vec<Option<Child>>,
}

/// Free loopback ports: bound, read and released. Another process could
/// take one before etcd binds it; then the start fails visibly.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl EtcdCluster {
    fn start(bin: PathBuf) -> Self {
        let ports = free_ports(2 * MEMBERS);
        let ports = (0..MEMBERS)
            .map(|i| (ports[2 * i], ports[2 * i + 1]))
            .collect();
        let mut cluster = EtcdCluster {
            bin,
            dir: tempfile::tempdir().unwrap(),
            ports,
            children: (0..MEMBERS).map(|_| None).collect(),
        };
        for i in 0..MEMBERS {
            cluster.spawn(i);
        }
        cluster
    }

    fn endpoints(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|(c, _)| format!("http://127.0.0.1:{c}"))
            .collect()
    }

    fn spawn(&mut self, i: usize) {
        let initial: Vec<String> = self
            .ports
            .iter()
            .enumerate()
            .map(|(j, (_, p))| format!("m{j}=http://127.0.0.1:{p}"))
            .collect();
        let (client, peer) = self.ports[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(i))
            .unwrap();
        let child = Command::new(&self.bin)
            .args(["--name", &format!("m{i}")])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("m{i}")))
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{client}"),
            ])
            .args([
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{client}"),
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args(["--initial-cluster", &initial.join(",")])
            .args([
                "--initial-cluster-token",
                "lincheck",
                "--initial-cluster-state",
                "new",
            ])
            // Faster failover than the 100/1000 ms defaults, so that
            // several leader kills fit in a short run.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("m{i}.log"))
    }

    /// SIGKILL (std's `Child::kill`), then reap.
    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn logs(&self) -> String {
        (0..MEMBERS)
            .map(|i| tail(&self.log(i)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..MEMBERS {
            self.kill(i);
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "== {}\n{}",
        path.display(),
        lines[lines.len().saturating_sub(20)..].join("\n")
    )
}

async fn status_client(endpoint: &str) -> Option<Client> {
    let t = Duration::from_millis(500);
    let options = ConnectOptions::new()
        .with_connect_timeout(t)
        .with_timeout(t);
    Client::connect([endpoint], Some(options)).await.ok()
}

/// The index of the member that is leader, as its own Status says.
async fn leader(endpoints: &[String]) -> Option<usize> {
    for (i, ep) in endpoints.iter().enumerate() {
        let Some(mut client) = status_client(ep).await else {
            continue;
        };
        let Ok(Ok(status)) =
            tokio::time::timeout(Duration::from_millis(500), client.status()).await
        else {
            continue;
        };
        let me = status.header().map(|h| h.member_id());
        if status.leader() != 0 && me == Some(status.leader()) {
            return Some(i);
        }
    }
    None
}

async fn wait_for_leader(endpoints: &[String], within: Duration) -> Option<usize> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Some(i) = leader(endpoints).await {
            return Some(i);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Kills the leader with SIGKILL and restarts it, `rounds` times or until
/// `done`; returns how many kills happened.
async fn nemesis(
    cluster: &Mutex<EtcdCluster>,
    endpoints: &[String],
    done: &AtomicBool,
    rounds: usize,
) -> usize {
    let mut kills = 0;
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        if done.load(Ordering::Relaxed) {
            break;
        }
        let Some(i) = wait_for_leader(endpoints, Duration::from_secs(5)).await else {
            continue;
        };
        cluster.lock().unwrap().kill(i);
        kills += 1;
        eprintln!("nemesis: killed leader m{i}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.lock().unwrap().spawn(i);
    }
    kills
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_with_leader_kills_is_linearizable() {
    let Some(bin) = etcd_binary() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "etcd is not installed and CI=true: scripts/test installs etcd-server; install it"
            );
        }
        eprintln!(
            "SKIPPED etcd_with_leader_kills_is_linearizable: no etcd on PATH (apt-get install etcd-server)"
        );
        return;
    };
    let started = Instant::now();
    let cluster = Mutex::new(EtcdCluster::start(bin));
    let endpoints = cluster.lock().unwrap().endpoints();
    if wait_for_leader(&endpoints, Duration::from_secs(15))
        .await
        .is_none()
    {
        panic!(
            "etcd elected no leader in 15 s:\n{}",
            cluster.lock().unwrap().logs()
        );
    }
    let config = RecordConfig {
        clients: 8,
        keys: 8,
        max_ops: 10_000,
        max_duration: Duration::from_secs(40),
        op_timeout: Duration::from_millis(1000),
        ..RecordConfig::default()
    };
    let done = AtomicBool::new(false);
    let recording = async {
        let started = Instant::now();
        let h = record(&endpoints, config).await;
        eprintln!("recording took {:?}", started.elapsed());
        done.store(true, Ordering::Relaxed);
        h
    };
    let (history, kills) = tokio::join!(recording, nemesis(&cluster, &endpoints, &done, 3));
    let recorded = started.elapsed();
    let result = check(&history);
    eprintln!(
        "etcd: {} ops ({} unknown) from 8 clients, {kills} leader kills, {:?} since the cluster's start, checked in {:?}: {:?}",
        history.ops.len(),
        history.unknown(),
        recorded,
        result.stats.elapsed,
        result.stats
    );
    if let Verdict::NotLinearizable(v) = &result.verdict {
        panic!("{v}");
    }
    assert_eq!(result.verdict, Verdict::Linearizable);
    assert!(
        history.ops.len() >= 10_000,
        "only {} ops recorded:\n{}",
        history.ops.len(),
        cluster.lock().unwrap().logs()
    );
    assert!(
        kills >= 1,
        "the leader was never killed during the recording"
    );
    assert_mix(&history);
    assert_a_bad_read_is_caught(history);
}

/// The run exercised every call and both CAS branches; a recorder that
/// produced only one kind would make the check above nearly vacuous.
fn assert_mix(history: &History) {
    let count = |f: &dyn Fn(&Operation) -> bool| history.ops.iter().filter(|o| f(o)).count();
    let reads_found = count(&|o| {
        matches!(
            &o.outcome,
            Outcome::Ok {
                ret: Ret::Get(Some(_)),
                ..
            }
        )
    });
    let cas_ok = count(&|o| {
        matches!(
            &o.outcome,
            Outcome::Ok {
                ret: Ret::CasOk,
                ..
            }
        )
    });
    let cas_failed = count(&|o| {
        matches!(
            &o.outcome,
            Outcome::Ok {
                ret: Ret::CasFailed(_),
                ..
            }
        )
    });
    let deleted = count(&|o| {
        matches!(
            &o.outcome,
            Outcome::Ok {
                ret: Ret::Delete(1),
                ..
            }
        )
    });
    let puts = count(&|o| matches!(&o.call, Call::Put { .. }));
    eprintln!(
        "mix: {reads_found} reads of a value, {puts} puts, {cas_ok} CAS ok, {cas_failed} CAS failed, {deleted} deletes of a key"
    );
    assert!(reads_found > 100 && puts > 100 && cas_ok > 100 && cas_failed > 100 && deleted > 100);
}

/// Mutation check on real data: one read changed to a value nobody wrote
/// must be rejected, naming that read.
fn assert_a_bad_read_is_caught(mut history: History) {
    let i = history.ops.len() / 2
        + history.ops[history.ops.len() / 2..]
            .iter()
            .position(|o| {
                matches!(
                    o.outcome,
                    Outcome::Ok {
                        ret: Ret::Get(_),
                        ..
                    }
                )
            })
            .unwrap();
    if let Outcome::Ok { ret, .. } = &mut history.ops[i].outcome {
        *ret = Ret::Get(Some("never-written".to_string()));
    }
    match check(&history).verdict {
        Verdict::NotLinearizable(v) => {
            assert_eq!(v.key, history.ops[i].call.key());
            assert!(v.to_string().contains("never-written"), "{v}");
        }
        other => panic!("a read of an unwritten value was not caught: {other:?}"),
    }
}
