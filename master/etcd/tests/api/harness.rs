//! Starts an API server on a free local port over a fresh `LocalBackend`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use agora_etcd::{Clock, LocalBackend, LocalConfig, ServerConfig, SystemClock};
use agora_kv::Millis;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A clock the test moves by hand, so lease expiry needs no sleeping.
#[derive(Debug, Default)]
pub(crate) struct ManualClock(AtomicI64);

impl ManualClock {
    pub(crate) fn advance(&self, by: Duration) {
        let by = Millis::try_from(by.as_millis()).unwrap();
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), agora_etcd::ServeError>>>,
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        TestServer::start_with(
            LocalConfig::default(),
            ServerConfig::default(),
            Arc::new(SystemClock::new()),
        )
        .await
    }

    pub(crate) async fn start_with(
        mut local: LocalConfig,
        server: ServerConfig,
        clock: Arc<dyn Clock>,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        local.member.client_urls = vec![format!("http://{addr}")];
        local.member.peer_urls = vec!["http://127.0.0.1:2380".to_string()];
        let backend = LocalBackend::start(local, clock);
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = agora_etcd::serve_with(server, listener, Arc::new(backend), async {
            let _ = stopped.await;
        });
        let task = tokio::spawn(serving);
        TestServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub(crate) fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    pub(crate) async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.endpoint()], None)
            .await
            .unwrap()
    }

    /// Stops the server and checks it stopped cleanly, open streams and all.
    pub(crate) async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("server did not stop within 10 s")
            .unwrap()
            .unwrap();
    }
}

/// A local config whose leases are checked often, for expiry tests.
pub(crate) fn fast_expiry() -> LocalConfig {
    LocalConfig {
        expiry_interval: Duration::from_millis(20),
        ..LocalConfig::default()
    }
}

/// Polls `check` every 20 ms until it holds, for at most `limit`.
pub(crate) async fn eventually<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next response on a watch stream, within 5 s.
pub(crate) async fn next(stream: &mut etcd_client::WatchStream) -> etcd_client::WatchResponse {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("no watch response within 5 s")
        .unwrap()
        .expect("watch stream ended")
}

/// Opens a watch stream and reads its created notice; answers the stream
/// and the watch id.
pub(crate) async fn watch(
    client: &mut etcd_client::Client,
    key: &str,
    options: Option<etcd_client::WatchOptions>,
) -> (etcd_client::WatchStream, i64) {
    let mut stream = client.watch(key, options).await.unwrap();
    let created = next(&mut stream).await;
    assert!(
        created.created(),
        "first watch response is not a created notice"
    );
    (stream, created.watch_id())
}
