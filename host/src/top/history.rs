//! The machine-wide figures behind the sparklines: each fetch adds a point, and the
//! metric history the host stored fills them at start, resampled to top's interval,
//! so the view opens with the last minutes instead of empty lines.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::client::Client;
use crate::error::CommandResult;
use crate::sampler::Snapshot;
use crate::store::metrics::SeriesPoints as Stored;

/// Points kept per sparkline: two minutes at the default interval.
pub const HISTORY_POINTS: usize = 120;

/// The sampler's series (see `sampler::series`) that the sparklines draw.
const CPU: &str = "monitor_cpu_usage_percent";
const CORE: &str = "monitor_cpu_core_usage_percent";
const MEMORY_USED: &str = "monitor_memory_used_bytes";
const MEMORY_TOTAL: &str = "monitor_memory_total_bytes";
const DISK_READ: &str = "monitor_disk_read_bytes_per_second";
const DISK_WRITE: &str = "monitor_disk_write_bytes_per_second";
const NET_RX: &str = "monitor_network_receive_bytes_per_second";
const NET_TX: &str = "monitor_network_transmit_bytes_per_second";
const SERIES: [&str; 8] = [CPU, CORE, MEMORY_USED, MEMORY_TOTAL, DISK_READ, DISK_WRITE, NET_RX, NET_TX];

/// Loopback traffic never leaves the machine: it is not network use.
const LOOPBACK: &str = "lo";

/// Recent values of the machine-wide figures, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub cpu: VecDeque<f64>,
    pub cores: Vec<VecDeque<f64>>,
    pub memory: VecDeque<f64>,
    pub disk_read: VecDeque<f64>,
    pub disk_write: VecDeque<f64>,
    pub net_rx: VecDeque<f64>,
    pub net_tx: VecDeque<f64>,
    /// The snapshot last added, so a snapshot fetched twice is counted once.
    last_ms: u64,
}

impl History {
    pub fn add(&mut self, s: &Snapshot) {
        if s.timestamp_ms == self.last_ms && self.last_ms != 0 {
            return;
        }
        self.last_ms = s.timestamp_ms;
        push(&mut self.cpu, f64::from(s.cpu_percent));
        self.cores.resize_with(s.per_core_percent.len(), VecDeque::new);
        for (core, value) in self.cores.iter_mut().zip(&s.per_core_percent) {
            push(core, f64::from(*value));
        }
        push(&mut self.memory, percent(s.memory_used_bytes as f64, s.memory_total_bytes as f64).unwrap_or(0.0));
        let sum = |f: fn(&crate::sampler::BlockDeviceSample) -> Option<f64>| {
            s.block_devices.iter().filter_map(f).sum::<f64>()
        };
        push(&mut self.disk_read, sum(|d| d.read_bytes_per_second));
        push(&mut self.disk_write, sum(|d| d.write_bytes_per_second));
        let nets = || s.networks.iter().filter(|n| n.interface != LOOPBACK);
        push(&mut self.net_rx, nets().filter_map(|n| n.receive_bytes_per_second).sum());
        push(&mut self.net_tx, nets().filter_map(|n| n.transmit_bytes_per_second).sum());
    }

    /// The stored history before `until_ms` (the first snapshot's time: that one is
    /// added live), one point per `interval`; at most one fewer than a sparkline holds.
    pub fn fetch(client: &dyn Client, until_ms: u64, interval: Duration) -> CommandResult<History> {
        let since = until_ms.saturating_sub(step_ms(interval) * HISTORY_POINTS as u64);
        let mut stored = Vec::new();
        for name in SERIES {
            stored.extend(client.metric_history(name, &BTreeMap::new(), since)?);
        }
        Ok(History::from_stored(&stored, until_ms, interval))
    }

