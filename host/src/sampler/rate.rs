//! Per-second rates from cumulative counters (bytes, packets, operations) read at
//! two moments. The kernel only gives totals; rates are what people read.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The rate of a counter that read `previous` and then `current`, `elapsed` apart.
///
/// `None` when no time passed: there is no rate to give, rather than an infinite one.
/// A counter that went down was reset (a device or interface re-created, a driver
/// reloaded, a 32-bit counter wrapped); as Prometheus's `rate()` does, it is taken to
/// have restarted from zero, so `current` is the increase over the interval. That can
/// underestimate a wrap but never gives a negative rate.
pub fn per_second(previous: u64, current: u64, elapsed: Duration) -> Option<f64> {
    if elapsed.is_zero() {
        return None;
    }
    let increase = if current >= previous { current - previous } else { current };
    Some(increase as f64 / elapsed.as_secs_f64())
}

/// One key's counters at one moment.
#[derive(Debug, Clone, Copy)]
struct Reading<const N: usize> {
    at: Instant,
    values: [u64; N],
}

/// The last reading of each of a set of named counter groups (a disk's bytes and
/// operations, an interface's bytes, packets and errors), turning each new reading
/// into rates.
#[derive(Debug)]
pub struct Rates<K, const N: usize> {
    last: HashMap<K, Reading<N>>,
}

impl<K, const N: usize> Default for Rates<K, N> {
    fn default() -> Self {
        Rates { last: HashMap::new() }
    }
}

impl<K: Eq + Hash + Clone, const N: usize> Rates<K, N> {
    /// Records one reading of every key at `at` and returns each key's rates since its
    /// previous reading, in the order given.
    ///
    /// A key seen for the first time has no rates yet (`None`); so does one read again
    /// with no time elapsed, which keeps its older reading as the base for the next
    /// interval. A key missing from `readings` is forgotten: if it comes back, its
    /// counters start over, as a re-created device's do.
    pub fn observe(
        &mut self,
        readings: impl IntoIterator<Item = (K, [u64; N])>,
        at: Instant,
    ) -> Vec<(K, Option<[f64; N]>)> {
        let mut next = HashMap::with_capacity(self.last.len());
        let mut out = Vec::with_capacity(self.last.len());
        for (key, values) in readings {
            let reading = Reading { at, values };
            let (rates, kept) = match self.last.get(&key) {
                None => (None, reading),
                Some(previous) => {
                    let elapsed = at.checked_duration_since(previous.at).unwrap_or_default();
                    if elapsed.is_zero() {
                        (None, *previous)
                    } else {
                        let rates = std::array::from_fn(|i| {
                            per_second(previous.values[i], values[i], elapsed).expect("elapsed is not zero")
                        });
                        (Some(rates), reading)
                    }
                }
            };
            next.insert(key.clone(), kept);
            out.push((key, rates));
        }
        self.last = next;
        out
    }

