//! The one-line status of the host, plain or through a display formatter.

use crate::plugin::bindings::types;
use crate::sampler::Snapshot;

/// The view a display formatter renders for `monitor status`.
pub fn view(snapshot: &Snapshot) -> types::View {
    types::View::Status(types::StatusView {
        system: types::SystemSnapshot::from(snapshot),
        runs: Vec::new(),
        firing: Vec::new(),
    })
}

/// The built-in rendering when no formatter is asked for.
pub fn plain(s: &Snapshot, plugins_running: usize) -> String {
    let mem =
        if s.memory_total_bytes == 0 { 0.0 } else { 100.0 * s.memory_used_bytes as f64 / s.memory_total_bytes as f64 };
    format!(
        "{} cpu {:.0}% mem {:.0}% load {:.2} | {} plugins running\n",
        s.hostname, s.cpu_percent, mem, s.load_one, plugins_running
    )
}
