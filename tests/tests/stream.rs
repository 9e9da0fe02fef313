//! The live stream of a real host, read by real clients over loopback:
//! Server-Sent Events and WebSockets, topics, resume after a reconnect, slow
//! and stalled clients, bad requests, and a hundred clients for a minute.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use monitor_tests::stream::{Message, Sse, Ws, stalled};
use monitor_tests::{Sandbox, wait_for};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

/// A host with the example plugins, sampling every `interval_ms`, and a rule
/// that fires when the textfile queue is deeper than 100.
fn host(interval_ms: u64) -> (Sandbox, monitor_tests::Daemon) {
    let sandbox = Sandbox::new();
    sandbox.install_examples();
    let config = sandbox.root.path().join("host.toml");
    let rules = r#"
[[alerts.rule]]
name = "queue-deep"
level = "warning"
kind = "threshold"
metric = "queue_depth"
op = ">"
value = 100
"#;
    std::fs::write(&config, format!("sample_interval_ms = {interval_ms}\n{rules}")).unwrap();
    let daemon = sandbox.start(&["--config", config.to_str().unwrap()]);
    (sandbox, daemon)
}

/// Reports `op` for each path in one request; the feed ids come back on the stream.
fn report(sandbox: &Sandbox, paths: &[String], op: serde_json::Value) {
    let updates: Vec<_> = paths
        .iter()
        .map(|p| {
            let mut u = op.clone();
            u["path"] = json!(p);
            u
        })
        .collect();
    let (line, body) = sandbox.api_post("/v1/progress", &json!({ "updates": updates }).to_string());
    assert!(line.contains("200"), "{line} {body}");
}

fn advance(sandbox: &Sandbox, paths: &[&str]) {
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    report(sandbox, &paths, json!({"op": "advance", "units": 1}));
}

/// Reads until `want` holds for a message, returning everything read.
fn read_until(
    messages: &mut dyn Iterator<Item = Message>,
    what: &str,
    mut want: impl FnMut(&Message) -> bool,
) -> Vec<Message> {
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let message =
            messages.next().unwrap_or_else(|| panic!("the stream ended while waiting for {what}; read {seen:?}"));
        let done = want(&message);
        seen.push(message);
        if done {
            return seen;
        }
    }
    panic!("no {what} within {LIMIT:?}; read {seen:?}")
}

