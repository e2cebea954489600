//! Test support shared by other crates' tests and benchmarks: a tiny local
//! Docker image, because there is no registry to pull from in CI.
use std::path::{Path, PathBuf};

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use tracing::info;

use crate::RuntimeError;

/// The image built by [`ensure_test_image`].
pub const TEST_IMAGE: &str = "agora-test/busybox:latest";
const TEST_IMAGE_REPO: &str = "agora-test/busybox";
const TEST_IMAGE_TAG: &str = "latest";
/// Where Debian's `busybox-static` installs the binary (and fallbacks).
const BUSYBOX_CANDIDATES: [&str; 2] = ["/bin/busybox", "/usr/bin/busybox"];
/// Applets linked when `busybox --list` cannot be run (covers what tests use).
const FALLBACK_APPLETS: &[&str] = &[
    "sh", "ash", "sleep", "httpd", "echo", "cat", "dd", "tr", "head", "tail", "ls", "true",
    "false", "kill", "ps", "wc", "env", "id", "mkdir", "rm", "nc", "wget", "seq", "yes", "grep",
    "sed", "awk", "test", "[", "printf", "touch", "date", "hostname", "timeout",
];
/// ELF program header type of the dynamic-loader entry; a static binary has none.
const PT_INTERP: u32 = 3;

/// Serialises builds within one process (tests run in parallel threads);
/// separate processes may import twice, which is harmless.
static BUILD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Builds (idempotently) `agora-test/busybox:latest`: an image FROM scratch
/// holding the host's static busybox (`apt-get install busybox-static`) as
/// `/bin/busybox` with links for all its applets (`sh`, `sleep`, `httpd`,
/// `dd`, ...), `/tmp` and a minimal `/etc/passwd`. Returns the image name.
pub async fn ensure_test_image(docker: &bollard::Docker) -> Result<String, RuntimeError> {
    let _guard = BUILD_LOCK.lock().await;
    if docker.inspect_image(TEST_IMAGE).await.is_ok() {
        return Ok(TEST_IMAGE.to_string());
    }
    let busybox = find_static_busybox()?;
    let rootfs = rootfs_tar(&busybox)?;
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(TEST_IMAGE_REPO)
        .tag(TEST_IMAGE_TAG)
        .changes(vec![
            "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin".into(),
            r#"CMD ["/bin/sh"]"#.into(),
        ])
        .build();
    let mut progress =
        docker.create_image(Some(options), Some(bollard::body_full(rootfs.into())), None);
    while let Some(item) = progress.next().await {
        item?;
    }
    docker.inspect_image(TEST_IMAGE).await?;
    info!(image = TEST_IMAGE, busybox = %busybox.display(), "built test image");
    Ok(TEST_IMAGE.to_string())
}

fn find_static_busybox() -> Result<PathBuf, RuntimeError> {
    for candidate in BUSYBOX_CANDIDATES {
        let path = Path::new(candidate);
        if let Ok(bytes) = std::fs::read(path)
            && is_static_elf(&bytes)
        {
            return Ok(path.to_path_buf());
        }
    }
    Err(RuntimeError::Launch(format!(
        "no statically linked busybox at {BUSYBOX_CANDIDATES:?}: run `apt-get install -y busybox-static`"
    )))
}

/// Is this a 64-bit little-endian ELF without a dynamic loader?
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(|b| u64::from_le_bytes(b) as usize)
    };
    // Magic, ELFCLASS64 (2), little endian (1).
    if bytes.get(0..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).all(|i| u32_at(phoff + i * phentsize).is_some_and(|t| t != PT_INTERP))
}

fn applets(busybox: &Path) -> Vec<String> {
    let listed = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if listed.is_empty() {
        FALLBACK_APPLETS.iter().map(|s| s.to_string()).collect()
    } else {
        listed
    }
}

fn rootfs_tar(busybox: &Path) -> Result<Vec<u8>, RuntimeError> {
    let io = |e: std::io::Error| RuntimeError::io("build test image rootfs", e);
    let binary = std::fs::read(busybox).map_err(io)?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        if let Some(target) = link {
            h.set_link_name(target)?;
        }
        tar.append_data(&mut h, path, data)
    };
    for dir in [
        "bin", "etc", "tmp", "root", "usr", "usr/bin", "var", "var/www",
    ] {
        let mode = if dir == "tmp" { 0o1777 } else { 0o755 };
        add(dir, tar::EntryType::Directory, mode, &[], None).map_err(io)?;
    }
    add("bin/busybox", tar::EntryType::Regular, 0o755, &binary, None).map_err(io)?;
    for applet in applets(busybox) {
        if applet != "busybox" && !applet.contains('/') && !applet.is_empty() {
            add(
                &format!("bin/{applet}"),
                tar::EntryType::Symlink,
                0o777,
                &[],
                Some("busybox"),
            )
            .map_err(io)?;
        }
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";
    add("etc/passwd", tar::EntryType::Regular, 0o644, passwd, None).map_err(io)?;
    add(
        "etc/group",
        tar::EntryType::Regular,
        0o644,
        b"root:x:0:\nnogroup:x:65534:\n",
        None,
    )
    .map_err(io)?;
    tar.into_inner().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_static_binaries() {
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        // /bin/sh (dash) is dynamically linked on every distribution we use.
        assert!(!is_static_elf(&std::fs::read("/bin/sh").unwrap()));
    }
}
