//! Sparklines that start from the stored metric history.

use super::*;
use crate::client::{Client, Local};
use crate::paths::DataDir;
use crate::store::Store;
use crate::store::metrics::{Point, SeriesInfo, SeriesPoints as Stored};
use crate::top::history::{HISTORY_POINTS, History};

const SECOND: u64 = 1000;

fn stored(name: &str, labels: &[(&str, &str)], points: &[(u64, f64)]) -> Stored {
    let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Stored {
        series: SeriesInfo { name: name.into(), labels, unit: String::new() },
        points: points.iter().map(|&(at_ms, value)| Point { at_ms, value, min: None, max: None, last: None }).collect(),
    }
}

/// Points 3, 2 and 1 seconds before `NOW`, and one at `NOW` (that one comes live).
fn before_now(values: [f64; 4]) -> Vec<(u64, f64)> {
    (0..4).map(|i| (NOW - (3 - i) * SECOND, values[i as usize])).collect()
}

#[test]
fn stored_series_become_sparklines_one_point_per_interval() {
    let series = [
        stored("monitor_cpu_usage_percent", &[], &before_now([10.0, 20.0, 30.0, 99.0])),
        stored("monitor_cpu_core_usage_percent", &[("core", "1")], &before_now([1.0, 2.0, 3.0, 4.0])),
        stored("monitor_memory_used_bytes", &[], &before_now([1.0, 2.0, 4.0, 4.0])),
        stored("monitor_memory_total_bytes", &[], &before_now([4.0, 4.0, 4.0, 4.0])),
        stored("monitor_disk_read_bytes_per_second", &[("device", "vda")], &before_now([100.0, 0.0, 0.0, 0.0])),
        stored("monitor_disk_read_bytes_per_second", &[("device", "vdb")], &before_now([50.0, 5.0, 0.0, 0.0])),
        stored("monitor_network_receive_bytes_per_second", &[("interface", "eth0")], &before_now([7.0; 4])),
        stored("monitor_network_receive_bytes_per_second", &[("interface", "lo")], &before_now([1e9; 4])),
        // Too old for a sparkline of 1s points.
        stored("monitor_network_transmit_bytes_per_second", &[], &[(NOW - HISTORY_POINTS as u64 * SECOND, 1.0)]),
    ];
    let h = History::from_stored(&series, NOW, Duration::from_secs(1));
    assert_eq!(h.cpu, [10.0, 20.0, 30.0], "oldest first, the point at the first fetch's time left to it");
    assert_eq!(h.cores.len(), 2, "core 0 has no history, core 1 has");
    assert!(h.cores[0].is_empty());
    assert_eq!(h.cores[1], [1.0, 2.0, 3.0]);
    assert_eq!(h.memory, [25.0, 50.0, 100.0], "used of total, in percent");
    assert_eq!(h.disk_read, [150.0, 5.0, 0.0], "summed over devices");
    assert_eq!(h.net_rx, [7.0; 3], "loopback is no network use");
    assert!(h.net_tx.is_empty() && h.disk_write.is_empty(), "{h:?}");

    // At 2s a slot holds two points of a series: their mean.
    let h = History::from_stored(&series, NOW, Duration::from_secs(2));
    assert_eq!(h.cpu, [10.0, 25.0]);
}

#[test]
fn the_first_fetch_draws_full_sparklines_and_history_after_it_is_ignored() {
    let series =
        [stored("monitor_cpu_usage_percent", &[], &(1..=60).map(|i| (NOW - i * SECOND, 100.0)).collect::<Vec<_>>())];
    let mut m = Model::new(Panel::System, SortKey::Cpu, Filter::None, Theme::plain(), Duration::from_secs(1));
    super::super::receive(
        &mut m,
        super::super::data::Fetched::History(Box::new(History::from_stored(&series, NOW, Duration::from_secs(1)))),
    );
    m.receive(data(NOW, 42.0), Origin::Daemon);
    assert_eq!(m.live.history.cpu.len(), 61);
    let screen = text(&draw(&m, 160, 48));
    let cpu = screen.lines().find(|l| l.contains("│CPU")).expect(&screen);
    assert!(cpu.contains(&format!("{}▄", "█".repeat(60))), "a minute of history, then the sample: {screen}");

    m.prefill(History::default());
    assert_eq!(m.live.history.cpu.len(), 61, "only the first fetch is prefilled");
}

#[test]
fn without_a_host_the_history_comes_from_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = DataDir::new(dir.path());
    data_dir.create().unwrap();
    {
        let store = Store::open(&data_dir.database()).unwrap();
        for (i, cpu) in [10.0, 20.0, 30.0].into_iter().enumerate() {
            let at = NOW - (3 - i as u64) * SECOND;
            let samples = crate::sampler::samples(&snapshot(at, cpu));
            store.metrics_record(&samples, 100).unwrap();
        }
    }
    let local = Local::open(&data_dir, None).unwrap();
    assert!(!local.is_live());
    let h = History::fetch(&local, NOW, Duration::from_secs(1)).unwrap();
    assert_eq!(h.cpu, [10.0, 20.0, 30.0]);
    assert_eq!(h.cores[1], [95.0; 3]);
    assert_eq!(h.memory, [75.0; 3]);
    assert_eq!(h.disk_read, [2048.0; 3]);
    assert_eq!(h.net_tx, [512.0; 3]);
    let empty = tempfile::tempdir().unwrap();
    let h = History::fetch(&Local::open(&DataDir::new(empty.path()), None).unwrap(), NOW, Duration::from_secs(1));
    assert_eq!(h.unwrap(), History::default(), "a new data directory: empty sparklines");
}
