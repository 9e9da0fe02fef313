//! Alerts: the cost of evaluating 100 and 1,000 rules per tick, and the latency
//! from the sample that crosses a threshold to each handler's call in the real
//! daemon (textfile collector → rule → log, command, webhook and the JSON-lines
//! plugin). Prints a table for BENCHMARKS.md.
//!
//! `cargo bench -p monitor-tests --bench alerts`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use monitor_host::alerts::{Engine, Inputs, NodeInput, RuleConfig};
use monitor_host::metrics::Sample;
use monitor_host::progress::{NodePath, Status};
use monitor_host::sampler::{self, Sampler};
use monitor_tests::{Sandbox, Webhook, wait_for};

const METRICS: usize = 50;
const SHARDS: usize = 20;

fn main() {
    println!("| rules | series | nodes | evaluation p50 | p99 | firing |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for rules in [100, 1000] {
        evaluation(rules);
    }
    println!();
    commits();
    println!();
    latency();
}

/// What storing one transition before routing it costs: a durable commit.
fn commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = monitor_host::store::Store::open(&dir.path().join("m.redb")).unwrap();
    let transition = monitor_host::alerts::Transition {
        id: "queue-deep".into(),
        rule: "queue-deep".into(),
        level: monitor_host::alerts::Level::Error,
        labels: BTreeMap::new(),
        from: monitor_host::alerts::AlertState::Inactive,
        to: monitor_host::alerts::AlertState::Firing,
        value: Some(150.0),
        message: "queue ingest holds 150 items".into(),
        at_ms: 0,
        silenced: false,
        ack: None,
    };
    let saved = monitor_host::alerts::Saved::default();
    let mut took: Vec<Duration> = (0..500)
        .map(|_| {
            let started = Instant::now();
            store.alerts_record(std::slice::from_ref(&transition), &saved).unwrap();
            started.elapsed()
        })
        .collect();
    took.sort();
    println!(
        "storing one transition (one durable commit), 500 times: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(took[250]),
        ms(took[495]),
        ms(took[499])
    );
}

/// `rules` rules: nine in ten thresholds on `METRICS × SHARDS` series (one
/// series per rule, about 1% above their threshold), the rest absence, stalled
/// and failed-node rules over a 1,001-node run; plus the machine's own series.
fn evaluation(rules: usize) {
    let mut configs = Vec::new();
    for i in 0..rules {
        let name = format!("r{i}");
        let config = match i % 10 {
            7 => RuleConfig {
                name,
                level: "info".into(),
                kind: "absence".into(),
                after: Some("5m".into()),
                metric: Some(format!("m{}", i % METRICS)),
                ..Default::default()
            },
            8 => RuleConfig {
                name,
                level: "warning".into(),
                kind: "stalled".into(),
                after: Some("10m".into()),
                ..Default::default()
            },
            9 => RuleConfig { name, level: "error".into(), kind: "progress_failed".into(), ..Default::default() },
            _ => RuleConfig {
                name,
                level: "warning".into(),
                kind: "threshold".into(),
                metric: Some(format!("m{}", i % METRICS)),
                matchers: BTreeMap::from([("shard".to_string(), (i / METRICS % SHARDS).to_string())]),
                op: Some(">".into()),
                value: Some(if i % 100 == 0 { 10.0 } else { 1_000.0 }),
                clear: Some(5.0),
                for_: Some("1m".into()),
                ..Default::default()
            },
        };
        configs.push(config);
    }
    let built = configs.iter().enumerate().map(|(i, c)| c.build(i).unwrap()).collect();
    let mut engine = Engine::new(built);

    let mut machine = Sampler::new();
    std::thread::sleep(Duration::from_millis(250));
    let mut samples = sampler::samples(&machine.sample());
    let host_series = samples.len();
    for m in 0..METRICS {
        for shard in 0..SHARDS {
            samples.push(Sample {
                name: format!("m{m}"),
                labels: BTreeMap::from([("shard".to_string(), shard.to_string())]),
                value: 50.0,
                unit: String::new(),
                timestamp_ms: 0,
            });
        }
    }
    let mut nodes = vec![NodeInput { path: NodePath::parse("run").unwrap(), status: Status::Running, updated_ms: 0 }];
    for phase in 0..10 {
        nodes.push(NodeInput {
            path: NodePath::parse(&format!("run/p{phase}")).unwrap(),
            status: Status::Running,
            updated_ms: 0,
        });
        for step in 0..99 {
            let status = if step == 0 { Status::Running } else { Status::Pending };
            let path = NodePath::parse(&format!("run/p{phase}/s{step}")).unwrap();
            nodes.push(NodeInput { path, status, updated_ms: 0 });
        }
    }

    let ticks = 1000;
    let mut took = Vec::with_capacity(ticks);
    let mut firing = 0;
    for tick in 0..ticks as u64 {
        let now = tick * 1000;
        for s in &mut samples {
            s.timestamp_ms = now;
        }
        let started = Instant::now();
        let transitions =
            engine.evaluate(&Inputs { samples: &samples, nodes: &nodes, quarantined: &[], jobs: &[] }, now);
        took.push(started.elapsed());
        firing += transitions.iter().filter(|t| t.to == monitor_host::alerts::AlertState::Firing).count();
    }
    took.sort();
    let series = samples.len();
    println!(
        "| {rules} | {series} ({host_series} of the machine) | {} | {:.3} ms | {:.3} ms | {firing} fired |",
        nodes.len(),
        ms(took[ticks / 2]),
        ms(took[ticks * 99 / 100]),
    );
}

