//! What a plugin call costs: an empty call, a call returning ten metrics, the
//! same call through the plugin's actor thread, and the derived-metrics plugin
//! against the same code compiled natively, side by side in one run.
//!
//! `cargo bench -p monitor-tests --bench calls`

use std::hint::black_box;
use std::sync::{Arc, Mutex, RwLock};

use criterion::{Criterion, criterion_group, criterion_main};
use monitor_host::plugin::actor::{Actor, Plan};
use monitor_host::plugin::bindings::guest;
use monitor_host::plugin::deadline::Busy;
use monitor_host::plugin::instance::Instance;
use monitor_host::plugin::load::{Loaded, load_bytes};
use monitor_host::plugin::sandbox::{Sandbox, SandboxSpec};
use monitor_host::plugin::stats::{Stats, StatsSnapshot};
use monitor_host::plugin::{Limits, Runtime};
use monitor_host::sampler::{Sampler, SharedSnapshot};

/// The plugin's own source, compiled natively: the same code on both sides.
#[path = "../../plugins/derived-metrics/src/lib.rs"]
#[allow(dead_code)]
mod derived_metrics;

fn setup(runtime: &Runtime, snapshot: &SharedSnapshot, crate_name: &str) -> (Loaded, SandboxSpec) {
    let bytes = std::fs::read(monitor_tests::wasm(crate_name)).unwrap();
    let loaded = load_bytes(runtime, &bytes, crate_name).unwrap();
    let spec = SandboxSpec { snapshot: snapshot.clone(), ..SandboxSpec::bare(crate_name) };
    (loaded, spec)
}

/// An instance as a plugin's thread holds it: its calls timed by the watchdog.
fn instance(runtime: &Runtime, snapshot: &SharedSnapshot, crate_name: &str, config: &str) -> Instance {
    let (loaded, spec) = setup(runtime, snapshot, crate_name);
    let limits = Limits::default();
    let watched = Busy::watch(limits.call_timeout, Box::new(|_| {}));
    let mut instance = Instance::new(&loaded, &spec, limits, Some(watched)).unwrap();
    instance.configure(config).unwrap();
    instance
}

fn calls(c: &mut Criterion) {
    let runtime = Runtime::new(None).unwrap();
    let snapshot: SharedSnapshot = Arc::new(RwLock::new(Arc::new(Sampler::new().sample())));

    let mut group = c.benchmark_group("collect");
    let mut empty = instance(&runtime, &snapshot, "fx-empty", "");
    group.bench_function("empty plugin call", |b| b.iter(|| black_box(empty.collect().unwrap())));
    // The same export called through the generated bindings alone, with no fresh
    // deadline, output budget or caps check per call: what wasmtime itself costs
    // (the `call_path` bench compares the two precisely).
    let (loaded, spec) = setup(&runtime, &snapshot, "fx-empty");
    let mut store = wasmtime::Store::new(&runtime.engine, Sandbox::new(&spec).unwrap());
    store.set_epoch_deadline(u64::MAX / 2);
    let raw = loaded.pre.instantiate(&mut store).unwrap();
    let metrics = guest::metrics::GuestIndices::new(&loaded.pre).unwrap().load(&mut store, &raw).unwrap();
    group.bench_function("empty plugin call, bindings alone", |b| {
        b.iter(|| black_box(metrics.call_collect(&mut store).unwrap()))
    });

    let mut bare = instance(&runtime, &snapshot, "fx-ten", "bare = true");
    group
        .bench_function("plugin returning 10 metrics (name, value)", |b| b.iter(|| black_box(bare.collect().unwrap())));
    let mut ten = instance(&runtime, &snapshot, "fx-ten", "");
    group.bench_function("plugin returning 10 metrics (name, value, unit, label)", |b| {
        b.iter(|| black_box(ten.collect().unwrap()))
    });

    let (loaded, spec) = setup(&runtime, &snapshot, "fx-ten");
    let stats = Arc::new(Mutex::new(Stats::new(&StatsSnapshot::default())));
    let plan = Plan { loaded, spec, limits: Limits::default(), config: Some(String::new()) };
    let actor = Actor::spawn("fx-ten", plan, stats);
    group.bench_function("plugin returning 10 labelled metrics, through its actor", |b| {
        b.iter(|| black_box(actor.run_blocking(|w| w.call(Instance::collect)).unwrap().unwrap()))
    });

    let mut derived = instance(&runtime, &snapshot, "derived-metrics", "");
    group.bench_function("derived-metrics as a plugin", |b| b.iter(|| black_box(derived.collect().unwrap())));
    group.bench_function("derived-metrics as native Rust", |b| {
        b.iter(|| {
            // What the plugin does: read the snapshot (a copy, as the host call makes), derive.
            let s = snapshot.read().unwrap().clone();
            let s = monitor_sdk::SystemSnapshot {
                timestamp_ms: s.timestamp_ms,
                hostname: s.hostname.clone(),
                cpu_percent: s.cpu_percent,
                per_core_percent: s.per_core_percent.clone(),
                memory_total_bytes: s.memory_total_bytes,
                memory_used_bytes: s.memory_used_bytes,
                swap_total_bytes: s.swap_total_bytes,
                swap_used_bytes: s.swap_used_bytes,
                load_one: s.load_one,
                load_five: s.load_five,
                load_fifteen: s.load_fifteen,
                uptime_secs: s.uptime_secs,
                process_count: s.process_count,
            };
            black_box(derived_metrics::derive(&s))
        })
    });
    group.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);
