//! The plugin runtime in-process, with the real example plugins: roles, each
//! role's calls, configuration, grants and the key-value store.

use std::time::Duration;

use monitor_host::alerts::{AlertState, Level, Transition};
use monitor_host::progress::{Node, NodePath, Status};
use monitor_host::store::alerts::HistoryEntry;
use monitor_tests::host::Host;
use monitor_tests::{Sandbox, install, wait_for};

fn node(path: &str, status: Status, progress: f64) -> Node {
    let mut node = Node::new(NodePath::parse(path).unwrap(), 1_060_000);
    (node.status, node.progress, node.started_ms) = (status, progress, Some(1_000_000));
    node
}

/// Alert `id` of `rule` going `from` → firing, numbered `seq` in the history.
fn firing(seq: u64, id: &str, rule: &str, level: Level, from: AlertState) -> HistoryEntry {
    let transition = Transition {
        id: id.into(),
        rule: rule.into(),
        level,
        labels: Default::default(),
        from,
        to: AlertState::Firing,
        value: None,
        message: String::new(),
        at_ms: 1,
        silenced: false,
        ack: None,
    };
    HistoryEntry { seq, transition }
}

#[test]
fn example_plugins_load_with_their_roles_and_wait_for_grants() {
    let host = Host::with(
        Sandbox::new(),
        &["derived-metrics", "textfile-collector", "weighted-phases", "jsonl-alerts", "compact-status"],
    );
    let roles = |name: &str| {
        let r = host.record(name);
        r.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    };
    assert_eq!(roles("derived-metrics"), "metric-provider");
    assert_eq!(roles("textfile-collector"), "metric-provider");
    assert_eq!(roles("weighted-phases"), "progress-calculator");
    assert_eq!(roles("jsonl-alerts"), "alert-handler");
    assert_eq!(roles("compact-status"), "display-formatter");
    assert_eq!(host.state("derived-metrics"), "running");
    assert_eq!(host.state("weighted-phases"), "running");
    assert_eq!(host.state("compact-status"), "running");
    assert_eq!(host.state("textfile-collector"), "awaiting grant: fs-read");
    assert_eq!(host.state("jsonl-alerts"), "awaiting grant: fs-write");
    let asks = &host.record("textfile-collector").requests[0];
    assert!(asks.reason.contains("prom"), "the reason is shown to the user: {}", asks.reason);
}

#[test]
fn derived_metrics_are_computed_from_the_system_snapshot() {
    let host = Host::with(Sandbox::new(), &["derived-metrics"]);
    let metrics = host.metrics_of("derived-metrics").expect("derived-metrics was called");
    let memory = metrics.iter().find(|m| m.name == "memory_used_ratio").expect("memory_used_ratio");
    assert!(memory.value > 0.0 && memory.value < 1.0, "{}", memory.value);
    let windows: Vec<&str> = metrics
        .iter()
        .filter(|m| m.name == "load_per_core")
        .flat_map(|m| m.labels.iter().filter(|(k, _)| k == "window").map(|(_, v)| v.as_str()))
        .collect();
    assert_eq!(windows, ["1m", "5m", "15m"]);
}

#[test]
fn textfile_collector_reads_only_the_granted_directory() {
    let sandbox = Sandbox::new();
    let prom = sandbox.root.path().join("prom");
    std::fs::create_dir(&prom).unwrap();
    std::fs::write(prom.join("jobs.prom"), "# TYPE backup_age gauge\nbackup_age_seconds{host=\"db1\"} 3600\n").unwrap();
    let config = format!("directory = \"{}\"\n", prom.display());
    std::fs::write(sandbox.plugins().join("textfile-collector.toml"), config).unwrap();
    let host = Host::with(sandbox, &["textfile-collector"]);
    assert_eq!(host.state("textfile-collector"), "awaiting grant: fs-read");
    assert!(host.metrics_of("textfile-collector").is_none(), "a plugin waiting for a grant is not called");

    // A grant of another directory does not open this one.
    let elsewhere = host.sandbox.root.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    host.enable("textfile-collector", &[&format!("fs-read:{}", elsewhere.display())]);
    assert_eq!(host.state("textfile-collector"), "running");
    assert!(host.metrics_of("textfile-collector").is_none());
    let error = host.record("textfile-collector").stats.last_error.unwrap();
    assert!(error.contains(&format!("--grant fs-read:{}", prom.display())), "the error says how to fix it: {error}");

    host.manager.revoke("textfile-collector", "fs-read").unwrap();
    host.enable("textfile-collector", &[&format!("fs-read:{}", prom.display())]);
    let metrics = host.metrics_of("textfile-collector").expect("collected");
    let backup = metrics.iter().find(|m| m.name == "backup_age_seconds").expect("the sample from the file");
    assert_eq!(backup.value, 3600.0);
    let labels: Vec<(&str, &str)> = backup.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(labels.contains(&("host", "db1")) && labels.contains(&("file", "jobs.prom")), "{labels:?}");
}

