//! The release `monitor` daemon with the five example plugins, all granted:
//! time to ready with a warm compile cache, idle memory, stop time after
//! SIGTERM, and hot-reload latency; then the tick's own time with those
//! plugins beside one plugin of 10,000 series. Prints tables for BENCHMARKS.md.
//!
//! `cargo bench -p monitor-tests --bench daemon`

use std::time::{Duration, Instant};

use monitor_tests::{Sandbox, install, wait_for};

const STARTS: usize = 10;

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn ready_ms(log: &str) -> f64 {
    let tail = log.split("monitor ready in ").nth(1).expect("ready line");
    tail.split(" ms").next().unwrap().parse().unwrap()
}

fn summary(mut xs: Vec<f64>) -> String {
    xs.sort_by(f64::total_cmp);
    format!("min {:.1} / median {:.1} / max {:.1}", xs[0], xs[xs.len() / 2], xs[xs.len() - 1])
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let sandbox = Sandbox::new();
    let dir = sandbox.plugins();
    sandbox.install_examples();
    // Warm the compile cache.
    let mut host = sandbox.start(&[]);
    host.signal("TERM");
    host.wait_exit(Duration::from_secs(10));

    let mut ready = Vec::new();
    let mut until_api = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..STARTS {
        let started = Instant::now();
        let mut host = sandbox.start(&[]);
        until_api.push(started.elapsed().as_secs_f64() * 1e3);
        let log = host.log();
        assert_eq!(log.matches("cached=true").count(), 5, "{log}");
        assert_eq!(log.matches("plugin running").count(), 5, "all five run: {log}");
        ready.push(ready_ms(&log));
        host.signal("TERM");
        let (_, took) = host.wait_exit(Duration::from_secs(10));
        stops.push(took.as_secs_f64() * 1e3);
    }

    // Idle memory: after a minute of ticks, every plugin called every second.
    let host = sandbox.start(&[]);
    let pid = host.child.id();
    let settle = Instant::now();
    wait_for("a minute of ticks", Duration::from_secs(90), || {
        (settle.elapsed() >= Duration::from_secs(60)).then_some(())
    });
    let listing = sandbox.listing();
    let calls: Vec<u64> =
        listing["plugins"].as_array().unwrap().iter().map(|p| p["stats"]["calls"].as_u64().unwrap()).collect();
    let rss = rss_kib(pid, "VmRSS:");
    let hwm = rss_kib(pid, "VmHWM:");
    let examples_tick = tick_row("the 5 examples", &sandbox, pid);

    // Hot reload: a new plugin dropped in, until the API lists it running.
    let mut reloads = Vec::new();
    for i in 0..5 {
        let name = format!("extra-{i}.wasm");
        let started = Instant::now();
        install("fx-empty", &dir, &name);
        wait_for("the new plugin to run", Duration::from_secs(10), || {
            (sandbox.state("fx-empty").as_deref() == Some("running")).then_some(())
        });
        reloads.push(started.elapsed().as_secs_f64() * 1e3);
        std::fs::remove_file(dir.join(&name)).unwrap();
        wait_for("the plugin to go", Duration::from_secs(10), || {
            (sandbox.state("fx-empty").as_deref() == Some("absent")).then_some(())
        });
    }
    drop(host);

    println!("daemon with the 5 example plugins (release build), {STARTS} starts with a warm compile cache");
    println!("| measure | result |");
    println!("| --- | --- |");
    println!("| host ready (logged by the daemon), ms | {} |", summary(ready));
    println!("| process spawn to ready, ms | {} |", summary(until_api));
    println!("| SIGTERM to exit, ms | {} |", summary(stops));
    println!(
        "| idle RSS after 60 s at 1 s ticks, MiB | {:.1} (peak {:.1}) |",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!("| plugin calls in that minute | {calls:?} |");
    println!("| hot reload (file renamed in → listed running), ms | {} |", summary(reloads));

    let wide = Sandbox::new();
    install("fx-ten", &wide.plugins(), "fx-ten.wasm");
    std::fs::write(wide.plugins().join("fx-ten.toml"), "count = 10000\n").unwrap();
    let config = wide.root.path().join("wide.toml");
    std::fs::write(
        &config,
        "[plugins]\nmax_metrics = 10000\nmax_output_kib = 4096\n[metrics]\nmax_series_per_plugin = 10000\n",
    )
    .unwrap();
    let host = wide.start(&["--config", config.to_str().unwrap()]);
    let settle = Instant::now();
    wait_for("a minute of ticks", Duration::from_secs(90), || {
        (settle.elapsed() >= Duration::from_secs(60)).then_some(())
    });
    let wide_tick = tick_row("one of 10,000 series", &wide, host.child.id());
    println!();
    println!(
        "the tick after 60 s at 1 s ticks, as the host reports it (monitor_tick_duration_*, monitor_history_commit_*)"
    );
    println!("| plugins | series a tick | tick p50 | tick p99 | history commit p50 | commit p99 | RSS |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!("{examples_tick}");
    println!("{wide_tick}");
}

/// A row of the tick table for the host running on `sandbox`.
fn tick_row(plugins: &str, sandbox: &Sandbox, pid: u32) -> String {
    let (_, body) = sandbox.api_get("/v1/metrics", Some(&sandbox.token()));
    let samples: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let ms = |name: &str| sandbox.metric_host(name).unwrap_or(f64::NAN) * 1e3;
    format!(
        "| {plugins} | {} | {:.2} ms | {:.2} ms | {:.1} ms | {:.1} ms | {:.1} MiB |",
        samples.len(),
        ms("monitor_tick_duration_p50_seconds"),
        ms("monitor_tick_duration_p99_seconds"),
        ms("monitor_history_commit_p50_seconds"),
        ms("monitor_history_commit_p99_seconds"),
        rss_kib(pid, "VmRSS:") as f64 / 1024.0
    )
}
