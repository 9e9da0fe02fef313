//! Write plugins for `monitor`, the monitoring host.
//!
//! A plugin is a Rust crate built as a `cdylib` for `wasm32-wasip2`. It depends on
//! this crate alone, implements [`Plugin`] and a role trait, and registers the
//! type with one macro line. The host reads the plugin's roles from the component
//! it builds, so each role has its own macro, and [`export_plugin!`] takes several:
//!
//! | role | trait | macro (or in [`export_plugin!`]) |
//! | --- | --- | --- |
//! | produce metrics on every sampling tick | [`MetricProvider`] | [`export_metric_provider!`] (`metric_provider`) |
//! | compute a parent's progress from its children | [`ProgressCalculator`] | [`export_progress_calculator!`] (`progress_calculator`) |
//! | deliver alerts | [`AlertHandler`] | [`export_alert_handler!`] (`alert_handler`) |
//! | render a view as text | [`DisplayFormatter`] | [`export_display_formatter!`] (`display_formatter`) |
//!
//! The plugin's name and version are its crate's. The host creates the plugin
//! value with [`Default`], then calls [`Plugin::configure`] once with the text
//! of `NAME.toml` beside the `.wasm` (empty when there is none).
//!
//! # A metric provider
//!
//! ```
//! use monitor_sdk::{Metric, MetricProvider, Plugin};
//!
//! #[derive(Default)]
//! struct Uptime;
//!
//! impl Plugin for Uptime {
//!     const SUMMARY: &'static str = "uptime in hours";
//! }
//!
//! impl MetricProvider for Uptime {
//!     fn collect(&mut self) -> Result<Vec<Metric>, String> {
//!         let hours = monitor_sdk::system_snapshot().uptime_secs as f64 / 3600.0;
//!         Ok(vec![Metric::new("uptime_hours", hours).unit("hours")])
//!     }
//! }
//!
//! monitor_sdk::export_metric_provider!(Uptime);
//! ```
//!
//! # A progress calculator
//!
//! ```
//! use monitor_sdk::{Plugin, ProgressCalculator, ProgressEstimate, ProgressNode};
//!
//! /// The slowest child sets the pace.
//! #[derive(Default)]
//! struct Slowest;
//!
//! impl Plugin for Slowest {
//!     const SUMMARY: &'static str = "a parent is as far along as its slowest child";
//! }
//!
//! impl ProgressCalculator for Slowest {
//!     fn compute(
//!         &mut self,
//!         _parent: &ProgressNode,
//!         children: &[ProgressNode],
//!     ) -> Result<ProgressEstimate, String> {
//!         let progress = children.iter().map(|c| c.progress).fold(1.0, f64::min);
//!         Ok(ProgressEstimate { progress, eta_secs: None })
//!     }
//! }
//!
//! monitor_sdk::export_progress_calculator!(Slowest);
//! ```
//!
//! # An alert handler with a capability and a configuration
//!
//! ```
//! use monitor_sdk::config::Deserialize;
//! use monitor_sdk::{AlertEvent, AlertHandler, AlertState, CapabilityRequest, Plugin};
//!
//! /// `counter.toml` beside the `.wasm`: `prefix = "rules"` (optional).
//! #[derive(Deserialize)]
//! #[serde(crate = "monitor_sdk::config::serde", default, deny_unknown_fields)]
//! struct Counter {
//!     prefix: String,
//! }
//!
//! impl Default for Counter {
//!     fn default() -> Self {
//!         Counter { prefix: "count".into() }
//!     }
//! }
//!
//! impl Plugin for Counter {
//!     const SUMMARY: &'static str = "counts firings per rule in the key-value store";
//!
//!     fn capabilities() -> Vec<CapabilityRequest> {
//!         vec![CapabilityRequest::new("kv", "keeps the counts across restarts")]
//!     }
//!
//!     fn configure(&mut self, config: &str) -> Result<(), String> {
//!         // An error names the line, the field and the value.
//!         *self = monitor_sdk::config::from_toml(config)?;
//!         Ok(())
//!     }
//! }
//!
//! impl AlertHandler for Counter {
//!     fn handle(&mut self, event: &AlertEvent) -> Result<(), String> {
//!         // A repeat is the same firing again: count each firing once.
//!         if event.alert.state != AlertState::Firing || event.from == AlertState::Firing {
//!             return Ok(());
//!         }
//!         let key = format!("{}/{}", self.prefix, event.alert.rule);
//!         let n = monitor_sdk::kv::get_string(&key).and_then(|s| s.parse().ok()).unwrap_or(0u64);
//!         monitor_sdk::kv::set_string(&key, &(n + 1).to_string())
//!     }
//! }
//!
//! monitor_sdk::export_alert_handler!(Counter);
//! ```
//!
//! # A display formatter
//!
//! ```
//! use monitor_sdk::{DisplayFormatter, Plugin, View};
//!
//! #[derive(Default)]
//! struct Load;
//!
//! impl Plugin for Load {
//!     const SUMMARY: &'static str = "the load average, for a status bar";
//! }
//!
//! impl DisplayFormatter for Load {
//!     fn format(&mut self, view: &View) -> Result<String, String> {
//!         match view {
//!             View::Resources(s) => Ok(format!("load {:.2}", s.load_one)),
//!             _ => Err("only the resources view is supported".into()),
//!         }
//!     }
//! }
//!
//! monitor_sdk::export_display_formatter!(Load);
//! ```
//!
//! # Several roles in one plugin
//!
//! One type may implement several role traits, registered together with
//! [`export_plugin!`]; the component then exports each of them, and the host
//! calls it in each role. Its world includes the roles' own worlds (for a
//! component built without this SDK: `world w { include metric-provider;
//! include display-formatter; }` in a package that depends on `monitor:plugin`).
//!
//! ```
//! use monitor_sdk::{DisplayFormatter, Metric, MetricProvider, Plugin, View};
//!
//! /// Counts its own calls, and shows the count in a status line.
//! #[derive(Default)]
//! struct Calls(u64);
//!
//! impl Plugin for Calls {
//!     const SUMMARY: &'static str = "a metric and a status line";
//! }
//!
//! impl MetricProvider for Calls {
//!     fn collect(&mut self) -> Result<Vec<Metric>, String> {
//!         self.0 += 1;
//!         Ok(vec![Metric::new("collects", self.0 as f64)])
//!     }
//! }
//!
//! impl DisplayFormatter for Calls {
//!     fn format(&mut self, _view: &View) -> Result<String, String> {
//!         Ok(format!("{} collects", self.0))
//!     }
//! }
//!
//! monitor_sdk::export_plugin!(Calls: metric_provider, display_formatter);
//! ```
//!
//! Two registrations in one crate do not build; the compiler's error names
//! `one_registration_per_crate__for_several_roles_use__export_plugin`:
//!
//! ```compile_fail,E0428
//! # use monitor_sdk::{DisplayFormatter, Metric, MetricProvider, Plugin, View};
//! # #[derive(Default)]
//! # struct Calls;
//! # impl Plugin for Calls {
//! #     const SUMMARY: &'static str = "";
//! # }
//! # impl MetricProvider for Calls {
//! #     fn collect(&mut self) -> Result<Vec<Metric>, String> { Ok(Vec::new()) }
//! # }
//! # impl DisplayFormatter for Calls {
//! #     fn format(&mut self, _view: &View) -> Result<String, String> { Ok(String::new()) }
//! # }
//! monitor_sdk::export_metric_provider!(Calls);
//! monitor_sdk::export_display_formatter!(Calls);
//! ```