/// Flips the textfile collector's `queue_depth` over and under a threshold and
/// reads each handler's latency from the host: from the start of the tick that
/// sampled the crossing to the start of the handler's call.
fn latency() {
    let sandbox = Sandbox::new();
    sandbox.install_examples();
    let hook = Webhook::start(0);
    let out = sandbox.root.path().join("command.jsonl");
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(
        &config,
        format!(
            r#"
sample_interval_ms = 100

[[alerts.rule]]
name = "queue-deep"
level = "error"
kind = "threshold"
metric = "queue_depth"
op = ">"
value = 100

[[alerts.handler]]
name = "cmd"
kind = "command"
command = ["tee", "-a", "{}"]

[[alerts.handler]]
name = "hook"
kind = "webhook"
url = "{}"
"#,
            out.display(),
            hook.url
        ),
    )
    .unwrap();
    let _daemon = sandbox.start(&["--config", config.to_str().unwrap()]);
    let jsonl = sandbox.root.path().join("alerts/a.jsonl");
    let crossings = 200;
    let mut seen = Vec::with_capacity(crossings);
    for i in 0..crossings {
        let value = if i % 2 == 0 { 150 } else { 10 };
        let written = Instant::now();
        sandbox.queue_depth(value);
        wait_for("the alert line", Duration::from_secs(20), || {
            let lines = std::fs::read_to_string(&jsonl).unwrap_or_default().lines().count();
            (lines == i + 1).then_some(())
        });
        seen.push(written.elapsed());
    }
    let handlers: Vec<serde_json::Value> = wait_for("every delivery", Duration::from_secs(30), || {
        let (_, body) = sandbox.api_get("/v1/alerts/handlers", Some(&sandbox.token()));
        let handlers: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
        handlers.iter().all(|h| h["delivered"].as_u64() == Some(crossings as u64)).then_some(handlers)
    });
    println!("| handler | deliveries | failed | sample → call p50 | p99 |");
    println!("| --- | --- | --- | --- | --- |");
    for h in &handlers {
        println!(
            "| {} | {} | {} | {:.2} ms | {:.2} ms |",
            h["name"].as_str().unwrap(),
            h["delivered"],
            h["failed"],
            h["latency_p50_ms"].as_f64().unwrap(),
            h["latency_p99_ms"].as_f64().unwrap()
        );
    }
    seen.sort();
    println!(
        "\nfile written → plugin's line seen by this process (includes waiting for the next 100 ms tick and 20 ms polling): p50 {:.0} ms, p99 {:.0} ms",
        ms(seen[crossings / 2]),
        ms(seen[crossings * 99 / 100])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