    /// How many keys have a reading to compare the next one with.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.last.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_rate_is_the_increase_over_the_elapsed_time() {
        assert_eq!(per_second(100, 300, SECOND * 2), Some(100.0));
        assert_eq!(per_second(5, 5, SECOND), Some(0.0));
        assert_eq!(per_second(0, 1, Duration::from_millis(250)), Some(4.0));
        assert_eq!(per_second(0, u64::MAX, SECOND), Some(u64::MAX as f64));
    }

    #[test]
    fn no_elapsed_time_gives_no_rate() {
        assert_eq!(per_second(1, 2, Duration::ZERO), None);
        assert_eq!(per_second(0, 0, Duration::ZERO), None);
    }

    #[test]
    fn a_counter_going_down_restarted_from_zero() {
        assert_eq!(per_second(1_000, 40, SECOND * 2), Some(20.0), "reset: the new value is the increase");
        assert_eq!(per_second(u64::from(u32::MAX) - 10, 5, SECOND), Some(5.0), "a 32-bit wrap");
        assert_eq!(per_second(7, 0, SECOND), Some(0.0));
    }

    #[test]
    fn the_first_reading_of_a_key_has_no_rate() {
        let mut rates = Rates::<&str, 2>::default();
        let t0 = Instant::now();
        assert_eq!(rates.observe([("eth0", [10, 1])], t0), vec![("eth0", None)]);
        let out = rates.observe([("eth0", [30, 3]), ("eth1", [5, 5])], t0 + SECOND * 2);
        assert_eq!(out, vec![("eth0", Some([10.0, 1.0])), ("eth1", None)]);
    }

    #[test]
    fn readings_keep_their_order_and_vanished_keys_are_forgotten() {
        let mut rates = Rates::<String, 1>::default();
        let t0 = Instant::now();
        rates.observe([("b".to_string(), [1]), ("a".to_string(), [1])], t0);
        let keys: Vec<String> =
            rates.observe([("b".into(), [2]), ("a".into(), [2])], t0 + SECOND).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "a"]);
        rates.observe([("a".to_string(), [3])], t0 + SECOND * 2);
        assert_eq!(rates.len(), 1);
        let out = rates.observe([("b".to_string(), [100])], t0 + SECOND * 3);
        assert_eq!(out, vec![("b".to_string(), None)], "b came back: its counters start over");
    }

    #[test]
    fn a_reading_with_no_elapsed_time_keeps_the_older_base() {
        let mut rates = Rates::<u32, 1>::default();
        let t0 = Instant::now();
        rates.observe([(1, [100])], t0);
        rates.observe([(1, [150])], t0 + SECOND);
        assert_eq!(rates.observe([(1, [170])], t0 + SECOND), vec![(1, None)]);
        assert_eq!(
            rates.observe([(1, [250])], t0 + SECOND * 3),
            vec![(1, Some([50.0]))],
            "over the two seconds since 150"
        );
    }

    #[test]
    fn a_reading_from_before_the_last_gives_no_rate() {
        let mut rates = Rates::<u32, 1>::default();
        let t0 = Instant::now();
        rates.observe([(1, [100])], t0 + SECOND);
        assert_eq!(rates.observe([(1, [200])], t0), vec![(1, None)]);
    }

    #[test]
    fn a_reset_between_readings_gives_the_new_value_as_increase() {
        let mut rates = Rates::<u32, 2>::default();
        let t0 = Instant::now();
        rates.observe([(1, [1_000_000, 10])], t0);
        assert_eq!(rates.observe([(1, [500, 20])], t0 + SECOND * 5), vec![(1, Some([100.0, 2.0]))]);
    }

    proptest! {
        #[test]
        fn rates_are_never_negative_or_nan(previous: u64, current: u64, nanos in 0u64..=u64::MAX / 2) {
            if let Some(rate) = per_second(previous, current, Duration::from_nanos(nanos)) {
                prop_assert!(rate.is_finite() && rate >= 0.0, "{rate}");
            } else {
                prop_assert_eq!(nanos, 0);
            }
        }

        #[test]
        fn tracked_rates_are_never_negative_or_nan(
            steps in proptest::collection::vec((0u8..4, any::<u64>(), any::<u64>(), 0u64..5_000_000_000), 1..40)
        ) {
            let mut rates = Rates::<u8, 2>::default();
            let mut at = Instant::now();
            for (key, a, b, step) in steps {
                at += Duration::from_nanos(step);
                for (_, r) in rates.observe([(key, [a, b]), (key.wrapping_add(1), [b, a])], at) {
                    for rate in r.into_iter().flatten() {
                        prop_assert!(rate.is_finite() && rate >= 0.0, "{rate}");
                    }
                }
            }
        }

        #[test]
        fn a_steady_counter_gives_its_steady_rate(start in 0u64..1 << 40, per_step in 0u64..1 << 20, steps in 2usize..20) {
            let mut rates = Rates::<(), 1>::default();
            let t0 = Instant::now();
            for i in 0..steps {
                let out = rates.observe([((), [start + per_step * i as u64])], t0 + SECOND * i as u32);
                match out[0].1 {
                    None => prop_assert_eq!(i, 0),
                    Some([rate]) => prop_assert!((rate - per_step as f64).abs() < 1e-6),
                }
            }
        }
    }
}
