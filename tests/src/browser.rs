//! A real browser for the web pages' tests: headless Chromium from Debian's
//! `chromium` package, used two ways — `--dump-dom` / `--screenshot` runs
//! (the DOM after scripts ran; a PNG kept as a test artifact), and
//! chromedriver (Debian's `chromium-driver`) spoken to over the W3C
//! WebDriver protocol for interaction (typing into a form, clicking).
//!
//! Every run resolves no name but 127.0.0.1, so a page that tried to load
//! anything from elsewhere would show it.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// One WebDriver command (a page load included) takes at most this long.
const WEBDRIVER_TIMEOUT: Duration = Duration::from_secs(60);
/// One Chromium run (--dump-dom, --screenshot) takes at most this long.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Flags for every run: headless as root in a container-like machine, no
/// GPU, and a resolver that knows only 127.0.0.1 (the pages work offline).
const FLAGS: [&str; 6] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1280,1800",
];

/// Whether Chromium and chromedriver are installed. With `CI=true` their
/// absence is an error (scripts/test installs them); elsewhere the caller
/// skips with a message.
pub fn available() -> anyhow::Result<bool> {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present && std::env::var("CI").is_ok_and(|v| v == "true") {
        anyhow::bail!("chromium and chromium-driver are required when CI=true");
    }
    Ok(present)
}

/// Runs headless Chromium once with `mode` (`--dump-dom`,
/// `--screenshot=PATH`) on `url`, in a fresh profile; returns its stdout.
async fn run_once(mode: &str, url: &str) -> anyhow::Result<String> {
    let profile = tempfile::tempdir()?;
    let out = Command::new(CHROMIUM)
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--virtual-time-budget=3000")
        .arg(mode)
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(RUN_TIMEOUT, out)
        .await
        .context("chromium did not finish")?
        .context("run chromium")?;
    anyhow::ensure!(
        out.status.success(),
        "chromium {mode} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The DOM of `url` after its scripts ran.
pub async fn dump_dom(url: &str) -> anyhow::Result<String> {
    run_once("--dump-dom", url).await
}

/// A PNG of `url` written to `path`.
pub async fn screenshot(url: &str, path: &Path) -> anyhow::Result<()> {
    run_once(&format!("--screenshot={}", path.display()), url).await?;
    anyhow::ensure!(path.exists(), "chromium wrote no {}", path.display());
    Ok(())
}

/// Where the pages' tests keep their screenshots.
pub fn artifacts_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    base.join("ui-screenshots")
}

/// A chromedriver process with one browser session.
pub struct WebDriver {
    addr: std::net::SocketAddr,
    session: String,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl WebDriver {
    /// Starts chromedriver on a free port and opens a headless session.
    pub async fn start() -> anyhow::Result<WebDriver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start chromedriver")?;
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
        crate::eventually(
            "chromedriver listening",
            Duration::from_secs(20),
            || async { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) },
        )
        .await?;
        let profile = tempfile::tempdir()?;
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let v = call(addr, "POST", "/session", Some(caps)).await?;
        let session = v["sessionId"]
            .as_str()
            .context("no sessionId in the new session")?
            .to_string();
        Ok(WebDriver {
            addr,
            session,
            _driver: driver,
            _profile: profile,
        })
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        call(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
        .await
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd("POST", "/url", Some(json!({"url": url}))).await?;
        Ok(())
    }

    /// The element matching `css` (an error if none does).
    pub async fn find(&self, css: &str) -> anyhow::Result<String> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("no element {css}"))
    }

    /// Clears a field and types `text` into it.
    pub async fn type_into(&self, element: &str, text: &str) -> anyhow::Result<()> {
        self.cmd(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await?;
        self.cmd(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await?;
        Ok(())
    }

    /// Clicks an element.
    pub async fn click(&self, element: &str) -> anyhow::Result<()> {
        self.cmd(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await?;
        Ok(())
    }

    /// Ends the session (chromedriver closes the browser), then the driver.
    pub async fn quit(self) -> anyhow::Result<()> {
        self.cmd("DELETE", "", None).await?;
        Ok(())
    }

    /// Runs `script` in the page and returns its value.
    pub async fn script(&self, script: &str) -> anyhow::Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }
}

/// One WebDriver exchange. chromedriver answers `Connection: close` but
/// keeps the socket open, so the body is read by its Content-Length, not
/// to the end of the stream.
async fn call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        s.write_all(req.as_bytes()).await?;
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).await?;
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("no status code")?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().context("bad Content-Length")?;
            }
        }
        let mut buf = vec![0u8; length];
        r.read_exact(&mut buf).await?;
        anyhow::Ok((code, String::from_utf8_lossy(&buf).into_owned()))
    };
    let (code, resp) = tokio::time::timeout(WEBDRIVER_TIMEOUT, exchange)
        .await
        .with_context(|| format!("WebDriver {method} {path}: no answer"))??;
    let v: Value = serde_json::from_str(&resp)
        .with_context(|| format!("WebDriver {method} {path}: not JSON: {resp}"))?;
    anyhow::ensure!(code == 200, "WebDriver {method} {path}: HTTP {code}: {v}");
    Ok(v["value"].clone())
}
