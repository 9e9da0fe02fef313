//! What following runs costs: attributing resources to 1, 10 and 100 followed
//! process trees of 10 processes each per process sample (the trees' figures
//! worked out, then stored as one batch), `monitor exec -- true` against `true`,
//! and a CPU-bound command wrapped and not. Prints a table for BENCHMARKS.md.
//!
//! `cargo bench -p monitor-tests --bench runs`

use std::process::Command;
use std::time::{Duration, Instant};

use monitor_host::progress::{NodePath, Op, Update};
use monitor_host::sampler::ProcessSample;
use monitor_host::sampler::ProcessSampler;
use monitor_host::sampler::follow::Follow;
use monitor_host::store::Store;
use monitor_tests::{Sandbox, median, monitor_bin};

/// The host's default process interval: the cost per sample is spread over it.
const INTERVAL: Duration = Duration::from_secs(5);

/// The machine's process table with `trees` synthetic trees of 10 processes
/// (a root, three children, six grandchildren), their CPU counters at `tick`.
fn table(machine: &[ProcessSample], trees: u32, tick: u64) -> Vec<ProcessSample> {
    let mut out = machine.to_vec();
    for t in 0..trees {
        let root = 5_000_000 + t * 100;
        for i in 0..10u32 {
            let parent = match i {
                0 => 1,
                1..=3 => root,
                _ => root + 1 + (i - 4) % 3,
            };
            out.push(ProcessSample {
                pid: root + i,
                parent: Some(parent),
                start_time_secs: 1,
                cpu_ms: tick * 50,
                memory_bytes: 10 << 20,
                read_bytes: tick * 4096,
                ..Default::default()
            });
        }
    }
    out
}

fn attribution(machine: &[ProcessSample]) {
    println!("Attributing resources per process sample ({} processes on this machine):", machine.len());
    println!(
        "| followed trees (10 processes each) | working out the figures | storing them (one batch) | share of a core at a {}s interval |",
        INTERVAL.as_secs()
    );
    println!("| --- | --- | --- | --- |");
    for trees in [0u32, 1, 10, 100] {
        let sandbox = Sandbox::new();
        std::fs::create_dir_all(sandbox.data()).unwrap();
        let store = Store::open(&sandbox.data().join("monitor.redb")).unwrap();
        let paths: Vec<NodePath> = (0..trees).map(|t| NodePath::parse(&format!("run-{t}/phase")).unwrap()).collect();
        let mut follows: Vec<Follow> = (0..trees).map(|t| Follow::born(5_000_000 + t * 100, u32::MAX)).collect();
        let starts: Vec<(NodePath, Update)> =
            paths.iter().map(|p| (p.clone(), Update::new(Op::Start { total: None, weight: None }))).collect();
        if !starts.is_empty() {
            store.progress_apply(&starts, 0).unwrap();
        }
        let (mut work, mut storing) = (Vec::new(), Vec::new());
        for tick in 1..=40u64 {
            let processes = table(machine, trees, tick);
            let started = Instant::now();
            let table = monitor_host::sampler::follow::Table::new(&processes);
            let _ = store.progress_followed().unwrap();
            let updates: Vec<(NodePath, Update)> = follows
                .iter_mut()
                .zip(&paths)
                .map(|(follow, path)| {
                    let mut update = Update::new(Op::Resources);
                    update.resources = Some(follow.observe(&table, tick * 5_000));
                    (path.clone(), update)
                })
                .collect();
            work.push(started.elapsed().as_secs_f64());
            let started = Instant::now();
            if !updates.is_empty() {
                store.progress_apply(&updates, tick * 5_000).unwrap();
            }
            storing.push(started.elapsed().as_secs_f64());
        }
        let cpu = follows.first().map_or(0.0, |f| f.resources().cpu_secs);
        assert!(trees == 0 || (cpu - 40.0 * 50.0 * 10.0 / 1000.0).abs() < 1e-9, "every process counted: {cpu}");
        let (work, storing) = (median(work), median(storing));
        let share = (work + storing) / INTERVAL.as_secs_f64() * 100.0;
        println!("| {trees} | {:.0} µs | {:.2} ms | {share:.4} % |", work * 1e6, storing * 1e3);
    }
}

/// Median wall time of `runs` runs of `command` with `args`.
fn timed(runs: usize, data: &std::path::Path, command: &str, args: &[&str]) -> f64 {
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let status = Command::new(command)
            .args(args)
            .env("MONITOR_DATA_DIR", data)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        times.push(started.elapsed().as_secs_f64());
        assert!(status.success());
    }
    median(times)
}

