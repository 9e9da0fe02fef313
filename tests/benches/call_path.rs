//! What the host's call path adds to an empty plugin call, against the same
//! export called through the generated bindings alone: counted by callgrind,
//! and timed in rounds, so neither drowns in a virtual machine's timing noise.
//! The host's path is the one a plugin's thread takes: deadline, budgets, the
//! ticker's slot and the watchdog's record of the call.
//!
//! Counted (instructions per call = (count at 21000 − count at 1000) / 20000):
//!
//! ```sh
//! cargo bench -p monitor-tests --bench call_path --no-run
//! bench=$(find target/release/deps -name 'call_path-*' -type f -executable)
//! for path in host bindings single; do for n in 1000 21000; do
//!   valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=/dev/null \
//!     $bench $path $n 2>&1 | grep 'Collected'
//! done; done
//! ```
//!
//! Timed: `taskset -c N cargo bench -p monitor-tests --bench call_path --
//! paired [ROUNDS]` times a batch of calls through each of the three paths,
//! ROUNDS times (2000 unless told), taking the six orders of the three in turn.
//! The machine's drift, which moves a whole run by tens of percent, moves a
//! round's batches alike, so the median of the rounds' differences is what the
//! host adds.
//!
//! Run without arguments (as `cargo bench` does) it makes one call through
//! the host's path and one through the bindings' loop.

use std::hint::black_box;
use std::process::exit;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use monitor_host::plugin::bindings::guest;
use monitor_host::plugin::deadline::Busy;
use monitor_host::plugin::instance::Instance;
use monitor_host::plugin::load::load_bytes;
use monitor_host::plugin::sandbox::{Sandbox, SandboxSpec};
use monitor_host::plugin::{Limits, Runtime};
use monitor_host::sampler::{Sampler, SharedSnapshot};
use monitor_tests::median;

/// Calls in one timed batch: long enough that reading the clock is lost in
/// it (about 200 µs), short enough that a round's batches see the same machine.
const BATCH: u32 = 1000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let path = args.first().map_or("both", String::as_str);
    if !["host", "bindings", "single", "both", "paired"].contains(&path) {
        eprintln!("call_path: unknown path '{path}': give host, bindings, single, both or paired");
        exit(2);
    }
    let count = match args.get(1).map(|n| n.parse::<usize>()) {
        None => None,
        Some(Ok(n)) if n >= 10 || path != "paired" && n > 0 => Some(n),
        Some(_) => {
            eprintln!("call_path: '{}' will not do: give a count of calls above 0, or of rounds from 10", args[1]);
            exit(2);
        }
    };

    let runtime = Runtime::new(None).unwrap();
    let snapshot: SharedSnapshot = Arc::new(RwLock::new(Arc::new(Sampler::new().sample())));
    let bytes = std::fs::read(monitor_tests::wasm("fx-empty")).unwrap();
    let loaded = load_bytes(&runtime, &bytes, "fx-empty").unwrap();
    let spec = SandboxSpec { snapshot, ..SandboxSpec::bare("fx-empty") };
    let limits = Limits::default();
    let watched = Busy::watch(limits.call_timeout, Box::new(|_| {}));
    let mut host = Instance::new(&loaded, &spec, limits, Some(watched)).unwrap();
    // The bindings alone: no fresh deadline, budgets or checks per call.
    let mut store = wasmtime::Store::new(&runtime.engine, Sandbox::new(&spec).unwrap());
    store.set_epoch_deadline(u64::MAX / 2);
    let raw = loaded.pre.instantiate(&mut store).unwrap();
    let metrics = guest::metrics::GuestIndices::new(&loaded.pre).unwrap().load(&mut store, &raw).unwrap();

    let calls = count.unwrap_or(1);
    match path {
        "paired" => paired(&mut host, &metrics, &mut store, count.unwrap_or(2000)),
        "host" => (0..calls).for_each(|_| drop(black_box(host.collect().unwrap()))),
        "single" => (0..calls).for_each(|_| drop(black_box(single(&metrics, &mut store)))),
        "bindings" => (0..calls).for_each(|_| drop(black_box(metrics.call_collect(&mut store).unwrap().unwrap()))),
        _ => {
            black_box(host.collect().unwrap());
            black_box(metrics.call_collect(&mut store).unwrap().unwrap());
        }
    }
}

/// Times `rounds` rounds of a batch through each path, each round in the next
/// of the six orders, and prints the medians and the median of the rounds'
/// differences with its 95 % confidence interval (by order statistics, which
/// assume nothing about how the differences are spread).
fn paired(host: &mut Instance, metrics: &guest::metrics::Guest, store: &mut wasmtime::Store<Sandbox>, rounds: usize) {
    const PATHS: [&str; 3] = ["the host's path", "the bindings one call at a time", "the bindings in a loop"];
    let mut time = |path: usize| match path {
        0 => batch(|| drop(black_box(host.collect().unwrap()))),
        1 => batch(|| drop(black_box(single(metrics, store)))),
        _ => batch(|| drop(black_box(metrics.call_collect(&mut *store).unwrap().unwrap()))),
    };
    for round in 0..300 {
        time(round % 3);
    }
    const ORDERS: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    let mut times = [(); 3].map(|()| Vec::with_capacity(rounds));
    for round in 0..rounds {
        for path in ORDERS[round % ORDERS.len()] {
            times[path].push(time(path));
        }
    }
    let medians = times.clone().map(median);
    println!("empty call, medians of {rounds} rounds of {BATCH} calls on each path:");
    for (path, median) in PATHS.iter().zip(medians) {
        println!("  {path}: {median:.1} ns");
    }
    for against in 1..3 {
        let mut differences: Vec<f64> = times[0].iter().zip(&times[against]).map(|(h, b)| h - b).collect();
        differences.sort_by(f64::total_cmp);
        let n = differences.len() as f64;
        let spread = 0.98 * n.sqrt(); // the median's rank, n/2, give or take 1.96 of its standard deviation √n/2
        let high = ((n / 2.0 + spread).ceil() as usize).min(differences.len() - 1);
        let (low, high) = (differences[differences.len() - 1 - high], differences[high]);
        println!(
            "the host adds {:.1} ns to {} (median of the rounds' differences; 95 % confidence {low:.1} to {high:.1} ns)",
            median(differences),
            PATHS[against]
        );
    }
}

/// Nanoseconds per call over one batch.
fn batch(mut call: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..BATCH {
        call();
    }
    start.elapsed().as_nanos() as f64 / f64::from(BATCH)
}

/// One call through the bindings alone, as a caller that is not a loop of
/// calls makes it: the compiler cannot hoist the call's invariant work out of
/// the benchmark's loop.
#[inline(never)]
fn single(
    metrics: &guest::metrics::Guest,
    store: &mut wasmtime::Store<Sandbox>,
) -> Vec<monitor_host::plugin::bindings::types::Metric> {
    metrics.call_collect(store).unwrap().unwrap()
}