    /// [`History::fetch`] on series already read: each slot of `interval` holds the
    /// mean of a series' points in it, summed over disks and interfaces; slots no
    /// series has a point in are left out, as a host that was down added none.
    pub fn from_stored(stored: &[Stored], until_ms: u64, interval: Duration) -> History {
        let grid = Grid { until_ms, step_ms: step_ms(interval) };
        let named = |name: &'static str| stored.iter().filter(move |s| s.series.name == name);
        let not_loopback = |s: &&Stored| s.series.labels.get("interface").is_none_or(|i| i != LOOPBACK);
        let mut cores: BTreeMap<usize, VecDeque<f64>> = BTreeMap::new();
        for series in named(CORE) {
            if let Some(core) = series.series.labels.get("core").and_then(|c| c.parse().ok()) {
                cores.insert(core, oldest_first(grid.sum([series])));
            }
        }
        let cores = match cores.keys().next_back() {
            Some(last) => (0..=*last).map(|i| cores.remove(&i).unwrap_or_default()).collect(),
            None => Vec::new(),
        };
        let (used, total) = (grid.sum(named(MEMORY_USED)), grid.sum(named(MEMORY_TOTAL)));
        let memory = used.into_iter().filter_map(|(slot, used)| Some((slot, percent(used, *total.get(&slot)?)?)));
        History {
            cpu: oldest_first(grid.sum(named(CPU))),
            cores,
            memory: oldest_first(memory.collect()),
            disk_read: oldest_first(grid.sum(named(DISK_READ))),
            disk_write: oldest_first(grid.sum(named(DISK_WRITE))),
            net_rx: oldest_first(grid.sum(named(NET_RX).filter(not_loopback))),
            net_tx: oldest_first(grid.sum(named(NET_TX).filter(not_loopback))),
            last_ms: 0,
        }
    }
}

fn push(series: &mut VecDeque<f64>, value: f64) {
    if series.len() == HISTORY_POINTS {
        series.pop_front();
    }
    series.push_back(if value.is_finite() { value } else { 0.0 });
}

fn percent(used: f64, total: f64) -> Option<f64> {
    (total > 0.0).then(|| 100.0 * used / total)
}

fn step_ms(interval: Duration) -> u64 {
    (interval.as_millis() as u64).max(1)
}

/// Slots of one interval back from `until_ms`: slot 0 is the interval just before it.
struct Grid {
    until_ms: u64,
    step_ms: u64,
}

impl Grid {
    /// A point's slot; none for one at or after `until_ms`, or too old for a sparkline.
    fn slot(&self, at_ms: u64) -> Option<u64> {
        let back = self.until_ms.checked_sub(at_ms).filter(|b| *b > 0)?;
        let slot = (back - 1) / self.step_ms;
        (slot < HISTORY_POINTS as u64 - 1).then_some(slot)
    }

    /// Each slot's mean over one series, summed over `series`.
    fn sum<'a>(&self, series: impl IntoIterator<Item = &'a Stored>) -> BTreeMap<u64, f64> {
        let mut total = BTreeMap::new();
        for s in series {
            let mut slots: BTreeMap<u64, (f64, u32)> = BTreeMap::new();
            for p in s.points.iter().filter(|p| p.value.is_finite()) {
                if let Some(slot) = self.slot(p.at_ms) {
                    let entry = slots.entry(slot).or_default();
                    *entry = (entry.0 + p.value, entry.1 + 1);
                }
            }
            for (slot, (sum, n)) in slots {
                *total.entry(slot).or_insert(0.0) += sum / f64::from(n);
            }
        }
        total
    }
}

/// Slots count back in time: the highest is the oldest.
fn oldest_first(slots: BTreeMap<u64, f64>) -> VecDeque<f64> {
    slots.into_values().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(at: u64, cpu: f32) -> Snapshot {
        Snapshot { timestamp_ms: at, cpu_percent: cpu, per_core_percent: vec![cpu, cpu / 2.0], ..Default::default() }
    }

    #[test]
    fn history_keeps_the_newest_points_and_counts_a_snapshot_once() {
        let mut history = History::default();
        for i in 0..(HISTORY_POINTS as u64 + 10) {
            history.add(&snapshot(i + 1, i as f32));
            history.add(&snapshot(i + 1, i as f32));
        }
        assert_eq!(history.cpu.len(), HISTORY_POINTS);
        assert_eq!(history.cpu.back(), Some(&(HISTORY_POINTS as f64 + 9.0)));
        assert_eq!(history.cores.len(), 2);
        assert_eq!(history.cores[1].back(), Some(&((HISTORY_POINTS as f64 + 9.0) / 2.0)));
    }
}
