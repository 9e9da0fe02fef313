//! What isolation costs, side by side in one run (release builds):
//!
//! - the host's memory after a first start that compiled the five example
//!   plugins (in child processes) against a start from the compile cache;
//! - how often the epoch ticker wakes in an idle host (1 s ticks);
//! - opening a database of ~100k progress events trusting the file, against
//!   reading and verifying every page first, as the host does.
//!
//! `cargo bench -p monitor-tests --bench isolation`

use std::time::{Duration, Instant};

use monitor_host::progress::{NodePath, Op, Update};
use monitor_host::store::Store;
use monitor_tests::{Daemon, Sandbox, wait_for};

/// A `/proc/PID/status` field (`VmRSS:`, `RssAnon:`), in MiB.
fn mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

fn ready_ms(log: &str) -> f64 {
    let tail = log.split("monitor ready in ").nth(1).expect("ready line");
    tail.split(" ms").next().unwrap().parse().unwrap()
}

/// The epoch ticker's voluntary context switches so far (its wake-ups).
fn ticker_wakeups(pid: u32) -> u64 {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "epoch-ticker" {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap();
            let line = status.lines().find(|l| l.starts_with("voluntary_ctxt_switches:")).unwrap();
            return line.split_whitespace().nth(1).unwrap().parse().unwrap();
        }
    }
    panic!("no epoch-ticker thread in {pid}")
}

/// Starts the host, lets it tick for `settle`, and measures it.
fn measure(sandbox: &Sandbox, settle: Duration) -> (f64, f64, f64, Daemon) {
    let host = sandbox.start(&[]);
    let ready = ready_ms(&host.log());
    let started = Instant::now();
    wait_for("the host to settle", settle * 2, || (started.elapsed() >= settle).then_some(()));
    let pid = host.child.id();
    (ready, mib(pid, "VmRSS:"), mib(pid, "RssAnon:"), host)
}

fn footprint() {
    let settle = Duration::from_secs(10);
    let sandbox = Sandbox::new();
    sandbox.install_examples();
    // Granting them compiled them already (offline): start from an empty cache.
    std::fs::remove_dir_all(sandbox.data().join("cache")).unwrap();
    let (cold_ready, cold_rss, cold_anon, mut host) = measure(&sandbox, settle);
    assert_eq!(host.log().matches("cached=false").count(), 5, "the first start compiles");
    host.signal("TERM");
    host.wait_exit(Duration::from_secs(10));
    let (warm_ready, warm_rss, warm_anon, host) = measure(&sandbox, settle);
    assert_eq!(host.log().matches("cached=true").count(), 5, "the second start loads from the cache");
    let pid = host.child.id();
    let (before, at) = (ticker_wakeups(pid), Instant::now());
    wait_for("30 s of idle ticks", Duration::from_secs(60), || (at.elapsed() >= Duration::from_secs(30)).then_some(()));
    let wakeups = (ticker_wakeups(pid) - before) as f64 / at.elapsed().as_secs_f64();
    drop(host);

    println!("host with the 5 example plugins, 1 s ticks, measured {} s after ready", settle.as_secs());
    println!("| start | ready | RSS | anonymous |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| first start: 5 plugins compiled (in child processes) | {cold_ready:.1} ms | {cold_rss:.1} MiB | {cold_anon:.1} MiB |"
    );
    println!("| from the compile cache | {warm_ready:.1} ms | {warm_rss:.1} MiB | {warm_anon:.1} MiB |");
    println!("epoch ticker wake-ups in an idle host: {wakeups:.2} per second (1 s ticks)");
}

fn database_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.redb");
    {
        let store = Store::open(&path).unwrap();
        let advance = || Update::new(Op::Advance { units: 1.0 }).with_message("x".repeat(200));
        for batch in 0..100 {
            let updates: Vec<_> = (0..1000)
                .map(|i| (NodePath::parse(&format!("run-{}/step-{}", batch % 10, i % 100)).unwrap(), advance()))
                .collect();
            store.progress_apply(&updates, batch).unwrap();
        }
    }
    let size = std::fs::metadata(&path).unwrap().len() as f64 / (1 << 20) as f64;
    let time = |open: &dyn Fn() -> Store| {
        let mut runs: Vec<f64> = (0..5)
            .map(|_| {
                let started = Instant::now();
                drop(open());
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        runs[runs.len() / 2]
    };
    let trusted = time(&|| Store::open(&path).unwrap());
    let checked = time(&|| Store::open_checked(&path).unwrap());
    println!("database of 100,000 progress events ({size:.0} MiB), median of 5 opens (page cache warm)");
    println!("| open | time |");
    println!("| --- | --- |");
    println!("| trusting the file (commands) | {trusted:.1} ms |");
    println!("| verifying every page first (the host) | {checked:.1} ms |");
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    footprint();
    println!();
    database_open();
}
