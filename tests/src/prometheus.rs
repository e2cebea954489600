//! A real Prometheus server (Debian package `prometheus`) scraping a test
//! cluster, so dashboards' queries can be run against live data, and
//! `promtool check rules` for the rules written from them.
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::http::http_get;

/// The Prometheus binary the tests run.
const PROMETHEUS: &str = "prometheus";

/// How often the test server scrapes: short, so rates have samples within
/// seconds of the targets coming up.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);

/// Whether `prometheus` and `promtool` are installed; a missing one is a
/// failure under `CI=true` and a skip (with a note naming `test`)
/// otherwise.
pub fn available(test: &str) -> bool {
    let runs = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if runs(PROMETHEUS) && runs("promtool") {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: CI=true but prometheus is not installed (apt-get install prometheus)");
    }
    eprintln!(
        "SKIPPED {test}: prometheus is not installed (apt-get install prometheus); set CI=true to make this a failure"
    );
    false
}

/// A Prometheus process with a generated configuration and its own
/// storage in a temp dir; killed on drop.
pub struct TestPrometheus {
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl TestPrometheus {
    /// Starts Prometheus scraping each `(job, target)` every
    /// [`SCRAPE_INTERVAL`] and waits until it is ready.
    pub async fn start(targets: &[(&str, SocketAddr)]) -> anyhow::Result<TestPrometheus> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, scrape_config(targets))?;
        // Prometheus cannot report a port it chose, so take a free one and
        // hand it over (another process could grab it in between; rare).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawn prometheus")?;
        let p = TestPrometheus { addr, child, dir };
        let ready = crate::eventually("prometheus ready", Duration::from_secs(30), || async {
            let (code, _) = http_get(p.addr, "/-/ready").await.ok()?;
            (code == 200).then_some(())
        })
        .await;
        ready.with_context(|| p.log())?;
        Ok(p)
    }

    /// Its log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// A directory that lives as long as this server (for rules files).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Runs an instant query; the result vector (or an error carrying
    /// Prometheus' message).
    pub async fn query(&self, expr: &str) -> anyhow::Result<Vec<Value>> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let (code, body) = http_get(self.addr, &path).await?;
        let v: Value = serde_json::from_str(&body).with_context(|| format!("not JSON: {body}"))?;
        if code != 200 || v["status"] != "success" {
            anyhow::bail!("{expr}: HTTP {code}: {}", v["error"]);
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until every one of `n` targets is up and has been scraped at
    /// least three times (so a rate over a few seconds has samples).
    pub async fn wait_scraped(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let expr = format!("count(up == 1) == {n} and on () min(count_over_time(up[1m])) >= 3");
        let waited = crate::eventually("every target up and scraped", timeout, || async {
            let r = self.query(&expr).await.ok()?;
            (!r.is_empty()).then_some(())
        })
        .await;
        waited.with_context(|| format!("prometheus log:\n{}", self.log()))
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A configuration scraping each `(job, target)`.
fn scrape_config(targets: &[(&str, SocketAddr)]) -> String {
    let secs = SCRAPE_INTERVAL.as_secs();
    let mut out = format!(
        "global:\n  scrape_interval: {secs}s\n  scrape_timeout: {secs}s\n  evaluation_interval: {secs}s\nscrape_configs:\n"
    );
    for (i, (job, addr)) in targets.iter().enumerate() {
        // One scrape config per target: jobs may repeat (two agents).
        out.push_str(&format!(
            "  - job_name: \"{job}-{i}\"\n    static_configs:\n      - targets: [\"{addr}\"]\n        labels: {{component: \"{job}\"}}\n"
        ));
    }
    out
}

/// Runs `promtool check rules` on `path`: whether it passed, and what it said.
pub fn check_rules(path: &std::path::Path) -> anyhow::Result<(bool, String)> {
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(path)
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), said))
}

/// `s` with every byte outside RFC 3986's unreserved set percent-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_encoding_keeps_unreserved_bytes() {
        assert_eq!(
            super::percent_encode(r#"sum by (a) (x{b="c"}[1m])"#),
            "sum%20by%20%28a%29%20%28x%7Bb%3D%22c%22%7D%5B1m%5D%29"
        );
    }

    #[test]
    fn the_config_has_one_scrape_job_per_target() {
        let a = "127.0.0.1:1".parse().unwrap();
        let text = super::scrape_config(&[("agent", a), ("agent", a)]);
        assert_eq!(text.matches("job_name:").count(), 2, "{text}");
        assert!(text.contains("job_name: \"agent-1\""), "{text}");
    }
}