pub mod config;
mod export;
mod helpers;
#[cfg(feature = "http")]
pub mod http;

pub use helpers::{
    block_devices, host_metrics, kv, log, mounts, network_interfaces, runs, system_snapshot, top_processes,
};
#[doc(hidden)]
pub use wit_bindgen;

/// Bindings for the host's imports, shared by every role. Internal.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "sdk-imports",
        path: "wit",
        generate_unused_types: true,
        generate_all,
    });
}

pub use bindings::monitor::plugin::types;
pub use types::{
    Alert, AlertAck, AlertEvent, AlertState, BlockDevice, CapabilityRequest, Label, Level, Metric, Mount,
    NetworkInterface, NodeStatus, PluginInfo, Process, ProgressEstimate, ProgressNode, StatusView, SystemSnapshot,
    View,
};

/// Everything a plugin usually names: `use monitor_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Alert, AlertAck, AlertEvent, AlertHandler, AlertState, CapabilityRequest, DisplayFormatter, Label, Level,
        Metric, MetricProvider, NodeStatus, Plugin, ProgressCalculator, ProgressEstimate, ProgressNode, StatusView,
        SystemSnapshot, View,
    };
}

/// Builders for a plugin's tests (the `testing` feature, as a dev-dependency):
/// the contract's records with what a test does not care about left empty.
#[cfg(feature = "testing")]
pub mod testing {
    use crate::{NodeStatus, ProgressNode, SystemSnapshot};

