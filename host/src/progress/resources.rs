//! What a node's processes cost the machine, and how a parent's figures come from
//! its children's.
//!
//! A node that follows processes (`monitor exec`, or a reporter that attached its
//! PID) has figures of its own, measured from its process tree. A node without
//! them shows its children's, summed: CPU seconds and bytes add up, peaks take
//! the largest. A node's own figures win over its children's, because the usual
//! reason for both is that the children's processes are the node's too (a
//! pipeline that attached its PID to the run and to each phase): adding them
//! would count the same CPU twice.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::node::Node;

/// CPU seconds a node may report: a thousand cores for thirty years.
pub const MAX_CPU_SECS: f64 = 1e12;
/// CPU shares a node may report, in percent of one core: a million cores.
pub const MAX_PERCENT: f64 = 1e8;

/// One node's processes, from when it started following them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU time, user and system, of every process of the tree.
    pub cpu_secs: f64,
    /// The most CPU the tree used between two samples, in percent of one core.
    pub cpu_peak_percent: f64,
    /// The most resident memory the tree held at once (at a sample, or a
    /// process's own peak as the kernel reports it when it ends).
    pub rss_peak_bytes: u64,
    /// Bytes the tree read from and wrote to storage.
    pub read_bytes: u64,
    pub written_bytes: u64,
    /// Processes of the tree alive at the last sample: 0 once they have all ended.
    #[serde(default)]
    pub processes: u32,
    /// The CPU the tree used between the last two samples, in percent of one core
    /// (0 once it has ended): a running step near 0 is waiting, not working.
    #[serde(default)]
    pub cpu_percent: f64,
    /// Resident memory of the tree at the last sample.
    #[serde(default)]
    pub rss_bytes: u64,
}

impl Resources {
    /// A refusal naming the first field that is not a number from 0 to its bound
    /// (bounded, so that sums over many nodes stay finite).
    pub fn check(&self) -> Result<(), String> {
        let fields = [
            ("cpu_secs", self.cpu_secs, MAX_CPU_SECS),
            ("cpu_peak_percent", self.cpu_peak_percent, MAX_PERCENT),
            ("cpu_percent", self.cpu_percent, MAX_PERCENT),
        ];
        for (field, value, max) in fields {
            if !(0.0..=max).contains(&value) {
                let value = if value.abs() >= 1e15 { format!("{value:e}") } else { value.to_string() };
                return Err(format!("resources.{field} of {value} is invalid; send a number from 0 to {max}"));
            }
        }
        Ok(())
    }

    /// The figures of processes that have all ended: nothing in use now.
    pub fn at_rest(&mut self) {
        (self.processes, self.cpu_percent, self.rss_bytes) = (0, 0.0, 0);
    }

    /// Adds a child's figures: CPU and bytes sum, peaks take the largest.
    pub fn add(&mut self, other: &Resources) {
        self.cpu_secs += other.cpu_secs;
        self.cpu_peak_percent = self.cpu_peak_percent.max(other.cpu_peak_percent);
        self.rss_peak_bytes = self.rss_peak_bytes.max(other.rss_peak_bytes);
        self.read_bytes = self.read_bytes.saturating_add(other.read_bytes);
        self.written_bytes = self.written_bytes.saturating_add(other.written_bytes);
        self.processes = self.processes.saturating_add(other.processes);
        self.cpu_percent += other.cpu_percent;
        self.rss_bytes = self.rss_bytes.saturating_add(other.rss_bytes);
    }

    /// Each field the larger of the two: two measures of the same tree (samples,
    /// and the kernel's account when it ends), each of which may miss some.
    pub fn merge_max(&mut self, other: &Resources) {
        self.cpu_secs = self.cpu_secs.max(other.cpu_secs);
        self.cpu_peak_percent = self.cpu_peak_percent.max(other.cpu_peak_percent);
        self.rss_peak_bytes = self.rss_peak_bytes.max(other.rss_peak_bytes);
        self.read_bytes = self.read_bytes.max(other.read_bytes);
        self.written_bytes = self.written_bytes.max(other.written_bytes);
    }

