//! The one-line status of the host, plain or through a display formatter.

use crate::alerts::{Alert, State};
use crate::plugin::bindings::types;
use crate::progress::{Node, Status};
use crate::sampler::Snapshot;

/// The view a display formatter renders for `monitor status`: the machine,
/// the runs still going and the alerts firing (acknowledged or not).
pub fn view(snapshot: &Snapshot, runs: &[Node], alerts: &[Alert]) -> types::View {
    let live = runs.iter().filter(|r| matches!(r.status, Status::Running | Status::Paused));
    types::View::Status(types::StatusView {
        system: types::SystemSnapshot::from(snapshot),
        runs: live.map(Into::into).collect(),
        firing: alerts.iter().filter(|a| is_firing(a)).map(Into::into).collect(),
    })
}

fn is_firing(a: &Alert) -> bool {
    matches!(a.state, State::Firing | State::Acknowledged)
}

/// The built-in rendering when no formatter is asked for.
pub fn plain(s: &Snapshot, plugins_running: usize, alerts: &[Alert]) -> String {
    let mem =
        if s.memory_total_bytes == 0 { 0.0 } else { 100.0 * s.memory_used_bytes as f64 / s.memory_total_bytes as f64 };
    let firing = alerts.iter().filter(|a| is_firing(a)).count();
    let firing = match firing {
        0 => String::new(),
        1 => ", 1 alert firing".into(),
        n => format!(", {n} alerts firing"),
    };
    format!(
        "{} cpu {:.0}% mem {:.0}% load {:.2} | {} plugins running{firing}\n",
        s.hostname, s.cpu_percent, mem, s.load_one, plugins_running
    )
}
