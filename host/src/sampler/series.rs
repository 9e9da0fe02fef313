//! A snapshot as metric series, named the Prometheus way: `monitor_` prefix, base
//! units, and the unit as the name's suffix. Processes are left out: one series per
//! PID would grow without bound.

use std::collections::BTreeMap;

use super::Snapshot;
use crate::metrics::Sample;

/// Every value of `snapshot` as a series; a rate not known yet is left out, not zero.
pub fn samples(snapshot: &Snapshot) -> Vec<Sample> {
    let mut out = Series { at: snapshot.timestamp_ms, samples: Vec::new() };
    let s = snapshot;
    out.put("monitor_cpu_usage_percent", &[], f64::from(s.cpu_percent), "percent");
    for (core, percent) in s.per_core_percent.iter().enumerate() {
        out.put("monitor_cpu_core_usage_percent", &[("core", &core.to_string())], f64::from(*percent), "percent");
    }
    out.put("monitor_memory_used_bytes", &[], s.memory_used_bytes as f64, "bytes");
    out.put("monitor_memory_total_bytes", &[], s.memory_total_bytes as f64, "bytes");
    out.put("monitor_swap_used_bytes", &[], s.swap_used_bytes as f64, "bytes");
    out.put("monitor_swap_total_bytes", &[], s.swap_total_bytes as f64, "bytes");
    out.put("monitor_load1", &[], s.load_one, "");
    out.put("monitor_load5", &[], s.load_five, "");
    out.put("monitor_load15", &[], s.load_fifteen, "");
    out.put("monitor_uptime_seconds", &[], s.uptime_secs as f64, "seconds");
    out.put("monitor_processes", &[], f64::from(s.process_count), "");

    for m in &s.disks {
        let labels = [("mount", m.mount_point.as_str()), ("device", &m.device), ("filesystem", &m.filesystem)];
        out.put("monitor_disk_total_bytes", &labels, m.total_bytes as f64, "bytes");
        out.put("monitor_disk_available_bytes", &labels, m.available_bytes as f64, "bytes");
    }
    for d in &s.block_devices {
        let labels = [("device", d.device.as_str())];
        out.rate("monitor_disk_read_bytes_per_second", &labels, d.read_bytes_per_second, "bytes_per_second");
        out.rate("monitor_disk_write_bytes_per_second", &labels, d.write_bytes_per_second, "bytes_per_second");
        let ops = "operations_per_second";
        out.rate("monitor_disk_read_operations_per_second", &labels, d.read_operations_per_second, ops);
        out.rate("monitor_disk_write_operations_per_second", &labels, d.write_operations_per_second, ops);
    }
    for n in &s.networks {
        let labels = [("interface", n.interface.as_str())];
        let (bytes, packets, errors) = ("bytes_per_second", "packets_per_second", "errors_per_second");
        out.rate("monitor_network_receive_bytes_per_second", &labels, n.receive_bytes_per_second, bytes);
        out.rate("monitor_network_transmit_bytes_per_second", &labels, n.transmit_bytes_per_second, bytes);
        out.rate("monitor_network_receive_packets_per_second", &labels, n.receive_packets_per_second, packets);
        out.rate("monitor_network_transmit_packets_per_second", &labels, n.transmit_packets_per_second, packets);
        out.rate("monitor_network_receive_errors_per_second", &labels, n.receive_errors_per_second, errors);
        out.rate("monitor_network_transmit_errors_per_second", &labels, n.transmit_errors_per_second, errors);
    }
    out.put("monitor_host_cpu_percent", &[], f64::from(s.footprint.cpu_percent), "percent");
    out.put("monitor_host_rss_bytes", &[], s.footprint.rss_bytes as f64, "bytes");
    out.samples
}

struct Series {
    at: u64,
    samples: Vec<Sample>,
}

