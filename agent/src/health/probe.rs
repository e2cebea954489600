//! The probing half of health checks: one Tokio task per checked task, which
//! waits `delay`, then probes every `interval` and sends each result to the
//! event loop. All decisions are made by `HealthTracker` in the loop.
use std::collections::BTreeMap;
use std::time::Duration;

use agora_model::{HealthCheck, HealthCheckKind};
use agora_runtime::ContainerHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::event_loop::{Event, TaskKey};
use crate::runtimes::Runtimes;

/// Longest HTTP status line we read; a real one is ~20 bytes.
const MAX_STATUS_LINE: usize = 1024;

/// Is `status_line` (e.g. `HTTP/1.1 204 No Content`) a healthy answer
/// (200-399)?
pub(crate) fn http_status_healthy(status_line: &str) -> bool {
    let mut parts = status_line.split_whitespace();
    let proto_ok = parts.next().is_some_and(|p| p.starts_with("HTTP/"));
    let code: Option<u16> = parts.next().and_then(|c| c.parse().ok());
    proto_ok && code.is_some_and(|c| (200..400).contains(&c))
}

/// One HTTP/1.0 GET on 127.0.0.1:port; only the status line is read.
async fn probe_http(port: u16, path: &str) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let req =
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: agora-agent\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < MAX_STATUS_LINE {
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if http_status_healthy(&line) {
        Ok(())
    } else {
        Err(format!("answered {line:?}"))
    }
}

/// Runs one probe with the check's timeout. `Err` carries why it failed.
pub(crate) async fn probe_once(
    check: &HealthCheck,
    handle: &ContainerHandle,
    env: &BTreeMap<String, String>,
    runtimes: &Runtimes,
) -> Result<(), String> {
    let fut = async {
        match &check.kind {
            HealthCheckKind::Http { port, path } => probe_http(*port, path).await,
            HealthCheckKind::Tcp { port } => TcpStream::connect(("127.0.0.1", *port))
                .await
                .map(drop)
                .map_err(|e| format!("connect: {e}")),
            HealthCheckKind::Command { value } => {
                match runtimes.exec(handle, value, env, check.timeout).await {
                    Ok(0) => Ok(()),
                    Ok(code) => Err(format!("command exited with {code}")),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    };
    match tokio::time::timeout(check.timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("timed out after {:?}", check.timeout)),
    }
}

/// Probes forever (the event loop aborts this task when the task ends).
pub(crate) async fn run(
    key: TaskKey,
    container_id: String,
    check: HealthCheck,
    handle: ContainerHandle,
    env: BTreeMap<String, String>,
    runtimes: Runtimes,
    events: mpsc::Sender<Event>,
) {
    tokio::time::sleep(check.delay).await;
    loop {
        let started = tokio::time::Instant::now();
        let result = probe_once(&check, &handle, &env, &runtimes).await;
        let ev = Event::HealthResult {
            key: key.clone(),
            container_id: container_id.clone(),
            result,
        };
        if events.send(ev).await.is_err() {
            return;
        }
        let spent = started.elapsed();
        tokio::time::sleep(
            check
                .interval
                .saturating_sub(spent)
                .max(Duration::from_millis(10)),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert!(http_status_healthy("HTTP/1.0 200 OK"));
        assert!(http_status_healthy("HTTP/1.1 302 Found"));
        assert!(!http_status_healthy("HTTP/1.1 404 Not Found"));
        assert!(!http_status_healthy("HTTP/1.1 500 Oops"));
        assert!(!http_status_healthy("SSH-2.0-OpenSSH"));
        assert!(!http_status_healthy(""));
    }

    #[tokio::test]
    async fn http_probe_against_a_real_socket() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            for answer in ["HTTP/1.0 200 OK\r\n\r\n", "HTTP/1.0 503 Busy\r\n\r\n"] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        assert!(probe_http(port, "/").await.is_ok());
        assert!(probe_http(port, "/").await.is_err());
    }
}