#[test]
fn weighted_phases_weighs_children_by_phase() {
    let host = Host::with(Sandbox::new(), &["weighted-phases"]);
    let parent = node("run-1", Status::Running, 0.0);
    let children = [
        node("run-1/init", Status::Completed, 1.0),
        node("run-1/build", Status::Running, 0.5),
        node("run-1/test", Status::Pending, 0.0),
    ];
    let (progress, eta) = host.block_on(host.manager.compute("weighted-phases", &parent, &children)).unwrap();
    // INIT 5 done, BUILD 40 half done, TEST 30 not started: (5 + 20) / 75.
    assert!((progress - 25.0 / 75.0).abs() < 1e-9, "{progress}");
    // 60 s elapsed for a third of the work: 120 s to go.
    let eta = eta.expect("an ETA");
    assert!((eta - 120.0).abs() < 1e-6, "{eta}");
}

#[test]
fn jsonl_alerts_appends_one_json_line_per_alert_in_the_granted_directory() {
    let sandbox = Sandbox::new();
    let out = sandbox.root.path().join("alerts");
    std::fs::create_dir(&out).unwrap();
    let file = out.join("alerts.jsonl");
    std::fs::write(sandbox.plugins().join("jsonl-alerts.toml"), format!("path = \"{}\"\n", file.display())).unwrap();
    let host = Host::with(sandbox, &["jsonl-alerts"]);
    host.enable("jsonl-alerts", &[&format!("fs-write:{}", out.display())]);
    let mut entry = firing(7, "a1", "disk \"full\"", Level::Critical, AlertState::Pending);
    entry.transition.message = "/ is 97% full\nact now".into();
    entry.transition.labels = [("mount".to_string(), "/".to_string())].into();
    (entry.transition.value, entry.transition.at_ms) = (Some(97.5), 1_700_000_000_000);
    for _ in 0..2 {
        host.block_on(host.manager.handle_alert("jsonl-alerts", &entry)).unwrap();
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["rule"], "disk \"full\"");
    assert_eq!(lines[0]["level"], "critical");
    assert_eq!(lines[0]["message"], "/ is 97% full\nact now");
    assert_eq!(lines[0]["labels"]["mount"], "/");
    assert_eq!(lines[0]["value"], 97.5);
    assert_eq!((&lines[0]["seq"], &lines[0]["from"]), (&7.into(), &"pending".into()));
}

/// A handler built before `alert-events` existed still gets every alert, the
/// alert alone, and still counts as an alert handler.
#[test]
fn an_alert_handler_of_the_first_form_still_gets_alerts() {
    let host = Host::with(Sandbox::new(), &["fx-alerts-v1"]);
    let record = host.enable("fx-alerts-v1", &["kv"]);
    assert_eq!(record.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), ["alert-handler"]);
    let entry = firing(3, "old-form", "r", Level::Warning, AlertState::Firing);
    host.block_on(host.manager.handle_alert("fx-alerts-v1", &entry)).unwrap();
    assert_eq!(host.manager.store().kv_get("fx-alerts-v1", "last").unwrap().as_deref(), Some(&b"old-form"[..]));
}

#[test]
fn compact_status_renders_one_line() {
    let host = Host::with(Sandbox::new(), &["compact-status"]);
    let snapshot = monitor_host::sampler::Sampler::new().sample();
    let run = node("train-42", Status::Running, 0.63);
    let line = host.block_on(host.manager.format_status("compact-status", &snapshot, &[run], &[])).unwrap();
    assert!(!line.contains('\n'), "{line:?}");
    assert!(line.contains("cpu ") && line.contains("mem ") && line.contains("train-42 63%"), "{line}");
}

