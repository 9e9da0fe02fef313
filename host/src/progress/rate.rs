//! Speed and time left, from recent samples of a node's `done` and `progress`.
//!
//! A node keeps a few `(time, done, progress)` samples (at most [`MAX_SAMPLES`],
//! at least [`WINDOW_MS`] / [`MAX_SAMPLES`] apart, the newest replacing the last
//! one when they come quicker) and is stored with them, so the rate survives
//! restarts. The rate is measured from the oldest sample to the newest, and the
//! oldest is the last one at or beyond the window: the rate follows the current
//! pace rather than the average since the start, and work that reports only
//! every few minutes still has one. When `done` or `progress` goes down the work
//! was restarted or corrected, the old samples describe other work, and the
//! window starts over.

use serde::{Deserialize, Serialize};

/// Most samples kept.
pub const MAX_SAMPLES: usize = 8;
/// How far back the rate looks, in milliseconds.
pub const WINDOW_MS: u64 = 60_000;
const SPACING_MS: u64 = WINDOW_MS / MAX_SAMPLES as u64;
/// The least time the samples must span for a rate: two reports a moment
/// apart (a start and a first step) say nothing of the pace.
pub const MIN_SPAN_MS: u64 = 1_000;

/// Silence that is never yet a stall, however often a node used to report.
pub const STALL_AFTER_MS: u64 = 60_000;

/// `(timestamp_ms, done, progress)`.
type Sample = (u64, f64, f64);

/// Recent `[timestamp_ms, done, progress]` samples of one node, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rate {
    samples: Vec<Sample>,
}

