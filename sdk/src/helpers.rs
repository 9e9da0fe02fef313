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
    /// `name` is `kv`, `fs-read` or `fs-write`; `reason` is shown to whoever grants it.
    pub fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        CapabilityRequest { name: name.into(), reason: reason.into() }
    }
}

/// The machine as of the host's last sampling tick.
pub fn system_snapshot() -> SystemSnapshot {
    host::snapshot()
}

/// Lines in the host's log, tagged with the plugin's name.
pub mod log {
    use crate::bindings::monitor::plugin::host::{LogLevel, log};

    pub fn trace(message: &str) {
        log(LogLevel::Trace, message)
    }
    pub fn debug(message: &str) {
        log(LogLevel::Debug, message)
    }
    pub fn info(message: &str) {
        log(LogLevel::Info, message)
    }
    pub fn warn(message: &str) {
        log(LogLevel::Warn, message)
    }
    pub fn error(message: &str) {
        log(LogLevel::Error, message)
    }
}

/// The plugin's private, persistent key-value store. Needs the `kv` capability.
pub mod kv {
    pub use crate::bindings::monitor::plugin::kv::{delete, get, keys, set};

    /// The value under `key` as UTF-8 text, if there is one and it is text.
    pub fn get_string(key: &str) -> Option<String> {
        get(key).and_then(|v| String::from_utf8(v).ok())
    }

    pub fn set_string(key: &str, value: &str) -> Result<(), String> {
        set(key, value.as_bytes())
    }
}
