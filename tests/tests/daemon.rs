//! The real `monitor` binary as a user runs it: `monitor run`, hot reload,
//! `monitor plugins` live and offline, single instance, signals, the API token.

use std::process::Command;
use std::time::Duration;

use monitor_tests::{Sandbox, install, monitor_bin, wait_for};

const LIVE: Duration = Duration::from_secs(10);

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn wait_state(sandbox: &Sandbox, name: &str, state: &str) {
    wait_for(&format!("{name} to be {state}"), LIVE, || (sandbox.state(name).as_deref() == Some(state)).then_some(()));
}

#[test]
fn plugins_are_added_replaced_and_removed_while_the_host_runs() {
    let sandbox = Sandbox::new();
    let _host = sandbox.start(&[]);

    install("fx-caps-a", &sandbox.plugins(), "caps.wasm");
    wait_state(&sandbox, "fx-caps", "running");

    // A new build that asks for more waits; a live grant lets it run.
    install("fx-caps-b", &sandbox.plugins(), "caps.wasm");
    wait_state(&sandbox, "fx-caps", "awaiting-grant");
    let out = sandbox.monitor(&["plugins", "enable", "fx-caps", "--grant", "kv"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fx-caps: running\n");

    std::fs::remove_file(sandbox.plugins().join("caps.wasm")).unwrap();
    wait_state(&sandbox, "fx-caps", "absent");
}

#[test]
fn enable_and_disable_take_effect_live() {
    let sandbox = Sandbox::new();
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    let _host = sandbox.start(&[]);
    wait_state(&sandbox, "derived-metrics", "running");

    let out = sandbox.monitor(&["plugins", "disable", "derived-metrics"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "derived-metrics: disabled\n", "{}", text(&out));
    assert_eq!(sandbox.state("derived-metrics").as_deref(), Some("disabled"));
    let out = sandbox.monitor(&["plugins", "enable", "derived-metrics"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "derived-metrics: running\n", "{}", text(&out));

    // Its self-metrics grow as the host calls it every tick.
    wait_for("calls to be counted", LIVE, || {
        let listing = sandbox.listing();
        (listing["plugins"][0]["stats"]["calls"].as_u64() >= Some(2)).then_some(())
    });
    let out = sandbox.monitor(&["plugins", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("NAME "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("derived-metrics") && l.contains("metric-provider") && l.contains("running")),
        "{table}"
    );
}

#[test]
fn changes_made_without_a_host_apply_when_it_starts() {
    let sandbox = Sandbox::new();
    let prom = sandbox.root.path().join("prom");
    std::fs::create_dir(&prom).unwrap();
    std::fs::write(prom.join("a.prom"), "queue_depth 7\n").unwrap();
    std::fs::write(sandbox.plugins().join("textfile-collector.toml"), format!("directory = \"{}\"\n", prom.display()))
        .unwrap();
    install("textfile-collector", &sandbox.plugins(), "textfile-collector.wasm");

    let grant = format!("fs-read:{}", prom.display());
    let plugins = sandbox.plugins();
    assert_eq!(plugins.file_name(), Some("plugins".as_ref()));
    let out = sandbox.monitor(&["plugins", "enable", "textfile-collector", "--grant", &grant]);
    assert_eq!(out.status.code(), Some(1), "unknown to the database and no --plugins: {}", text(&out));
    assert!(text(&out).contains("pass --plugins DIR"), "{}", text(&out));
    // The plugin directory given as a relative path, as people type it: the
    // grant binds to the file the host will see by its full path.
    let out = Command::new(monitor_bin())
        .args(["plugins", "enable", "textfile-collector", "--grant", &grant, "--plugins", "plugins"])
        .current_dir(plugins.parent().unwrap())
        .env("MONITOR_DATA_DIR", sandbox.data())
        .env_remove("MONITOR_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "textfile-collector: running (no host running: applied when it starts)\n"
    );

    let _host = sandbox.start(&[]);
    wait_state(&sandbox, "textfile-collector", "running");
    wait_for("the metric from the file", LIVE, || {
        let info = sandbox.monitor(&["plugins", "info", "textfile-collector", "--json"]);
        let record: serde_json::Value = serde_json::from_slice(&info.stdout).ok()?;
        (record["stats"]["calls"].as_u64()? >= 1 && record["stats"]["faults"] == 0).then_some(())
    });
}

#[test]
fn a_second_host_on_the_same_data_exits_2_naming_the_first() {
    let sandbox = Sandbox::new();
    let host = sandbox.start(&[]);
    let out = sandbox.monitor(&["run", "--plugins", sandbox.plugins().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let message = text(&out);
    assert!(
        message.contains(&format!(
            "monitor is already running on {} (PID {})",
            sandbox.data().display(),
            host.child.id()
        )),
        "{message}"
    );
}

#[test]
fn sigterm_and_sigint_stop_cleanly_and_release_everything() {
    let sandbox = Sandbox::new();
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    install("fx-loop", &sandbox.plugins(), "fx-loop.wasm");
    for signal in ["TERM", "INT"] {
        let mut host = sandbox.start(&[]);
        wait_state(&sandbox, "derived-metrics", "running");
        host.signal(signal);
        let (status, _) = host.wait_exit(LIVE);
        assert!(status.success(), "SIGINT/SIGTERM is a clean stop: {status}\n{}", host.log());
        assert!(host.log().contains("stopped"), "{}", host.log());
        assert!(!sandbox.data().join("daemon.json").exists());
    }
    // The database opens cleanly and the lock is free.
    let out = sandbox.monitor(&["plugins", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_restart_with_unchanged_plugins_compiles_nothing() {
    let sandbox = Sandbox::new();
    for p in ["derived-metrics", "weighted-phases", "compact-status"] {
        install(p, &sandbox.plugins(), &format!("{p}.wasm"));
    }
    let mut first = sandbox.start(&[]);
    assert_eq!(first.log().matches("cached=false").count(), 3, "{}", first.log());
    // The compile cache is the host's alone as it is made (not only once the
    // next start closes it), under the test's umask (022 where it runs).
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let cache = sandbox.data().join("cache");
    assert_eq!(mode(&cache), 0o700);
    for artifact in std::fs::read_dir(&cache).unwrap() {
        assert_eq!(mode(&artifact.unwrap().path()), 0o600);
    }
    first.signal("TERM");
    first.wait_exit(LIVE);
    // What the cache no longer needs: a compile a killed host left half done,
    // an artifact of another engine (an earlier monitor).
    let artifacts = || std::fs::read_dir(&cache).unwrap().count();
    let gone = i32::MAX; // above any pid_max: never a process
    for (name, text) in [(format!("x.0123-abcd.tmp{gone}"), "half"), ("x.0123-0000000000000000.cwasm".into(), "old")] {
        std::fs::write(cache.join(&name), text).unwrap();
        std::fs::set_permissions(cache.join(&name), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let second = sandbox.start(&[]);
    let log = second.log();
    assert_eq!(log.matches("cached=true").count(), 3, "{log}");
    assert!(!log.contains("cached=false"), "{log}");
    assert!(
        !log.contains("did not stop cleanly") && !log.contains("repair"),
        "a clean stop is not taken for a crash: {log}"
    );
    assert!(!log.contains("open to others"), "nothing for the next start to close: {log}");
    assert!(log.contains("removed 2 compiled plugin file(s) the cache no longer needs"), "{log}");
    assert_eq!(artifacts(), 3);

    // A new build of a plugin, reloaded: its artifact replaces the earlier one.
    let file = sandbox.plugins().join("derived-metrics.wasm");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(&[0, 6, 5, b'b', b'u', b'i', b'l', b'd']); // a custom section
    std::fs::write(&file, bytes).unwrap();
    wait_for("the new build loaded", LIVE, || second.log().contains("cached=false").then_some(()));
    assert_eq!(artifacts(), 3, "one artifact per plugin file");
    // A plugin file removed takes its artifact with it.
    std::fs::remove_file(sandbox.plugins().join("compact-status.wasm")).unwrap();
    let removed = "plugin removed plugin=compact-status";
    wait_for("the plugin removed", LIVE, || second.log().contains(removed).then_some(()));
    assert_eq!(artifacts(), 2);
}

#[test]
fn plugin_output_goes_to_the_host_log_tagged_with_its_name() {
    let sandbox = Sandbox::new();
    install("fx-stdout", &sandbox.plugins(), "fx-stdout.wasm");
    let mut host = sandbox.start(&[]);
    host.wait_log("stdout in the log", "hello from stdout");
    host.wait_log("stderr in the log", "hello from stderr");
    host.wait_log("the log call in the log", "hello from log");
    let log = host.log();
    let line = log.lines().find(|l| l.contains("hello from stdout")).unwrap();
    assert!(line.contains("plugin=\"fx-stdout\"") || line.contains("plugin=fx-stdout"), "{line}");
    assert!(line.contains("stream=\"stdout\"") || line.contains("stream=stdout"), "{line}");
    let line = log.lines().find(|l| l.contains("hello from log")).unwrap();
    assert!(line.contains("WARN"), "the plugin's log level is kept: {line}");
}

#[test]
fn a_faulting_plugin_is_quarantined_and_enabling_it_runs_it_again() {
    let sandbox = Sandbox::new();
    install("fx-loop", &sandbox.plugins(), "fx-loop.wasm");
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    let mut host = sandbox.start(&[]);
    wait_state(&sandbox, "fx-loop", "quarantined");
    host.wait_log("the quarantine warning", "plugin quarantined: 3 faults in a row");
    let out = sandbox.monitor(&["plugins", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("fx-loop: quarantined: 3 faults in a row; last: collect ran past its deadline of 100 ms"),
        "{table}"
    );
    assert_eq!(sandbox.state("derived-metrics").as_deref(), Some("running"));
    let out = sandbox.monitor(&["plugins", "enable", "fx-loop"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fx-loop: running\n");
}

#[test]
fn the_api_needs_the_token_except_for_health() {
    let sandbox = Sandbox::new();
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    let _host = sandbox.start(&[]);
    let token = sandbox.token();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sandbox.data().join("api-token")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token is readable by its owner only");

    let get = |path: &str, token: Option<&str>| {
        let (status, body) = sandbox.api_get(path, token);
        format!("{status}\n{body}")
    };
    assert!(get("/v1/health", None).starts_with("HTTP/1.1 200"));
    let refused = get("/v1/plugins", None);
    assert!(refused.starts_with("HTTP/1.1 401") && refused.contains("missing token;"), "{refused}");
    let wrong = get("/v1/plugins", Some("wrong"));
    assert!(wrong.starts_with("HTTP/1.1 401") && wrong.contains("wrong token (not api-token's"), "{wrong}");
    let malformed = ureq::get(format!("http://{}/v1/plugins", sandbox.addr()))
        .header("Authorization", format!("Basic {token}"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(malformed.status(), 401);
    let said = malformed.into_body().read_to_string().unwrap();
    assert!(said.contains("malformed Authorization header (scheme 'Basic', not 'Bearer'); send"), "{said}");
    // The token alone, without its scheme: refused without a word of it.
    let bare = ureq::get(format!("http://{}/v1/plugins", sandbox.addr()))
        .header("Authorization", &token)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    let said = bare.into_body().read_to_string().unwrap();
    assert!(said.contains("malformed Authorization header (not 'Bearer TOKEN')"), "{said}");
    assert!(!said.contains(&token[..8]), "a refusal never repeats what was sent: {said}");
    assert!(get("/v1/plugins", Some(&token)).starts_with("HTTP/1.1 200"));
    let missing = get("/v1/plugins/nope", Some(&token));
    assert!(missing.starts_with("HTTP/1.1 404") && missing.contains("no plugin named 'nope'"), "{missing}");

    // Plugin metrics carry the plugin's name; plugin self-metrics are kept as metrics.
    let samples: Vec<serde_json::Value> = wait_for("metrics from a tick", LIVE, || {
        let (_, body) = sandbox.api_get("/v1/metrics", Some(&token));
        let samples: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
        let called =
            samples.iter().any(|s| s["name"] == "monitor_plugin_calls_total" && s["value"].as_f64() >= Some(1.0));
        called.then_some(samples)
    });
    let ratio = samples.iter().find(|s| s["name"] == "memory_used_ratio").expect("a derived metric");
    assert_eq!(ratio["labels"]["plugin"], "derived-metrics");
    for name in
        ["monitor_plugin_faults_total", "monitor_plugin_call_latency_p99_seconds", "monitor_plugin_memory_peak_bytes"]
    {
        assert!(samples.iter().any(|s| s["name"] == name && s["labels"]["plugin"] == "derived-metrics"), "{name}");
    }
}

#[test]
fn status_renders_through_a_display_formatter() {
    let sandbox = Sandbox::new();
    install("compact-status", &sandbox.plugins(), "compact-status.wasm");
    let _host = sandbox.start(&[]);
    wait_state(&sandbox, "compact-status", "running");
    let out = sandbox.monitor(&["status", "--format", "compact-status"]);
    assert!(out.status.success(), "{}", text(&out));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.starts_with("cpu ") && line.lines().count() == 1 && line.ends_with('\n'), "one line: {line:?}");
    let out = sandbox.monitor(&["status", "--format", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no plugin named 'nope'"), "{}", text(&out));
}

#[test]
fn after_kill_9_the_database_opens_and_nothing_acknowledged_is_lost() {
    let sandbox = Sandbox::new();
    install("fx-kv-counter", &sandbox.plugins(), "fx-kv-counter.wasm");
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    let mut host = sandbox.start(&[]);
    let out = sandbox.monitor(&["plugins", "enable", "fx-kv-counter", "--grant", "kv"]);
    assert!(out.status.success(), "{}", text(&out));
    sandbox.monitor(&["plugins", "disable", "derived-metrics"]);
    let counted = wait_for("the counter to count", LIVE, || {
        sandbox.metric("fx-kv-counter", "kv_counter_calls").filter(|&n| n >= 2.0)
    });
    host.signal("KILL");
    host.wait_exit(LIVE);
    assert!(sandbox.data().join("daemon.json").exists(), "a killed host leaves its daemon.json behind");

    // The CLI is not fooled by the stale daemon.json and the database opens cleanly.
    let listing = sandbox.listing();
    let state = |name: &str| listing["plugins"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
    assert_eq!(state("fx-kv-counter")["grants"][0], "kv");
    assert_eq!(state("derived-metrics")["enabled"], false);

    // A new host takes over, saying what happened; the grant, the disable and the plugin's stored count survive.
    let host = sandbox.start(&[]);
    assert!(host.log().contains("did not stop cleanly"), "{}", host.log());
    wait_state(&sandbox, "fx-kv-counter", "running");
    assert_eq!(sandbox.state("derived-metrics").as_deref(), Some("disabled"));
    let resumed =
        wait_for("the counter after the restart", LIVE, || sandbox.metric("fx-kv-counter", "kv_counter_calls"));
    assert!(resumed > counted, "the count goes on from what was stored ({counted} then {resumed})");
}

/// Metric samples are gathered for `metrics.commit_every` before they are
/// committed: a crash loses those gathered since the last commit (here, with a
/// window of five minutes, all of them), never a progress update; a stop loses none.
#[test]
fn a_crash_loses_the_samples_gathered_since_the_last_history_commit_and_a_stop_none() {
    let sandbox = Sandbox::new();
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "sample_interval_ms = 200\n[metrics]\ncommit_every = \"5m\"\n").unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let ticks = |sandbox: &Sandbox| sandbox.metric_host("monitor_ticks_total");
    let stored = |sandbox: &Sandbox| {
        let out = sandbox.monitor(&["metrics", "query", "monitor_ticks_total", "--json"]);
        let text = text(&out);
        if !out.status.success() {
            assert!(text.contains("no series named 'monitor_ticks_total'"), "{text}");
            return 0;
        }
        let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        found[0]["points"].as_array().map_or(0, Vec::len)
    };

    let mut host = sandbox.start(&args);
    assert!(sandbox.monitor(&["progress", "start", "crash/step", "--total", "4"]).status.success());
    wait_for("five ticks", LIVE, || ticks(&sandbox).filter(|&n| n >= 5.0));
    host.signal("KILL");
    host.wait_exit(LIVE);
    assert_eq!(stored(&sandbox), 0, "the samples of the open window are lost to the crash");
    let tree = sandbox.monitor(&["status", "crash", "--json"]);
    assert!(text(&tree).contains("crash/step"), "an acknowledged update is not: {}", text(&tree));

    let mut host = sandbox.start(&args);
    let seen = wait_for("five more ticks", LIVE, || ticks(&sandbox).filter(|&n| n >= 5.0));
    host.signal("TERM");
    host.wait_exit(LIVE);
    assert!(stored(&sandbox) as f64 >= seen, "a stop commits every tick it sampled");
}

#[test]
fn read_commands_reach_a_host_elsewhere_by_url_and_token() {
    let host = Sandbox::new();
    let _daemon = host.start(&[]);
    let started = host.monitor(&["progress", "start", "far-run/step", "--total", "4"]);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(host.data().join("daemon.json")).unwrap()).unwrap();
    let url = format!("http://{}", info["addr"].as_str().unwrap());
    let token = host.token();

    // Another data directory with no host of its own.
    let here = Sandbox::new();
    let list = here.monitor(&["list", "--url", &url, "--token", &token]);
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    assert!(String::from_utf8_lossy(&list.stdout).contains("far-run"));
    let tree = here.monitor(&["status", "far-run", "--json", "--url", &url, "--token", &token]);
    let nodes: serde_json::Value = serde_json::from_slice(&tree.stdout).unwrap();
    assert_eq!(nodes[1]["path"], "far-run/step");
    let resources = here.monitor(&["resources", "--json", "--processes", "--url", &url, "--token", &token]);
    let report: serde_json::Value = serde_json::from_slice(&resources.stdout).unwrap();
    assert!(report["processes"].as_array().is_some_and(|p| !p.is_empty()), "{report}");

    let no_token = here.monitor(&["list", "--url", &url]);
    assert_eq!(no_token.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("needs the host's API token"));
    let wrong = here.monitor(&["list", "--url", &url, "--token", "nope"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong token"));
    let run = here.monitor(&["run", "--url", &url, "--token", &token]);
    assert_eq!(run.status.code(), Some(2));
}

#[test]
fn failed_authentications_are_answered_429_after_ten_and_the_right_token_still_passes() {
    let sandbox = Sandbox::new();
    let mut daemon = sandbox.start(&[]);
    let statuses: Vec<String> = (0..12).map(|_| sandbox.api_get("/v1/plugins", Some("wrong")).0).collect();
    assert!(statuses[..10].iter().all(|s| s.contains("401")), "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| s.contains("429")), "{statuses:?}");
    let (status, body) = sandbox.api_get("/v1/plugins", Some("wrong"));
    assert!(status.contains("429") && body.contains("too many failed authentications from 127.0.0.1"), "{body}");
    assert!(sandbox.api_get("/v1/plugins", Some(&sandbox.token())).0.contains("200"));
    daemon.wait_log("the limit in the log", "further ones are answered 429 and not logged");
    let refusals = daemon.log().matches("API request refused").count();
    assert_eq!(refusals, 10, "the log holds the first ten only");
}

#[test]
fn every_route_but_health_refuses_a_request_without_the_right_token() {
    let sandbox = Sandbox::new();
    let _host = sandbox.start(&[]);
    let routes = [
        ("GET", "/v1/plugins"),
        ("GET", "/v1/plugins/p"),
        ("GET", "/v1/plugins/p/kv"),
        ("POST", "/v1/plugins/p/enable"),
        ("POST", "/v1/plugins/p/disable"),
        ("POST", "/v1/plugins/p/revoke"),
        ("GET", "/v1/metrics"),
        ("GET", "/v1/metrics/series"),
        ("GET", "/v1/metrics/history?name=m"),
        ("GET", "/metrics"),
        ("GET", "/v1/status"),
        ("GET", "/v1/resources"),
        ("GET", "/v1/processes"),
        ("POST", "/v1/progress"),
        ("POST", "/v1/progress/r/a"),
        ("GET", "/v1/runs"),
        ("GET", "/v1/runs/r"),
        ("GET", "/v1/runs/r/events"),
        ("GET", "/v1/db/space"),
        ("POST", "/v1/db/compact"),
        ("GET", "/v1/dashboard/layouts"),
        ("PUT", "/v1/dashboard/layouts/x"),
        ("DELETE", "/v1/dashboard/layouts/x"),
        ("GET", "/v1/alerts"),
        ("GET", "/v1/alerts/history"),
        ("POST", "/v1/alerts/ack"),
        ("POST", "/v1/alerts/resolve"),
        ("GET", "/v1/alerts/silences"),
        ("POST", "/v1/alerts/silences"),
        ("DELETE", "/v1/alerts/silences/1"),
        ("POST", "/v1/alerts/test"),
        ("GET", "/v1/alerts/handlers"),
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/j"),
        ("POST", "/v1/jobs/j/pause"),
        ("POST", "/v1/jobs/j/resume"),
        ("POST", "/v1/jobs/j/run"),
        ("GET", "/v1/stream"),
    ];
    for (i, (method, path)) in routes.into_iter().enumerate() {
        let token = if i % 2 == 0 { None } else { Some("wrong") };
        let (line, body) = sandbox.api(method, path, token, "{}");
        // After ten failures within a minute the answer is 429: refused all the same.
        assert!(line.contains(" 401 ") || line.contains(" 429 "), "{method} {path}: {line} {body}");
        assert!(body.contains("token"), "{method} {path}: {body}");
    }
    let (line, _) = sandbox.api("GET", "/v1/health", None, "");
    assert!(line.contains(" 200 "), "{line}");
}

#[test]
fn listening_beyond_loopback_in_clear_needs_saying_so_and_is_said_in_the_log() {
    let sandbox = Sandbox::new();
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "[api]\nlisten = \"0.0.0.0:0\"\n").unwrap();
    let out = sandbox.monitor(&["run", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("set tls = true") && stderr.contains("plain_http_beyond_loopback = true"), "{stderr}");
    std::fs::write(&config, "[api]\nlisten = \"0.0.0.0:0\"\nplain_http_beyond_loopback = true\n").unwrap();
    let mut host = sandbox.start(&["--config", config.to_str().unwrap()]);
    host.wait_log("the plain-HTTP warning", "beyond this machine, over plain HTTP");
    let (line, _) = sandbox.api("GET", "/v1/plugins", None, "");
    assert!(line.contains(" 401 "), "the token is needed there too: {line}");
}

/// The API's threads are batch work at nice 10, so serving clients never
/// preempts the tick, and so is the history's writer, at nice 0; the tick's
/// thread and the plugins' keep the normal policy and ask for a short slice,
/// so that on waking they preempt the API.
#[cfg(target_os = "linux")]
#[test]
fn the_api_threads_run_as_batch_work_below_the_tick() {
    let sandbox = Sandbox::new();
    sandbox.install_examples();
    let host = sandbox.start(&[]);
    let pid = host.child.id();
    struct Thread {
        comm: String,
        policy: u32,
        nice: i32,
        main: bool,
        /// `se.slice` in nanoseconds, where the kernel shows it.
        slice: Option<u64>,
    }
    let threads = || -> Vec<Thread> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|task| {
                let task = task.ok()?;
                // Fields 2, 41 and 19 of stat: comm, policy, nice.
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                let (head, rest) = stat.rsplit_once(')')?;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let sched = std::fs::read_to_string(task.path().join("sched")).unwrap_or_default();
                let slice = sched
                    .lines()
                    .find(|l| l.starts_with("se.slice"))
                    .and_then(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok().map(|v| v as u64));
                Some(Thread {
                    comm: head.split_once('(')?.1.to_string(),
                    policy: fields[38].parse().ok()?,
                    nice: fields[16].parse().ok()?,
                    main: task.file_name().to_str() == Some(&pid.to_string()),
                    slice,
                })
            })
            .collect()
    };
    let seen = wait_for("the plugins' threads", Duration::from_secs(30), || {
        let seen = threads();
        seen.iter().any(|t| t.comm.starts_with("plugin:")).then_some(seen)
    });
    let show = |ts: &[&Thread]| -> Vec<String> {
        ts.iter().map(|t| format!("{} policy {} nice {} slice {:?}", t.comm, t.policy, t.nice, t.slice)).collect()
    };
    let all: Vec<&Thread> = seen.iter().collect();
    let api: Vec<&Thread> = seen.iter().filter(|t| t.comm == "monitor-api").collect();
    assert!(!api.is_empty(), "{:?}", show(&all));
    assert!(api.iter().all(|t| (t.policy, t.nice) == (3, 10)), "SCHED_BATCH (3), nice 10: {:?}", show(&api));
    let history: Vec<&Thread> = seen.iter().filter(|t| t.comm == "metric-history").collect();
    assert!(
        history.len() == 1 && (history[0].policy, history[0].nice) == (3, 0),
        "the history's writer: SCHED_BATCH, nice 0: {:?}",
        show(&history)
    );
    let prompt: Vec<&Thread> = seen.iter().filter(|t| t.main || t.comm.starts_with("plugin:")).collect();
    assert!(prompt.iter().all(|t| (t.policy, t.nice) == (0, 0)), "SCHED_OTHER, nice 0: {:?}", show(&prompt));
    // Kernels since 6.12 take a fair thread's slice from sched_setattr.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut version = release.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u32>().ok());
    if (version.next().unwrap(), version.next().unwrap()) >= (6, 12) {
        assert!(prompt.iter().all(|t| t.slice == Some(100_000)), "a 0.1 ms slice: {:?}", show(&prompt));
        assert!(api.iter().all(|t| t.slice > Some(100_000)), "the default slice: {:?}", show(&api));
    }
}

#[test]
fn an_address_the_api_cannot_listen_on_is_a_clear_error() {
    let sandbox = Sandbox::new();
    let config = sandbox.root.path().join("host.toml");
    // Not an address of this machine.
    std::fs::write(&config, "[api]\nlisten = \"192.0.2.1:0\"\nplain_http_beyond_loopback = true\n").unwrap();
    std::fs::create_dir_all(sandbox.plugins()).unwrap();
    let plugins = sandbox.plugins();
    let out = sandbox.monitor(&["run", "--config", config.to_str().unwrap(), "--plugins", plugins.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cannot listen on 192.0.2.1:0 (api.listen)"), "{}", text(&out));
}

/// The data directory holds the token and plugins' data: a host that finds it (or a
/// file in it) open to others makes it private again before it serves anything, and says so.
#[test]
fn the_data_directory_is_made_private_again_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    drop(sandbox.start(&[]));
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let set = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let (data, database, token) =
        (sandbox.data(), sandbox.data().join("monitor.redb"), sandbox.data().join("api-token"));
    set(&data, 0o755);
    set(&database, 0o644);
    set(&token, 0o644);
    let host = sandbox.start(&[]);
    assert_eq!((mode(&data), mode(&database), mode(&token)), (0o700, 0o600, 0o600));
    let log = host.log();
    assert!(log.contains("api-token was open to others (mode 644); made private (600)"), "{log}");
    assert_eq!(log.matches("open to others").count(), 3, "one line per path: {log}");
}
