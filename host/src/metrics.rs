//! The latest value of every metric series: the host's own and the plugins'.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub unit: String,
    pub timestamp_ms: u64,
}

/// The host's own series of the last tick, which plugins may read.
pub type SharedSamples = std::sync::Arc<std::sync::RwLock<std::sync::Arc<Vec<Sample>>>>;

/// A metric as a plugin reports it, before the host takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub labels: Vec<(String, String)>,
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
pub fn check(metric: &Metric) -> Result<(), String> {
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
    for (key, value) in &metric.labels {
        let shown = crate::text::line(key, 80);
        if !valid_label_name(key) || key.len() > MAX_NAME_BYTES || key == "plugin" {
            return Err(format!("metric '{name}' has label '{shown}', which is not a valid label name"));
        }
        if value.len() > MAX_LABEL_VALUE_BYTES || value.chars().any(char::is_control) {
            let key = shown;
            let value = crate::text::line(value, 40);
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

/// `k=v,k2=v2` into label matchers.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    text.split(',')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
            _ => Err(format!("'{pair}' is not a label filter; write key=value, several separated by commas")),
        })
        .collect()
}

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
    pub fn put_plugin(&mut self, plugin: &str, metrics: Vec<Metric>, now_ms: u64) -> Vec<String> {
        let mut refused = Vec::new();
        let mut samples = Vec::with_capacity(metrics.len());
        for metric in metrics {
            if let Err(why) = check(&metric) {
                refused.push(why);
                continue;
            }
            let mut labels: BTreeMap<String, String> = metric.labels.into_iter().collect();
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

/// One of the host's own series, without labels.
pub fn gauge(name: &str, value: f64, unit: &str, now_ms: u64) -> Sample {
    labelled(name, &BTreeMap::new(), value, unit, now_ms)
}

/// A host series with labels.
pub fn labelled(name: &str, labels: &BTreeMap<String, String>, value: f64, unit: &str, now_ms: u64) -> Sample {
    Sample { name: name.into(), labels: labels.clone(), value, unit: unit.into(), timestamp_ms: now_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, value: f64) -> Metric {
        Metric { name: name.into(), value, unit: String::new(), labels: Vec::new() }
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
