//! Metrics derived from the host's system snapshot, the ratios people alert on:
//! memory and swap in use as a fraction, and the load average per core (a load
//! per core above 1 means work is waiting for a CPU).

use monitor_sdk::{Metric, MetricProvider, Plugin, SystemSnapshot};

#[derive(Default)]
struct DerivedMetrics;

impl Plugin for DerivedMetrics {
    const SUMMARY: &'static str = "memory and swap use ratios, load average per core";
}

impl MetricProvider for DerivedMetrics {
    fn collect(&mut self) -> Result<Vec<Metric>, String> {
        Ok(derive(&monitor_sdk::system_snapshot()))
    }
}

fn ratio(used: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { used as f64 / total as f64 }
}

/// The metrics for one snapshot; public so benchmarks can run it natively.
pub fn derive(s: &SystemSnapshot) -> Vec<Metric> {
    let cores = s.per_core_percent.len().max(1) as f64;
    vec![
        Metric::new("memory_used_ratio", ratio(s.memory_used_bytes, s.memory_total_bytes)).unit("ratio"),
        Metric::new("swap_used_ratio", ratio(s.swap_used_bytes, s.swap_total_bytes)).unit("ratio"),
        Metric::new("load_per_core", s.load_one / cores).label("window", "1m"),
        Metric::new("load_per_core", s.load_five / cores).label("window", "5m"),
        Metric::new("load_per_core", s.load_fifteen / cores).label("window", "15m"),
    ]
}

monitor_sdk::export_metric_provider!(DerivedMetrics);
