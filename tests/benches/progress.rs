//! Progress storage: durable updates one per commit against many per commit (what
//! group commit will do), and `monitor status` end to end on a 1,000-node tree.
//! Prints a table for BENCHMARKS.md.
//!
//! `cargo bench -p monitor-tests --bench progress`

use std::time::Instant;

use monitor_host::progress::{NodePath, Op, Update};
use monitor_host::store::Store;
use monitor_tests::Sandbox;

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
}
