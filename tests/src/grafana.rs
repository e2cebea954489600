//! Grafana dashboards read as data: each panel target's PromQL with the
//! template variables replaced by concrete values, the query variables
//! (`label_values(metric, label)`), the metric names an expression
//! selects, and a Prometheus rules file made of the expressions.
use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// What Grafana's built-in interval variables become: a scrape every
/// second (`prometheus::SCRAPE_INTERVAL`) gives a rate window several
/// samples wide.
const BUILTINS: [(&str, &str); 3] = [
    ("$__rate_interval", "10s"),
    ("$__interval", "2s"),
    ("$__range", "1m"),
];

/// PromQL words that are not metric names, besides [`GROUPINGS`]
/// (aggregators are listed: they may be followed by `by (...)` rather
/// than by their argument).
const KEYWORDS: [&str; 19] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

/// Modifiers whose parenthesised list holds label names, not series.
const GROUPINGS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// A dashboard's query variables, and what each becomes in an expression.
pub struct Variables {
    /// The `label_values(metric, label)` queries.
    pub queries: Vec<LabelValues>,
    /// Name → value substituted (the variable's "All" value).
    pub values: Vec<(String, String)>,
}

/// One dashboard file.
pub struct Dashboard {
    /// The file name without `.json`.
    pub name: String,
    /// Its JSON.
    pub json: Value,
}

/// One panel target, variables substituted.
#[derive(Debug, Clone)]
pub struct Target {
    /// The dashboard's name.
    pub dashboard: String,
    /// The panel's id.
    pub panel_id: u64,
    /// The panel's title.
    pub panel: String,
    /// The target's refId.
    pub ref_id: String,
    /// The PromQL, ready to send to Prometheus.
    pub expr: String,
}

/// A query variable `label_values(metric, label)`.
#[derive(Debug, Clone)]
pub struct LabelValues {
    /// The dashboard's name.
    pub dashboard: String,
    /// The variable's name.
    pub name: String,
    /// The metric it reads.
    pub metric: String,
    /// The label whose values it lists.
    pub label: String,
}

/// Every `*.json` in `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<Dashboard>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(name) = name.strip_suffix(".json") {
            let text = std::fs::read_to_string(&path)?;
            let json = serde_json::from_str(&text).with_context(|| path.display().to_string())?;
            out.push(Dashboard {
                name: name.to_string(),
                json,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

impl Dashboard {
    /// The query variables, and what each becomes in an expression: its
    /// "All" value (every query variable must offer "All", so a panel
    /// shows the whole cluster by default).
    pub fn variables(&self) -> anyhow::Result<Variables> {
        let mut queries = Vec::new();
        let mut values = Vec::new();
        let list = self.json["templating"]["list"].as_array();
        for v in list.into_iter().flatten() {
            let name = v["name"].as_str().context("a variable without a name")?;
            match v["type"].as_str() {
                Some("datasource") => continue,
                Some("query") => {}
                other => anyhow::bail!("{}: variable {name}: type {other:?}", self.name),
            }
            let all = v["allValue"].as_str().filter(|_| v["includeAll"] == true);
            let all = all.with_context(|| format!("{}: {name} has no All", self.name))?;
            values.push((name.to_string(), all.to_string()));
            let def = v["definition"].as_str().unwrap_or_default();
            let (metric, label) = parse_label_values(def)
                .with_context(|| format!("{}: {name}: not label_values(m, l): {def}", self.name))?;
            queries.push(LabelValues {
                dashboard: self.name.clone(),
                name: name.to_string(),
                metric,
                label,
            });
        }
        Ok(Variables { queries, values })
    }

    /// Every panel target (rows' nested panels included), substituted; an
    /// error if a `$` is left.
    pub fn targets(&self) -> anyhow::Result<Vec<Target>> {
        let values = self.variables()?.values;
        let mut panels: Vec<&Value> = Vec::new();
        for p in self.json["panels"].as_array().into_iter().flatten() {
            panels.push(p);
            panels.extend(p["panels"].as_array().into_iter().flatten());
        }
        let mut out = Vec::new();
        for p in panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                let Some(expr) = t["expr"].as_str() else {
                    continue;
                };
                let target = Target {
                    dashboard: self.name.clone(),
                    panel_id: p["id"].as_u64().unwrap_or_default(),
                    panel: p["title"].as_str().unwrap_or_default().to_string(),
                    ref_id: t["refId"].as_str().unwrap_or_default().to_string(),
                    expr: substitute(expr, &values),
                };
                if target.expr.contains('$') {
                    anyhow::bail!("unknown variable in {target:?}");
                }
                out.push(target);
            }
        }
        Ok(out)
    }
}

