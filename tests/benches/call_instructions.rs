//! Instructions per empty plugin call, through the host's call path and
//! through the generated bindings alone (in a loop, and one call at a time):
//! counted by callgrind, so the difference does not drown in a virtual
//! machine's timing noise.
//!
//! ```sh
//! cargo bench -p monitor-tests --bench call_instructions --no-run
//! for path in host bindings single; do for n in 1000 21000; do
//!   valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=/dev/null \
//!     target/release/deps/call_instructions-* $path $n 2>&1 | grep 'Collected'
//! done; done   # (count at 21000 − count at 1000) / 20000 = instructions per call
//! ```
//!
//! Run without arguments (as `cargo bench` does) it makes one call through
//! the host's path and one through the bindings' loop.

use std::hint::black_box;
use std::sync::{Arc, RwLock};

use monitor_host::plugin::bindings::guest;
use monitor_host::plugin::instance::Instance;
use monitor_host::plugin::load::load_bytes;
use monitor_host::plugin::sandbox::{Sandbox, SandboxSpec};
use monitor_host::plugin::{Limits, Runtime};
use monitor_host::sampler::{Sampler, SharedSnapshot};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let path = args.first().map_or("both", String::as_str);
    assert!(
        ["host", "bindings", "single", "both"].contains(&path),
        "the path to count: host, bindings, single or both"
    );
    let calls: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1);
    let runtime = Runtime::new(None).unwrap();
    let snapshot: SharedSnapshot = Arc::new(RwLock::new(Arc::new(Sampler::new().sample())));
    let bytes = std::fs::read(monitor_tests::wasm("fx-empty")).unwrap();
    let loaded = load_bytes(&runtime, &bytes, "fx-empty").unwrap();
    let spec = SandboxSpec { snapshot, ..SandboxSpec::bare("fx-empty") };
    if path == "host" || path == "both" {
        let mut instance = Instance::new(&loaded, &spec, Limits::default(), None).unwrap();
        for _ in 0..calls {
            black_box(instance.collect().unwrap());
        }
    }
    if path == "bindings" || path == "single" || path == "both" {
        let mut store = wasmtime::Store::new(&runtime.engine, Sandbox::new(&spec).unwrap());
        store.set_epoch_deadline(u64::MAX / 2);
        let raw = loaded.pre.instantiate(&mut store).unwrap();
        let metrics = guest::metrics::GuestIndices::new(&loaded.pre).unwrap().load(&mut store, &raw).unwrap();
        if path == "single" {
            for _ in 0..calls {
                black_box(single(&metrics, &mut store));
            }
        } else {
            for _ in 0..calls {
                black_box(metrics.call_collect(&mut store).unwrap().unwrap());
            }
        }
    }
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
