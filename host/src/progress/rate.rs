//! Speed and time left, from recent samples of a node's `done`.
//!
//! The rate is measured over a sliding window (at most [`MAX_SAMPLES`] samples,
//! none older than the window) so that it follows the current pace rather than
//! the average since the start. When `done` goes down the work was restarted or
//! corrected and the old samples describe other work, so the window starts over.

use std::collections::VecDeque;

/// Most samples a window keeps; the oldest go first.
pub const MAX_SAMPLES: usize = 64;
/// The default window, in milliseconds.
pub const DEFAULT_WINDOW_MS: u64 = 60_000;

/// Recent `(timestamp_ms, done)` samples of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    window_ms: u64,
    samples: VecDeque<(u64, f64)>,
}

impl Default for Rate {
    fn default() -> Rate {
        Rate::new(DEFAULT_WINDOW_MS)
    }
}

impl Rate {
    pub fn new(window_ms: u64) -> Rate {
        Rate { window_ms, samples: VecDeque::with_capacity(MAX_SAMPLES) }
    }

    /// Adds a sample. Non-finite values are ignored; a sample at the same time
    /// as the last one replaces it; `done` going down or the clock going back
    /// starts the window over.
    pub fn record(&mut self, at_ms: u64, done: f64) {
        if !done.is_finite() {
            return;
        }
        if let Some(&(last_ms, last_done)) = self.samples.back() {
            if done < last_done || at_ms < last_ms {
                self.samples.clear();
            } else if at_ms == last_ms {
                self.samples.pop_back();
            }
        }
        self.samples.push_back((at_ms, done));
        let oldest = at_ms.saturating_sub(self.window_ms);
        while self.samples.len() > MAX_SAMPLES || self.samples.front().is_some_and(|&(t, _)| t < oldest) {
            self.samples.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Units per second across the window; `None` with fewer than two samples.
    pub fn units_per_sec(&self) -> Option<f64> {
        let (&(first_ms, first), &(last_ms, last)) = (self.samples.front()?, self.samples.back()?);
        let elapsed_ms = last_ms.checked_sub(first_ms).filter(|ms| *ms > 0)?;
        Some((last - first) / (elapsed_ms as f64 / 1000.0))
    }

    /// Seconds until `done` reaches `total` at the current rate: 0 once it has,
    /// `None` when the total is unknown or nothing is moving.
    pub fn eta_secs(&self, done: f64, total: Option<f64>) -> Option<f64> {
        let total = total?;
        if done >= total {
            return Some(0.0);
        }
        let rate = self.units_per_sec().filter(|r| *r > 0.0)?;
        Some((total - done) / rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_two_samples_and_elapsed_time() {
        let mut rate = Rate::default();
        assert_eq!(rate.units_per_sec(), None);
        rate.record(1_000, 5.0);
        assert_eq!(rate.units_per_sec(), None);
        rate.record(1_000, 6.0);
        assert_eq!((rate.len(), rate.units_per_sec()), (1, None), "same instant replaces, no elapsed time");
        rate.record(1_500, 7.0);
        assert_eq!(rate.units_per_sec(), Some(2.0));
        rate.record(2_000, f64::NAN);
        assert_eq!(rate.len(), 2, "non-finite samples are ignored");
    }

    #[test]
    fn steady_rate_gives_rate_and_eta() {
        let mut rate = Rate::default();
        for s in 0..=10u64 {
            rate.record(s * 1_000, s as f64 * 4.0);
        }
        assert_eq!(rate.units_per_sec(), Some(4.0));
        assert_eq!(rate.eta_secs(40.0, Some(100.0)), Some(15.0));
        assert_eq!(rate.eta_secs(40.0, None), None);
        assert_eq!(rate.eta_secs(100.0, Some(100.0)), Some(0.0));
        assert_eq!(rate.eta_secs(120.0, Some(100.0)), Some(0.0));
    }

    #[test]
    fn a_burst_is_averaged_over_the_window_then_forgotten() {
        let mut rate = Rate::new(10_000);
        for s in 0..=10u64 {
            rate.record(s * 1_000, s as f64);
        }
        rate.record(11_000, 111.0);
        // Window 1s..11s: from 1 to 111 over 10 s.
        assert_eq!(rate.units_per_sec(), Some(11.0));
        for s in 12..=22u64 {
            rate.record(s * 1_000, 111.0 + (s - 11) as f64);
        }
        assert_eq!(rate.units_per_sec(), Some(1.0), "the burst left the window");
    }

    #[test]
    fn a_stall_drives_the_rate_to_zero_and_the_eta_away() {
        let mut rate = Rate::new(10_000);
        for s in 0..=5u64 {
            rate.record(s * 1_000, s as f64 * 10.0);
        }
        for s in 6..=20u64 {
            rate.record(s * 1_000, 50.0);
        }
        assert_eq!(rate.units_per_sec(), Some(0.0));
        assert_eq!(rate.eta_secs(50.0, Some(100.0)), None);
        assert_eq!(rate.eta_secs(100.0, Some(100.0)), Some(0.0), "done is done even when stalled");
    }

    #[test]
    fn done_going_down_restarts_the_window() {
        let mut rate = Rate::default();
        for s in 0..=5u64 {
            rate.record(s * 1_000, 100.0 + s as f64 * 50.0);
        }
        rate.record(6_000, 0.0);
        assert_eq!((rate.len(), rate.units_per_sec()), (1, None));
        rate.record(8_000, 6.0);
        assert_eq!(rate.units_per_sec(), Some(3.0));
        rate.record(7_000, 7.0);
        assert_eq!((rate.len(), rate.units_per_sec()), (1, None), "a clock going back restarts too");
    }

    #[test]
    fn keeps_at_most_max_samples() {
        let mut rate = Rate::default();
        for i in 0..200u64 {
            rate.record(i * 100, i as f64);
        }
        assert_eq!(rate.len(), MAX_SAMPLES);
        let per_sec = rate.units_per_sec().unwrap();
        assert!((per_sec - 10.0).abs() < 1e-9, "{per_sec}");
        rate.record(1_000_000, 500.0);
        assert_eq!(rate.len(), 1, "samples older than the window are dropped");
    }
}
