//! The same flows through an unmodified Marathon client library: the
//! `marathon` package from PyPI (0.13.0), which `scripts/test` installs in a
//! virtualenv at /var/tmp/agora-py (or `AGORA_PYTHON` names a Python that
//! has it). Skipped with a note when there is none, unless `CI=true`.
use std::time::Duration;

use agora_tests::TestMarathon;

use crate::marathon_support::*;

fn python() -> Option<String> {
    let candidates = [
        std::env::var("AGORA_PYTHON").ok(),
        Some("/var/tmp/agora-py/bin/python".to_string()),
    ];
    candidates.into_iter().flatten().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import marathon"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[tokio::test]
async fn marathon_pypi_client_creates_scales_updates_kills_and_deletes() -> anyhow::Result<()> {
    let Some(py) = python() else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but no Python with the marathon package (scripts/test installs it)"
        );
        eprintln!("SKIPPED: no Python with the marathon package");
        return Ok(());
    };
    let (master, etcd) = master_with_etcd().await?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let _a = agent_on(&master, dirs[0].path(), "host-a", "r1", false).await?;
    let _b = agent_on(&master, dirs[1].path(), "host-b", "r2", false).await?;
    let m = TestMarathon::start(vec![master.host_port()], etcd, "/marathon-py").await?;
    m.wait_leader(Duration::from_secs(20)).await?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/python/marathon_client_flow.py"
    );
    let out = tokio::process::Command::new(py)
        .arg(script)
        .env("MARATHON_URL", format!("http://{}", m.addr))
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "the marathon client flow failed:\n{stdout}\n{stderr}"
    );
    Ok(())
}
