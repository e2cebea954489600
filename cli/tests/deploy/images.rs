//! The run's images, built without a registry: Agora's own from the binary
//! cargo built (deploy/docker/build-image.sh), and two tags of a tiny task
//! image whose only difference is the version it serves.
use std::path::PathBuf;
use std::process::Command;

use super::compose::{Cluster, RUN_LABEL, docker, run};

/// The binary under test.
const AGORA: &str = env!("CARGO_BIN_EXE_agora");

/// Builds the cluster's image with the script deploy/README.md documents.
pub(crate) fn build_agora(cluster: &mut Cluster, tag: &str) -> anyhow::Result<()> {
    cluster.owns_image(tag);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/docker/build-image.sh");
    run(Command::new(script).args([AGORA, tag]))?;
    Ok(())
}

/// Builds `{repo}:v1` and `{repo}:v2` on top of the tests' busybox image:
/// each is a commit of it with `APP_VERSION` set (what the app serves, so
/// the test sees which image a task runs) and the run's label (so teardown
/// finds the task containers). Distinct image ids: removing them never
/// touches the base image other tests use.
pub(crate) async fn build_task_images(cluster: &mut Cluster, repo: &str) -> anyhow::Result<()> {
    // Through the runtime, which negotiates the daemon's API version.
    let runtime = agora_runtime::DockerRuntime::connect(Default::default()).await?;
    let base = agora_runtime::testing::ensure_test_image(runtime.client()).await?;
    let label = format!("{RUN_LABEL}={}", cluster.project);
    for version in ["v1", "v2"] {
        let image = format!("{repo}:{version}");
        cluster.owns_image(&image);
        let scratch = docker(&["create", "--label", &label, &base, "true"])?;
        let committed = docker(&[
            "commit",
            "--change",
            &format!("LABEL {label}"),
            "--change",
            &format!("ENV APP_VERSION={version}"),
            "--change",
            r#"CMD ["/bin/sh"]"#,
            &scratch,
            &image,
        ]);
        docker(&["rm", "-f", &scratch])?;
        committed?;
    }
    Ok(())
}
