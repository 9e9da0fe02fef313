//! The board's latest samples for Prometheus to scrape (`GET /metrics`).
//!
//! Written by `prometheus-client` in the OpenMetrics 1.0 text format, which is
//! what that crate writes and what Prometheus asks for first. Series are only
//! known at scrape time, so they go through a [`Collector`] made per scrape.
//! One family per sample name: a counter when the name ends in `_total` (the
//! crate appends that suffix to the samples itself, so the family is named
//! without it), else a gauge. A series the format cannot carry is left out,
//! counted in `monitor_exposition_skipped_series` and logged once per cause:
//! one bad plugin must not break the scrape of every other series.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::metrics::{Sample, valid_metric_name};

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The series that counts what a scrape left out; a gauge, so it drops back to 0.
pub const SKIPPED: &str = "monitor_exposition_skipped_series";

/// One scrape's text, and what it had to leave out.
#[derive(Debug)]
pub struct Exposition {
    pub text: String,
    /// Series left out.
    pub skipped: usize,
    /// Why, one line per cause (a name, or a name and label set).
    pub problems: BTreeSet<String>,
}

type Labels = Vec<(String, String)>;

/// The samples of one name.
#[derive(Debug, Default)]
struct Group {
    units: BTreeSet<String>,
    series: BTreeMap<Labels, f64>,
}

#[derive(Debug)]
struct Family {
    /// As in `# TYPE`: a counter's sample name less `_total`.
    name: String,
    counter: bool,
    help: String,
    series: BTreeMap<Labels, f64>,
}

#[derive(Debug)]
struct Families(Vec<Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.0 {
            let kind = if family.counter { MetricType::Counter } else { MetricType::Gauge };
            let mut metric = encoder.encode_descriptor(&family.name, &family.help, None, kind)?;
            for (labels, value) in &family.series {
                if labels.is_empty() {
                    put(&mut metric, family.counter, *value)?;
                } else {
                    put(&mut metric.encode_family(labels)?, family.counter, *value)?;
                }
            }
        }
        Ok(())
    }
}

fn put(metric: &mut MetricEncoder, counter: bool, value: f64) -> Result<(), std::fmt::Error> {
    if counter { metric.encode_counter::<NoLabelSet, _, f64>(&value, None) } else { metric.encode_gauge(&value) }
}

/// Renders `samples` sorted by family name, then label set.
pub fn render(samples: &[Sample]) -> Exposition {
    let mut problems = BTreeSet::new();
    let mut skipped = 0;
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    for sample in samples {
        let name = sample.name.as_str();
        let what = || format!("{}{:?}", name.escape_debug(), sample.labels);
        if !valid_metric_name(name) || name == "_total" {
            problems.insert(format!("'{}' is not a valid metric name", name.escape_debug()));
            skipped += 1;
            continue;
        }
        if let Some(label) = sample.labels.keys().find(|l| !valid_label_name(l)) {
            problems.insert(format!("{}: '{}' is not a valid label name", what(), label.escape_debug()));
            skipped += 1;
            continue;
        }
        if !sample.value.is_finite() || (name.ends_with("_total") && sample.value < 0.0) {
            problems.insert(format!("{}: {} is not a valid value", what(), sample.value));
            skipped += 1;
            continue;
        }
        let group = groups.entry(name).or_default();
        group.units.insert(sample.unit.clone());
        let labels = sample.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if group.series.insert(labels, sample.value).is_some() {
            problems.insert(format!("{}: reported twice, the last value is kept", what()));
            skipped += 1;
        }
    }

    let gauges: BTreeSet<&str> =
        groups.iter().filter(|(n, g)| g.units.len() == 1 && !n.ends_with("_total")).map(|(n, _)| *n).collect();
    let mut families = Vec::with_capacity(groups.len() + 1);
    for (name, group) in groups {
        let stem = name.strip_suffix("_total");
        if group.units.len() > 1 {
            problems.insert(format!("'{name}' has several units: {:?}", group.units));
            skipped += group.series.len();
            continue;
        }
        if let Some(stem) = stem.filter(|s| gauges.contains(s)) {
            problems.insert(format!("'{name}' is a counter whose family name '{stem}' is taken by a gauge"));
            skipped += group.series.len();
            continue;
        }
        let unit = group.units.first().map_or("", String::as_str);
        families.push(Family {
            name: stem.unwrap_or(name).to_string(),
            counter: stem.is_some(),
            help: help(unit),
            series: group.series,
        });
    }
    if !families.iter().any(|f| f.name == SKIPPED) {
        families.push(Family {
            name: SKIPPED.into(),
            counter: false,
            help: "Series the last scrape left out (the host log says why).".into(),
            series: BTreeMap::from([(Vec::new(), skipped as f64)]),
        });
    }
    families.sort_by(|a, b| a.name.cmp(&b.name));

    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(families)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("writing to a String cannot fail");
    Exposition { text, skipped, problems }
}

