//! `/ui/history`: utilisation over the last hour, day or 30 days from the
//! replicated history, as SVG line charts with the same points as a table.
use agora_capacity::HistorySeries;
use maud::{Markup, html};

use super::layout::date_time;
use super::svg::{Line, line_chart, trim};

/// The ranges offered: query value, label.
pub(crate) const RANGES: [(&str, &str); 3] = [
    ("1h", "last hour"),
    ("24h", "last day"),
    ("30d", "last 30 days"),
];

const STATES: [&str; 4] = ["total", "allocated", "offered", "free"];
/// A role's scope holds its reservations and what its frameworks hold.
const ROLE_STATES: [&str; 2] = ["reserved", "held"];

/// The series this scope has, per dimension.
fn states_of(h: &HistorySeries) -> &'static [&'static str] {
    if h.scope.starts_with("role:") {
        &ROLE_STATES
    } else {
        &STATES
    }
}

fn chart(h: &HistorySeries, dim: &str) -> Markup {
    let states = states_of(h);
    let names: Vec<String> = states.iter().map(|s| format!("{dim}.{s}")).collect();
    let empty = Vec::new();
    let lines: Vec<Line<'_>> = states
        .iter()
        .zip(&names)
        .map(|(state, name)| Line {
            class: state,
            label: state,
            values: h.series.get(name).unwrap_or(&empty),
        })
        .collect();
    line_chart(&format!("{dim} of {} over time", h.scope), &h.times, &lines)
}

/// The page body.
pub(crate) fn body(h: &HistorySeries, range: &str) -> Markup {
    let placeable: Vec<&String> = h
        .series
        .keys()
        .filter(|k| k.starts_with("placeable."))
        .collect();
    let states = states_of(h);
    let cell = |name: &str, i: usize| {
        h.series
            .get(name)
            .and_then(|v| v.get(i).copied().flatten())
            .map_or("–".to_string(), trim)
    };
    html! {
        form method="get" action="/ui/history" {
            label { "scope " select name="scope" {
                @for s in &h.scopes {
                    @if *s == h.scope { option value=(s) selected { (s) } } @else { option value=(s) { (s) } }
                }
            } }
            " "
            label { "range " select name="range" {
                @for (value, label) in RANGES {
                    @if value == range { option value=(value) selected { (label) } } @else { option value=(value) { (label) } }
                }
            } }
            " " button type="submit" { "show" }
        }
        p data-test="history-step" { (h.times.len()) " points, one per " (h.step_seconds) " s (averages of 10 s samples)" }
        div.legend { @for s in states { span class=(s) { (s) } } }
        h2 { "cpus" } (chart(h, "cpus"))
        h2 { "mem (MB)" } (chart(h, "mem"))
        h2 { "Points" }
        table data-test="history-table" {
            thead { tr {
                th { "time (UTC)" }
                @for s in states { th.n { "cpus " (s) } }
                @for s in states { th.n { "mem " (s) } }
                @for p in &placeable { th.n { (p) } }
            } }
            tbody {
                @for (i, t) in h.times.iter().enumerate() {
                    tr data-test="history-row" {
                        td { (date_time(*t)) }
                        @for s in states { td.n { (cell(&format!("cpus.{s}"), i)) } }
                        @for s in states { td.n { (cell(&format!("mem.{s}"), i)) } }
                        @for p in &placeable { td.n { (cell(p, i)) } }
                    }
                }
            }
        }
    }
}
