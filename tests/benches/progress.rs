//! Progress storage: durable updates one per commit against many per commit, the
//! same through the running host's API (group commit), and `monitor status` end
//! to end on a 1,000-node tree.
//! Prints a table for BENCHMARKS.md.
//!
//! `cargo bench -p monitor-tests --bench progress`

use std::time::{Duration, Instant};

use monitor_host::api::{BatchItem, BatchResult};
use monitor_host::client::{Client, Remote};
use monitor_host::paths::DataDir;
use monitor_host::progress::{NodePath, Op, Update};
use monitor_host::store::Store;
use monitor_tests::{Sandbox, median};

fn advance() -> Update {
    Update::new(Op::Advance { units: 1.0 })
}

fn main() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.data()).unwrap();
    let store = Store::open(&sandbox.data().join("monitor.redb")).unwrap();
    let step = NodePath::parse("bench/phase/step").unwrap();
    store.progress_apply(&[(step.clone(), Update::new(Op::Start { total: None, weight: None }))], 0).unwrap();

    let singles = 500;
    let started = Instant::now();
    for i in 0..singles {
        store.progress_apply(&[(step.clone(), advance())], i).unwrap();
    }
    let single_rate = singles as f64 / started.elapsed().as_secs_f64();

    let (batches, per_batch) = (50, 1000);
    let batch: Vec<(NodePath, Update)> = (0..per_batch).map(|_| (step.clone(), advance())).collect();
    let started = Instant::now();
    for i in 0..batches {
        store.progress_apply(&batch, i).unwrap();
    }
    let batch_rate = (batches * per_batch) as f64 / started.elapsed().as_secs_f64();
    let done = store.progress_node(&step).unwrap().unwrap().done;
    assert_eq!(done, (singles + batches * per_batch) as f64, "every update counted");

    // A 1,000-node run: 10 phases of 99 steps each, plus the phases and the root.
    let mut tree = Vec::new();
    for phase in 0..10 {
        for s in 0..99 {
            let path = NodePath::parse(&format!("big/phase-{phase}/step-{s}")).unwrap();
            tree.push((path, Update::new(Op::Start { total: Some(10.0), weight: None })));
        }
    }
    store.progress_apply(&tree, 1).unwrap();
    assert_eq!(store.progress_tree("big").unwrap().len(), 1001);
    drop(store);

    // Build (or find) the binary before timing it.
    monitor_tests::monitor_bin();
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let out = sandbox.monitor(&["status", "big"]);
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1001);
    }
    latencies.sort_by(f64::total_cmp);

    // The large runs go in a database of their own, so the API's rows below
    // measure the same database as before they were added.
    let large = Sandbox::new();
    std::fs::create_dir_all(large.data()).unwrap();
    let siblings = under_many_siblings(&store_at(&large));
    let big_runs = status_of_big_runs(&large);
    let api = through_the_host(&sandbox);

    println!("progress storage (redb file on this machine's disk)");
    println!("| measure | result |");
    println!("| --- | --- |");
    println!("| durable updates, one per commit | {single_rate:.0} updates/s |");
    println!("| durable updates, {per_batch} per commit | {batch_rate:.0} updates/s |");
    println!(
        "| `monitor status` of a 1,001-node run, no host, process start to exit | median {:.1} ms (min {:.1}, max {:.1}) |",
        latencies[latencies.len() / 2],
        latencies[0],
        latencies[latencies.len() - 1]
    );
    for (children, single, batch) in siblings {
        println!(
            "| one durable advance under a parent of {children} children | median {single:.2} ms; 1,000 advances in one batch {batch:.1} ms |"
        );
    }
    for (nodes, ms) in big_runs {
        println!("| `monitor status` of a {nodes}-node run, no host, process start to exit | median {ms:.0} ms |");
    }
    for (what, rate) in api {
        println!("| through the host's API: {what} | {rate:.0} updates/s |");
    }
}

fn store_at(sandbox: &Sandbox) -> Store {
    Store::open(&sandbox.data().join("monitor.redb")).unwrap()
}

