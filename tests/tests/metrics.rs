//! Metric history with the real host: recorded every tick, queried live and
//! after the host has stopped.

use std::time::Duration;

use monitor_tests::{Sandbox, install, wait_for};

fn run(sandbox: &Sandbox, args: &[&str]) -> (Option<i32>, String, String) {
    let out = sandbox.monitor(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn calls(sandbox: &Sandbox) -> Vec<f64> {
    let (code, out, err) = run(
        sandbox,
        &["metrics", "query", "monitor_plugin_calls_total", "--labels", "plugin=derived-metrics", "--json"],
    );
    if code != Some(0) {
        return Vec::new();
    }
    let found: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    assert_eq!(found.len(), 1, "one series matches: {out}");
    found[0]["points"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).collect()
}

#[test]
fn every_tick_is_recorded_and_can_be_queried_live_and_later() {
    let sandbox = Sandbox::new();
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    let config = sandbox.root.path().join("host.toml");
    // Committed every half second, not every 30: the history shows soon.
    std::fs::write(&config, "sample_interval_ms = 100\n[metrics]\ncommit_every = \"500ms\"\n").unwrap();
    let mut host = sandbox.start(&["--config", config.to_str().unwrap()]);

    let live = wait_for("a few ticks in the history", Duration::from_secs(30), || {
        let values = calls(&sandbox);
        (values.len() >= 3).then_some(values)
    });
    assert!(live.windows(2).all(|w| w[1] >= w[0]), "a call counter never goes down: {live:?}");
    let database = sandbox.metric_host("monitor_database_bytes").expect("the host reports its database size");
    let on_disk = std::fs::metadata(sandbox.data().join("monitor.redb")).unwrap().len() as f64;
    assert!(database > 0.0 && database <= on_disk, "{database} vs {on_disk}");
    assert!(sandbox.metric_host("monitor_tick_duration_p99_seconds").is_some_and(|s| s > 0.0));
    // The history's writer times its own commits and has kept every tick.
    wait_for("a commit timed", Duration::from_secs(30), || {
        sandbox.metric_host("monitor_history_commit_p99_seconds").filter(|s| *s > 0.0)
    });
    assert_eq!(sandbox.metric_host("monitor_history_skipped_ticks_total"), Some(0.0));

    let (code, out, _) = run(&sandbox, &["metrics", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(r#"monitor_plugin_calls_total{plugin="derived-metrics"}"#), "{out}");
    assert!(out.lines().last().unwrap().contains("series; database"), "{out}");

    let (code, out, _) = run(&sandbox, &["metrics", "query", "monitor_plugin_calls_total", "--since", "1h"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with(r#"monitor_plugin_calls_total{plugin="derived-metrics"}"#) && out.contains(" points)"),
        "{out}"
    );

    let cases: [(&[&str], &str); 3] = [
        (&["metrics", "query", "no_such_metric"], "no series named 'no_such_metric'; known metrics: "),
        (&["metrics", "query", "monitor_plugin_calls_total", "--labels", "plugin"], "'plugin' is not a label filter"),
        (&["metrics", "query", "monitor_plugin_calls_total", "--since", "soon"], "invalid value 'soon' for '--since"),
    ];
    for (args, expected) in cases {
        let (code, _, err) = run(&sandbox, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }

    // Stopped, the history is still there, read from the database.
    host.signal("TERM");
    host.wait_exit(Duration::from_secs(10));
    let later = calls(&sandbox);
    assert!(later.len() >= live.len() && later[..live.len()] == live[..], "{live:?} then {later:?}");
}

#[test]
fn the_history_answers_reach_the_samples_not_committed_yet() {
    let sandbox = Sandbox::new();
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "sample_interval_ms = 100\n[metrics]\ncommit_every = \"5m\"\n").unwrap();
    let _host = sandbox.start(&["--config", config.to_str().unwrap()]);
    let live = wait_for("a few ticks in the history", Duration::from_secs(30), || {
        let values = calls(&sandbox);
        (values.len() >= 3).then_some(values)
    });
    assert!(live.windows(2).all(|w| w[1] >= w[0]), "{live:?}");
    let (code, out, _) = run(&sandbox, &["metrics", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.contains(r#"monitor_plugin_calls_total{plugin="derived-metrics"}"#), "{out}");
    assert_eq!(sandbox.metric_host("monitor_history_commits_total"), Some(0.0), "none of it is committed yet");
}