/// `metric` and `label` from `label_values(metric, label)`.
fn parse_label_values(def: &str) -> Option<(String, String)> {
    let inner = def
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (metric, label) = inner.split_once(',')?;
    Some((metric.trim().to_string(), label.trim().to_string()))
}

/// `expr` with Grafana's built-ins and the dashboard's variables (in any of
/// `$v`, `${v}`, `[[v]]`) replaced; longer names first, so `$agent` cannot
/// eat the start of `$agents`.
pub fn substitute(expr: &str, values: &[(String, String)]) -> String {
    let mut out = expr.to_string();
    for (name, value) in BUILTINS {
        out = out.replace(name, value);
    }
    let mut values: Vec<&(String, String)> = values.iter().collect();
    values.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, value) in values {
        for form in [
            format!("${{{name}}}"),
            format!("[[{name}]]"),
            format!("${name}"),
        ] {
            out = out.replace(&form, value);
        }
    }
    out
}

/// `expr` without string literals and without what `{}` and `[]` enclose
/// (label matchers, range durations), each replaced by a space.
fn strip_enclosed(expr: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut depth = 0usize;
    for c in expr.chars() {
        if let Some(q) = quote {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, c) if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
        if matches!(c, '"' | '\'' | '`' | '{' | '[') {
            out.push(' ');
        }
    }
    out
}

/// The metric names `expr` selects: identifiers that are not functions
/// (followed by `(`), keywords, numbers, or label lists of `by (...)` and
/// the like.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = strip_enclosed(expr).chars().collect();
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':' || c.is_ascii_digit()) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (word_char(chars[i]) || chars[i] == '.') {
            i += 1;
        }
        if c.is_ascii_digit() {
            continue; // a number or a duration
        }
        let word: String = chars[start..i].iter().collect();
        let next = chars[i..].iter().position(|c| !c.is_whitespace());
        let called = next.is_some_and(|n| chars[i + n] == '(');
        if called && GROUPINGS.contains(&word.as_str()) {
            // Skip the label list.
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
        } else if !called
            && !KEYWORDS.contains(&word.as_str())
            && !GROUPINGS.contains(&word.as_str())
        {
            names.insert(word);
        }
    }
    names
}

/// The sample names in a Prometheus text exposition (histograms' `_bucket`,
/// `_sum` and `_count` included).
pub fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// A Prometheus rules file recording every target's expression (the
/// expressions are JSON strings, which YAML reads as double-quoted
/// scalars).
pub fn rules_yaml(targets: &[Target]) -> String {
    let mut out = String::from("groups:\n  - name: grafana-dashboards\n    rules:\n");
    for t in targets {
        let record = format!(
            "grafana:{}:panel_{}_{}",
            t.dashboard,
            t.panel_id,
            t.ref_id.to_ascii_lowercase()
        );
        let expr = serde_json::to_string(&t.expr).unwrap_or_default();
        out.push_str(&format!("      - record: {record}\n        expr: {expr}\n"));
    }
    out
}

/// Panel types Grafana 9-11 ship with (what these dashboards may use).
const PANEL_TYPES: [&str; 8] = [
    "row",
    "timeseries",
    "stat",
    "gauge",
    "bargauge",
    "table",
    "text",
    "state-timeline",
];

