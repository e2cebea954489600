//! `agora history`: how utilisation moved, from the masters' replicated
//! history (`/api/v1/capacity/history`): one row per point, oldest first,
//! for the cluster or one scope (`role:R`, `attr:rack=r1`).
use clap::{Args, ValueEnum};
use serde_json::Value;

/// How far back.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Range {
    /// The last hour, a point per 10 s.
    #[value(name = "1h")]
    Hour,
    /// The last day, a point per minute.
    #[value(name = "24h")]
    Day,
    /// The last 30 days, a point per hour.
    #[value(name = "30d")]
    Month,
}

impl Range {
    fn query(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Month => "30d",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    pub(crate) ep: crate::globals::Endpoints,
    /// `cluster`, `role:ROLE` or `attr:NAME=VALUE`.
    #[arg(long, default_value = "cluster")]
    pub(crate) scope: String,
    /// How far back.
    #[arg(long, value_enum, default_value = "1h")]
    pub(crate) range: Range,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub(crate) output: crate::capacity::Output,
}

/// Columns after the time: series name, header.
const COLUMNS: [(&str, &str); 6] = [
    ("cpus.allocated", "CPUS ALLOC"),
    ("cpus.offered", "CPUS OFFER"),
    ("cpus.free", "CPUS FREE"),
    ("cpus.total", "CPUS TOTAL"),
    ("mem.allocated", "MEM ALLOC"),
    ("mem.free", "MEM FREE"),
];

fn value(v: &Value, series: &str, i: usize) -> String {
    match v["series"][series][i].as_f64() {
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
        None => "-".into(),
    }
}

/// The table (or JSON) for one answer of the history API.
pub(crate) fn render(v: &Value) -> String {
    let placeable: Vec<String> = v["series"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| k.starts_with("placeable."))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut out = format!(
        "{} · one point per {} s\n{:<20}",
        v["scope"].as_str().unwrap_or("cluster"),
        v["step_seconds"],
        "TIME (UTC)"
    );
    for (_, header) in COLUMNS {
        out.push_str(&format!(" {header:>10}"));
    }
    for p in &placeable {
        let shape = p.trim_start_matches("placeable.").to_uppercase();
        out.push_str(&format!(" {:>10}", format!("FIT {shape}")));
    }
    out.push('\n');
    for (i, t) in v["times"].as_array().into_iter().flatten().enumerate() {
        out.push_str(&format!(
            "{:<20}",
            crate::follow::utc(t.as_u64().unwrap_or(0))
        ));
        for (series, _) in COLUMNS {
            out.push_str(&format!(" {:>10}", value(v, series, i)));
        }
        for p in &placeable {
            out.push_str(&format!(" {:>10}", value(v, p, i)));
        }
        out.push('\n');
    }
    out
}

/// `agora history`.
pub(crate) fn history(a: &HistoryArgs) -> anyhow::Result<()> {
    let query =
        serde_urlencoded::to_string([("scope", a.scope.as_str()), ("range", a.range.query())])?;
    let v = crate::client::get_json(&a.ep.master, &format!("/api/v1/capacity/history?{query}"))?;
    match a.output {
        crate::capacity::Output::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        crate::capacity::Output::Table => print!("{}", render(&v)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn one_row_per_point_with_gaps_as_dashes() {
        let v = serde_json::json!({
            "scope": "cluster", "step_seconds": 10, "times": [1764460800, 1764460810],
            "series": {"cpus.allocated": [1.5, null], "cpus.total": [8, 8], "placeable.small": [12, 11]},
            "scopes": ["cluster"],
        });
        let text = render(&v);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].contains("FIT SMALL"));
        assert!(lines[2].starts_with("2025-11-30T00:00:00Z"), "{text}");
        assert!(lines[2].contains("1.5"));
        assert!(lines[3].split_whitespace().nth(1) == Some("-"), "{text}");
    }
}