    /// The node at `id` (`run/phase/step`), named after its last segment,
    /// with no units, total or weight.
    pub fn node(id: &str, status: NodeStatus, progress: f64) -> ProgressNode {
        ProgressNode {
            id: id.into(),
            name: id.rsplit('/').next().unwrap_or(id).into(),
            status,
            done: 0.0,
            total: None,
            weight: None,
            progress,
            started_ms: None,
            updated_ms: 0,
            message: None,
        }
    }

    /// A one-core machine named `hostname` with nothing running: no CPU,
    /// load or memory in use, of 1 GiB.
    pub fn snapshot(hostname: &str) -> SystemSnapshot {
        SystemSnapshot {
            timestamp_ms: 0,
            hostname: hostname.into(),
            cpu_percent: 0.0,
            per_core_percent: vec![0.0],
            memory_total_bytes: 1 << 30,
            memory_used_bytes: 0,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            load_one: 0.0,
            load_five: 0.0,
            load_fifteen: 0.0,
            uptime_secs: 0,
            process_count: 1,
        }
    }
}

/// The names the host uses for the contract's enums (`warning`, `firing`,
/// `running`), so plugins print what the CLI and the API print.
macro_rules! names {
    ($type:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $type {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(<$type>::$variant => $name,)*
                }
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(Level { Info => "info", Warning => "warning", Error => "error", Critical => "critical" });
names!(AlertState {
    Pending => "pending",
    Firing => "firing",
    Acknowledged => "acknowledged",
    Resolved => "resolved",
    Silenced => "silenced",
});
names!(NodeStatus {
    Pending => "pending",
    Running => "running",
    Completed => "completed",
    Failed => "failed",
    Cancelled => "cancelled",
    Paused => "paused",
});

impl Level {
    /// 0 for info up to 3 for critical: for picking the most severe.
    pub fn severity(self) -> u8 {
        match self {
            Level::Info => 0,
            Level::Warning => 1,
            Level::Error => 2,
            Level::Critical => 3,
        }
    }
}

/// What every plugin is, whatever its role.
pub trait Plugin: Default + 'static {
    /// The plugin's name when it is not the crate's name.
    const NAME: Option<&'static str> = None;

    /// One line that says what the plugin does, shown by `monitor plugins list`.
    const SUMMARY: &'static str;

    /// The capabilities the plugin asks for, each with the reason shown to the
    /// person who grants it. A plugin runs only once all of them are granted.
    fn capabilities() -> Vec<CapabilityRequest> {
        Vec::new()
    }

    /// Takes the text of `NAME.toml` (empty when there is none). Return an error
    /// that names the bad field and value; the host will not run the plugin.
    fn configure(&mut self, config: &str) -> Result<(), String> {
        let _ = config;
        Ok(())
    }
}

/// Produces extra metrics on every sampling tick.
pub trait MetricProvider: Plugin {
    fn collect(&mut self) -> Result<Vec<Metric>, String>;
}

/// Computes a parent node's progress from its direct children.
pub trait ProgressCalculator: Plugin {
    fn compute(&mut self, parent: &ProgressNode, children: &[ProgressNode]) -> Result<ProgressEstimate, String>;
}

/// Receives alert transitions and delivers them somewhere: each as an
/// [`AlertEvent`], the alert with its history number, the state it came from
/// (a repeat comes from `firing`) and, on acknowledgement, who and why.
pub trait AlertHandler: Plugin {
    fn handle(&mut self, event: &AlertEvent) -> Result<(), String>;
}

/// Renders a view as text.
pub trait DisplayFormatter: Plugin {
    fn format(&mut self, view: &View) -> Result<String, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_s_enums_are_named_as_the_host_names_them() {
        assert_eq!(Level::Warning.to_string(), "warning");
        assert_eq!(AlertState::Acknowledged.as_str(), "acknowledged");
        assert_eq!(NodeStatus::Cancelled.to_string(), "cancelled");
        let mut levels = [Level::Critical, Level::Info, Level::Error, Level::Warning];
        levels.sort_by_key(|l| l.severity());
        assert_eq!(levels.map(Level::as_str), ["info", "warning", "error", "critical"]);
    }
}