/// The content type of [`classic`]'s text.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An OpenMetrics text as the Prometheus text format 0.0.4, for a client that
/// asks for that alone (`promtool check metrics`, older scrapers): a counter's
/// family takes its samples' `_total` name, and `# UNIT` and `# EOF` go.
pub fn classic(openmetrics: &str) -> String {
    let counters: BTreeSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = if counters.contains(name) { format!("{name}_total") } else { name.to_string() };
                out.push_str(format!("{prefix}{name} {tail}").trim_end_matches(' '));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// [`render`], logging each cause of a skipped series the first time it is seen.
pub fn scrape(samples: &[Sample]) -> String {
    static LOGGED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let exposition = render(samples);
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    for problem in exposition.problems {
        if logged.len() >= 1000 {
            // Bounded: a plugin inventing names must not grow the host.
            logged.clear();
        }
        if !logged.contains(&problem) {
            tracing::warn!("/metrics leaves out a series: {problem}");
            logged.insert(problem);
        }
    }
    exposition.text
}

/// HELP text, escaped as OpenMetrics wants (the crate writes it verbatim).
fn help(unit: &str) -> String {
    let text = if unit.is_empty() { "Latest value.".to_string() } else { format!("Latest value, in {unit}.") };
    text.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "\\\"")
}

/// Label names starting with `__` are reserved for Prometheus itself.
fn valid_label_name(name: &str) -> bool {
    crate::metrics::valid_label_name(name) && !name.starts_with("__")
}

#[cfg(test)]
mod tests {
    use openmetrics_parser::openmetrics::parse_openmetrics;
    use openmetrics_parser::{OpenMetricsType, OpenMetricsValue};

    use super::*;

    fn sample(name: &str, labels: &[(&str, &str)], value: f64, unit: &str) -> Sample {
        Sample {
            name: name.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            value,
            unit: unit.into(),
            timestamp_ms: 1,
        }
    }

    #[test]
    fn the_classic_format_names_counter_families_by_their_samples_and_has_no_units_or_eof() {
        let samples =
            [sample("jobs_done_total", &[("job", "a")], 3.0, ""), sample("disk_used_bytes", &[], 5.0, "bytes")];
        let classic = classic(&render(&samples).text);
        let lines: Vec<&str> = classic.lines().filter(|l| !l.contains(SKIPPED)).collect();
        assert_eq!(
            lines,
            [
                "# HELP disk_used_bytes Latest value, in bytes.",
                "# TYPE disk_used_bytes gauge",
                "disk_used_bytes 5.0",
                "# HELP jobs_done_total Latest value.",
                "# TYPE jobs_done_total counter",
                "jobs_done_total{job=\"a\"} 3.0",
            ],
            "{classic}"
        );
    }

