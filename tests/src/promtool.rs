//! `promtool check metrics` (Debian package `prometheus`) for the tests of
//! master and agent `/metrics`.
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

/// Whether promtool is installed; a missing one is a failure under
/// `CI=true` and a skip (with a note naming `test`) otherwise.
pub fn available(test: &str) -> bool {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: CI=true but promtool is not installed (apt-get install prometheus)");
    }
    eprintln!(
        "SKIPPED {test}: promtool is not installed (apt-get install prometheus); set CI=true to make this a failure"
    );
    false
}

/// Runs `promtool check metrics` on `text`: whether it passed, and what it said.
pub async fn check_metrics(text: &str) -> anyhow::Result<(bool, String)> {
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), said))
}
