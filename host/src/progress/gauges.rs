//! Runs as metrics, for `/metrics` and the rules: each node's progress, ETA and
//! resources as gauges labelled with its `run` and `node` (its full path).
//! Bounded: nodes down to a depth, of runs still going (and heard from in the last
//! [`ABANDONED_MS`]) or finished in the last [`RECENT_MS`], at most [`MAX_NODES`];
//! a host that has seen thousands of runs exposes those of the moment.

use std::collections::BTreeMap;

use super::{Node, Status};
use crate::metrics::{Sample, labelled};

/// How long a finished run stays exposed: long enough for a scrape or two to see how it ended.
pub const RECENT_MS: u64 = 5 * 60_000;
/// A run not finished but silent this long was left behind: it is not exposed.
pub const ABANDONED_MS: u64 = 24 * 3_600_000;
/// The most nodes exposed, whatever the runs: each is eight or so series.
pub const MAX_NODES: usize = 1_000;

/// Whether a run (its root) is exposed at `now_ms`.
pub fn exposed(run: &Node, now_ms: u64) -> bool {
    let age = |at: u64| now_ms.saturating_sub(at);
    match run.finished_ms {
        Some(finished) if run.status.is_terminal() => age(finished) < RECENT_MS,
        _ => age(run.updated_ms) < ABANDONED_MS,
    }
}

/// The gauges of `nodes` (rolled up, see [`super::roll_up`]) down to `depth`.
pub fn samples(nodes: &[Node], depth: usize, now_ms: u64) -> Vec<Sample> {
    let mut out = Vec::new();
    for node in nodes.iter().filter(|n| n.path.depth() <= depth).take(MAX_NODES) {
        let labels = BTreeMap::from([
            ("run".to_string(), node.path.run().to_string()),
            ("node".to_string(), node.path.to_string()),
        ]);
        let mut gauge = |name: &str, value: f64, unit: &str| out.push(labelled(name, &labels, value, unit, now_ms));
        gauge("monitor_run_progress_ratio", node.progress, "ratio");
        gauge("monitor_run_running", f64::from(u8::from(node.status == Status::Running)), "");
        gauge("monitor_run_failed", f64::from(u8::from(node.status == Status::Failed)), "");
        if let Some(eta) = node.eta_secs(now_ms) {
            gauge("monitor_run_eta_seconds", eta, "seconds");
        }
        let Some(r) = node.resources else { continue };
        gauge("monitor_run_cpu_seconds", r.cpu_secs, "seconds");
        gauge("monitor_run_memory_peak_bytes", r.rss_peak_bytes as f64, "bytes");
        gauge("monitor_run_read_bytes", r.read_bytes as f64, "bytes");
        gauge("monitor_run_written_bytes", r.written_bytes as f64, "bytes");
        // What it uses now: only while it runs, so a rule on them never sees a finished node.
        if node.status == Status::Running && r.processes > 0 {
            gauge("monitor_run_cpu_percent", r.cpu_percent, "percent");
            gauge("monitor_run_memory_bytes", r.rss_bytes as f64, "bytes");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::{NodePath, Resources};

    #[test]
    fn nodes_down_to_the_depth_with_their_resources_while_running() {
        let mut run = Node::new(NodePath::parse("r").unwrap(), 0);
        run.status = Status::Running;
        let mut phase = Node::new(NodePath::parse("r/build").unwrap(), 0);
        phase.status = Status::Running;
        phase.resources =
            Some(Resources { cpu_secs: 2.0, processes: 1, cpu_percent: 0.5, rss_bytes: 10, ..Default::default() });
        let step = Node::new(NodePath::parse("r/build/cc").unwrap(), 0);
        let nodes = [run, phase.clone(), step];
        let out = samples(&nodes, 2, 1_000);
        assert!(out.iter().all(|s| s.labels["node"] != "r/build/cc"), "deeper than 2");
        let cpu = out.iter().find(|s| s.name == "monitor_run_cpu_percent").unwrap();
        assert_eq!((cpu.labels["run"].as_str(), cpu.labels["node"].as_str(), cpu.value), ("r", "r/build", 0.5));
        assert_eq!(out.iter().filter(|s| s.name == "monitor_run_progress_ratio").count(), 2);
        phase.status = Status::Completed;
        let done = samples(&[phase], 2, 1_000);
        assert!(done.iter().all(|s| s.name != "monitor_run_cpu_percent" && s.name != "monitor_run_memory_bytes"));
        assert!(done.iter().any(|s| s.name == "monitor_run_cpu_seconds"));
    }

    #[test]
    fn finished_runs_stay_exposed_for_a_few_minutes() {
        let mut run = Node::new(NodePath::parse("r").unwrap(), 0);
        assert!(exposed(&run, 0));
        assert!(!exposed(&run, ABANDONED_MS), "left behind");
        run.status = Status::Completed;
        run.finished_ms = Some(1_000);
        assert!(exposed(&run, 1_000 + RECENT_MS - 1));
        assert!(!exposed(&run, 1_000 + RECENT_MS));
    }
}
