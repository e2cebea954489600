//! Charts drawn on the server as SVG: a stacked bar for one resource's
//! states and a line chart for history. Every chart carries a `<title>`
//! and `<desc>` text equivalent; the pages put a table beside each.
//! Colours come from the stylesheet (classes), never inline styles, so
//! the strict Content-Security-Policy holds; states are also told apart
//! by a pattern-free label in the title, not by colour alone.
use maud::{Markup, html};

/// One segment of a stacked bar: CSS class, label, value.
pub(crate) struct Segment<'a> {
    pub(crate) class: &'a str,
    pub(crate) label: &'a str,
    pub(crate) value: f64,
}

/// Width of the charts' drawing area, in SVG units.
const WIDTH: f64 = 600.0;

/// A horizontal bar split into segments proportional to their values.
pub(crate) fn stacked_bar(title: &str, segments: &[Segment<'_>]) -> Markup {
    let total: f64 = segments.iter().map(|s| s.value.max(0.0)).sum();
    let mut x = 0.0;
    let rects: Vec<(f64, f64, &Segment<'_>)> = segments
        .iter()
        .map(|s| {
            let w = if total > 0.0 {
                WIDTH * s.value.max(0.0) / total
            } else {
                0.0
            };
            let at = x;
            x += w;
            (at, w, s)
        })
        .collect();
    let desc: Vec<String> = segments
        .iter()
        .map(|s| format!("{} {}", s.label, trim(s.value)))
        .collect();
    html! {
        svg class="bar" viewBox={ "0 0 " (WIDTH) " 16" } width="100%" height="16" role="img"
            preserveAspectRatio="none" {
            title { (title) ": " (desc.join(", ")) }
            rect class="bar-bg" x="0" y="0" width=(WIDTH) height="16" {}
            @for (at, w, s) in &rects {
                rect class=(s.class) x=(fmt(*at)) y="0" width=(fmt(*w)) height="16" {
                    title { (s.label) " " (trim(s.value)) }
                }
            }
        }
    }
}

/// One line of a chart: CSS class, label, values (None: no sample).
pub(crate) struct Line<'a> {
    pub(crate) class: &'a str,
    pub(crate) label: &'a str,
    pub(crate) values: &'a [Option<f64>],
}

/// A line chart over `times` (Unix seconds), y from 0 to the largest value.
pub(crate) fn line_chart(title: &str, times: &[u64], lines: &[Line<'_>]) -> Markup {
    const H: f64 = 160.0;
    const PAD: f64 = 4.0;
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter().flatten())
        .fold(0.0f64, |m, v| m.max(*v));
    let (t0, t1) = (
        times.first().copied().unwrap_or(0),
        times.last().copied().unwrap_or(0),
    );
    let span = (t1.saturating_sub(t0)).max(1) as f64;
    let x = |t: u64| PAD + (WIDTH - 2.0 * PAD) * (t.saturating_sub(t0)) as f64 / span;
    let y = |v: f64| {
        if max > 0.0 {
            H - PAD - (H - 2.0 * PAD) * v / max
        } else {
            H - PAD
        }
    };
    let paths: Vec<(String, &Line<'_>)> = lines
        .iter()
        .map(|l| {
            let mut d = String::new();
            let mut pen_down = false;
            for (t, v) in times.iter().zip(l.values.iter()) {
                match v {
                    Some(v) => {
                        d.push_str(if pen_down { " L" } else { " M" });
                        d.push_str(&format!("{} {}", fmt(x(*t)), fmt(y(*v))));
                        pen_down = true;
                    }
                    None => pen_down = false,
                }
            }
            (d.trim().to_string(), l)
        })
        .collect();
    let names: Vec<&str> = lines.iter().map(|l| l.label).collect();
    html! {
        svg class="chart" viewBox={ "0 0 " (WIDTH) " " (H) } width="100%" role="img"
            data-test="chart" data-points=(times.len()) {
            title { (title) }
            desc { (times.len()) " points of " (names.join(", ")) "; maximum " (trim(max)) }
            line class="axis" x1=(PAD) y1=(H - PAD) x2=(WIDTH - PAD) y2=(H - PAD) {}
            text class="tick" x=(PAD + 2.0) y="12" { (trim(max)) }
            @if let (Some(first), Some(last)) = (times.first(), times.last()) {
                text class="tick" x=(PAD + 2.0) y=(H - PAD - 4.0) { (super::layout::clock(*first as f64)) }
                text class="tick end" x=(WIDTH - PAD - 2.0) y=(H - PAD - 4.0) { (super::layout::clock(*last as f64)) }
            }
            @for (d, l) in &paths {
                @if !d.is_empty() {
                    path class={ "line " (l.class) } d=(d) { title { (l.label) } }
                }
            }
            @for (t, v) in times.iter().zip(lines.first().map_or(&[][..], |l| l.values)) {
                @if let Some(v) = v {
                    circle class="dot" cx=(fmt(x(*t))) cy=(fmt(y(*v))) r="1.5" {}
                }
            }
        }
    }
}

/// Two decimals for coordinates.
fn fmt(v: f64) -> String {
    format!("{v:.2}")
}

/// A value as text: integers without decimals, others with up to three.
pub(crate) fn trim(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}