    /// Every series of a parsed exposition by sample name (as written) and
    /// labels: its type, value and HELP.
    type Scraped = BTreeMap<(String, BTreeMap<String, String>), (&'static str, f64, String)>;

    fn parse(text: &str) -> Scraped {
        let exposition = parse_openmetrics(text).unwrap_or_else(|e| panic!("{e:?} in:\n{text}"));
        let mut out = BTreeMap::new();
        for family in exposition.families.values() {
            for s in family.iter_samples() {
                let labels = s.get_labelset().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                let (name, kind, value) = match (&family.family_type, &s.value) {
                    (OpenMetricsType::Counter, OpenMetricsValue::Counter(c)) => {
                        (format!("{}_total", family.family_name), "counter", c.value.as_f64())
                    }
                    (OpenMetricsType::Gauge, OpenMetricsValue::Gauge(n)) => {
                        (family.family_name.clone(), "gauge", n.as_f64())
                    }
                    other => panic!("unexpected family {other:?}"),
                };
                out.insert((name, labels), (kind, value, family.help.clone()));
            }
        }
        out
    }

    fn get<'a>(scraped: &'a Scraped, name: &str, labels: &[(&str, &str)]) -> Option<&'a (&'static str, f64, String)> {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        scraped.get(&(name.to_string(), labels))
    }

    #[test]
    fn samples_come_back_with_names_labels_values_and_types() {
        let tricky = "say \"hi\"\\ then\nnewline, {a=b} ünïcødé ✓";
        let samples = vec![
            sample("memory_used_ratio", &[("plugin", "derived-metrics")], 0.25, "ratio"),
            sample("load_per_core", &[("plugin", "derived-metrics"), ("window", "1m")], 1.5, ""),
            sample("load_per_core", &[("plugin", "derived-metrics"), ("window", tricky)], -2e-9, ""),
            sample("monitor_plugin_calls_total", &[("plugin", "derived-metrics")], 42.0, ""),
            sample("monitor_plugin_calls_total", &[("plugin", "other")], 0.0, ""),
            sample("monitor_plugin_memory_peak_bytes", &[("plugin", "other")], 1048576.0, "bytes"),
            sample("node:cpu_seconds_total", &[], 12345.5, "seconds"),
            sample("up_bare", &[], 1e21, ""),
        ];
        let out = render(&samples);
        assert_eq!((out.skipped, out.problems.len()), (0, 0), "{:?}", out.problems);
        let scraped = parse(&out.text);

        let d = ("plugin", "derived-metrics");
        assert_eq!(get(&scraped, "memory_used_ratio", &[d]).unwrap().0, "gauge");
        assert_eq!(get(&scraped, "memory_used_ratio", &[d]).unwrap().1, 0.25);
        assert_eq!(get(&scraped, "memory_used_ratio", &[d]).unwrap().2, "Latest value, in ratio.");
        assert_eq!(get(&scraped, "load_per_core", &[d, ("window", "1m")]).unwrap().1, 1.5);
        assert_eq!(get(&scraped, "load_per_core", &[d, ("window", tricky)]).unwrap().1, -2e-9);
        assert_eq!(get(&scraped, "monitor_plugin_calls_total", &[d]).unwrap().0, "counter");
        assert_eq!(get(&scraped, "monitor_plugin_calls_total", &[d]).unwrap().1, 42.0);
        assert_eq!(get(&scraped, "monitor_plugin_calls_total", &[("plugin", "other")]).unwrap().1, 0.0);
        assert_eq!(get(&scraped, "monitor_plugin_memory_peak_bytes", &[("plugin", "other")]).unwrap().1, 1048576.0);
        assert_eq!(get(&scraped, "node:cpu_seconds_total", &[]).unwrap().0, "counter");
        assert_eq!(get(&scraped, "node:cpu_seconds_total", &[]).unwrap().1, 12345.5);
        assert_eq!(get(&scraped, "up_bare", &[]).unwrap().1, 1e21);
        assert_eq!(get(&scraped, SKIPPED, &[]).unwrap().1, 0.0);
        assert_eq!(scraped.len(), samples.len() + 1, "{scraped:#?}");

        // The sample lines carry the board's names, and nothing is written twice.
        assert!(out.text.contains("\nmonitor_plugin_calls_total{plugin=\"derived-metrics\"} 42"), "{}", out.text);
        assert_eq!(out.text.matches("# TYPE monitor_plugin_calls counter\n").count(), 1, "{}", out.text);
        assert!(out.text.ends_with("# EOF\n"));
    }

    #[test]
    fn output_is_sorted_whatever_the_input_order() {
        let mut samples: Vec<Sample> = (0..20)
            .map(|i| sample(&format!("m{}", i % 7), &[("k", &format!("{}", (i * 13) % 20))], f64::from(i), ""))
            .collect();
        let first = render(&samples).text;
        samples.reverse();
        assert_eq!(render(&samples).text, first);
        let names: Vec<&str> = first.lines().filter_map(|l| l.strip_prefix("# TYPE ")).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn units_in_help_are_escaped() {
        let unit = "we\"ird\\ unit\nsecond line";
        let out = render(&[sample("odd", &[], 1.0, unit)]);
        let scraped = parse(&out.text);
        assert_eq!(get(&scraped, "odd", &[]).unwrap().2, format!("Latest value, in {unit}."));
    }

    #[test]
    fn series_the_format_cannot_carry_are_left_out_and_counted() {
        let samples = vec![
            sample("good", &[("plugin", "a")], 1.0, "bytes"),
            // One name, two units: the whole name goes.
            sample("temperature", &[("plugin", "a")], 20.0, "celsius"),
            sample("temperature", &[("plugin", "b")], 68.0, "fahrenheit"),
            // Not Prometheus names.
            sample("bad name", &[], 1.0, ""),
            sample("1st", &[], 1.0, ""),
            sample("température", &[], 1.0, ""),
            sample("", &[], 1.0, ""),
            sample("_total", &[], 1.0, ""),
            // Not label names.
            sample("good", &[("plugin", "a"), ("bad-label", "x")], 1.0, "bytes"),
            sample("good", &[("plugin", "a"), ("__reserved", "x")], 1.0, "bytes"),
            // Values the format or the type cannot carry.
            sample("good", &[("plugin", "nan")], f64::NAN, "bytes"),
            sample("good", &[("plugin", "inf")], f64::INFINITY, "bytes"),
            sample("requests_total", &[("plugin", "a")], -1.0, ""),
            // A counter whose family name is a gauge's.
            sample("jobs", &[], 3.0, ""),
            sample("jobs_total", &[], 4.0, ""),
            // The same series twice: one is kept.
            sample("twice", &[("plugin", "a")], 1.0, ""),
            sample("twice", &[("plugin", "a")], 2.0, ""),
        ];
        let out = render(&samples);
        let scraped = parse(&out.text);
        let keys: Vec<&str> = scraped.keys().map(|(name, _)| name.as_str()).collect();
        assert_eq!(keys, ["good", "jobs", SKIPPED, "twice"], "{}", out.text);
        assert_eq!(get(&scraped, "twice", &[("plugin", "a")]).unwrap().1, 2.0);
        assert_eq!(out.skipped, 14);
        assert_eq!(get(&scraped, SKIPPED, &[]).unwrap().1, 14.0);
        let problems = out.problems.iter().cloned().collect::<Vec<_>>().join("\n");
        for needle in [
            "'temperature' has several units",
            "'bad name' is not a valid metric name",
            "'1st' is not",
            "'température' is not",
            "'' is not",
            "'_total' is not",
            "'bad-label' is not a valid label name",
            "'__reserved' is not",
            "NaN is not a valid value",
            "inf is not a valid value",
            "-1 is not a valid value",
            "'jobs_total' is a counter whose family name 'jobs' is taken",
            "reported twice",
        ] {
            assert!(problems.contains(needle), "{needle} not in:\n{problems}");
        }
    }

    #[test]
    fn an_empty_board_is_a_valid_exposition() {
        let out = render(&[]);
        assert_eq!(get(&parse(&out.text), SKIPPED, &[]).unwrap().1, 0.0);
    }
}
