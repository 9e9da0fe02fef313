//! The one-line status of the host, plain or through a display formatter.

use crate::plugin::bindings::types;
use crate::progress::{Node, Status};
use crate::sampler::Snapshot;

/// The view a display formatter renders for `monitor status`: the machine and
/// the runs still going.
pub fn view(snapshot: &Snapshot, runs: &[Node]) -> types::View {
    let live = runs.iter().filter(|r| matches!(r.status, Status::Running | Status::Paused));
    types::View::Status(types::StatusView {
        system: types::SystemSnapshot::from(snapshot),
        runs: live.map(Into::into).collect(),
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