/// What Grafana needs to import a dashboard and draw every panel where it
/// belongs, as far as can be checked without a Grafana (Debian does not
/// package it and no other registry is reachable here): a uid and title, a
/// schema version Grafana 9+ reads, a `datasource` variable every panel and
/// target uses, unique panel ids, panel types Grafana ships, grid
/// positions inside the 24-column grid that do not overlap, and targets
/// with unique refIds and an expression. Returns every problem found.
pub fn structure_problems(d: &Dashboard) -> Vec<String> {
    let mut out = Vec::new();
    let j = &d.json;
    let name = &d.name;
    if j["uid"].as_str().is_none_or(str::is_empty) || j["title"].as_str().is_none_or(str::is_empty)
    {
        out.push(format!("{name}: uid and title are required"));
    }
    if j["schemaVersion"].as_u64().is_none_or(|v| v < 36) {
        out.push(format!("{name}: schemaVersion below 36 (Grafana 9)"));
    }
    let has_ds_var = j["templating"]["list"].as_array().is_some_and(|l| {
        l.iter()
            .any(|v| v["type"] == "datasource" && v["name"] == "datasource")
    });
    if !has_ds_var {
        out.push(format!("{name}: no `datasource` variable"));
    }
    let mut panels: Vec<&Value> = Vec::new();
    for p in j["panels"].as_array().into_iter().flatten() {
        panels.push(p);
        panels.extend(p["panels"].as_array().into_iter().flatten());
    }
    let mut ids = BTreeSet::new();
    let mut cells: BTreeSet<(u64, u64)> = BTreeSet::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("?");
        if !p["id"].as_u64().is_some_and(|id| ids.insert(id)) {
            out.push(format!("{name}/{title}: missing or repeated id"));
        }
        let kind = p["type"].as_str().unwrap_or_default();
        if !PANEL_TYPES.contains(&kind) {
            out.push(format!("{name}/{title}: unknown panel type {kind:?}"));
        }
        let g = &p["gridPos"];
        let (Some(x), Some(y), Some(w), Some(h)) = (
            g["x"].as_u64(),
            g["y"].as_u64(),
            g["w"].as_u64(),
            g["h"].as_u64(),
        ) else {
            out.push(format!("{name}/{title}: gridPos needs x, y, w, h"));
            continue;
        };
        if w == 0 || h == 0 || x + w > 24 {
            out.push(format!(
                "{name}/{title}: gridPos outside the 24-column grid"
            ));
        }
        for cx in x..x + w {
            for cy in y..y + h {
                if !cells.insert((cx, cy)) {
                    out.push(format!(
                        "{name}/{title}: overlaps another panel at ({cx},{cy})"
                    ));
                }
            }
        }
        if kind == "row" || kind == "text" {
            continue;
        }
        if p["datasource"]["uid"] != "${datasource}" {
            out.push(format!(
                "{name}/{title}: the panel's datasource is not ${{datasource}}"
            ));
        }
        let mut refs = BTreeSet::new();
        let targets = p["targets"].as_array().map_or(&[][..], Vec::as_slice);
        if targets.is_empty() {
            out.push(format!("{name}/{title}: no targets"));
        }
        for t in targets {
            let ref_id = t["refId"].as_str().unwrap_or_default();
            if ref_id.is_empty() || !refs.insert(ref_id.to_string()) {
                out.push(format!("{name}/{title}: missing or repeated refId"));
            }
            if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                out.push(format!("{name}/{title}: target {ref_id} has no expr"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_skip_functions_keywords_labels_and_numbers() {
        let e = r#"sum by (state) (rate(agora_x_total{a="b}"}[10s])) / on (i) group_left agora_y > bool 0.5"#;
        let names: Vec<String> = metric_names(e).into_iter().collect();
        assert_eq!(names, ["agora_x_total", "agora_y"]);
        let h = "histogram_quantile(0.99, sum by (le) (rate(m_bucket[1m]))) offset 5m";
        assert_eq!(
            metric_names(h).into_iter().collect::<Vec<_>>(),
            ["m_bucket"]
        );
    }

    #[test]
    fn substitution_replaces_builtins_and_every_variable_form() {
        let values = vec![
            ("agent".to_string(), ".*".to_string()),
            ("agents".to_string(), "x".to_string()),
        ];
        let e =
            r#"rate(m{a=~"$agent",b=~"${agent}",c=~"[[agent]]",d="$agents"}[$__rate_interval])"#;
        assert_eq!(
            substitute(e, &values),
            r#"rate(m{a=~".*",b=~".*",c=~".*",d="x"}[10s])"#
        );
    }

    #[test]
    fn sample_names_read_the_exposition() {
        let text = "# HELP a x\n# TYPE a gauge\na 1\nb_bucket{le=\"1\"} 2\nb_sum 3\n";
        let names: Vec<String> = sample_names(text).into_iter().collect();
        assert_eq!(names, ["a", "b_bucket", "b_sum"]);
    }

    #[test]
    fn the_shipped_dashboards_are_well_formed_for_grafana() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/dashboards");
        let dashboards = super::load_dir(&dir).expect("dashboards");
        assert_eq!(dashboards.len(), 3);
        let mut uids = std::collections::BTreeSet::new();
        for d in &dashboards {
            assert!(
                uids.insert(d.json["uid"].to_string()),
                "repeated uid in {}",
                d.name
            );
            let problems = super::structure_problems(d);
            assert!(problems.is_empty(), "{problems:#?}");
        }
        // A broken copy is caught.
        let mut bad = super::Dashboard {
            name: "bad".into(),
            json: dashboards[0].json.clone(),
        };
        bad.json["panels"][1]["gridPos"]["x"] = 20.into();
        bad.json["panels"][1]["targets"][0]["refId"] = "".into();
        let problems = super::structure_problems(&bad);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("gridPos outside") || p.contains("overlaps")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.contains("refId")), "{problems:?}");
    }
}
