//! Reporting and viewing progress with the real binary, with and without a
//! running host, and across a `kill -9` of the host.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use monitor_host::api::{BatchItem, BatchResult};
use monitor_host::client::Remote;
use monitor_host::paths::DataDir;
use monitor_tests::{Reaped, Sandbox, install};
use serde_json::json;

fn ok(sandbox: &Sandbox, args: &[&str]) -> String {
    let out = sandbox.monitor(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The same pipeline of reports, then the tree as `monitor status RUN --json` shows it.
fn report_a_pipeline(sandbox: &Sandbox) -> serde_json::Value {
    ok(sandbox, &["progress", "start", "train-42/build", "--total", "10"]);
    ok(sandbox, &["progress", "update", "train-42/build", "--advance", "4", "--message", "compiling"]);
    ok(sandbox, &["progress", "update", "train-42/build", "--advance", "6"]);
    ok(sandbox, &["progress", "finish", "train-42/build"]);
    ok(sandbox, &["progress", "start", "train-42/test", "--total", "5"]);
    ok(sandbox, &["progress", "update", "train-42/test", "--percent", "20", "--metadata", "{\"epoch\": 3}"]);
    serde_json::from_str(&ok(sandbox, &["status", "train-42", "--json"])).unwrap()
}

fn check_pipeline(tree: &serde_json::Value) {
    let nodes = tree.as_array().unwrap();
    let paths: Vec<&str> = nodes.iter().map(|n| n["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["train-42", "train-42/build", "train-42/test"]);
    assert_eq!(nodes[1]["status"], "completed");
    assert_eq!(nodes[1]["done"], 10.0);
    assert_eq!(nodes[2]["metadata"]["epoch"], 3);
    // The run is the children's progress weighted by their totals: (10 + 1) / 15.
    assert_eq!(nodes[0]["status"], "running");
    assert!((nodes[0]["progress"].as_f64().unwrap() - 11.0 / 15.0).abs() < 1e-9, "{}", nodes[0]);
}

#[test]
fn progress_is_reported_and_shown_without_a_host() {
    let sandbox = Sandbox::new();
    check_pipeline(&report_a_pipeline(&sandbox));
    let text = ok(&sandbox, &["status", "train-42"]);
    let build = text.lines().find(|l| l.trim_start().starts_with("build")).unwrap();
    assert!(
        build.contains("completed") && build.contains("[####################]") && build.contains("100%"),
        "{text}"
    );
    let list = ok(&sandbox, &["list"]);
    assert!(list.lines().any(|l| l.starts_with("train-42") && l.contains("running") && l.contains("73%")), "{list}");

    // A late update to a finished node changes nothing and shows in the history as ignored.
    ok(&sandbox, &["progress", "update", "train-42/build", "--done", "3"]);
    check_pipeline(&serde_json::from_str(&ok(&sandbox, &["status", "train-42", "--json"])).unwrap());
    let history = ok(&sandbox, &["history", "train-42"]);
    let ops: Vec<&str> = history.lines().take(7).map(|l| l.split_whitespace().nth(3).unwrap_or_default()).collect();
    assert_eq!(ops, ["start", "advance", "advance", "finish", "start", "percent", "done"], "{history}");
    assert!(history.lines().nth(6).unwrap().ends_with("units=3.0 (ignored)"), "{history}");
    assert!(history.contains("\"compiling\""), "{history}");
    let durations: Vec<&str> = history.lines().skip(8).map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(durations, ["train-42", "train-42/build", "train-42/test"], "{history}");
}

#[test]
fn progress_is_reported_through_the_host_and_survives_kill_9() {
    let sandbox = Sandbox::new();
    let mut host = sandbox.start(&[]);
    check_pipeline(&report_a_pipeline(&sandbox));
    // Every update above was acknowledged; a host killed now loses none of them.
    host.signal("KILL");
    host.wait_exit(Duration::from_secs(10));
    let tree: serde_json::Value = serde_json::from_str(&ok(&sandbox, &["status", "train-42", "--json"])).unwrap();
    check_pipeline(&tree);
    let _host = sandbox.start(&[]);
    ok(&sandbox, &["progress", "finish", "train-42/test"]);
    let runs: serde_json::Value = serde_json::from_str(&ok(&sandbox, &["list", "--json"])).unwrap();
    assert_eq!(runs[0]["status"], "completed", "{runs}");
}

#[test]
fn bad_reports_are_refused_with_the_fix_and_store_nothing() {
    let sandbox = Sandbox::new();
    ok(&sandbox, &["progress", "start", "job/step"]);
    let long = format!("job/{}", "x".repeat(300));
    let cases: [(&[&str], &str); 5] = [
        (&["progress", "update", "job//x", "--done", "1"], "node id 'job//x' has an empty segment"),
        (&["progress", "update", "job/step", "--percent", "150"], "percent of 150 is outside 0..=100"),
        (&["progress", "update", "job/step", "--done", "-3"], "-3"),
        (&["progress", "update", "job/step", "--done", "1", "--metadata", "[1]"], "is not a JSON object"),
        (&["progress", "start", &long], "too long"),
    ];
    for (args, expected) in cases {
        let out = sandbox.monitor(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(message.contains(expected) && message.lines().count() == 1, "{args:?}: {message}");
    }
    let out = sandbox.monitor(&["progress", "update", "job/step", "--done", "abc"]);
    assert_eq!(out.status.code(), Some(2), "non-numeric units are refused by the parser");
    let tree: serde_json::Value = serde_json::from_str(&ok(&sandbox, &["status", "job", "--json"])).unwrap();
    assert_eq!(tree.as_array().unwrap().len(), 2, "nothing else was stored: {tree}");
    assert_eq!(tree[1]["done"], 0.0);
    let out = sandbox.monitor(&["status", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run named 'nope'; runs: job"));
}

#[test]
fn watch_follows_a_run_until_it_ends() {
    let sandbox = Sandbox::new();
    ok(&sandbox, &["progress", "start", "etl/extract", "--total", "4"]);
    let output = sandbox.root.path().join("watch.out");
    let mut watcher = Reaped(
        std::process::Command::new(monitor_tests::monitor_bin())
            .args(["watch", "etl", "--interval-ms", "50"])
            .env("MONITOR_DATA_DIR", sandbox.data())
            .stdout(std::fs::File::create(&output).unwrap())
            .spawn()
            .unwrap(),
    );
    ok(&sandbox, &["progress", "update", "etl/extract", "--done", "2"]);
    ok(&sandbox, &["progress", "finish", "etl/extract"]);
    let status =
        monitor_tests::wait_for("watch to end with the run", Duration::from_secs(30), || watcher.0.try_wait().unwrap());
    assert!(status.success());
    let text = std::fs::read_to_string(&output).unwrap();
    let last = text.split("\n\n").last().unwrap();
    assert!(last.starts_with("etl ") && last.contains("completed") && last.contains("100%"), "{text}");
}

#[test]
fn concurrent_reporters_without_a_host_all_get_through() {
    let sandbox = Sandbox::new();
    ok(&sandbox, &["progress", "start", "job/step", "--total", "100"]);
    let reporters: Vec<Reaped> = (0..8)
        .map(|_| {
            Reaped(
                std::process::Command::new(monitor_tests::monitor_bin())
                    .args(["progress", "update", "job/step", "--advance", "1"])
                    .env("MONITOR_DATA_DIR", sandbox.data())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    for mut reporter in reporters {
        let status =
            monitor_tests::wait_for("a reporter to finish", Duration::from_secs(30), || reporter.0.try_wait().unwrap());
        assert!(status.success(), "each waits its turn for the database instead of failing");
    }
    let tree: serde_json::Value = serde_json::from_str(&ok(&sandbox, &["status", "job", "--json"])).unwrap();
    assert_eq!(tree[1]["done"], 8.0, "no update is lost");
}

fn remote(sandbox: &Sandbox) -> Remote {
    Remote::find(&DataDir::new(&sandbox.data())).unwrap().expect("the host answers")
}

fn item(path: &str, update: serde_json::Value) -> BatchItem {
    let mut object = update;
    object["path"] = path.into();
    serde_json::from_value(object).unwrap()
}

#[test]
fn a_batch_applies_each_update_on_its_own() {
    let sandbox = Sandbox::new();
    let _host = sandbox.start(&[]);
    let results = remote(&sandbox)
        .progress_batch(vec![
            item("etl/load", json!({"op": "start", "total": 10})),
            item("etl//load", json!({"op": "advance", "units": 1})),
            item("etl/load", json!({"op": "advance", "units": -1})),
            item("etl/load", json!({"op": "done", "units": 12})),
            item("etl/load", json!({"op": "finish"})),
            item("etl/load", json!({"op": "advance", "units": 1})),
        ])
        .unwrap();
    let outcome = |r: &BatchResult| match r {
        BatchResult::Done { applied } => serde_json::to_value(applied).unwrap().as_str().unwrap().to_string(),
        BatchResult::Refused { error } => error.clone(),
    };
    let got: Vec<String> = results.iter().map(outcome).collect();
    assert_eq!(got[0], "applied");
    assert!(got[1].contains("node id 'etl//load' has an empty segment"), "{got:?}");
    assert!(got[2].starts_with("etl/load: advance of -1 is invalid"), "{got:?}");
    assert_eq!(got[3..], ["clamped", "applied", "ignored"]);
    let tree: serde_json::Value = serde_json::from_str(&ok(&sandbox, &["status", "etl", "--json"])).unwrap();
    assert_eq!((tree[1]["status"].as_str(), tree[1]["done"].as_f64()), (Some("completed"), Some(10.0)), "{tree}");

    // Malformed bodies are refused whole, with a JSON error that says why.
    let too_many = json!({"updates": vec![json!({"path": "etl/x", "op": "finish"}); 8193]}).to_string();
    let phases: Vec<String> = (0..256).map(|i| format!("p{i}")).collect();
    let plans = json!({"updates": vec![json!({"path": "etl/x", "op": "plan", "phases": phases}); 33]}).to_string();
    let long_plan = json!({"op": "plan", "phases": (0..257).map(|i| format!("p{i}")).collect::<Vec<_>>()}).to_string();
    let cases = [
        ("/v1/progress", plans.as_str(), "400", "8448 phases planned in one request; plan at most 8192"),
        ("/v1/progress/etl/load", long_plan.as_str(), "400", "a plan of 257 phases; declare 1 to 256"),
        (
            "/v1/progress/etl/load",
            "{\"op\": \"plan\", \"phases\": [\"a\", \"a\"]}",
            "400",
            "phase 'a' is planned twice",
        ),
        (
            "/v1/progress/etl/load",
            "{\"op\": \"resources\", \"resources\": {\"cpu_secs\": 1e308, \"cpu_peak_percent\": 0, \"rss_peak_bytes\": 0, \"read_bytes\": 0, \"written_bytes\": 0}}",
            "400",
            "resources.cpu_secs of 1e308 is invalid",
        ),
        ("/v1/progress/etl/load", "{\"op\": \"start\", \"pid\": 0}", "400", "pid 0 is not a running process"),
        ("/v1/progress/etl/load", "{\"op\": \"declare\"}", "422", "op 'declare' is not an operation"),
        ("/v1/progress", "{\"updates\": [", "400", "EOF while parsing"),
        ("/v1/progress", "{\"updates\": [], \"extra\": 1}", "422", "unknown field `extra`"),
        ("/v1/progress/etl/load", "{\"op\": \"advance\", \"units\": \"x\"}", "422", "invalid type: string \"x\""),
        ("/v1/progress/etl/load", "{\"op\": \"jump\"}", "422", "op 'jump' is not an operation; send one of start,"),
        ("/v1/progress/etl/load", "{\"op\": 4}", "422", "op 4 is not an operation"),
        ("/v1/progress/etl/load", "{\"op\": \"start\", \"totl\": 10}", "422", "unknown field 'totl' for op 'start'"),
        (
            "/v1/progress",
            "{\"updates\": [{\"path\": \"etl/x\", \"op\": \"done\", \"unit\": 1}]}",
            "422",
            "unknown field 'unit'",
        ),
        ("/v1/progress/etl/load", "{\"op\": \"start\", \"metadata\": [1]}", "400", "metadata [1] is not a JSON object"),
        ("/v1/progress/etl/load", "{\"op\": \"start\", \"calculator\": \"../x\"}", "400", "calculator '../x'"),
        ("/v1/progress", too_many.as_str(), "400", "8193 updates in one request; send at most 8192"),
    ];
    for (path, body, status, expected) in cases {
        let (line, answer) = sandbox.api_post(path, body);
        let error: serde_json::Value = serde_json::from_str(&answer).unwrap_or_else(|_| panic!("{body}: {answer}"));
        let message = error["error"].as_str().unwrap();
        assert!(line.contains(status) && message.contains(expected), "{body}: {line} {message}");
    }
    let after: serde_json::Value = serde_json::from_str(&ok(&sandbox, &["status", "etl", "--json"])).unwrap();
    assert_eq!(after, tree, "nothing refused was stored");
}

/// Reporters send batches as fast as the host takes them; the host is killed
/// mid-burst. Every update it acknowledged must be in the database afterwards.
#[test]
fn every_acknowledged_update_survives_kill_9_mid_burst() {
    const REPORTERS: usize = 4;
    const PER_BATCH: u64 = 50;
    let sandbox = Sandbox::new();
    let mut host = sandbox.start(&[]);
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..REPORTERS).map(|_| AtomicU64::new(0)).collect());
    let reporters: Vec<_> = (0..REPORTERS)
        .map(|r| {
            let (client, acked) = (remote(&sandbox), acked.clone());
            std::thread::spawn(move || {
                for batch in 0u64.. {
                    let updates = (1..=PER_BATCH)
                        .map(|i| item(&format!("burst/r{r}"), json!({"op": "done", "units": batch * PER_BATCH + i})))
                        .collect();
                    // The host dies mid-burst: from then on requests fail.
                    let Ok(results) = client.progress_batch(updates) else { return };
                    assert!(results.iter().all(|r| matches!(r, BatchResult::Done { .. })), "{results:?}");
                    acked[r].store((batch + 1) * PER_BATCH, Ordering::SeqCst);
                }
            })
        })
        .collect();
    monitor_tests::wait_for("a burst under way", Duration::from_secs(60), || {
        (acked.iter().map(|a| a.load(Ordering::SeqCst)).sum::<u64>() >= 5_000).then_some(())
    });
    host.signal("KILL");
    host.wait_exit(Duration::from_secs(10));
    for reporter in reporters {
        reporter.join().unwrap();
    }

    // The database opens cleanly without the host, and holds every acknowledged update.
    let tree: serde_json::Value = serde_json::from_str(&ok(&sandbox, &["status", "burst", "--json"])).unwrap();
    let history: Vec<serde_json::Value> = serde_json::from_str(&ok(&sandbox, &["history", "burst", "--json"])).unwrap();
    for (r, acked) in acked.iter().enumerate() {
        let acked = acked.load(Ordering::SeqCst);
        let path = format!("burst/r{r}");
        let node = tree.as_array().unwrap().iter().find(|n| n["path"] == path.as_str()).unwrap();
        assert!(node["done"].as_f64().unwrap() >= acked as f64, "{path}: {node} lost updates up to {acked}");
        let recorded: std::collections::HashSet<u64> = history
            .iter()
            .filter(|e| e["path"] == path.as_str())
            .map(|e| e["update"]["units"].as_f64().unwrap() as u64)
            .collect();
        let missing: Vec<u64> = (1..=acked).filter(|u| !recorded.contains(u)).collect();
        assert!(missing.is_empty(), "{path}: acknowledged but not in history: {} of them", missing.len());
    }
    let seqs: Vec<u64> = history.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "events numbered without gaps");

    // And the host starts again on it and goes on.
    let _host = sandbox.start(&[]);
    ok(&sandbox, &["progress", "finish", "burst"]);
}

fn tree_of(sandbox: &Sandbox, run: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(&ok(sandbox, &["status", run, "--json"])).unwrap()
}

fn progress_of(tree: &[serde_json::Value], path: &str) -> f64 {
    tree.iter().find(|n| n["path"] == path).unwrap_or_else(|| panic!("no {path}"))["progress"].as_f64().unwrap()
}

#[test]
fn a_run_named_for_the_weighted_phases_plugin_is_computed_by_it() {
    let sandbox = Sandbox::new();
    install("weighted-phases", &sandbox.plugins(), "weighted-phases.wasm");
    install("compact-status", &sandbox.plugins(), "compact-status.wasm");
    let _host = sandbox.start(&[]);
    ok(&sandbox, &["progress", "start", "build-7", "--calculator", "weighted-phases"]);
    ok(&sandbox, &["progress", "finish", "build-7/init"]);
    ok(&sandbox, &["progress", "update", "build-7/build", "--percent", "50"]);
    // init weighs 5 and build 40 by default: (5 × 1 + 40 × 0.5) / 45; the
    // default aggregation would say (1 + 0.5) / 2.
    let got = progress_of(&tree_of(&sandbox, "build-7"), "build-7");
    assert!((got - 25.0 / 45.0).abs() < 1e-9, "{got}");

    ok(&sandbox, &["progress", "start", "plain/init"]);
    ok(&sandbox, &["progress", "finish", "plain/init"]);
    ok(&sandbox, &["progress", "update", "plain/build", "--percent", "50"]);
    assert_eq!(progress_of(&tree_of(&sandbox, "plain"), "plain"), 0.75, "other runs keep the default");

    // The same run, rendered by a display formatter: one line for a tmux status bar.
    let line = ok(&sandbox, &["status", "build-7", "--format", "compact-status"]);
    assert_eq!(line, "build-7 55%\n", "the plugin rounds down: {line:?}");
    let line = ok(&sandbox, &["status", "--format", "compact-status"]);
    assert!(line.contains("| build-7 55%, plain 75%"), "the host line shows running runs: {line:?}");
}

#[test]
fn a_run_that_goes_on_after_a_failure_and_one_that_stops() {
    let sandbox = Sandbox::new();
    ok(&sandbox, &["progress", "start", "sweep", "--on-failure", "continue"]);
    ok(&sandbox, &["progress", "fail", "sweep/lr-0.1"]);
    ok(&sandbox, &["progress", "update", "sweep/lr-0.01", "--percent", "10"]);
    ok(&sandbox, &["progress", "fail", "strict/a"]);
    ok(&sandbox, &["progress", "start", "strict/b"]);
    let status = |run: &str| tree_of(&sandbox, run)[0]["status"].as_str().unwrap().to_string();
    assert_eq!((status("sweep"), status("strict")), ("running".into(), "failed".into()));
    let out = sandbox.monitor(&["progress", "start", "x", "--on-failure", "later"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values: fail-fast, continue"));
}

#[test]
fn list_filters_runs_and_status_shows_rate_and_eta() {
    let sandbox = Sandbox::new();
    ok(&sandbox, &["progress", "start", "done-run"]);
    ok(&sandbox, &["progress", "finish", "done-run"]);
    ok(&sandbox, &["progress", "fail", "bad-run/step"]);
    ok(&sandbox, &["progress", "start", "live-run/copy", "--total", "1000"]);
    let names = |args: &[&str]| -> Vec<String> {
        let runs: Vec<serde_json::Value> =
            serde_json::from_str(&ok(&sandbox, &[&["list", "--json"], args].concat())).unwrap();
        runs.iter().map(|r| r["path"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&[]), ["bad-run", "done-run", "live-run"]);
    assert_eq!(names(&["--running"]), ["live-run"]);
    assert_eq!(names(&["--failed"]), ["bad-run"]);
    assert_eq!(names(&["--running", "--failed"]), ["bad-run", "live-run"]);
    assert_eq!(names(&["--since", "1h"]).len(), 3);
    let out = sandbox.monitor(&["list", "--since", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'soon' for '--since <DURATION>'"));

    // Reports a moment apart say nothing of the pace: no rate, no ETA.
    ok(&sandbox, &["progress", "update", "live-run/copy", "--done", "100"]);
    let text = ok(&sandbox, &["status", "live-run"]);
    assert!(!text.contains(" eta ") && !text.contains("/s"), "{text}");
    // Two reports some time apart give the step a rate, and the run an ETA.
    let first = tree_of(&sandbox, "live-run")[1]["updated_ms"].as_u64().unwrap();
    monitor_tests::wait_for("the clock to move", Duration::from_secs(5), || {
        (monitor_host::sampler::now_ms() > first + monitor_host::progress::rate::MIN_SPAN_MS).then_some(())
    });
    ok(&sandbox, &["progress", "update", "live-run/copy", "--done", "200"]);
    let text = ok(&sandbox, &["status", "live-run"]);
    let copy = text.lines().find(|l| l.trim_start().starts_with("copy")).unwrap();
    assert!(copy.contains(" eta ") && copy.contains("200/1000 ") && copy.ends_with("/s"), "{text}");
    assert!(text.lines().next().unwrap().contains(" eta "), "the run has one too: {text}");
    let list = ok(&sandbox, &["list", "--running"]);
    assert!(list.lines().nth(1).unwrap().contains("eta "), "{list}");
}

#[test]
fn the_host_prunes_history_past_its_retention() {
    let sandbox = Sandbox::new();
    for units in ["1", "2", "3"] {
        ok(&sandbox, &["progress", "update", "old/step", "--done", units]);
    }
    let last = tree_of(&sandbox, "old")[1]["updated_ms"].as_u64().unwrap();
    monitor_tests::wait_for("the events to be a second old", Duration::from_secs(5), || {
        (monitor_host::sampler::now_ms() > last + 1_000).then_some(())
    });
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "[progress]\nkeep_events = \"1s\"\n").unwrap();
    let _host = sandbox.start(&["--config", config.to_str().unwrap()]);
    let history = monitor_tests::wait_for("the host to prune", Duration::from_secs(30), || {
        let events: Vec<serde_json::Value> =
            serde_json::from_str(&ok(&sandbox, &["history", "old", "--json"])).unwrap();
        (events.len() == 1).then_some(events)
    });
    assert_eq!(history[0]["seq"], 3, "the newest event stays");
    assert_eq!(tree_of(&sandbox, "old")[1]["done"], 3.0, "nodes stay");
}
