//! The live stream under load: the release host with the five example plugins,
//! 100 ms ticks and 200 progress updates a second, first with no stream client,
//! then with 100 (50 SSE, 50 WebSocket, all topics), then with the same 100 and
//! 10 more that never read. Each phase runs on a fresh host for longer than the
//! host's tick window (1,024 ticks), so the tick percentiles it reports cover
//! that phase alone. Then the same with the host pinned to one core and the
//! clients and the load to the other, so that what the clients cost the machine
//! and what the stream costs the host are told apart. Last, that pinned setup
//! at the default 1 s tick (a row's percentiles then cover its 110 ticks).
//! Prints tables for BENCHMARKS.md.
//!
//! `cargo bench -p monitor-tests --bench stream` (`-- shared`, `-- pinned` or
//! `-- default` for one part)

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use monitor_tests::stream::{Sse, Ws};
use monitor_tests::{Daemon, Sandbox, monitor_bin, wait_for};

/// Longer than 1,024 ticks of 100 ms.
const PHASE: Duration = Duration::from_secs(110);

fn main() {
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |half: &str| only.is_empty() || only.iter().any(|o| o == half);
    let header = || {
        println!("| stream clients | tick p50 | tick p99 | host CPU | host RSS | messages per reading client |");
        println!("| --- | --- | --- | --- | --- | --- |");
    };
    if wanted("shared") {
        println!("Host and clients sharing both cores:\n");
        header();
        for (reading, stalled) in [(0, 0), (100, 0), (100, 10)] {
            phase(reading, stalled, false, 100);
        }
    }
    if wanted("pinned") {
        println!("\nHost on core 0, clients and load on core 1:\n");
        header();
        pin_here_to_core_1();
        for (reading, stalled) in [(0, 0), (100, 0)] {
            phase(reading, stalled, true, 100);
        }
    }
    if wanted("default") {
        println!("\nHost on core 0, clients and load on core 1, the default 1 s tick:\n");
        header();
        pin_here_to_core_1();
        for reading in [0, 100] {
            phase(reading, 0, true, 1000);
        }
    }
}

/// This thread, and every thread it starts from now on, runs on core 1 only.
fn pin_here_to_core_1() {
    let status = Command::new("taskset").args(["-p", "-c", "1", &std::process::id().to_string()]).output().unwrap();
    assert!(status.status.success(), "taskset: {}", String::from_utf8_lossy(&status.stderr));
}

fn phase(reading: usize, stalled: usize, pinned: bool, tick_ms: u64) {
    let sandbox = Sandbox::new();
    sandbox.install_examples();
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, format!("sample_interval_ms = {tick_ms}\n")).unwrap();
    let daemon = if pinned {
        let mut command = Command::new("taskset");
        command
            .args(["-c", "0"])
            .arg(monitor_bin())
            .args(["run", "--config", config.to_str().unwrap(), "--plugins"])
            .arg(sandbox.plugins())
            .env("MONITOR_DATA_DIR", sandbox.data())
            .env("MONITOR_LOG", "info");
        let mut daemon = Daemon::spawn(command);
        daemon.wait_log("the host to be ready", "monitor ready in");
        daemon
    } else {
        sandbox.start(&["--config", config.to_str().unwrap()])
    };
    let (addr, token) = (sandbox.addr(), sandbox.token());

    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for i in 0..reading {
        let (addr, token, stop, delivered) = (addr.clone(), token.clone(), stop.clone(), delivered.clone());
        threads.push(std::thread::spawn(move || {
            // Counted, not parsed: the clients share the host's two cores.
            let mut next: Box<dyn FnMut() -> bool> = if i % 2 == 0 {
                let mut c = Sse::connect(&addr, &token, "", None);
                Box::new(move || c.next_raw().is_some())
            } else {
                let mut c = Ws::connect(&addr, &token, "");
                Box::new(move || c.next_raw().is_some())
            };
            while !stop.load(Ordering::Relaxed) && next() {
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let idle: Vec<Ws> = (0..stalled).map(|_| Ws::connect(&addr, &token, "")).collect();
    wait_for("the clients", Duration::from_secs(30), || {
        let clients = sandbox.metric_host("monitor_stream_clients")? as usize;
        (clients == reading + stalled).then_some(())
    });

    let pid = daemon.child.id();
    let cpu_before = cpu_ticks(pid);
    let started = Instant::now();
    let paths: Vec<String> = (0..20).map(|i| format!("load/step-{i}")).collect();
    let body = serde_json::json!({
        "updates": paths.iter().map(|p| serde_json::json!({"path": p, "op": "advance", "units": 1})).collect::<Vec<_>>()
    })
    .to_string();
    let mut slot = 0u32;
    while started.elapsed() < PHASE {
        let (line, answer) = sandbox.api_post("/v1/progress", &body);
        assert!(line.contains("200"), "{line} {answer}");
        slot += 1;
        let due = started + Duration::from_millis(100) * slot;
        while let Some(left) = due.checked_duration_since(Instant::now()) {
            std::thread::park_timeout(left);
        }
    }
    let cpu = (cpu_ticks(pid) - cpu_before) as f64 / 100.0 / started.elapsed().as_secs_f64() * 100.0;
    let p50 = sandbox.metric_host("monitor_tick_duration_p50_seconds").unwrap() * 1e3;
    let p99 = sandbox.metric_host("monitor_tick_duration_p99_seconds").unwrap() * 1e3;
    let rss = status_kib(pid, "VmRSS:") as f64 / 1024.0;
    stop.store(true, Ordering::Relaxed);
    drop(idle);
    drop(daemon);
    for t in threads {
        let _ = t.join();
    }
    let per_client = if reading == 0 {
        "—".to_string()
    } else {
        format!("{}", delivered.load(Ordering::Relaxed) / reading as u64)
    };
    let clients = match stalled {
        0 => format!("{reading}"),
        n => format!("{reading} + {n} that never read"),
    };
    println!("| {clients} | {p50:.2} ms | {p99:.2} ms | {cpu:.1} % | {rss:.1} MiB | {per_client} |");
}

/// User plus system time of `pid`, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
