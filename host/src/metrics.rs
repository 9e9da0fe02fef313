//! The latest value of every metric series: the host's own and the plugins'.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plugin::bindings::types;
use crate::plugin::manager::LiveStats;
use crate::plugin::stats::Latencies;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub unit: String,
    pub timestamp_ms: u64,
}

/// Series names starting with this are the host's own; plugins cannot write them.
pub const HOST_PREFIX: &str = "monitor_";

/// The latest samples, grouped by who produced them.
#[derive(Debug, Default)]
pub struct Board {
    /// By producer (`host` or a plugin name), then series.
    producers: BTreeMap<String, Vec<Sample>>,
}

/// Why one metric from a plugin was not kept.
pub fn check(metric: &types::Metric) -> Result<(), String> {
    let name = crate::text::line(&metric.name, 80);
    if !valid_metric_name(&metric.name) || metric.name.len() > MAX_NAME_BYTES {
        return Err(format!("metric name '{name}' is not valid ([a-zA-Z_:][a-zA-Z0-9_:]*, at most {MAX_NAME_BYTES})"));
    }
    if metric.name.starts_with(HOST_PREFIX) {
        return Err(format!("metric name '{name}' uses the host's prefix '{HOST_PREFIX}'"));
    }
    if !metric.value.is_finite() {
        return Err(format!("metric '{name}' has value {}, not a finite number", metric.value));
    }
    if metric.unit.len() > MAX_UNIT_BYTES || metric.unit.chars().any(char::is_control) {
        let unit = crate::text::line(&metric.unit, 40);
        return Err(format!("metric '{name}' has unit '{unit}'; units are at most {MAX_UNIT_BYTES} printable bytes"));
    }
    if metric.labels.len() > MAX_LABELS {
        return Err(format!("metric '{name}' has {} labels; at most {MAX_LABELS}", metric.labels.len()));
    }
    for label in &metric.labels {
        let key = crate::text::line(&label.key, 80);
        if !valid_label_name(&label.key) || label.key.len() > MAX_NAME_BYTES || label.key == "plugin" {
            return Err(format!("metric '{name}' has label '{key}', which is not a valid label name"));
        }
        if label.value.len() > MAX_LABEL_VALUE_BYTES || label.value.chars().any(char::is_control) {
            let value = crate::text::line(&label.value, 40);
            return Err(format!(
                "metric '{name}' has label {key}='{value}'; label values are at most {MAX_LABEL_VALUE_BYTES} printable bytes"
            ));
        }
    }
    Ok(())
}

/// The longest metric or label name a plugin may use.
const MAX_NAME_BYTES: usize = 200;
/// The longest unit and label value, and the most labels, on one metric.
const MAX_UNIT_BYTES: usize = 64;
const MAX_LABEL_VALUE_BYTES: usize = 1024;
const MAX_LABELS: usize = 32;

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Board {
    /// Replaces a plugin's series with this tick's, keeping only valid ones;
    /// returns the reasons for the ones refused.
    pub fn put_plugin(&mut self, plugin: &str, metrics: Vec<types::Metric>, now_ms: u64) -> Vec<String> {
        let mut refused = Vec::new();
        let mut samples = Vec::with_capacity(metrics.len());
        for metric in metrics {
            if let Err(why) = check(&metric) {
                refused.push(why);
                continue;
            }
            let mut labels: BTreeMap<String, String> = metric.labels.into_iter().map(|l| (l.key, l.value)).collect();
            labels.insert("plugin".into(), plugin.into());
            samples.push(Sample {
                name: metric.name,
                labels,
                value: metric.value,
                unit: metric.unit,
                timestamp_ms: now_ms,
            });
        }
        self.producers.insert(plugin.into(), samples);
        refused
    }

    /// Replaces the host's own series.
    pub fn put_host(&mut self, samples: Vec<Sample>) {
        self.producers.insert("host".into(), samples);
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.producers.values().flatten().cloned().collect()
    }
}

/// Plugins' self-metrics as host series.
pub fn plugin_self_metrics(plugins: &[LiveStats], now_ms: u64) -> Vec<Sample> {
    let mut out = Vec::new();
    for p in plugins {
        let labels = BTreeMap::from([("plugin".to_string(), p.name.clone())]);
        let mut put = |name: &str, value: f64, unit: &str| {
            out.push(Sample {
                name: name.into(),
                labels: labels.clone(),
                value,
                unit: unit.into(),
                timestamp_ms: now_ms,
            });
        };
        put("monitor_plugin_calls_total", p.stats.calls as f64, "");
        put("monitor_plugin_faults_total", p.stats.faults as f64, "");
        put("monitor_plugin_call_latency_p50_seconds", p.stats.p50_us / 1e6, "seconds");
        put("monitor_plugin_call_latency_p99_seconds", p.stats.p99_us / 1e6, "seconds");
        put("monitor_plugin_memory_peak_bytes", p.stats.memory_peak_bytes as f64, "bytes");
        put("monitor_plugin_errors_total", p.stats.errors as f64, "");
        put("monitor_plugin_hung_threads", f64::from(p.stats.hung_threads), "");
        put("monitor_plugin_running", f64::from(u8::from(p.running)), "");
    }
    out
}

/// How long the host's ticks take (sampling, plugins, rules, the stream; the
/// history is written on a thread of its own) and how much disk its database
/// takes, as host series.
pub fn host_metrics(
    ticks: &Latencies,
    ticks_total: u64,
    database: (u64, &crate::store::Health),
    now_ms: u64,
) -> Vec<Sample> {
    let (p50_us, p99_us) = ticks.p50_p99_us();
    let (database_bytes, health) = database;
    [
        ("monitor_ticks_total", ticks_total as f64, ""),
        ("monitor_database_healthy", f64::from(u8::from(health.healthy)), ""),
        ("monitor_tick_duration_p50_seconds", p50_us / 1e6, "seconds"),
        ("monitor_tick_duration_p99_seconds", p99_us / 1e6, "seconds"),
        ("monitor_database_bytes", database_bytes as f64, "bytes"),
    ]
    .into_iter()
    .map(|(name, value, unit)| gauge(name, value, unit, now_ms))
    .collect()
}

/// One of the host's own series, without labels.
pub fn gauge(name: &str, value: f64, unit: &str, now_ms: u64) -> Sample {
    Sample { name: name.into(), labels: BTreeMap::new(), value, unit: unit.into(), timestamp_ms: now_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, value: f64) -> types::Metric {
        types::Metric { name: name.into(), value, unit: String::new(), labels: Vec::new() }
    }

    #[test]
    fn plugin_series_are_labelled_and_bad_ones_refused() {
        let mut board = Board::default();
        let refused = board.put_plugin(
            "p",
            vec![metric("ok", 1.0), metric("bad name", 1.0), metric("nan", f64::NAN), metric("monitor_x", 1.0)],
            5,
        );
        assert_eq!(refused.len(), 3, "{refused:?}");
        let samples = board.samples();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].labels["plugin"], "p");
        board.put_plugin("p", vec![], 6);
        assert!(board.samples().is_empty(), "a tick replaces the plugin's series");
    }
}
