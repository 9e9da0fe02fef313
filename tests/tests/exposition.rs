//! `GET /metrics` on the real host, read back with an OpenMetrics parser the
//! way Prometheus would scrape it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use monitor_tests::{Sandbox, install, wait_for};
use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::{OpenMetricsType, OpenMetricsValue};

/// A series as a scraper sees it: sample name as written, then labels.
type Series = (String, BTreeMap<String, String>);

/// `GET /metrics`: the status line, the content type and the body.
fn scrape(sandbox: &Sandbox, token: Option<&str>) -> (String, String, String) {
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sandbox.data().join("daemon.json")).unwrap()).unwrap();
    let addr = info["addr"].as_str().unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    let content_type = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-type")))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// Every series in an exposition with its type and value; panics if it does not parse.
fn parse(text: &str) -> BTreeMap<Series, (&'static str, f64)> {
    let exposition = parse_openmetrics(text).unwrap_or_else(|e| panic!("{e:?} in:\n{text}"));
    let mut out = BTreeMap::new();
    for family in exposition.families.values() {
        for sample in family.iter_samples() {
            let labels = sample.get_labelset().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let (name, kind, value) = match &sample.value {
                OpenMetricsValue::Counter(c) => (format!("{}_total", family.family_name), "counter", c.value.as_f64()),
                OpenMetricsValue::Gauge(n) => (family.family_name.clone(), "gauge", n.as_f64()),
                other => panic!("{}: unexpected {other:?}", family.family_name),
            };
            assert!(
                matches!(family.family_type, OpenMetricsType::Counter | OpenMetricsType::Gauge),
                "{}",
                family.family_name
            );
            out.insert((name, labels), (kind, value));
        }
    }
    out
}

fn of(name: &str, labels: &[(&str, &str)]) -> Series {
    (name.to_string(), labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

#[test]
fn prometheus_scrapes_plugin_series_and_self_metrics_with_the_token() {
    let sandbox = Sandbox::new();
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    let _host = sandbox.start(&[]);
    let token = sandbox.token();
    let plugin = ("plugin", "derived-metrics");

    let series = wait_for("a tick's series on /metrics", Duration::from_secs(10), || {
        let (status, _, body) = scrape(&sandbox, Some(&token));
        assert!(status.starts_with("HTTP/1.1 200"), "{status}\n{body}");
        let series = parse(&body);
        let calls = series.get(&of("monitor_plugin_calls_total", &[plugin]))?;
        (calls.1 >= 1.0).then_some(series)
    });

    assert_eq!(series[&of("monitor_plugin_calls_total", &[plugin])].0, "counter");
    assert_eq!(series[&of("monitor_plugin_faults_total", &[plugin])], ("counter", 0.0));
    assert_eq!(series[&of("monitor_plugin_running", &[plugin])], ("gauge", 1.0));
    assert_eq!(series[&of("monitor_plugin_memory_peak_bytes", &[plugin])].0, "gauge");
    let ratio = series[&of("memory_used_ratio", &[plugin])];
    assert!(ratio.0 == "gauge" && (0.0..=1.0).contains(&ratio.1), "{ratio:?}");
    for window in ["1m", "5m", "15m"] {
        assert_eq!(series[&of("load_per_core", &[plugin, ("window", window)])].0, "gauge", "{window}");
    }
    assert_eq!(series[&of("monitor_exposition_skipped_series", &[])], ("gauge", 0.0));

    let (status, content_type, _) = scrape(&sandbox, Some(&token));
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(content_type, monitor_host::exposition::CONTENT_TYPE);
    for token in [None, Some("wrong")] {
        let (status, _, body) = scrape(&sandbox, token);
        assert!(status.starts_with("HTTP/1.1 401"), "{token:?}: {status}\n{body}");
    }
}
