//! The one-line status of the host, plain or through a display formatter.

use crate::alerts::{Alert, AlertState};
use crate::sampler::Snapshot;

/// Firing, acknowledged or not.
pub fn is_firing(a: &Alert) -> bool {
    matches!(a.state, AlertState::Firing | AlertState::Acknowledged)
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
