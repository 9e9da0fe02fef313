//! A plugin's self-metrics: calls, faults, last error, call latency, memory peak.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How many recent call latencies the percentiles are taken over.
const WINDOW: usize = 1024;

/// Live counters, owned by the plugin's actor.
#[derive(Debug)]
pub struct Stats {
    pub calls: u64,
    pub faults: u64,
    pub consecutive_faults: u32,
    pub last_error: Option<String>,
    pub memory_peak_bytes: u64,
    latencies: Latencies,
}

/// The most recent durations of something (at most [`WINDOW`]), for percentiles.
#[derive(Debug, Default)]
pub struct Latencies {
    ns: Vec<u64>,
    next: usize,
}

impl Latencies {
    pub fn record(&mut self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        if self.ns.len() < WINDOW {
            self.ns.push(ns);
        } else {
            self.ns[self.next] = ns;
        }
        self.next = (self.next + 1) % WINDOW;
    }

    /// Median and 99th percentile, in microseconds; 0 before anything was recorded.
    pub fn p50_p99_us(&self) -> (f64, f64) {
        let mut sorted = self.ns.clone();
        sorted.sort_unstable();
        (percentile(&sorted, 0.50), percentile(&sorted, 0.99))
    }
}

/// A copy of the counters with percentiles computed, for display and storage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub calls: u64,
    pub faults: u64,
    pub consecutive_faults: u32,
    pub last_error: Option<String>,
    /// Median call latency over the last calls, in microseconds.
    pub p50_us: f64,
    pub p99_us: f64,
    pub memory_peak_bytes: u64,
}

impl Stats {
    pub fn new(previous: &StatsSnapshot) -> Stats {
        Stats {
            calls: previous.calls,
            faults: previous.faults,
            consecutive_faults: previous.consecutive_faults,
            last_error: previous.last_error.clone(),
            memory_peak_bytes: previous.memory_peak_bytes,
            latencies: Latencies::default(),
        }
    }

    pub fn record_call(&mut self, took: Duration) {
        self.calls += 1;
        self.latencies.record(took);
    }

    pub fn record_success(&mut self) {
        self.consecutive_faults = 0;
    }

    pub fn record_fault(&mut self, error: String) {
        self.faults += 1;
        self.consecutive_faults += 1;
        self.last_error = Some(error);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let (p50_us, p99_us) = self.latencies.p50_p99_us();
        StatsSnapshot {
            calls: self.calls,
            faults: self.faults,
            consecutive_faults: self.consecutive_faults,
            last_error: self.last_error.clone(),
            p50_us,
            p99_us,
            memory_peak_bytes: self.memory_peak_bytes,
        }
    }
}

/// Nearest-rank percentile of sorted nanoseconds, in microseconds.
fn percentile(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_ns.len() as f64).ceil() as usize).clamp(1, sorted_ns.len());
    sorted_ns[rank - 1] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_recent_window() {
        let mut s = Stats::new(&StatsSnapshot::default());
        for us in 1..=100 {
            s.record_call(Duration::from_micros(us));
        }
        let snap = s.snapshot();
        assert_eq!((snap.calls, snap.p50_us, snap.p99_us), (100, 50.0, 99.0));
        for _ in 0..WINDOW {
            s.record_call(Duration::from_micros(7));
        }
        assert_eq!(s.snapshot().p99_us, 7.0);
    }

    #[test]
    fn a_success_ends_a_fault_streak_but_not_the_count() {
        let mut s = Stats::new(&StatsSnapshot::default());
        s.record_fault("a".into());
        s.record_fault("b".into());
        s.record_success();
        let snap = s.snapshot();
        assert_eq!((snap.faults, snap.consecutive_faults), (2, 0));
        assert_eq!(snap.last_error.as_deref(), Some("b"));
    }
}
