//! The crate's own architecture checks, over its sources as compiled in:
//! a sans-IO, deterministic core; no panicking shortcuts; small files.

/// The replica core: no IO, clock, thread, channel or unseeded randomness.
const CORE: &[(&str, &str)] = &[
    ("config.rs", include_str!("../config.rs")),
    ("error.rs", include_str!("../error.rs")),
    ("kv_machine.rs", include_str!("../kv_machine.rs")),
    ("node.rs", include_str!("../node.rs")),
    ("node/apply.rs", include_str!("../node/apply.rs")),
    ("node/ready.rs", include_str!("../node/ready.rs")),
    ("output.rs", include_str!("../output.rs")),
    ("state_machine.rs", include_str!("../state_machine.rs")),
    ("storage/mod.rs", include_str!("../storage/mod.rs")),
    ("storage/mem.rs", include_str!("../storage/mem.rs")),
];

/// Everything else that ships (not tests).
const REST: &[(&str, &str)] = &[
    ("lib.rs", include_str!("../lib.rs")),
    // The keyspace's watch side: channels to watch streams, outside the
    // deterministic part (not replicated, not in snapshots or the hash).
    (
        "kv_machine/watchers.rs",
        include_str!("../kv_machine/watchers.rs"),
    ),
    ("logger.rs", include_str!("../logger.rs")),
    ("runner.rs", include_str!("../runner.rs")),
    ("storage/rocks.rs", include_str!("../storage/rocks.rs")),
    ("transport/mod.rs", include_str!("../transport/mod.rs")),
    ("transport/grpc.rs", include_str!("../transport/grpc.rs")),
    ("transport/sim.rs", include_str!("../transport/sim.rs")),
    (
        "transport/sim/cluster.rs",
        include_str!("../transport/sim/cluster.rs"),
    ),
];

const MAX_LINES: usize = 1000;

#[test]
fn the_replica_core_is_sans_io_and_deterministic() {
    let banned = [
        "tokio",
        "std::fs",
        "std::net",
        "std::thread",
        "std::time",
        "Instant",
        "SystemTime",
        "thread_rng",
        "rand::",
        "std::env",
        "mpsc",
        "HashMap",
        "HashSet",
    ];
    for (name, text) in CORE {
        for word in banned {
            assert!(
                !text.contains(word),
                "{name} uses {word}: the core is sans-IO and deterministic"
            );
        }
    }
}

/// RocksDB stays behind `LogStore`, in `storage/rocks.rs`: the core
/// (including the trait) never names it.
#[test]
fn only_the_rocks_store_names_rocksdb() {
    for (name, text) in CORE.iter().chain(REST) {
        if *name == "storage/rocks.rs" {
            continue;
        }
        for word in ["rocksdb::", "use rocksdb", "RocksLogStore {"] {
            assert!(!text.contains(word), "{name} uses {word}");
        }
    }
}

#[test]
fn no_panicking_shortcuts_in_production_code() {
    let banned = [
        ".unwrap()",
        ".expect(",
        "panic!(",
        "unreachable!(",
        "todo!(",
        "unimplemented!(",
    ];
    for (name, text) in CORE.iter().chain(REST) {
        let production = text.split("#[cfg(test)]").next().unwrap_or(text);
        for word in banned {
            assert!(!production.contains(word), "{name} uses {word}");
        }
    }
}

#[test]
fn files_stay_small() {
    for (name, text) in CORE.iter().chain(REST) {
        let lines = text.lines().count();
        assert!(
            lines <= MAX_LINES,
            "{name} has {lines} lines (limit {MAX_LINES})"
        );
    }
}
