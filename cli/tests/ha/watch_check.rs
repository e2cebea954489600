//! A watcher that follows one prefix across leader changes: it resumes on
//! another member from the revision after the last one it saw, and checks
//! that events come ordered, without gaps and without duplicates (every
//! write under the prefix bumps the store's revision by one, and nothing
//! else writes during the test, so consecutive events differ by one).
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, WatchOptions};

/// What the watcher saw.
#[derive(Debug, Default)]
pub(crate) struct Watched {
    /// Revisions of every event, in arrival order.
    pub(crate) revisions: Vec<i64>,
    /// How many times it had to resume on a member.
    pub(crate) resumes: usize,
}

impl Watched {
    /// Ordered, gap-free and duplicate-free.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        for pair in self.revisions.windows(2) {
            anyhow::ensure!(
                pair[1] == pair[0] + 1,
                "watch events out of order, duplicated or missing: {} then {}",
                pair[0],
                pair[1]
            );
        }
        Ok(())
    }
}

/// Watches `prefix` from `start` until `done` is set and the watcher has
/// caught up with `until` (read once `done` is set), moving between
/// `endpoints` when a member fails.
pub(crate) async fn follow(
    endpoints: &[String],
    prefix: &str,
    start: i64,
    done: &AtomicBool,
    until: &std::sync::atomic::AtomicI64,
) -> Watched {
    let mut watched = Watched::default();
    let mut next = start;
    let mut endpoint = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(400);
    while tokio::time::Instant::now() < deadline {
        if done.load(Ordering::Relaxed) && next > until.load(Ordering::Relaxed) {
            break;
        }
        let target = endpoints[endpoint % endpoints.len()].clone();
        endpoint += 1;
        watched.resumes += 1;
        let _ = watch_from(&target, prefix, &mut next, &mut watched, done, until).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watched
}

/// One watch on one member until it fails or the watcher is done.
async fn watch_from(
    endpoint: &str,
    prefix: &str,
    next: &mut i64,
    watched: &mut Watched,
    done: &AtomicBool,
    until: &std::sync::atomic::AtomicI64,
) -> anyhow::Result<()> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2));
    let mut client = Client::connect([endpoint], Some(options)).await?;
    let watch = WatchOptions::new()
        .with_prefix()
        .with_start_revision(*next)
        .with_progress_notify();
    let mut stream = client.watch(prefix, Some(watch)).await?;
    loop {
        if done.load(Ordering::Relaxed) && *next > until.load(Ordering::Relaxed) {
            return Ok(());
        }
        let message = tokio::time::timeout(Duration::from_secs(3), stream.message()).await;
        let Ok(Ok(Some(response))) = message else {
            anyhow::bail!("watch on {endpoint} ended or stalled");
        };
        if response.canceled() {
            anyhow::bail!("watch cancelled: {}", response.cancel_reason());
        }
        for event in response.events() {
            if let Some(kv) = event.kv() {
                watched.revisions.push(kv.mod_revision());
                *next = kv.mod_revision() + 1;
            }
        }
    }
}
