//! Small conveniences over the generated bindings.

use crate::bindings::monitor::plugin::host;
use crate::types::{CapabilityRequest, Label, Metric, SystemSnapshot};

impl Metric {
    /// A unitless metric with no labels; add them with [`Metric::unit`] and [`Metric::label`].
    pub fn new(name: impl Into<String>, value: f64) -> Self {
        Metric { name: name.into(), value, unit: String::new(), labels: Vec::new() }
    }

    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = unit.into();
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push(Label { key: key.into(), value: value.into() });
        self
    }
}

impl CapabilityRequest {
    /// `name` is `kv`, `fs-read`, `fs-write` or `http`; `reason` is shown to whoever grants it.
    pub fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        CapabilityRequest { name: name.into(), reason: reason.into() }
    }
}

/// The machine as of the host's last sampling tick.
pub fn system_snapshot() -> SystemSnapshot {
    host::snapshot()
}

/// Since contract 0.1.1: the mounted file systems, as of the last sampling tick.
pub fn mounts() -> Vec<crate::Mount> {
    host::mounts()
}

/// Since contract 0.1.1: I/O per block device over the last sampling interval.
pub fn block_devices() -> Vec<crate::BlockDevice> {
    host::block_devices()
}

/// Since contract 0.1.1: traffic per network interface over the last sampling interval.
pub fn network_interfaces() -> Vec<crate::NetworkInterface> {
    host::network_interfaces()
}

/// Since contract 0.1.1: the busiest processes of the last process sample, by
/// CPU use, at most `limit` (and never more than 100).
pub fn top_processes(limit: u32) -> Vec<crate::Process> {
    host::top_processes(limit)
}

/// Since contract 0.1.1: the runs still going (running or paused), their root
/// nodes, most recently updated first.
pub fn runs() -> Vec<crate::ProgressNode> {
    host::runs()
}

/// Since contract 0.1.1: the host's own series as of its last sampling tick
/// (`monitor_tick_duration_p99_seconds`, `monitor_plugin_faults_total`, ...),
/// named as `/metrics` names them.
pub fn host_metrics() -> Vec<Metric> {
    host::host_metrics()
}

/// Lines in the host's log, tagged with the plugin's name. The host shows those at
/// or above its log level (`MONITOR_LOG`, `info` by default), escapes control
/// characters, cuts lines at 4 KiB, and keeps at most 64 KiB of a plugin's output
/// per call (these lines, `println!` and `eprintln!` together).
pub mod log {
    use crate::bindings::monitor::plugin::host::{LogLevel, log};

    /// Detail for following one call; shown only with `MONITOR_LOG=trace`.
    pub fn trace(message: &str) {
        log(LogLevel::Trace, message)
    }
    /// Detail for the plugin's author; shown with `MONITOR_LOG=debug`.
    pub fn debug(message: &str) {
        log(LogLevel::Debug, message)
    }
    /// Something the person running the host would want to read.
    pub fn info(message: &str) {
        log(LogLevel::Info, message)
    }
    /// Something went wrong and the plugin went on.
    pub fn warn(message: &str) {
        log(LogLevel::Warn, message)
    }
    /// Something went wrong and a result is missing; returning `Err` from a role
    /// function also logs, and counts as the plugin's error.
    pub fn error(message: &str) {
        log(LogLevel::Error, message)
    }
}

/// The plugin's private, persistent key-value store. Needs the `kv` capability
/// (without it every call fails, and `get` finds nothing). It survives host
/// restarts and plugin upgrades; keys are at most 256 bytes, values at most
/// 64 KiB, at most 1,024 keys. `monitor plugins kv NAME` shows what a plugin stored.
pub mod kv {
    pub use crate::bindings::monitor::plugin::kv::{delete, get, keys, set};

    /// The value under `key` as UTF-8 text, if there is one and it is text.
    pub fn get_string(key: &str) -> Option<String> {
        get(key).and_then(|v| String::from_utf8(v).ok())
    }

    /// Stores `value` as UTF-8 under `key`, replacing what was there. Fails, saying
    /// which limit, when the key or value is too long or the store is full.
    pub fn set_string(key: &str, value: &str) -> Result<(), String> {
        set(key, value.as_bytes())
    }
}