fn progress_paths(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.topic == "progress")
        .map(|m| m.json["data"]["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sse_clients_resume_after_a_reconnect_without_losing_or_repeating_events() {
    let (sandbox, _daemon) = host(200);
    let (addr, token) = (sandbox.addr(), sandbox.token());
    let mut sse = Sse::connect(&addr, &token, "topics=progress,alerts", None);
    advance(&sandbox, &["etl/extract", "etl/load"]);
    let first = read_until(&mut sse, "the second update", |m| m.json["data"]["path"] == "etl/load");
    assert_eq!(progress_paths(&first), ["etl/extract", "etl/load"]);
    let cursor = first.last().unwrap().cursor.clone().expect("durable events carry the cursor as their id");
    assert!(cursor.starts_with('p') && cursor.contains(".a"), "{cursor}");
    drop(sse);

    // While nobody listens: more progress, and an alert fires.
    advance(&sandbox, &["etl/load", "etl/index"]);
    sandbox.queue_depth(500);
    wait_for("the alert to fire", LIMIT, || {
        let (_, body) = sandbox.api_get("/v1/alerts", Some(&token));
        body.contains("queue-deep").then_some(())
    });
    advance(&sandbox, &["etl/report"]);

    let mut resumed = Sse::connect(&addr, &token, "topics=progress,alerts", Some(&cursor));
    let (mut last_update, mut fired) = (false, false);
    let missed = read_until(&mut resumed, "the last update and the alert", |m| {
        last_update |= m.json["data"]["path"] == "etl/report";
        fired |= m.topic == "alerts" && m.json["data"]["to"] == "firing";
        last_update && fired
    });
    assert_eq!(progress_paths(&missed), ["etl/load", "etl/index", "etl/report"], "each missed event once, in order");
    for alert in missed.iter().filter(|m| m.topic == "alerts") {
        assert_eq!(alert.json["data"]["rule"], "queue-deep", "{alert:?}");
    }

    // The same resume by query, over a WebSocket, then live again.
    let mut ws = Ws::connect(&addr, &token, &format!("topics=progress&after={cursor}"));
    let again = read_until(&mut ws, "the last update", |m| m.json["data"]["path"] == "etl/report");
    assert_eq!(progress_paths(&again), ["etl/load", "etl/index", "etl/report"]);
    advance(&sandbox, &["etl/done"]);
    let live = ws.next().unwrap();
    assert_eq!((live.topic.as_str(), live.json["data"]["path"].as_str()), ("progress", Some("etl/done")));
    assert_eq!(live.id(), again.last().unwrap().id() + 1, "feed ids go on by one");
}

#[test]
fn websocket_clients_get_samples_plugin_state_and_only_their_topics_and_run() {
    let (sandbox, _daemon) = host(200);
    let (addr, token) = (sandbox.addr(), sandbox.token());
    let mut all = Ws::connect(&addr, &token, "");
    let first = all.next().unwrap();
    assert_eq!(first.topic, "plugins", "the plugins' latest state comes first: {first:?}");
    let names: BTreeSet<&str> =
        first.json["data"]["plugins"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains("textfile-collector") && names.contains("compact-status"), "{names:?}");
    let samples = read_until(&mut all, "samples", |m| m.topic == "samples");
    let series = samples.last().unwrap().json["data"]["samples"].as_array().unwrap().clone();
    assert!(series.iter().any(|s| s["name"] == "queue_depth"), "plugin metrics are in the samples");
    assert!(series.iter().any(|s| s["name"] == "monitor_stream_clients"), "and the stream's own");

    let mut few = Ws::connect(&addr, &token, "topics=samples&series=queue_depth,monitor_cpu_core_usage_percent");
    let tick = few.next().unwrap();
    let names: BTreeSet<&str> =
        tick.json["data"]["samples"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["monitor_cpu_core_usage_percent", "queue_depth"].into(), "only the series asked for");
    let cores = |samples: &[serde_json::Value]| samples.iter().filter(|s| s["labels"]["core"].is_string()).count();
    assert_eq!(cores(tick.json["data"]["samples"].as_array().unwrap()), cores(&series), "every core's series");

    let mut one_run = Ws::connect(&addr, &token, "topics=progress&run=wanted");
    advance(&sandbox, &["other/a", "wanted/a", "other/b", "wanted/b"]);
    assert_eq!(one_run.next().unwrap().json["data"]["path"], "wanted/a");
    assert_eq!(one_run.next().unwrap().json["data"]["path"], "wanted/b");
    let read = read_until(&mut all, "wanted/b", |m| m.json["data"]["path"] == "wanted/b");
    assert_eq!(progress_paths(&read), ["other/a", "wanted/a", "other/b", "wanted/b"]);

    // Disabling a plugin changes its state: the listing comes again.
    let (line, _) = sandbox.api_post("/v1/plugins/compact-status/disable", "{}");
    assert!(line.contains("200"), "{line}");
    let changed = read_until(&mut all, "the plugin state change", |m| {
        m.topic == "plugins"
            && m.json["data"]["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "compact-status" && p["enabled"] == false)
    });
    assert!(changed.iter().all(|m| m.topic != "gap"), "{changed:?}");
}

#[test]
fn bad_stream_requests_are_refused_with_a_clear_message() {
    let (sandbox, _daemon) = host(1000);
    let token = sandbox.token();
    let (line, body) = sandbox.api_get("/v1/stream", None);
    assert!(line.contains("401") && body.contains("Bearer"), "{line} {body}");
    for (query, expected) in [
        ("topics=alerts,cpu", "unknown topic 'cpu'; the topics are samples, progress, alerts, plugins, jobs"),
        ("after=x9", "cursor 'x9' is not like 'p12.a3'"),
        ("since=1", "unknown field `since`"),
    ] {
        let (line, body) = sandbox.api_get(&format!("/v1/stream?{query}"), Some(&token));
        assert!(line.contains("400") && body.contains(expected), "{query}: {line} {body}");
    }
}

/// A client that stops reading is dropped: a WebSocket by the host after ten
/// seconds, an SSE response by the kernel after thirty (`TCP_USER_TIMEOUT`).
/// Nobody else waits for them meanwhile.
#[test]
fn stalled_clients_are_dropped_and_slow_nobody() {
    let (sandbox, daemon) = host(1000);
    let (addr, token) = (sandbox.addr(), sandbox.token());
    let stalled_ws = stalled(&addr, &token, "topics=progress", true);
    let stalled_sse = stalled(&addr, &token, "topics=progress", false);
    let mut reader = Sse::connect(&addr, &token, "topics=progress", None);
    wait_for("the clients", LIMIT, || (sandbox.metric_host("monitor_stream_clients")? == 3.0).then_some(()));

    // About 16 MB of events: more than the kernel buffers between host and client.
    let padding = "x".repeat(1000);
    let paths: Vec<String> = (0..1000).map(|i| format!("bulk/step-{i}")).collect();
    for _ in 0..16 {
        report(&sandbox, &paths, json!({"op": "advance", "units": 1, "message": padding}));
    }
    let mut got = 0;
    read_until(&mut reader, "every event", |m| {
        got += 1;
        assert_eq!(m.id(), got, "in order, none lost");
        got == 16_000
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    while sandbox.metric_host("monitor_stream_dropped_total") != Some(2.0) {
        let clients = sandbox.metric_host("monitor_stream_clients");
        let dropped = sandbox.metric_host("monitor_stream_dropped_total");
        assert!(Instant::now() < deadline, "dropped {dropped:?}, clients {clients:?} after 90 s:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for("one client left", LIMIT, || (sandbox.metric_host("monitor_stream_clients")? == 1.0).then_some(()));
    let log = daemon.log();
    assert_eq!(log.matches("stream client dropped: it accepted nothing for 10s").count(), 2, "{log}");
    drop((stalled_ws, stalled_sse));
}

/// What one client of the minute-long run saw.
#[derive(Default)]
struct Seen {
    progress: Vec<u64>,
    samples: Vec<u64>,
    lagged: u64,
}

#[test]
fn a_hundred_clients_for_a_minute_each_get_every_event() {
    let (sandbox, _daemon) = host(250);
    let (addr, token) = (sandbox.addr(), sandbox.token());
    let ready = Arc::new(Barrier::new(101));
    let clients: Vec<_> = (0..100)
        .map(|i| {
            let (addr, token, ready) = (addr.clone(), token.clone(), ready.clone());
            std::thread::spawn(move || {
                let query = "topics=samples,progress";
                let messages: Box<dyn Iterator<Item = Message>> = if i % 2 == 0 {
                    Box::new(Sse::connect(&addr, &token, query, None))
                } else {
                    Box::new(Ws::connect(&addr, &token, query))
                };
                ready.wait();
                let mut seen = Seen::default();
                for m in messages {
                    match m.topic.as_str() {
                        "progress" if m.json["data"]["path"] == "end/marker" => break,
                        "progress" => seen.progress.push(m.id()),
                        "samples" => seen.samples.push(m.json["data"]["at_ms"].as_u64().unwrap()),
                        "lagged" => seen.lagged += m.json["data"]["missed"].as_u64().unwrap(),
                        other => panic!("topic {other} was not asked for"),
                    }
                }
                seen
            })
        })
        .collect();
    ready.wait();

    // A steady load: ten updates every 50 ms (200 a second) for a minute.
    let started = Instant::now();
    let paths: Vec<String> = (0..10).map(|i| format!("minute/step-{i}")).collect();
    let mut reported = 0u64;
    for slot in 1..=1200u32 {
        report(&sandbox, &paths, json!({"op": "advance", "units": 1}));
        reported += 10;
        let due = started + Duration::from_millis(50) * slot;
        while let Some(left) = due.checked_duration_since(Instant::now()) {
            std::thread::park_timeout(left);
        }
    }
    advance(&sandbox, &["end/marker"]);

    let seen: Vec<Seen> = clients.into_iter().map(|c| c.join().expect("a client thread")).collect();
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.progress.len() as u64, reported, "client {i} got every progress event");
        assert!(s.progress.windows(2).all(|w| w[1] == w[0] + 1), "client {i}: in order, none twice");
        assert!(s.samples.len() > 10, "client {i} got samples all along: {}", s.samples.len());
    }
    // Samples may be skipped by a client that fell behind, which is told how
    // many: every tick between its first and last sample is accounted for.
    let ticks: BTreeSet<u64> = seen.iter().flat_map(|s| s.samples.iter().copied()).collect();
    assert!(ticks.len() > 100, "a minute of ticks every 250 ms: {}", ticks.len());
    for (i, s) in seen.iter().enumerate() {
        assert!(s.samples.windows(2).all(|w| w[0] < w[1]), "client {i}: samples in order, none twice");
        let (first, last) = (s.samples[0], *s.samples.last().unwrap());
        let due = ticks.range(first..=last).count() as u64;
        assert!(
            s.samples.len() as u64 + s.lagged >= due,
            "client {i}: {} samples, {} skipped, {due} ticks",
            s.samples.len(),
            s.lagged
        );
    }
}

#[test]
fn streams_end_when_the_host_stops() {
    let (sandbox, mut daemon) = host(1000);
    let (addr, token) = (sandbox.addr(), sandbox.token());
    let mut sse = Sse::connect(&addr, &token, "", None);
    let mut ws = Ws::connect(&addr, &token, "");
    assert_eq!(sse.next().unwrap().topic, "plugins");
    daemon.signal("TERM");
    // Whatever was on its way still arrives; then the host ends each stream.
    sse.by_ref().count();
    ws.by_ref().count();
    assert!(sse.closed_by_host && ws.closed_by_host, "the host closed the streams before going");
    let (status, _) = daemon.wait_exit(LIMIT);
    assert!(status.success(), "{status:?}: {}", daemon.log());
}

/// `monitor stream` follows the host across a restart: what was reported while
/// it was away comes first when it is back, each event once.
#[test]
fn the_stream_command_resumes_across_a_host_restart() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let (sandbox, mut daemon) = host(1000);
    let mut follower = Command::new(monitor_tests::monitor_bin())
        .args(["stream", "--topics", "progress"])
        .env("MONITOR_DATA_DIR", sandbox.data())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let next_line = || lines.recv_timeout(LIMIT).expect("a line from monitor stream");

    wait_for("the follower to connect", LIMIT, || {
        (sandbox.metric_host("monitor_stream_clients")? == 1.0).then_some(())
    });
    advance(&sandbox, &["etl/a"]);
    assert!(next_line().ends_with("progress  etl/a advance units=1"));

    daemon.signal("TERM");
    daemon.wait_exit(LIMIT);
    let config = sandbox.root.path().join("host.toml");
    let _again = sandbox.start(&["--config", config.to_str().unwrap()]);
    advance(&sandbox, &["etl/b", "etl/c"]);
    assert!(next_line().ends_with("etl/b advance units=1"));
    assert!(next_line().ends_with("etl/c advance units=1"));
    advance(&sandbox, &["etl/d"]);
    assert!(next_line().ends_with("etl/d advance units=1"), "then live again, nothing twice");
    let _ = follower.kill();
    let _ = follower.wait();
}