impl Rate {
    /// Adds a sample. Non-finite values are ignored; `done` or `progress` going
    /// down, or the clock going back, starts the window over.
    pub fn record(&mut self, at_ms: u64, done: f64, progress: f64) {
        if !done.is_finite() || !progress.is_finite() {
            return;
        }
        if let Some(&(last_ms, last_done, last_progress)) = self.samples.last()
            && (done < last_done || progress < last_progress || at_ms < last_ms)
        {
            self.samples.clear();
        }
        // Too close to the one before the newest: the newest moves instead.
        let n = self.samples.len();
        if n >= 2 && at_ms - self.samples[n - 2].0 < SPACING_MS {
            self.samples.pop();
        }
        self.samples.push((at_ms, done, progress));
        let edge = at_ms.saturating_sub(WINDOW_MS);
        while self.samples.len() > MAX_SAMPLES || (self.samples.len() > 2 && self.samples[1].0 <= edge) {
            self.samples.remove(0);
        }
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Units per second across the window; `None` with less than two samples.
    pub fn units_per_sec(&self) -> Option<f64> {
        let ((first_ms, first, _), (last_ms, last, _)) = self.ends()?;
        Some((last - first) / ((last_ms - first_ms) as f64 / 1000.0))
    }

    /// Seconds until `progress` reaches 1 at the current pace: 0 once it has,
    /// `None` when it is not moving or there is too little to tell.
    pub fn eta_secs(&self, progress: f64) -> Option<f64> {
        if progress >= 1.0 {
            return Some(0.0);
        }
        let ((first_ms, _, first), (last_ms, _, last)) = self.ends()?;
        let per_sec = (last - first) / ((last_ms - first_ms) as f64 / 1000.0);
        (per_sec > 0.0).then(|| (1.0 - progress) / per_sec)
    }

    /// [`Rate::eta_secs`] counted down from the newest sample, or when the node
    /// last moved if it has been silent for much longer than it used to be
    /// between reports (at least [`STALL_AFTER_MS`]); nothing with too little to go on.
    pub fn pace(&self, progress: f64, now_ms: u64) -> super::Pace {
        let Some(((first_ms, _, _), (last_ms, _, _))) = self.ends() else {
            return super::Pace::default();
        };
        let spacing = (last_ms - first_ms) / (self.samples.len() as u64 - 1).max(1);
        let silent = now_ms.saturating_sub(last_ms);
        if silent > STALL_AFTER_MS.max(3 * spacing) && progress < 1.0 {
            return super::Pace { eta_secs: None, stalled_since_ms: Some(last_ms) };
        }
        let eta_secs = self.eta_secs(progress).map(|secs| (secs - silent as f64 / 1000.0).max(0.0));
        super::Pace { eta_secs, stalled_since_ms: None }
    }

    fn ends(&self) -> Option<(Sample, Sample)> {
        let (first, last) = (*self.samples.first()?, *self.samples.last()?);
        (last.0 >= first.0 + MIN_SPAN_MS).then_some((first, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_two_samples_and_elapsed_time() {
        let mut rate = Rate::default();
        assert_eq!(rate.units_per_sec(), None);
        rate.record(1_000, 5.0, 0.05);
        assert_eq!(rate.units_per_sec(), None);
        rate.record(1_000, 6.0, 0.06);
        assert_eq!(rate.units_per_sec(), None, "no time has passed");
        rate.record(1_500, 7.0, 0.07);
        assert_eq!(rate.units_per_sec(), None, "half a second says nothing of the pace");
        rate.record(3_000, 13.0, 0.13);
        assert_eq!(rate.units_per_sec(), Some(4.0), "from 5 at 1.0 s to 13 at 3.0 s");
        rate.record(3_500, f64::NAN, 0.5);
        assert_eq!(rate.units_per_sec(), Some(4.0), "non-finite samples are ignored");
    }

    #[test]
    fn the_eta_counts_down_and_a_long_silence_is_a_stall() {
        let mut rate = Rate::default();
        for s in 0..=10u64 {
            rate.record(s * 1_000, s as f64, s as f64 / 100.0);
        }
        assert_eq!(rate.pace(0.1, 10_000).eta_secs, Some(90.0));
        assert_eq!(rate.pace(0.1, 15_000).eta_secs, Some(85.0), "five silent seconds count down");
        let stalled = rate.pace(0.1, 10_000 + STALL_AFTER_MS + 1);
        assert_eq!((stalled.eta_secs, stalled.stalled_since_ms), (None, Some(10_000)));
        let mut two = Rate::default();
        two.record(0, 0.0, 0.0);
        two.record(500, 800.0, 0.8);
        assert_eq!(two.pace(0.8, 120_000), crate::progress::Pace::default(), "two quick reports say nothing");
    }

    #[test]
    fn steady_rate_gives_rate_and_eta() {
        let mut rate = Rate::default();
        for s in 0..=10u64 {
            rate.record(s * 1_000, s as f64 * 4.0, s as f64 * 0.04);
        }
        assert!((rate.units_per_sec().unwrap() - 4.0).abs() < 1e-9);
        let eta = rate.eta_secs(0.4).unwrap();
        assert!((eta - 15.0).abs() < 1e-6, "0.6 left at 0.04/s: {eta}");
        assert_eq!(rate.eta_secs(1.0), Some(0.0));
        assert!(rate.len() <= MAX_SAMPLES);
    }

    #[test]
    fn follows_the_current_pace_and_keeps_an_anchor_for_slow_work() {
        let mut rate = Rate::default();
        for s in 0..=60u64 {
            rate.record(s * 1_000, s as f64, s as f64 / 1e4);
        }
        for s in 61..=180u64 {
            let done = 60.0 + (s - 60) as f64 * 10.0;
            rate.record(s * 1_000, done, done / 1e4);
        }
        let per_sec = rate.units_per_sec().unwrap();
        assert!((per_sec - 10.0).abs() < 1e-9, "the slow start left the window: {per_sec}");

        let mut slow = Rate::default();
        for m in 0..5u64 {
            slow.record(m * 300_000, m as f64, m as f64 / 10.0);
        }
        assert_eq!(slow.len(), 2, "one sample beyond the window stays as the anchor");
        let per_sec = slow.units_per_sec().unwrap();
        assert!((per_sec - 1.0 / 300.0).abs() < 1e-12, "{per_sec}");
        assert!((slow.eta_secs(0.4).unwrap() - 1800.0).abs() < 1e-6);
    }

    #[test]
    fn a_stall_has_no_eta() {
        let mut rate = Rate::default();
        for s in 0..=5u64 {
            rate.record(s * 10_000, s as f64 * 10.0, s as f64 * 0.1);
        }
        for s in 6..=20u64 {
            rate.record(s * 10_000, 50.0, 0.5);
        }
        assert_eq!(rate.units_per_sec(), Some(0.0));
        assert_eq!(rate.eta_secs(0.5), None);
    }

    #[test]
    fn going_down_restarts_the_window() {
        let mut rate = Rate::default();
        for s in 0..=5u64 {
            rate.record(s * 10_000, 100.0 + s as f64 * 50.0, 0.5);
        }
        rate.record(60_000, 0.0, 0.0);
        assert_eq!((rate.len(), rate.units_per_sec()), (1, None));
        rate.record(70_000, 30.0, 0.1);
        assert_eq!(rate.units_per_sec(), Some(3.0));
        rate.record(69_000, 31.0, 0.1);
        assert_eq!((rate.len(), rate.units_per_sec()), (1, None), "a clock going back restarts too");
    }

    #[test]
    fn stays_small_and_serialises_as_samples() {
        let mut rate = Rate::default();
        for i in 0..10_000u64 {
            rate.record(i * 10, i as f64, 0.0);
        }
        assert!(rate.len() <= MAX_SAMPLES);
        let json = serde_json::to_string(&rate).unwrap();
        assert!(json.starts_with("[[") && json.len() < 200, "{json}");
        assert_eq!(serde_json::from_str::<Rate>(&json).unwrap(), rate);
    }
}