impl Series {
    fn put(&mut self, name: &str, labels: &[(&str, &str)], value: f64, unit: &str) {
        // A platform quirk must not put NaN into the history.
        if !value.is_finite() {
            return;
        }
        self.samples.push(Sample {
            name: name.to_string(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            value,
            unit: unit.to_string(),
            timestamp_ms: self.at,
        });
    }

    fn rate(&mut self, name: &str, labels: &[(&str, &str)], value: Option<f64>, unit: &str) {
        if let Some(value) = value {
            self.put(name, labels, value, unit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{BlockDeviceSample, Footprint, MountSample, NetworkSample};

    fn snapshot() -> Snapshot {
        Snapshot {
            timestamp_ms: 1_700_000_000_000,
            hostname: "box".into(),
            cpu_percent: 12.5,
            per_core_percent: vec![10.0, 15.0],
            memory_total_bytes: 8 << 30,
            memory_used_bytes: 2 << 30,
            swap_total_bytes: 1 << 30,
            swap_used_bytes: 0,
            load_one: 0.5,
            load_five: 0.25,
            load_fifteen: 0.125,
            uptime_secs: 3600,
            process_count: 42,
            disks: vec![MountSample {
                mount_point: "/srv/my data".into(),
                device: "/dev/nvme0n1p2".into(),
                filesystem: "ext4".into(),
                total_bytes: 100,
                available_bytes: 40,
                used_bytes: 60,
            }],
            block_devices: vec![
                BlockDeviceSample {
                    device: "nvme0n1".into(),
                    read_bytes_per_second: Some(4096.0),
                    write_bytes_per_second: Some(0.0),
                    read_operations_per_second: Some(1.0),
                    write_operations_per_second: Some(0.0),
                },
                BlockDeviceSample { device: "sdb".into(), ..Default::default() },
            ],
            networks: vec![NetworkSample {
                interface: "eth0".into(),
                receive_bytes_per_second: Some(1500.0),
                transmit_bytes_per_second: Some(500.0),
                receive_packets_per_second: Some(1.0),
                transmit_packets_per_second: Some(f64::NAN),
                receive_errors_per_second: Some(0.0),
                transmit_errors_per_second: None,
            }],
            footprint: Footprint { cpu_percent: 0.25, rss_bytes: 9 << 20 },
        }
    }

    fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
        samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
    }

    #[test]
    fn a_snapshot_becomes_named_series_with_values_and_labels() {
        let samples = samples(&snapshot());
        let value = |name: &str, labels: &[(&str, &str)]| find(&samples, name, labels).map(|s| s.value);
        assert_eq!(value("monitor_cpu_usage_percent", &[]), Some(12.5));
        assert_eq!(value("monitor_cpu_core_usage_percent", &[("core", "1")]), Some(15.0));
        assert_eq!(value("monitor_memory_used_bytes", &[]), Some((2u64 << 30) as f64));
        assert_eq!(value("monitor_memory_total_bytes", &[]), Some((8u64 << 30) as f64));
        assert_eq!(value("monitor_swap_used_bytes", &[]), Some(0.0));
        assert_eq!(value("monitor_load1", &[]), Some(0.5));
        assert_eq!(value("monitor_load15", &[]), Some(0.125));
        assert_eq!(value("monitor_uptime_seconds", &[]), Some(3600.0));
        assert_eq!(value("monitor_processes", &[]), Some(42.0));
        assert_eq!(
            value("monitor_disk_available_bytes", &[("mount", "/srv/my data"), ("filesystem", "ext4")]),
            Some(40.0)
        );
        assert_eq!(value("monitor_disk_read_bytes_per_second", &[("device", "nvme0n1")]), Some(4096.0));
        assert_eq!(value("monitor_disk_read_operations_per_second", &[("device", "nvme0n1")]), Some(1.0));
        assert_eq!(value("monitor_network_receive_bytes_per_second", &[("interface", "eth0")]), Some(1500.0));
        assert_eq!(value("monitor_host_cpu_percent", &[]), Some(0.25));
        assert_eq!(value("monitor_host_rss_bytes", &[]), Some((9u64 << 20) as f64));
        assert_eq!(find(&samples, "monitor_cpu_usage_percent", &[]).unwrap().unit, "percent");
        assert_eq!(find(&samples, "monitor_cpu_core_usage_percent", &[]).unwrap().labels.len(), 1);
    }

    #[test]
    fn unknown_rates_and_non_finite_values_are_left_out() {
        let samples = samples(&snapshot());
        assert!(find(&samples, "monitor_disk_read_bytes_per_second", &[("device", "sdb")]).is_none(), "no rate yet");
        assert!(find(&samples, "monitor_network_transmit_errors_per_second", &[]).is_none());
        assert!(find(&samples, "monitor_network_transmit_packets_per_second", &[]).is_none(), "NaN");
        assert!(samples.iter().all(|s| s.value.is_finite()));
    }

    #[test]
    fn names_labels_and_units_are_valid_and_series_unique() {
        let samples = samples(&snapshot());
        let mut seen = std::collections::HashSet::new();
        for s in &samples {
            assert!(
                s.name.starts_with(crate::metrics::HOST_PREFIX) && crate::metrics::valid_metric_name(&s.name),
                "{}",
                s.name
            );
            assert!(s.labels.keys().all(|k| crate::metrics::valid_label_name(k) && !k.starts_with("__")), "{s:?}");
            assert!(s.unit.is_empty() || s.name.ends_with(&format!("_{}", s.unit)), "the unit ends the name: {s:?}");
            assert_eq!(s.timestamp_ms, 1_700_000_000_000);
            assert!(seen.insert((s.name.clone(), s.labels.clone())), "duplicate series {s:?}");
        }
        let units = ["percent", "bytes", "seconds", "bytes_per_second", "operations_per_second"];
        for unit in units {
            assert!(samples.iter().any(|s| s.unit == unit), "{unit}");
        }
    }

    #[test]
    fn a_default_snapshot_still_gives_the_system_series() {
        let samples = samples(&Snapshot::default());
        assert!(find(&samples, "monitor_memory_total_bytes", &[]).is_some());
        assert!(!samples.iter().any(|s| s.name.starts_with("monitor_disk_") || s.name.starts_with("monitor_network_")));
    }
}
