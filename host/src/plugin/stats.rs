//! A plugin's self-metrics: calls, faults, errors, last error, call latency,
//! memory peak.
//!
//! A fault is the plugin breaking a rule (a trap, a deadline, the memory cap, a
//! refused capability, too much output): faults in a row quarantine it. An
//! error is the plugin answering `Err` as its contract allows (a view it does
//! not render, a collection that failed): it is counted and shown, and never
//! quarantines.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::fault::Fault;

/// How many recent call latencies the percentiles are taken over.
const WINDOW: usize = 1024;

/// Live counters, owned by the plugin's actor.
#[derive(Debug)]
pub struct Stats {
    pub calls: u64,
    pub faults: u64,
    pub consecutive_faults: u32,
    pub errors: u64,
    pub last_error: Option<String>,
    pub memory_peak_bytes: u64,
    /// Calls the host gave up on whose threads are still blocked.
    pub hung_threads: u32,
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
    /// Calls answered with an error (not faults).
    #[serde(default)]
    pub errors: u64,
    pub last_error: Option<String>,
    /// Median call latency over the last calls, in microseconds.
    pub p50_us: f64,
    pub p99_us: f64,
    pub memory_peak_bytes: u64,
    /// Calls the host gave up on whose threads are still blocked (live only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hung_threads: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Stats {
    pub fn new(previous: &StatsSnapshot) -> Stats {
        Stats {
            calls: previous.calls,
            faults: previous.faults,
            consecutive_faults: previous.consecutive_faults,
            errors: previous.errors,
            last_error: previous.last_error.clone(),
            memory_peak_bytes: previous.memory_peak_bytes,
            hung_threads: 0,
            latencies: Latencies::default(),
        }
    }

    /// Records a call that took `took` and ended with `fault` (`None`: fine),
    /// the instance having reached `memory_peak` bytes.
    pub fn record(&mut self, took: Duration, fault: Option<&Fault>, memory_peak: usize) {
        self.calls += 1;
        self.latencies.record(took);
        self.memory_peak_bytes = self.memory_peak_bytes.max(memory_peak as u64);
        match fault {
            None => self.consecutive_faults = 0,
            // The plugin answered as its contract allows: no fault. Neither does it
            // end a streak: a plugin that hangs and errs in turn is still stopped.
            Some(fault @ Fault::Returned { .. }) => {
                self.errors += 1;
                self.last_error = Some(fault.to_string());
            }
            Some(fault) => {
                self.faults += 1;
                self.consecutive_faults += 1;
                self.last_error = Some(fault.to_string());
            }
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let (p50_us, p99_us) = self.latencies.p50_p99_us();
        StatsSnapshot {
            calls: self.calls,
            faults: self.faults,
            consecutive_faults: self.consecutive_faults,
            errors: self.errors,
            last_error: self.last_error.clone(),
            p50_us,
            p99_us,
            memory_peak_bytes: self.memory_peak_bytes,
            hung_threads: self.hung_threads,
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
            s.record(Duration::from_micros(us), None, 0);
        }
        let snap = s.snapshot();
        assert_eq!((snap.calls, snap.p50_us, snap.p99_us), (100, 50.0, 99.0));
        for _ in 0..WINDOW {
            s.record(Duration::from_micros(7), None, 0);
        }
        assert_eq!(s.snapshot().p99_us, 7.0);
    }

    fn trap(detail: &str) -> Fault {
        Fault::Trap { call: "collect", detail: detail.into() }
    }

    #[test]
    fn a_success_ends_a_fault_streak_but_not_the_count() {
        let mut s = Stats::new(&StatsSnapshot::default());
        s.record(Duration::ZERO, Some(&trap("a")), 0);
        s.record(Duration::ZERO, Some(&trap("b")), 0);
        s.record(Duration::ZERO, None, 0);
        let snap = s.snapshot();
        assert_eq!((snap.faults, snap.consecutive_faults), (2, 0));
        assert_eq!(snap.last_error.as_deref(), Some("collect trapped: b"));
    }

    #[test]
    fn an_error_is_counted_apart_and_is_no_fault() {
        let mut s = Stats::new(&StatsSnapshot::default());
        s.record(Duration::ZERO, Some(&trap("a")), 0);
        let error = Fault::Returned { call: "format", message: "no such view".into() };
        for _ in 0..5 {
            s.record(Duration::ZERO, Some(&error), 1 << 20);
        }
        let snap = s.snapshot();
        assert_eq!((snap.calls, snap.faults, snap.consecutive_faults, snap.errors), (6, 1, 1, 5));
        assert_eq!(snap.last_error.as_deref(), Some("format returned an error: no such view"));
        assert_eq!(snap.memory_peak_bytes, 1 << 20);
    }
}
