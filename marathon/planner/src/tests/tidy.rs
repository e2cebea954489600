//! The crate's own architecture checks, over its sources as compiled in:
//! sans-IO (no IO, clock, threads or randomness), no panicking shortcuts in
//! production code, small files and functions.

const SOURCES: &[(&str, &str)] = &[
    ("lib.rs", include_str!("../lib.rs")),
    ("app.rs", include_str!("../app.rs")),
    ("constraint.rs", include_str!("../constraint.rs")),
    ("error.rs", include_str!("../error.rs")),
    ("ids.rs", include_str!("../ids.rs")),
    ("instance.rs", include_str!("../instance.rs")),
    ("scale.rs", include_str!("../scale.rs")),
    ("validate.rs", include_str!("../validate.rs")),
    ("placement/mod.rs", include_str!("../placement/mod.rs")),
    (
        "placement/counters.rs",
        include_str!("../placement/counters.rs"),
    ),
    (
        "placement/reasons.rs",
        include_str!("../placement/reasons.rs"),
    ),
    ("deploy/mod.rs", include_str!("../deploy/mod.rs")),
    ("deploy/plan.rs", include_str!("../deploy/plan.rs")),
    ("deploy/step.rs", include_str!("../deploy/step.rs")),
];

const TESTS: &[(&str, &str)] = &[
    ("tests/mod.rs", include_str!("mod.rs")),
    ("tests/cases.rs", include_str!("cases.rs")),
    ("tests/deploy_cases.rs", include_str!("deploy_cases.rs")),
    ("tests/props.rs", include_str!("props.rs")),
];

/// Production code: everything before the file's `#[cfg(test)]`.
fn production(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn the_planner_is_sans_io() {
    let banned = [
        "tokio",
        "async ",
        ".await",
        "std::fs",
        "std::net",
        "std::io",
        "std::thread",
        "std::env",
        "std::process",
        "Instant",
        "SystemTime",
        "rand::",
        "HashMap",
        "HashSet",
        "Mutex",
        "RefCell",
    ];
    for (name, text) in SOURCES.iter().chain(TESTS) {
        for word in banned {
            assert!(
                !text.contains(word),
                "{name} uses {word}: the planner is a pure function of its inputs"
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
        "assert!(",
    ];
    for (name, text) in SOURCES {
        for word in banned {
            assert!(!production(text).contains(word), "{name} uses {word}");
        }
    }
}

#[test]
fn files_stay_small() {
    for (name, text) in SOURCES.iter().chain(TESTS) {
        assert!(text.lines().count() < 1000, "{name} is too long: split it");
    }
}

/// Functions longer than this are split along their natural steps.
const MAX_FN_LINES: usize = 80;

#[test]
fn production_functions_stay_short() {
    let mut long = Vec::new();
    let mut seen = 0;
    for (name, text) in SOURCES {
        let lines: Vec<&str> = production(text).lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let is_fn = ["fn ", "pub fn ", "pub(crate) fn "]
                .iter()
                .any(|p| t.starts_with(p));
            if !is_fn || t.ends_with(';') {
                continue;
            }
            seen += 1;
            let close = format!("{}}}", &line[..line.len() - t.len()]);
            if let Some(end) = lines[i + 1..].iter().position(|l| *l == close)
                && end + 2 > MAX_FN_LINES
            {
                long.push(format!("{name}:{} ({} lines)", i + 1, end + 2));
            }
        }
    }
    assert!(
        seen > 50,
        "found only {seen} functions: is the scan broken?"
    );
    assert!(long.is_empty(), "split these functions: {long:?}");
}
