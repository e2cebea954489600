//! The ways of launching that are timed, their samples, and the Markdown
//! tables the bench prints (pasted into BENCHMARKS.md).
use std::collections::BTreeMap;
use std::time::Duration;

use crate::framework::Launch;

/// One way of launching `sleep 600`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Way {
    RunPlain,
    RunMatched,
    AgoraDocker,
    RuntimeDocker,
    Inspect,
    AgoraProcess,
    RuntimeProcess,
}

impl Way {
    /// Every way, in the order of a round (rotated from round to round).
    pub(crate) const ALL: [Way; 7] = [
        Way::RunPlain,
        Way::AgoraDocker,
        Way::RunMatched,
        Way::AgoraProcess,
        Way::RuntimeDocker,
        Way::Inspect,
        Way::RuntimeProcess,
    ];

    /// Prefix of task ids.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            Way::RunPlain => "run-plain",
            Way::RunMatched => "run-matched",
            Way::AgoraDocker => "docker",
            Way::RuntimeDocker => "rt-docker",
            Way::Inspect => "inspect",
            Way::AgoraProcess => "proc",
            Way::RuntimeProcess => "rt-proc",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Way::RunPlain => "`docker run -d IMAGE sleep 600` (bridge, no limits)",
            Way::RunMatched => "`docker run -d --network host` + the task's limits",
            Way::AgoraDocker => "**Agora Docker task** (ACCEPT → TASK_RUNNING)",
            Way::RuntimeDocker => "`DockerRuntime::launch` alone",
            Way::Inspect => "`inspect_image` alone",
            Way::AgoraProcess => "**Agora process task** (ACCEPT → TASK_RUNNING)",
            Way::RuntimeProcess => "`ProcessRuntime::launch` alone",
        }
    }
}

/// Where an Agora launch's time went, from the agent's update timestamps
/// (same host, same clock): master hop in (ACCEPT sent → agent stamps
/// TASK_STARTING), agent (→ agent stamps TASK_RUNNING, i.e. the runtime's
/// launch returned), hop out (→ TASK_RUNNING at the framework). Beside the
/// critical path: STARTING's way to the framework and its acknowledgement's
/// way back, which TASK_RUNNING has to wait for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Split {
    hop_in: f64,
    agent: f64,
    hop_out: f64,
    starting_out: f64,
    ack_back: f64,
}

/// Names of [`Split::parts`], in order.
const PARTS: [&str; 5] = [
    "ACCEPT sent → agent stamps STARTING",
    "STARTING → agent stamps RUNNING",
    "agent stamps RUNNING → framework has it",
    "(aside) agent stamps STARTING → framework has it",
    "(aside) framework has STARTING → its ack returned",
];

impl Split {
    fn parts(&self) -> [f64; 5] {
        [
            self.hop_in,
            self.agent,
            self.hop_out,
            self.starting_out,
            self.ack_back,
        ]
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    total: Duration,
    split: Option<Split>,
}

impl Timing {
    pub(crate) fn plain(total: Duration) -> Timing {
        Timing { total, split: None }
    }

    pub(crate) fn agora(l: &Launch) -> Timing {
        Timing {
            total: l.total,
            split: Some(Split {
                hop_in: l.starting_ts - l.accept_unix,
                agent: l.running_ts - l.starting_ts,
                hop_out: l.running_unix - l.running_ts,
                starting_out: l.starting_unix - l.starting_ts,
                ack_back: l.starting_acked_unix.unwrap_or(f64::NAN) - l.starting_unix,
            }),
        }
    }
}

#[derive(Default)]
pub(crate) struct Samples(BTreeMap<Way, Vec<Timing>>);

/// mean, p50, p90, max of `v` (milliseconds), nearest-rank percentiles.
fn stats(v: &[f64]) -> [f64; 4] {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    [mean, rank(0.5), rank(0.9), s[s.len() - 1]]
}

fn ms(v: impl IntoIterator<Item = f64>) -> Vec<f64> {
    v.into_iter().map(|s| s * 1000.0).collect()
}

impl Samples {
    pub(crate) fn push(&mut self, way: Way, t: Timing) {
        self.0.entry(way).or_default().push(t);
    }

    fn totals(&self, way: Way) -> Vec<f64> {
        let v = self.0.get(&way).map(Vec::as_slice).unwrap_or_default();
        ms(v.iter().map(|t| t.total.as_secs_f64()))
    }

    pub(crate) fn print(&self, n: usize, warmup: usize) {
        println!(
            "\n{n} launches each, one at a time, interleaved; {warmup} warm-up rounds not counted\n"
        );
        println!("| launch of `sleep 600` | total s | mean ms | p50 ms | p90 ms | max ms |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for way in self.0.keys() {
            let v = self.totals(*way);
            if v.is_empty() {
                continue;
            }
            let [mean, p50, p90, max] = stats(&v);
            let total = v.iter().sum::<f64>() / 1000.0;
            println!(
                "| {} | {total:.2} | {mean:.1} | {p50:.1} | {p90:.1} | {max:.1} |",
                way.label()
            );
        }
        let agora = self.totals(Way::AgoraDocker);
        println!();
        for base in [Way::RunPlain, Way::RunMatched] {
            let b = self.totals(base);
            if agora.is_empty() || b.is_empty() {
                continue;
            }
            let (a, b) = (stats(&agora), stats(&b));
            println!(
                "Agora Docker / {}: mean {:.2}x, p50 {:.2}x, p90 {:.2}x (target ≤ 1.15x)",
                base.label(),
                a[0] / b[0],
                a[1] / b[1],
                a[2] / b[2]
            );
        }
        println!("\n| Agora task: where the time goes (ms) | mean | p50 | p90 | max |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        for way in [Way::AgoraDocker, Way::AgoraProcess] {
            let splits: Vec<Split> = self
                .0
                .get(&way)
                .into_iter()
                .flatten()
                .filter_map(|t| t.split)
                .collect();
            if splits.is_empty() {
                continue;
            }
            for (i, name) in PARTS.iter().enumerate() {
                let [mean, p50, p90, max] = stats(&ms(splits.iter().map(|s| s.parts()[i])));
                println!(
                    "| {} {name} | {mean:.1} | {p50:.1} | {p90:.1} | {max:.1} |",
                    way.slug()
                );
            }
        }
    }
}
