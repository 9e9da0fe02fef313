//! The promise, one hostile plugin at a time, against the real host: the plugin
//! is stopped and counted (faulted, quarantined or refused, with a reason a
//! person understands), while the host keeps ticking, answers a progress post
//! and stops on SIGTERM.

use std::time::Duration;

use monitor_tests::{Daemon, Sandbox, install, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

/// Installs `crates` (each as `<crate>.wasm`, with `configs` beside them) and
/// starts a host with short plugin deadlines and fast ticks.
fn host(crates: &[&str], configs: &[(&str, &str)], extra: &str) -> (Sandbox, Daemon) {
    let sandbox = Sandbox::new();
    for c in crates {
        install(c, &sandbox.plugins(), &format!("{c}.wasm"));
    }
    for (name, text) in configs {
        std::fs::write(sandbox.plugins().join(format!("{name}.toml")), text).unwrap();
    }
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, format!("sample_interval_ms = 200\n[plugins]\ncall_timeout_ms = 100\n{extra}")).unwrap();
    let daemon = sandbox.start(&["--config", config.to_str().unwrap()]);
    (sandbox, daemon)
}

/// The host is alive: its tick count moves on and a progress post is answered.
fn assert_alive(sandbox: &Sandbox) {
    let ticks = wait_for("the tick count", LIMIT, || sandbox.metric_host("monitor_ticks_total"));
    wait_for("the tick count to move on", LIMIT, || {
        (sandbox.metric_host("monitor_ticks_total")? > ticks).then_some(())
    });
    let (status, body) = sandbox.api_post("/v1/progress/alive/check", r#"{"op":"advance","units":1}"#);
    assert!(status.contains(" 200 "), "a progress post was not answered: {status} {body}");
}

/// SIGTERM stops the host, cleanly.
fn assert_stops(mut daemon: Daemon) {
    daemon.signal("TERM");
    let (status, _) = daemon.wait_exit(LIMIT);
    assert!(status.success(), "{status:?}: {}", daemon.log());
}

fn record(sandbox: &Sandbox, name: &str) -> Value {
    let listing = sandbox.listing();
    listing["plugins"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap_or_else(|| {
        panic!("no plugin {name} in {listing:#}");
    })
}

fn problems(sandbox: &Sandbox) -> Vec<String> {
    let listing = sandbox.listing();
    listing["problems"].as_array().unwrap().iter().map(|p| p["error"].as_str().unwrap().to_string()).collect()
}

fn wait_state(sandbox: &Sandbox, name: &str, state: &str) -> Value {
    wait_for(&format!("{name} to be {state}"), LIMIT, || {
        let r = record(sandbox, name);
        (r["state"]["state"] == state).then_some(r)
    })
}

#[test]
fn a_plugin_sleeping_in_collect_hits_its_deadline_and_is_quarantined() {
    let (sandbox, daemon) = host(&["fx-sleep"], &[], "");
    let r = wait_state(&sandbox, "fx-sleep", "quarantined");
    let reason = r["state"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("3 faults in a row; last: collect ran past its deadline of 100 ms"), "{reason}");
    assert_alive(&sandbox);
    assert_stops(daemon);
}

#[test]
fn a_plugin_sleeping_in_configure_fails_to_start_and_the_host_goes_on() {
    let (sandbox, daemon) = host(&["fx-sleep"], &[("fx-sleep", "at = \"configure\"\n")], "");
    let r = wait_state(&sandbox, "fx-sleep", "failed");
    let error = r["state"]["error"].as_str().unwrap();
    assert!(error.contains("configure ran past its deadline of 100 ms"), "{error}");
    assert_alive(&sandbox);
    assert_stops(daemon);
}

#[test]
fn a_plugin_sleeping_in_describe_does_not_keep_the_host_from_starting() {
    let (sandbox, daemon) = host(&["fx-sleep-describe", "derived-metrics"], &[], "");
    wait_state(&sandbox, "derived-metrics", "running");
    let problems = problems(&sandbox);
    assert!(
        problems.iter().any(|p| p.contains("fx-sleep-describe.wasm: describe ran past its deadline of 100 ms")),
        "{problems:?}"
    );
    assert_alive(&sandbox);
    assert_stops(daemon);
}

#[test]
fn a_plugin_blocked_in_a_host_call_is_given_up_on_and_replaced() {
    let sandbox_dir = tempfile::tempdir().unwrap();
    let fifo = sandbox_dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let config = format!("path = \"{}\"\n", fifo.display());
    let (sandbox, daemon) = host(&["fx-fifo"], &[("fx-fifo", &config)], "");
    let grant = format!("fs-read:{}", sandbox_dir.path().display());
    let out = sandbox.monitor(&["plugins", "enable", "fx-fifo", "--grant", &grant]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Opening a FIFO that nobody writes blocks in the host, where no epoch reaches.
    let r = wait_state(&sandbox, "fx-fifo", "quarantined");
    let reason = r["state"]["reason"].as_str().unwrap();
    assert!(reason.contains("collect was still blocked"), "{reason}");
    assert_alive(&sandbox);
    assert_stops(daemon);
}

#[test]
fn a_failing_calculator_leaves_progress_to_the_default_and_is_not_quarantined() {
    let (sandbox, daemon) = host(&["fx-calc"], &[("fx-calc", "mode = \"fail\"\n")], "");
    wait_state(&sandbox, "fx-calc", "running");
    let (status, body) = sandbox.api_post("/v1/progress/r", r#"{"op":"start","calculator":"fx-calc"}"#);
    assert!(status.contains(" 200 "), "{status} {body}");
    for i in 0..5 {
        let (status, body) = sandbox.api_post(&format!("/v1/progress/r/step-{i}"), r#"{"op":"percent","percent":50}"#);
        assert!(status.contains(" 200 "), "update {i}: {status} {body}");
    }
    let (_, body) = sandbox.api_get("/v1/runs/r", Some(&sandbox.token()));
    let tree: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(tree[0]["progress"], 0.5, "the default aggregation applies: {tree:#}");
    let r = record(&sandbox, "fx-calc");
    assert_eq!(r["state"]["state"], "running");
    assert!(r["stats"]["errors"].as_u64().unwrap() >= 5, "{r:#}");
    assert_eq!(r["stats"]["faults"], 0);
    assert_alive(&sandbox);
    assert_stops(daemon);
}

#[test]
fn a_calculator_writing_its_kv_store_inside_compute_works() {
    let (sandbox, daemon) = host(&["fx-calc-kv"], &[], "");
    let out = sandbox.monitor(&["plugins", "enable", "fx-calc-kv", "--grant", "kv"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_state(&sandbox, "fx-calc-kv", "running");
    let (status, body) = sandbox.api_post("/v1/progress/r", r#"{"op":"start","calculator":"fx-calc-kv"}"#);
    assert!(status.contains(" 200 "), "{status} {body}");
    for (i, percent) in [20, 60].iter().enumerate() {
        let body = format!(r#"{{"op":"percent","percent":{percent}}}"#);
        let (status, body) = sandbox.api_post(&format!("/v1/progress/r/s{i}"), &body);
        assert!(status.contains(" 200 "), "{status} {body}");
    }
    let r = record(&sandbox, "fx-calc-kv");
    assert!(r["stats"]["calls"].as_u64().unwrap() >= 2, "{r:#}");
    assert_eq!((r["stats"]["faults"].as_u64(), r["stats"]["errors"].as_u64()), (Some(0), Some(0)), "{r:#}");
    assert_alive(&sandbox);
    assert_stops(daemon);
}

#[test]
fn a_sleeping_calculator_cannot_hold_progress_updates() {
    let (sandbox, daemon) = host(&["fx-calc"], &[("fx-calc", "mode = \"sleep\"\n")], "");
    wait_state(&sandbox, "fx-calc", "running");
    let (status, body) = sandbox.api_post("/v1/progress/r", r#"{"op":"start","calculator":"fx-calc"}"#);
    assert!(status.contains(" 200 "), "{status} {body}");
    for i in 0..4 {
        let (status, body) = sandbox.api_post(&format!("/v1/progress/r/s{i}"), r#"{"op":"percent","percent":10}"#);
        assert!(status.contains(" 200 "), "update {i}: {status} {body}");
    }
    let r = wait_state(&sandbox, "fx-calc", "quarantined");
    assert!(r["state"]["reason"].as_str().unwrap().contains("compute ran past its deadline"), "{r:#}");
    assert_alive(&sandbox);
    assert_stops(daemon);
}

#[test]
fn a_sleeping_formatter_and_alert_handler_answer_with_a_fault_in_time() {
    let config = "[[alerts.rule]]\nname = \"never\"\nlevel = \"warning\"\nkind = \"threshold\"\nmetric = \"x\"\nop = \">\"\nvalue = 1\n";
    let (sandbox, daemon) = host(&["fx-format", "fx-alert-sleep"], &[("fx-format", "mode = \"sleep\"\n")], config);
    wait_state(&sandbox, "fx-format", "running");
    let (status, body) = sandbox.api_get("/v1/status?format=fx-format", Some(&sandbox.token()));
    assert!(status.contains(" 502 "), "{status} {body}");
    assert!(body.contains("format ran past its deadline of 100 ms"), "{body}");
    let (status, body) = sandbox.api_post("/v1/alerts/test", r#"{"rule":"never"}"#);
    assert!(status.contains(" 200 "), "{status} {body}");
    assert!(body.contains("handle ran past its deadline of 100 ms"), "{body}");
    assert_alive(&sandbox);
    assert_stops(daemon);
}

#[test]
fn a_formatter_refusing_a_view_is_not_quarantined() {
    let (sandbox, daemon) = host(&["fx-format"], &[], "");
    wait_state(&sandbox, "fx-format", "running");
    for _ in 0..5 {
        let (status, body) = sandbox.api_get("/v1/status?format=fx-format", Some(&sandbox.token()));
        assert!(status.contains(" 502 ") && body.contains("only the resources view is supported"), "{status} {body}");
    }
    let r = record(&sandbox, "fx-format");
    assert_eq!(r["state"]["state"], "running");
    assert_eq!((r["stats"]["errors"].as_u64(), r["stats"]["faults"].as_u64()), (Some(5), Some(0)));
    assert_stops(daemon);
}

#[test]
fn many_memories_together_meet_the_plugin_s_memory_cap() {
    let sandbox_dir = Sandbox::new();
    let wat = std::fs::read_to_string(monitor_tests::workspace().join("tests/fixtures/multi-memory.wat")).unwrap();
    std::fs::write(sandbox_dir.plugins().join("multi.wasm"), wat::parse_str(&wat).unwrap()).unwrap();
    let config = sandbox_dir.root.path().join("host.toml");
    std::fs::write(&config, "[plugins]\nmemory_limit_mib = 64\n").unwrap();
    let daemon = sandbox_dir.start(&["--config", config.to_str().unwrap()]);
    let problems = problems(&sandbox_dir);
    assert!(
        problems.iter().any(|p| p.contains("multi.wasm: instantiate grew memory past the cap of 64 MiB")),
        "{problems:?}"
    );
    assert_alive(&sandbox_dir);
    assert_stops(daemon);
}

#[test]
fn an_oversized_plugin_file_is_refused_unread() {
    let sandbox = Sandbox::new();
    let big = std::fs::File::create(sandbox.plugins().join("big.wasm")).unwrap();
    big.set_len(65 << 20).unwrap();
    let daemon = sandbox.start(&[]);
    let problems = problems(&sandbox);
    assert!(
        problems
            .iter()
            .any(|p| p.ends_with("big.wasm is 65 MiB, larger than plugins.max_file_mib = 64 MiB; it is not read")),
        "{problems:?}"
    );
    assert_alive(&sandbox);
    assert_stops(daemon);
}

/// A component whose one function is so long that compiling it takes seconds.
fn compile_bomb() -> Vec<u8> {
    let mut body = String::new();
    for _ in 0..400_000 {
        body.push_str("local.get 0 i32.const 7 i32.mul i32.const 3 i32.xor local.set 0\n");
    }
    let wat = format!("(component (core module (func (param i32) {body})))");
    wat::parse_str(&wat).unwrap()
}

#[test]
fn a_compile_bomb_is_stopped_while_the_host_ticks_and_stops_on_sigterm() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.plugins().join("bomb.wasm"), compile_bomb()).unwrap();
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "sample_interval_ms = 200\n[plugins]\ncompile_timeout_secs = 1\n").unwrap();
    let daemon = sandbox.start(&["--config", config.to_str().unwrap()]);
    let problems = problems(&sandbox);
    assert!(
        problems.iter().any(|p| p.contains("bomb.wasm") && p.contains("compiling took longer than 1 s")),
        "{problems:?}"
    );
    assert_alive(&sandbox);
    assert_stops(daemon);
}

#[test]
fn sigterm_stops_the_host_while_a_plugin_compiles() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.plugins().join("bomb.wasm"), compile_bomb()).unwrap();
    let mut command = std::process::Command::new(monitor_tests::monitor_bin());
    command.arg("run").arg("--plugins").arg(sandbox.plugins()).env("MONITOR_DATA_DIR", sandbox.data());
    command.env("MONITOR_LOG", "info").env("NO_COLOR", "1");
    let daemon = Daemon::spawn(command);
    wait_for("daemon.json", LIMIT, || sandbox.data().join("daemon.json").exists().then_some(()));
    assert_alive(&sandbox);
    assert_stops(daemon);
}

#[test]
fn a_string_flood_is_bounded_and_escaped_wherever_it_is_shown() {
    let (sandbox, daemon) = host(&["fx-strings", "fx-format"], &[("fx-format", "mode = \"escape\"\n")], "");
    let r = wait_for("fx-strings's error", LIMIT, || {
        let r = record(&sandbox, "fx-strings");
        r["stats"]["last_error"].is_string().then_some(r)
    });
    let error = r["stats"]["last_error"].as_str().unwrap();
    assert!(error.starts_with("collect returned an error: \\u{1b}[2Jboom"), "{}", &error[..80]);
    assert!(error.len() < 1200 && !error.chars().any(char::is_control), "bounded and escaped: {} bytes", error.len());
    assert_eq!(r["summary"], "floods strings \\u{1b}[31mred\\u{1b}[0m");
    // Printed by the CLI: no escape sequence, no carriage return reaches the terminal.
    let list = sandbox.monitor(&["plugins", "list"]);
    let info = sandbox.monitor(&["plugins", "info", "fx-strings"]);
    let status = sandbox.monitor(&["status", "--format", "fx-format"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let rendered = String::from_utf8_lossy(&status.stdout);
    assert!(
        rendered.contains("before\\u{1b}]0;pwned\\u{7}") && rendered.contains("\\u{d}\nline2\\u{9b}31m"),
        "{rendered}"
    );
    for out in [&list, &info, &status] {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains('\u{1b}') && !text.contains('\r') && !text.contains('\u{9b}'), "{text}");
    }
    // In the host's log, the plugin's stdout line is escaped too.
    wait_for("the plugin's stdout in the log", LIMIT, || {
        daemon.log().contains("\\u{1b}]0;title\\u{7}stdout").then_some(())
    });
    assert_alive(&sandbox);
    assert_stops(daemon);
}

#[test]
fn metrics_with_oversized_or_unprintable_names_units_and_labels_are_refused_one_by_one() {
    let (sandbox, daemon) = host(&["fx-strings"], &[("fx-strings", "mode = \"labels\"\n")], "");
    wait_for("the one fine metric", LIMIT, || sandbox.metric("fx-strings", "strings_ok"));
    for refused in ["strings_0", "strings_unit", "strings_label"] {
        assert!(sandbox.metric("fx-strings", refused).is_none(), "{refused} was kept");
    }
    let log = daemon.log();
    assert!(log.contains("label values are at most 1024 printable bytes"), "{log}");
    assert!(log.contains("units are at most 64 printable bytes"), "{log}");
    assert!(log.contains("is not valid ([a-zA-Z_:][a-zA-Z0-9_:]*, at most 200)"), "{log}");
    assert!(log.lines().all(|l| l.len() < 8 << 10), "no log line carries the flood");
    assert_stops(daemon);
}