fn exec_overhead() {
    let sandbox = Sandbox::new();
    let bin = monitor_bin().to_str().unwrap().to_string();
    let data = sandbox.data();
    // The first run makes the database: the cold path, once.
    let started = Instant::now();
    let status = Command::new(&bin).args(["exec", "cold/true", "--", "true"]).env("MONITOR_DATA_DIR", &data).status();
    assert!(status.unwrap().success());
    let cold = started.elapsed().as_secs_f64();
    let direct = timed(30, &data, "true", &[]);
    let wrapped = timed(30, &data, &bin, &["exec", "bench/true", "--", "true"]);
    let host = sandbox.start(&[]);
    let wrapped_host = timed(30, &data, &bin, &["exec", "bench/true-host", "--", "true"]);
    drop(host);
    println!();
    println!("`monitor exec -- true` (median of 30):");
    println!("| | wall time | added by exec |");
    println!("| --- | --- | --- |");
    println!("| `true` | {:.2} ms | |", direct * 1e3);
    println!(
        "| `monitor exec RUN -- true`, no host (through the database) | {:.2} ms | {:.2} ms |",
        wrapped * 1e3,
        (wrapped - direct) * 1e3
    );
    println!(
        "| the same, with a host running (through its API) | {:.2} ms | {:.2} ms |",
        wrapped_host * 1e3,
        (wrapped_host - direct) * 1e3
    );
    println!("| the first run, which makes the database | {:.2} ms | |", cold * 1e3);

    // CPU-bound work of a fixed size, about 10 s here: what `monitor exec` itself
    // uses meanwhile (its CPU time, sampling every 5 s), against the command's.
    let work = "n = 0\nfor i in range(100_000_000): n += i";
    let before = children_cpu();
    let started = Instant::now();
    let status = Command::new(&bin)
        .args(["exec", "bench/cpu", "--", "python3", "-c", work])
        .env("MONITOR_DATA_DIR", &data)
        .status()
        .unwrap();
    assert!(status.success());
    let wall = started.elapsed().as_secs_f64();
    let everything = children_cpu() - before;
    let out = Command::new(&bin).args(["status", "bench", "--json"]).env("MONITOR_DATA_DIR", &data).output().unwrap();
    let tree: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let node = tree.as_array().unwrap().iter().find(|n| n["path"] == "bench/cpu").unwrap();
    let command = node["resources"]["cpu_secs"].as_f64().unwrap();
    let own = everything - command;
    println!();
    println!("A CPU-bound command under `monitor exec` (sampling every 5 s):");
    println!("| command's CPU | wall time | `monitor exec`'s own CPU | its share of the command's |");
    println!("| --- | --- | --- | --- |");
    println!("| {command:.2} s | {wall:.2} s | {:.1} ms | {:.3} % |", own * 1e3, own / command * 100.0);
}

/// CPU seconds of the children this process has waited for, and theirs.
fn children_cpu() -> f64 {
    // SAFETY: `usage` is a plain struct the call fills.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// `monitor report` on a run of 1,000 nodes (10 phases of 99 steps) with 10,000 events,
/// read from the database by a new process each time, as a user runs it.
fn report_speed() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.data()).unwrap();
    let store = Store::open(&sandbox.data().join("monitor.redb")).unwrap();
    let mut steps = Vec::new();
    for phase in 0..10 {
        for step in 0..99 {
            steps.push(NodePath::parse(&format!("big/phase-{phase}/step-{step}")).unwrap());
        }
    }
    let starts: Vec<(NodePath, Update)> =
        steps.iter().map(|p| (p.clone(), Update::new(Op::Start { total: Some(10.0), weight: None }))).collect();
    store.progress_apply(&starts, 0).unwrap();
    let mut events = starts.len();
    for round in 1..=10u64 {
        let batch: Vec<(NodePath, Update)> = steps
            .iter()
            .map(|p| {
                let mut update = Update::new(Op::Advance { units: 1.0 });
                let used = monitor_host::progress::Resources { cpu_secs: round as f64, ..Default::default() };
                update.resources = Some(used);
                (p.clone(), update)
            })
            .collect();
        events += batch.len();
        store.progress_apply(&batch, round * 1_000).unwrap();
    }
    assert_eq!(store.progress_tree("big").unwrap().len(), 1001);
    drop(store);
    let data = sandbox.data();
    let bin = monitor_bin().to_str().unwrap().to_string();
    let table = timed(5, &data, &bin, &["report", "big"]);
    let json = timed(5, &data, &bin, &["report", "big", "--json"]);
    println!();
    println!("`monitor report` of a 1,000-node run with {events} events (median of 5, a new process each):");
    println!("| | wall time |");
    println!("| --- | --- |");
    println!("| table | {:.1} ms |", table * 1e3);
    println!("| `--json` | {:.1} ms |", json * 1e3);
}

fn main() {
    let machine = ProcessSampler::new().sample_counters();
    attribution(&machine);
    report_speed();
    exec_overhead();
}