    /// CPU seconds over wall seconds, in percent of one core.
    pub fn mean_cpu_percent(&self, wall_ms: u64) -> Option<f64> {
        (wall_ms > 0).then(|| self.cpu_secs / (wall_ms as f64 / 1000.0) * 100.0)
    }
}

/// Gives each node without figures of its own its children's (see the module
/// documentation); `nodes` is a run's tree, or part of one, in any order. Nodes
/// with nothing below them that followed a process keep `None`.
pub fn roll_up(nodes: &mut [Node]) {
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    // Deepest first, so a child's total is final before its parent takes it.
    order.sort_by_key(|&i| std::cmp::Reverse(nodes[i].path.depth()));
    let index: HashMap<String, usize> = nodes.iter().enumerate().map(|(i, n)| (n.path.to_string(), i)).collect();
    let mut from_children: Vec<Option<Resources>> = vec![None; nodes.len()];
    for i in order {
        if nodes[i].resources.is_none() {
            nodes[i].resources = from_children[i];
        }
        let Some(mut total) = nodes[i].resources else { continue };
        if nodes[i].status.is_terminal() {
            total.at_rest(); // a finished child uses nothing now, whatever it last reported
        }
        if let Some(&parent) = nodes[i].path.parent().and_then(|p| index.get(p.as_str())) {
            from_children[parent].get_or_insert_with(Resources::default).add(&total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NodePath;

    fn node(path: &str, resources: Option<Resources>) -> Node {
        let mut node = Node::new(NodePath::parse(path).unwrap(), 0);
        node.resources = resources;
        node
    }

    fn used(cpu_secs: f64, rss: u64, read: u64) -> Option<Resources> {
        Some(Resources {
            cpu_secs,
            cpu_peak_percent: cpu_secs * 10.0,
            rss_peak_bytes: rss,
            read_bytes: read,
            ..Default::default()
        })
    }

    #[test]
    fn parents_sum_cpu_and_bytes_and_take_the_largest_peak() {
        let mut nodes = [
            node("r", None),
            node("r/a", None),
            node("r/a/x", used(1.0, 100, 10)),
            node("r/a/y", used(2.0, 300, 20)),
            node("r/b", used(4.0, 200, 40)),
            node("r/c", None),
        ];
        roll_up(&mut nodes);
        let a = nodes[1].resources.unwrap();
        assert_eq!((a.cpu_secs, a.rss_peak_bytes, a.read_bytes, a.cpu_peak_percent), (3.0, 300, 30, 20.0));
        let r = nodes[0].resources.unwrap();
        assert_eq!((r.cpu_secs, r.rss_peak_bytes, r.read_bytes), (7.0, 300, 70));
        assert_eq!(nodes[5].resources, None, "nothing below followed a process");
    }

    #[test]
    fn a_node_measured_itself_keeps_its_own_figures() {
        let mut nodes = [node("r", used(5.0, 50, 0)), node("r/a", used(3.0, 40, 0)), node("r/b", used(1.5, 90, 0))];
        roll_up(&mut nodes);
        assert_eq!(nodes[0].resources, used(5.0, 50, 0), "the run's own tree already holds its phases'");
    }

    #[test]
    fn bad_figures_are_named() {
        let bad = Resources { cpu_secs: f64::NAN, ..Default::default() };
        assert!(bad.check().unwrap_err().contains("resources.cpu_secs of NaN"));
        let huge = Resources { cpu_secs: 1e308, ..Default::default() };
        assert!(huge.check().unwrap_err().contains("from 0 to 1000000000000"));
        assert!(Resources { cpu_peak_percent: -1.0, ..Default::default() }.check().is_err());
        assert!(Resources::default().check().is_ok());
    }

    #[test]
    fn mean_cpu_is_cpu_over_wall_time() {
        let r = Resources { cpu_secs: 3.0, ..Default::default() };
        assert_eq!(r.mean_cpu_percent(6_000), Some(50.0));
        assert_eq!(r.mean_cpu_percent(0), None);
    }
}
