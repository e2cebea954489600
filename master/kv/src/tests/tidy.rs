//! The crate's own architecture checks, over its sources as compiled in:
//! sans-IO, no clock, no panicking shortcuts, small files.

const SOURCES: &[(&str, &str)] = &[
    ("command.rs", include_str!("../command.rs")),
    ("error.rs", include_str!("../error.rs")),
    ("lease.rs", include_str!("../lease.rs")),
    ("lib.rs", include_str!("../lib.rs")),
    ("mvcc.rs", include_str!("../mvcc.rs")),
    ("range.rs", include_str!("../range.rs")),
    ("snapshot.rs", include_str!("../snapshot.rs")),
    ("txn.rs", include_str!("../txn.rs")),
    ("types.rs", include_str!("../types.rs")),
    ("watch.rs", include_str!("../watch.rs")),
    ("write.rs", include_str!("../write.rs")),
];

#[test]
fn the_keyspace_is_sans_io_and_reads_no_clock() {
    let banned = [
        "tokio",
        "std::fs",
        "std::net",
        "std::thread",
        "std::time",
        "Instant",
        "SystemTime",
        "rand::",
        "std::env",
        "std::io",
        "HashMap",
        "HashSet",
    ];
    for (name, text) in SOURCES {
        for word in banned {
            assert!(
                !text.contains(word),
                "{name} uses {word}: the keyspace is a deterministic state machine"
            );
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
    for (name, text) in SOURCES {
        let production = text.split("#[cfg(test)]").next().unwrap_or(text);
        for word in banned {
            assert!(!production.contains(word), "{name} uses {word}");
        }
    }
}

#[test]
fn files_stay_small() {
    for (name, text) in SOURCES {
        assert!(text.lines().count() < 1000, "{name} is too long: split it");
    }
}
