//! Host-side bindings for the WIT contract in `wit/`.
//!
//! One `bindgen!` over the `host-view` world gives the host traits for the
//! imports and a loader per exported interface, so a component that exports any
//! subset of the role interfaces can be driven.

wasmtime::component::bindgen!({
    world: "host-view",
    path: "../wit",
    imports: { default: trappable },
});

pub use exports::monitor::plugin as guest;
pub use monitor::plugin::types;

/// The contract version this host speaks: the version of the WIT package in
/// `wit/` (a test holds them together). A new version only adds interfaces,
/// functions and types, never changes or removes one, so a plugin built for any
/// earlier version of the series runs as it is: wasmtime resolves its imports
/// and exports of `0.1.0` to this host's `0.1.1` (semver: the same `0.1` API).
pub const CONTRACT_PACKAGE: &str = "monitor:plugin";
pub const CONTRACT_VERSION: &str = "0.1.1";
/// Every version a plugin may be built for, oldest first.
pub const CONTRACT_VERSIONS: [&str; 2] = ["0.1.0", "0.1.1"];

impl From<types::Metric> for crate::metrics::Metric {
    fn from(m: types::Metric) -> crate::metrics::Metric {
        let labels = m.labels.into_iter().map(|l| (l.key, l.value)).collect();
        crate::metrics::Metric { name: m.name, value: m.value, unit: m.unit, labels }
    }
}

impl From<&crate::sampler::Snapshot> for types::SystemSnapshot {
    fn from(s: &crate::sampler::Snapshot) -> Self {
        types::SystemSnapshot {
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
        }
    }
}

impl From<&crate::sampler::MountSample> for types::Mount {
    fn from(m: &crate::sampler::MountSample) -> Self {
        types::Mount {
            mount_point: m.mount_point.clone(),
            device: m.device.clone(),
            filesystem: m.filesystem.clone(),
            total_bytes: m.total_bytes,
            available_bytes: m.available_bytes,
            used_bytes: m.used_bytes,
        }
    }
}

impl From<&crate::sampler::BlockDeviceSample> for types::BlockDevice {
    fn from(d: &crate::sampler::BlockDeviceSample) -> Self {
        types::BlockDevice {
            device: d.device.clone(),
            read_bytes_per_second: d.read_bytes_per_second,
            write_bytes_per_second: d.write_bytes_per_second,
        }
    }
}

impl From<&crate::sampler::NetworkSample> for types::NetworkInterface {
    fn from(n: &crate::sampler::NetworkSample) -> Self {
        types::NetworkInterface {
            name: n.interface.clone(),
            receive_bytes_per_second: n.receive_bytes_per_second,
            transmit_bytes_per_second: n.transmit_bytes_per_second,
            receive_errors_per_second: n.receive_errors_per_second,
            transmit_errors_per_second: n.transmit_errors_per_second,
        }
    }
}

impl From<&crate::sampler::ProcessSample> for types::Process {
    fn from(p: &crate::sampler::ProcessSample) -> Self {
        types::Process {
            pid: p.pid,
            name: p.name.clone(),
            user: p.user.clone(),
            cpu_percent: p.cpu_percent,
            memory_bytes: p.memory_bytes,
        }
    }
}

impl From<&crate::metrics::Sample> for types::Metric {
    fn from(s: &crate::metrics::Sample) -> Self {
        types::Metric {
            name: s.name.clone(),
            value: s.value,
            unit: s.unit.clone(),
            labels: s
                .labels
                .iter()
                .map(|(key, value)| types::Label { key: key.clone(), value: value.clone() })
                .collect(),
        }
    }
}

impl From<crate::progress::Status> for types::NodeStatus {
    fn from(s: crate::progress::Status) -> Self {
        use crate::progress::Status;
        match s {
            Status::Pending => types::NodeStatus::Pending,
            Status::Running => types::NodeStatus::Running,
            Status::Completed => types::NodeStatus::Completed,
            Status::Failed => types::NodeStatus::Failed,
            Status::Cancelled => types::NodeStatus::Cancelled,
            Status::Paused => types::NodeStatus::Paused,
        }
    }
}

