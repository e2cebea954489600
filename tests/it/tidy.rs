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
        "master/kv/src/lib.rs",
        "master/raft/src/lib.rs",
        "master/etcd/src/lib.rs",
        "marathon/planner/src/lib.rs",
        "marathon/src/lib.rs",
        "agent/src/lib.rs",
        "agent/runtime/src/lib.rs",
        "scheduler-sdk/src/lib.rs",
        "tests/src/lib.rs",
        "tests/lincheck/src/lib.rs",
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
        // Marathon 1.x's wire key `slaveId` is kept for its clients, named
        // once as a constant (`marathon/src/api/json/mod.rs`).
        let text = text.replace(r#"pub const agent_id_key: &str = "slaveid";"#, "");
        assert!(!text.contains("slave"), "{}: say agent", p.display());
    }
}

/// Words that mean IO, clocks, channels or wire types: a pure core uses none.
const IMPURE: [&str; 12] = [
    "tokio",
    "mpsc",
    "oneshot",
    "Instant::now",
    "SystemTime",
    "thread_rng",
    "std::fs",
    "std::net",
    "tonic::",
    "v1::",
    "spawn(",
    ".await",
];

#[test]
fn the_decision_cores_are_sans_io() {
    let root = root();
    let cores = [
        "master/src/core.rs",
        "master/src/effects.rs",
        "master/src/state.rs",
        "master/src/agents.rs",
        "master/src/frameworks.rs",
        "master/src/offers.rs",
        "master/src/tasks.rs",
        "master/src/registry/mod.rs",
        "master/src/maintenance.rs",
        "agent/src/status_updates.rs",
        "agent/src/outcome.rs",
        "marathon/src/state/mod.rs",
        "marathon/src/state/apps.rs",
        "marathon/src/state/drive.rs",
        "marathon/src/state/effects.rs",
        "marathon/src/state/offers.rs",
        "marathon/src/state/records.rs",
        "marathon/src/state/updates.rs",
        "marathon/src/state/maintenance.rs",
    ];
    for c in cores {
        let text = read(&root.join(c));
        for b in IMPURE {
            assert!(
                !text.contains(b),
                "{c} uses {b}: decision cores take time as data and return effects"
            );
        }
    }
}

/// The replicated keyspace, the Raft replica's core and Marathon's planner
/// are pure like the master's core (each crate also has its own, stricter
/// tidy test).
#[test]
fn the_keyspace_replica_and_planner_are_sans_io() {
    let root = root();
    let mut files = rust_files(&root.join("master/kv/src"));
    files.extend(rust_files(&root.join("marathon/planner/src")));
    files.extend(rust_files(&root.join("master/capacity/src")));
    for f in [
        "node.rs",
        "node/ready.rs",
        "node/apply.rs",
        "state_machine.rs",
    ] {
        files.push(root.join("master/raft/src").join(f));
    }
    for p in files {
        let path = p.display().to_string();
        if path.contains("/tests") || path.ends_with("tests.rs") {
            continue;
        }
        let text = read(&p);
        for b in IMPURE {
            assert!(!text.contains(b), "{path} uses {b}: this core is sans-IO");
        }
    }
}

#[test]
fn the_master_reads_clocks_in_one_module() {
    for p in rust_files(&root().join("master/src")) {
        if p.ends_with("clock.rs") {
            continue;
        }
        let text = read(&p);
        for b in ["Instant::now", "SystemTime::now"] {
            assert!(
                !text.contains(b),
                "{}: read the time through clock.rs and pass it in",
                p.display()
            );
        }
    }
}

/// Functions longer than this are split along their natural steps.
const MAX_FN_LINES: usize = 100;

/// Production functions (not tests, benches or test helpers) and their
/// lengths, found by indentation: a `fn` line and the first line after it
/// that closes at the same indentation.
fn long_functions(path: &Path) -> Vec<String> {
    let text = read(path);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break; // the rest of the file is tests
        }
        let t = line.trim_start();
        let is_fn = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "async fn ",
            "pub async fn ",
            "pub(crate) async fn ",
        ]
        .iter()
        .any(|p| t.starts_with(p));
        if !is_fn || t.ends_with(';') {
            continue;
        }
        let indent = line.len() - t.len();
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == close) {
            let n = end + 2;
            if n > MAX_FN_LINES {
                out.push(format!("{}:{} ({n} lines)", path.display(), i + 1));
            }
        }
    }
    out
}

#[test]
fn no_production_function_is_too_long() {
    let root = root();
    let mut long = Vec::new();
    for dir in [
        "model/src",
        "proto/src",
        "master",
        "agent",
        "scheduler-sdk/src",
        "cli/src",
        "tests/lincheck/src",
    ] {
        for p in rust_files(&root.join(dir)) {
            let s = p.to_string_lossy();
            if s.contains("/tests/")
                || s.ends_with("tests.rs")
                || s.contains("/harness")
                || s.contains("/benches/")
            {
                continue;
            }
            long.extend(long_functions(&p));
        }
    }
    assert!(long.is_empty(), "split these functions: {long:#?}");
}
