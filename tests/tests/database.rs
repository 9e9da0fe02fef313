//! The database file: `monitor db check` verifies it; a damaged one stops the
//! host with one line naming it and what to do, never a panic.

use monitor_tests::Sandbox;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn db_check_verifies_the_database_and_needs_the_host_stopped() {
    let sandbox = Sandbox::new();
    let out = sandbox.monitor(&["db", "check"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("no database yet"), "{out:?}");
    let host = sandbox.start(&[]);
    let (status, _) = sandbox.api_post("/v1/progress/etl/load", r#"{"op":"advance","units":3}"#);
    assert!(status.contains(" 200 "));
    let out = sandbox.monitor(&["db", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is in use by the running host; stop it first"), "{}", stderr(&out));
    drop(host);

    let out = sandbox.monitor(&["db", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.lines().next().unwrap().ends_with("monitor.redb: ok"), "{text}");
    assert!(text.contains("runs            1 (2 nodes, 1 events)"), "{text}");
}

#[test]
fn a_damaged_database_stops_the_host_with_one_line_and_no_panic() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.data()).unwrap();
    let database = sandbox.data().join("monitor.redb");
    std::fs::write(&database, "this is not a database\n".repeat(100)).unwrap();
    for args in [&["run", "--plugins", sandbox.plugins().to_str().unwrap()][..], &["db", "check"], &["list"]] {
        let out = sandbox.monitor(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let line = err.lines().find(|l| l.starts_with("monitor: ")).unwrap_or_else(|| panic!("{args:?}: {err}"));
        assert!(line.contains(&format!("database {} is damaged", database.display())), "{line}");
        assert!(line.contains("monitor db check") && line.contains(".damaged"), "{line}");
        assert!(!err.contains("panicked") && !err.contains("stack backtrace"), "{args:?}: {err}");
    }
}

#[test]
fn a_database_damaged_in_place_is_repaired_or_refused_never_a_panic() {
    let sandbox = Sandbox::new();
    {
        let _host = sandbox.start(&[]);
        for i in 0..50 {
            let (status, _) = sandbox.api_post(&format!("/v1/progress/etl/step-{i}"), r#"{"op":"advance","units":1}"#);
            assert!(status.contains(" 200 "));
        }
    }
    let database = sandbox.data().join("monitor.redb");
    let mut bytes = std::fs::read(&database).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 4096] {
        *b ^= 0xA5;
    }
    std::fs::write(&database, &bytes).unwrap();
    let out = sandbox.monitor(&["db", "check"]);
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    match out.status.code() {
        Some(0) => assert!(String::from_utf8_lossy(&out.stdout).contains(": ok")),
        Some(1) => {
            let line = err.lines().find(|l| l.starts_with("monitor: ")).unwrap_or_else(|| panic!("{err}"));
            assert!(line.contains("is damaged") && line.contains(".damaged"), "{err}");
        }
        other => panic!("exit {other:?}: {err}"),
    }
}

#[test]
fn db_stats_and_compact_work_through_the_host_and_without_it() {
    let sandbox = Sandbox::new();
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "sample_interval_ms = 100\n[metrics]\ncommit_every = \"200ms\"\n").unwrap();
    let mut host = sandbox.start(&["--config", config.to_str().unwrap()]);
    monitor_tests::wait_for("a history commit", std::time::Duration::from_secs(30), || {
        sandbox.metric_host("monitor_history_commits_total").filter(|n| *n >= 1.0)
    });
    let out = sandbox.monitor(&["db", "stats", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let space: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let host_series = space["plugins"].as_array().unwrap().iter().find(|p| p["plugin"] == "host").cloned();
    assert!(host_series.is_some_and(|p| p["raw_points"].as_u64() > Some(0)), "{space}");
    let tables: Vec<&str> = space["tables"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(tables.contains(&"metric_chunks") && tables.contains(&"progress_nodes"), "{tables:?}");

    let out = sandbox.monitor(&["db", "compact"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains(" before, ") && text.contains(" now"), "{text}{}", stderr(&out));
    // The host goes on after compacting: the history and progress still commit.
    let commits = sandbox.metric_host("monitor_history_commits_total").unwrap();
    monitor_tests::wait_for("a commit after compacting", std::time::Duration::from_secs(30), || {
        sandbox.metric_host("monitor_history_commits_total").filter(|n| *n > commits)
    });
    let (status, _) = sandbox.api_post("/v1/progress/etl/load", r#"{"op":"advance","units":1}"#);
    assert!(status.contains(" 200 "), "{status}");
    host.signal("TERM");
    host.wait_exit(std::time::Duration::from_secs(10));

    let out = sandbox.monitor(&["db", "stats"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.starts_with("file ") && text.contains("metric_chunks") && text.contains("METRICS OF"), "{text}");
    let out = sandbox.monitor(&["db", "compact"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