/// The cost of one update as its parent's children grow: each commit durable,
/// the parent re-aggregated each time. Returns (children, median ms of a
/// single advance, ms of a batch of 1,000 advances).
fn under_many_siblings(store: &Store) -> Vec<(usize, f64, f64)> {
    let mut out = Vec::new();
    for children in [100, 1_000, 5_000, 20_000] {
        let parent = format!("siblings-{children}/phase");
        let start: Vec<(NodePath, Update)> = (0..children)
            .map(|i| {
                let path = NodePath::parse(&format!("{parent}/step-{i}")).unwrap();
                (path, Update::new(Op::Start { total: Some(1e9), weight: None }))
            })
            .collect();
        store.progress_apply(&start, 1).unwrap();
        let one = NodePath::parse(&format!("{parent}/step-{}", children / 2)).unwrap();
        let singles: Vec<f64> = (0..200)
            .map(|t| {
                let started = Instant::now();
                store.progress_apply(&[(one.clone(), advance())], 2 + t).unwrap();
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let batch: Vec<(NodePath, Update)> = (0..1_000)
            .map(|i| (NodePath::parse(&format!("{parent}/step-{}", i % children)).unwrap(), advance()))
            .collect();
        let started = Instant::now();
        store.progress_apply(&batch, 1_000).unwrap();
        let batch_ms = started.elapsed().as_secs_f64() * 1e3;
        let parent = store.progress_node(&NodePath::parse(&parent).unwrap()).unwrap().unwrap();
        assert!(parent.progress > 0.0, "the parent follows its children");
        out.push((children, median(singles), batch_ms));
    }
    out
}

/// `monitor status` of runs of 20,000 and 100,000 nodes (100 phases of 199
/// and 999 steps), read by the CLI from the database.
fn status_of_big_runs(sandbox: &Sandbox) -> Vec<(usize, f64)> {
    let mut out = Vec::new();
    for (name, steps) in [("run-20k", 199), ("run-100k", 999)] {
        let store = store_at(sandbox);
        for phase in 0..100 {
            let batch: Vec<(NodePath, Update)> = (0..steps)
                .map(|s| {
                    let path = NodePath::parse(&format!("{name}/phase-{phase}/step-{s}")).unwrap();
                    (path, Update::new(Op::Start { total: Some(10.0), weight: None }))
                })
                .collect();
            store.progress_apply(&batch, 1).unwrap();
        }
        drop(store);
        let nodes = 1 + 100 * (steps + 1);
        let latencies: Vec<f64> = (0..5)
            .map(|_| {
                let started = Instant::now();
                let out = sandbox.monitor(&["status", name]);
                let ms = started.elapsed().as_secs_f64() * 1e3;
                assert!(out.status.success());
                assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), nodes);
                ms
            })
            .collect();
        out.push((nodes, median(latencies)));
    }
    out
}

/// Updates/s through the running host's HTTP API, each acknowledged only once
/// committed: one reporter one update at a time, many reporters side by side
/// (group commit shares each commit among them), and batches. Every node's
/// `done` is checked against the acknowledged updates at the end.
fn through_the_host(sandbox: &Sandbox) -> Vec<(String, f64)> {
    let mut host = sandbox.start(&[]);
    let remote = || Remote::find(&DataDir::new(&sandbox.data())).unwrap().expect("the host answers");
    let mut out = Vec::new();
    let mut expected: Vec<(String, u64)> = Vec::new();

    let mut run = |name: &str, reporters: usize, per_request: usize| -> f64 {
        let deadline = Instant::now() + Duration::from_secs(3);
        let started = Instant::now();
        let counts: Vec<u64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..reporters)
                .map(|r| {
                    let client = remote();
                    let path = format!("{name}/r{r}");
                    scope.spawn(move || {
                        let mut acked = 0u64;
                        while Instant::now() < deadline {
                            if per_request == 1 {
                                client.progress(&NodePath::parse(&path).unwrap(), &advance()).unwrap();
                            } else {
                                let batch = (0..per_request)
                                    .map(|_| BatchItem { path: path.clone(), update: advance() })
                                    .collect();
                                let results = client.progress_batch(batch).unwrap();
                                assert!(results.iter().all(|r| matches!(r, BatchResult::Done { .. })));
                            }
                            acked += per_request as u64;
                        }
                        acked
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let rate = counts.iter().sum::<u64>() as f64 / started.elapsed().as_secs_f64();
        for (r, count) in counts.into_iter().enumerate() {
            expected.push((format!("{name}/r{r}"), count));
        }
        rate
    };
    out.push(("1 reporter, 1 update per request".to_string(), run("serial", 1, 1)));
    out.push(("16 reporters, 1 update per request".to_string(), run("concurrent", 16, 1)));
    out.push(("4 reporters, 500 updates per request".to_string(), run("batched", 4, 500)));

    host.signal("TERM");
    host.wait_exit(Duration::from_secs(10));
    let store = Store::open(&sandbox.data().join("monitor.redb")).unwrap();
    for (path, acked) in expected {
        let node = store.progress_node(&NodePath::parse(&path).unwrap()).unwrap().expect("node stored");
        assert_eq!(node.done, acked as f64, "{path}: every acknowledged update counted once");
    }
    out
}
