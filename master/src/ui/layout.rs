//! The page shell (navigation, stylesheet, script) and small formatting
//! helpers shared by the pages.
use agora_model::Scalar;
use maud::{DOCTYPE, Markup, html};

/// The pages, in navigation order: path, label.
const NAV: [(&str, &str); 5] = [
    ("/ui", "Cluster"),
    ("/ui/agents", "Agents"),
    ("/ui/fit", "What fits"),
    ("/ui/history", "History"),
    ("/ui/apps", "Apps"),
];

/// A whole page: `current` is the navigation path to mark.
pub(crate) fn page(title: &str, current: &str, at_unix: f64, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Agora" }
                link rel="stylesheet" href="/ui/assets/style.css";
                script type="module" src="/ui/assets/app.js" {}
            }
            body {
                header {
                    span.brand { "Agora" }
                    nav {
                        @for (path, label) in NAV {
                            @if path == current {
                                a href=(path) aria-current="page" { (label) }
                            } @else {
                                a href=(path) { (label) }
                            }
                        }
                    }
                    span.live data-test="snapshot-time" data-unix=(format!("{at_unix:.0}")) {
                        "as of " (clock(at_unix)) " UTC"
                    }
                }
                main data-fragment="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// `HH:MM:SS` of a Unix time (UTC).
pub(crate) fn clock(unix: f64) -> String {
    let s = unix.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time (UTC), for history tables.
pub(crate) fn date_time(unix: u64) -> String {
    agora_model::utc::format_secs(unix)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// A scalar exactly (fixed point, at most three decimals).
pub(crate) fn num(s: Scalar) -> String {
    s.to_string()
}

/// `part` as a percentage of `whole`, one decimal, or "–" for an empty whole.
pub(crate) fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.1}%", 100.0 * part / whole)
    } else {
        "–".into()
    }
}
