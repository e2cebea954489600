//! Tidy checks: the architecture invariants ARCHITECTURE.md states, enforced
//! as a test so they stay true.
use std::path::{Path, PathBuf};

/// Hand-written files past this size are split by responsibility instead.
const MAX_LINES: usize = 1000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    stack.push(p);
                }
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn no_source_file_is_too_long() {
    let files = rust_files(&root());
    assert!(
        files.len() > 50,
        "the walk found only {} files: wrong root?",
        files.len()
    );
    let long: Vec<String> = files
        .iter()
        .filter_map(|p| {
            let n = read(p).lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", p.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}

#[test]
fn the_allocator_is_sans_io() {
    let banned = [
        "tokio",
        "Instant::now",
        "SystemTime",
        "thread_rng",
        "rand::rng()",
        "std::fs",
        "std::net",
    ];
    let root = root();
    let files = rust_files(&root.join("master/allocator/src"));
    assert!(files.len() >= 4, "allocator sources not found");
    for p in files {
        let text = read(&p);
        for b in banned {
            assert!(
                !text.contains(b),
                "{} uses {b}: the allocator must stay a pure function",
                p.display()
            );
        }
    }
    let manifest = read(&root.join("master/allocator/Cargo.toml"));
    assert!(
        !manifest.contains("tokio"),
        "the allocator crate must not depend on tokio"
    );
}

#[test]
fn master_handlers_hold_no_shared_state() {
    for p in rust_files(&root().join("master/src/api")) {
        let text = read(&p);
        for b in ["Mutex", "RwLock"] {
            assert!(
                !text.contains(b),
                "{}: handlers send commands to the event loop; no {b}",
                p.display()
            );
        }
    }
}

#[test]
fn every_crate_root_documents_itself() {
    let root = root();
    let roots = [
        "model/src/lib.rs",
        "proto/src/lib.rs",
        "master/src/lib.rs",
        "master/allocator/src/lib.rs",
        "agent/src/lib.rs",
        "agent/runtime/src/lib.rs",
        "scheduler-sdk/src/lib.rs",
        "tests/src/lib.rs",
        "cli/src/main.rs",
    ];
    for r in roots {
        assert!(
            read(&root.join(r)).starts_with("//!"),
            "{r} must start with a //! paragraph (see ARCHITECTURE.md)"
        );
    }
}

#[test]
fn one_vocabulary_agent_not_slave() {
    for p in rust_files(&root()) {
        if p.ends_with("tidy.rs") {
            continue;
        }
        let text = read(&p).to_lowercase();
        assert!(!text.contains("slave"), "{}: say agent", p.display());
    }
}