impl From<&crate::progress::Node> for types::ProgressNode {
    fn from(n: &crate::progress::Node) -> Self {
        types::ProgressNode {
            id: n.path.to_string(),
            name: n.path.name().to_string(),
            status: n.status.into(),
            done: n.done,
            total: n.total,
            weight: n.weight,
            progress: n.progress,
            started_ms: n.started_ms,
            updated_ms: n.updated_ms,
            message: n.message.clone(),
        }
    }
}

impl From<&crate::alerts::Transition> for types::Alert {
    fn from(t: &crate::alerts::Transition) -> Self {
        let state = if t.silenced { None } else { Some(t.to) };
        alert(&t.id, &t.rule, t.level, state, &t.message, &t.labels, t.value, t.at_ms)
    }
}

impl From<&crate::store::alerts::HistoryEntry> for types::AlertEvent {
    fn from(entry: &crate::store::alerts::HistoryEntry) -> Self {
        let t = &entry.transition;
        types::AlertEvent {
            alert: t.into(),
            seq: entry.seq,
            from: plugin_state(Some(t.from)),
            ack: t.ack.as_ref().map(|a| types::AlertAck { by: a.by.clone(), note: a.note.clone(), at_ms: a.at_ms }),
        }
    }
}

impl From<&crate::alerts::Alert> for types::Alert {
    fn from(a: &crate::alerts::Alert) -> Self {
        let state = if a.silenced { None } else { Some(a.state) };
        let at_ms = a.ack.as_ref().map(|ack| ack.at_ms).or(a.fired_ms).unwrap_or(a.since_ms);
        alert(&a.id, &a.rule, a.level, state, &a.message, &a.labels, a.value, at_ms)
    }
}

/// An alert as plugins see it; `state` none means silenced.
#[allow(clippy::too_many_arguments)]
fn alert(
    id: &str,
    rule: &str,
    level: crate::alerts::Level,
    state: Option<crate::alerts::AlertState>,
    message: &str,
    labels: &crate::alerts::Labels,
    value: Option<f64>,
    at_ms: u64,
) -> types::Alert {
    use crate::alerts::Level;
    types::Alert {
        id: id.into(),
        rule: rule.into(),
        level: match level {
            Level::Info => types::Level::Info,
            Level::Warning => types::Level::Warning,
            Level::Error => types::Level::Error,
            Level::Critical => types::Level::Critical,
        },
        state: plugin_state(state),
        message: message.into(),
        labels: labels.iter().map(|(k, v)| types::Label { key: k.clone(), value: v.clone() }).collect(),
        value,
        at_ms,
    }
}

/// An alert state as plugins see it; none means silenced.
fn plugin_state(state: Option<crate::alerts::AlertState>) -> types::AlertState {
    use crate::alerts::AlertState;
    match state {
        None => types::AlertState::Silenced,
        Some(AlertState::Inactive | AlertState::Pending) => types::AlertState::Pending,
        Some(AlertState::Firing) => types::AlertState::Firing,
        Some(AlertState::Acknowledged) => types::AlertState::Acknowledged,
        Some(AlertState::Resolved) => types::AlertState::Resolved,
    }
}

/// The view a display formatter renders for `monitor status`: the machine,
/// the runs still going and the alerts firing (acknowledged or not).
pub fn status_view(
    snapshot: &crate::sampler::Snapshot,
    runs: &[crate::progress::Node],
    alerts: &[crate::alerts::Alert],
) -> types::View {
    let live =
        runs.iter().filter(|r| matches!(r.status, crate::progress::Status::Running | crate::progress::Status::Paused));
    types::View::Status(types::StatusView {
        system: types::SystemSnapshot::from(snapshot),
        runs: live.map(Into::into).collect(),
        firing: alerts.iter().filter(|a| crate::status::is_firing(a)).map(Into::into).collect(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_contract_version_is_the_wit_package_s() {
        let wit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/types.wit")).unwrap();
        let package = wit.lines().find(|l| l.starts_with("package ")).unwrap();
        assert_eq!(package, format!("package {}@{};", super::CONTRACT_PACKAGE, super::CONTRACT_VERSION));
    }
}
