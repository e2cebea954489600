//! A real etcd server for tests: each call spawns its own `etcd` (Debian's
//! 3.4 at /usr/bin/etcd) on free loopback ports with a temporary data dir,
//! and kills it on drop. Without the binary a test skips with a note,
//! except under `CI=true`, where a missing etcd is a failure rather than a
//! silent pass.
use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agora_marathon::store::{Store, StoreConfig};
use anyhow::{Context, bail, ensure};
use tokio::time::Instant;

const ETCD: &str = "/usr/bin/etcd";
/// Generous: the machine running these may be a loaded 2-core box.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One etcd server process, with its data dir; killed on drop.
pub(crate) struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

/// Two distinct loopback ports nobody listens on now; both listeners are
/// held until both ports are known (asked one at a time, the kernel may
/// hand the same port out twice).
pub(crate) fn free_port_pair() -> anyhow::Result<(u16, u16)> {
    let first = TcpListener::bind("127.0.0.1:0")?;
    let second = TcpListener::bind("127.0.0.1:0")?;
    Ok((first.local_addr()?.port(), second.local_addr()?.port()))
}

impl Etcd {
    /// Starts a fresh etcd, or `None` (skip) when the binary is missing outside CI.
    pub(crate) async fn start() -> anyhow::Result<Option<Etcd>> {
        if !Path::new(ETCD).exists() {
            if std::env::var("CI").as_deref() == Ok("true") {
                bail!("{ETCD} is missing and CI=true: install etcd-server");
            }
            eprintln!("skipping: {ETCD} is missing (install etcd-server)");
            return Ok(None);
        }
        let (client_port, peer_port) = free_port_pair()?;
        let mut etcd = Etcd {
            child: None,
            dir: tempfile::tempdir()?,
            client_port,
            peer_port,
        };
        etcd.spawn().await?;
        Ok(Some(etcd))
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Starts the process on the data dir and waits until it answers.
    pub(crate) async fn spawn(&mut self) -> anyhow::Result<()> {
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))?;
        let child = Command::new(ETCD)
            .args(["--name", "t", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("t={peer}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawn etcd")?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(mut c) = etcd_client::Client::connect([self.url()], None).await
                && tokio::time::timeout(Duration::from_secs(2), c.get("ready?", None))
                    .await
                    .is_ok_and(|r| r.is_ok())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join("etcd.log"))?;
                bail!("etcd did not answer within {READY_TIMEOUT:?}; log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn pid(&self) -> anyhow::Result<u32> {
        Ok(self.child.as_ref().context("etcd not running")?.id())
    }

    pub(crate) fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid()?.to_string())
            .status()?;
        ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn config(&self) -> StoreConfig {
        StoreConfig {
            endpoints: vec![self.url()],
            prefix: "/marathon".to_owned(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
        }
    }

    pub(crate) async fn store(&self) -> anyhow::Result<Store> {
        Ok(Store::connect(self.config()).await?)
    }

    pub(crate) async fn client(&self) -> anyhow::Result<etcd_client::Client> {
        Ok(etcd_client::Client::connect([self.url()], None).await?)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh etcd, or returns `Ok(())` from the test (a skip) when there is
/// none to run.
macro_rules! etcd_or_skip {
    () => {
        match $crate::support::etcd::Etcd::start().await? {
            Some(etcd) => etcd,
            None => return Ok(()),
        }
    };
}

pub(crate) use etcd_or_skip;
