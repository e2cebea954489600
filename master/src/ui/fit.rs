//! `/ui/fit`: the "what fits" calculator. A plain GET form, answered by
//! the same dry run as `/api/v1/capacity/fit` (the script only swaps the
//! answer in without a reload).
use agora_capacity::FitAnswer;
use maud::{Markup, html};

/// Form fields: name, label, placeholder.
const FIELDS: [(&str, &str, &str); 7] = [
    ("cpus", "cpus", "0.1"),
    ("mem", "mem (MB)", "128"),
    ("disk", "disk (MB)", "0"),
    ("gpus", "gpus", "0"),
    ("ports", "ports", "0"),
    ("role", "role", "*"),
    ("count", "instances wanted", ""),
];

/// How many constraint inputs the form offers.
const CONSTRAINT_INPUTS: usize = 3;

/// The page body: the form with the asked values, then the answer or the
/// error, if anything was asked.
pub(crate) fn body(
    pairs: &[(String, String)],
    answer: Option<Result<&FitAnswer, (String, String)>>,
) -> Markup {
    let value = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map_or("", |(_, v)| v.as_str())
    };
    let constraints: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "constraint")
        .map(|(_, v)| v.as_str())
        .collect();
    html! {
        form method="get" action="/ui/fit" data-test="fit-form" data-swap="main" {
            fieldset {
                legend { "Task shape" }
                @for (name, label, placeholder) in FIELDS {
                    label { (label) " " input name=(name) value=(value(name)) placeholder=(placeholder) size="8"; }
                    " "
                }
            }
            fieldset {
                legend { "Marathon constraints (field:OPERATOR[:value], e.g. hostname:UNIQUE, rack:GROUP_BY:2)" }
                @for i in 0..CONSTRAINT_INPUTS {
                    input name="constraint" value=(constraints.get(i).copied().unwrap_or("")) size="24";
                    " "
                }
            }
            fieldset {
                legend { "What if" }
                label { "add an agent " input name="add_agent" value=(value("add_agent")) placeholder="cpus:8;mem:16384@rack=r4" size="32"; }
                " "
                label { "drain agent " input name="drain" value=(value("drain")) placeholder="agent id" size="24"; }
            }
            button type="submit" data-test="fit-submit" { "what fits?" }
        }
        @match answer {
            None => {}
            Some(Err((path, error))) => {
                p.error role="alert" data-test="fit-error" { "Invalid " (path) ": " (error) }
            }
            Some(Ok(a)) => { (result(a)) }
        }
    }
}

fn result(a: &FitAnswer) -> Markup {
    html! {
        section data-test="fit-answer" {
            p.big {
                span data-test="fit-placeable" { (a.placeable) } " more instances fit"
                " " @if a.fits { span.ok data-test="fit-verdict" { "✓ the count asked for fits" } }
                @else { span.bad data-test="fit-verdict" { "✗ not all fit" } }
            }
            h2 { "Funnel (one instance)" }
            table data-test="fit-funnel" {
                thead { tr { th { "stage" } th.n { "agents turned away" } th.n { "agents left" } } }
                tbody {
                    @for s in &a.funnel {
                        tr data-stage=(s.stage) { th { (s.stage) } td.n { (s.rejected) } td.n { (s.remaining) } }
                    }
                }
            }
            h2 { "Where" }
            table data-test="fit-agents" {
                thead { tr { th { "agent" } th { "hostname" } th.n { "instances" } th { "bottleneck" } } }
                tbody {
                    @for g in &a.agents {
                        tr data-agent=(g.id) {
                            td.id { (g.id) } th { (g.hostname) }
                            td.n data-test="fit-agent-placeable" { (g.placeable) }
                            td { (g.bottleneck.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    }
}