#[test]
fn plugin_configuration_errors_name_the_file_or_field_and_harm_nothing_else() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.plugins().join("textfile-collector.toml"), "directory = 3\n").unwrap();
    std::fs::write(sandbox.plugins().join("weighted-phases.toml"), "[weights\n").unwrap();
    let textfiles = sandbox.root.path().join("textfiles");
    std::fs::create_dir(&textfiles).unwrap();
    let host = Host::with(sandbox, &["textfile-collector", "weighted-phases", "derived-metrics"]);
    host.enable("textfile-collector", &[&format!("fs-read:{}", textfiles.display())]);
    let state = host.state("textfile-collector");
    assert!(state.starts_with("failed: invalid configuration: line 1 `directory = 3`"), "{state}");
    let state = host.state("weighted-phases");
    assert!(state.contains("weighted-phases.toml is not valid TOML"), "{state}");
    assert_eq!(host.state("derived-metrics"), "running");

    // Fixing a configuration file reloads the plugin with it.
    std::fs::write(host.sandbox.plugins().join("weighted-phases.toml"), "[weights]\nbuild = 10\n").unwrap();
    host.scan();
    assert_eq!(host.state("weighted-phases"), "running");
}

#[test]
fn the_key_value_store_keeps_state_across_restarts() {
    let host = Host::with(Sandbox::new(), &["fx-kv-counter"]);
    assert_eq!(host.state("fx-kv-counter"), "awaiting grant: kv");
    host.enable("fx-kv-counter", &["kv"]);
    let count = |host: &Host| host.metrics_of("fx-kv-counter").expect("called")[0].value;
    assert_eq!(count(&host), 1.0);
    assert_eq!(count(&host), 2.0);

    let sandbox = host.into_sandbox();
    // Plugin threads let go of the database as they finish; reopen once they have.
    wait_for("the database to be free", Duration::from_secs(10), || {
        monitor_host::store::Store::open(&sandbox.data().join("monitor.redb")).ok().map(drop)
    });
    let host = Host::new(sandbox, |_| {});
    host.scan();
    assert_eq!(host.state("fx-kv-counter"), "running", "the grant survives the restart");
    assert_eq!(count(&host), 3.0);
}

#[test]
fn an_upgrade_that_asks_for_more_waits_for_a_grant() {
    let sandbox = Sandbox::new();
    install("fx-caps-a", &sandbox.plugins(), "caps.wasm");
    let host = Host::new(sandbox, |_| {});
    host.scan();
    assert_eq!(host.state("fx-caps"), "running");
    let first_hash = host.record("fx-caps").hash;

    install("fx-caps-b", &host.sandbox.plugins(), "caps.wasm");
    host.scan();
    let record = host.record("fx-caps");
    assert_ne!(record.hash, first_hash);
    assert_eq!(record.state.to_string(), "awaiting grant: kv");
    assert!(host.metrics_of("fx-caps").is_none());

    host.enable("fx-caps", &["kv"]);
    assert_eq!(host.metrics_of("fx-caps").unwrap()[0].value, 2.0, "the new version runs");
}

#[test]
fn disable_stops_a_plugin_and_removal_forgets_it() {
    let sandbox = Sandbox::new();
    let file = install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    let host = Host::new(sandbox, |_| {});
    host.scan();
    host.manager.disable("derived-metrics").unwrap();
    assert_eq!(host.state("derived-metrics"), "disabled");
    assert!(host.metrics_of("derived-metrics").is_none());
    host.enable("derived-metrics", &[]);
    assert!(host.metrics_of("derived-metrics").is_some());
    std::fs::remove_file(file).unwrap();
    host.scan();
    assert_eq!(host.state("derived-metrics"), "absent");
    assert!(host.metrics_of("derived-metrics").is_none());
}

#[test]
fn a_plugin_directory_that_cannot_be_read_leaves_the_compile_cache_as_it_is() {
    let host = Host::with(Sandbox::new(), &["derived-metrics"]);
    let cache = host.sandbox.data().join("cache");
    let artifacts = || std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(artifacts(), 1);
    // The directory swapped out from under the host (a deploy, a typo'd path).
    let plugins = host.sandbox.plugins();
    let aside = plugins.with_file_name("plugins.old");
    std::fs::rename(&plugins, &aside).unwrap();
    host.scan();
    assert_eq!(artifacts(), 1, "nothing is known to be unused when nothing could be read");
    std::fs::rename(&aside, &plugins).unwrap();
    host.scan();
    assert_eq!(artifacts(), 1);
}
