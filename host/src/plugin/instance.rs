//! One live instance of a plugin in its own store, and every call into it under
//! a deadline, a memory cap and a cap on what the call may hand back.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;

use super::bindings::{guest, types};
use super::capability::{Capability, CapabilityRequest};
use super::deadline::{self, Busy};
use super::load::Loaded;
use super::record::Description;
use super::sandbox::{Sandbox, SandboxSpec};

/// The limits every call runs under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub call_timeout: Duration,
    /// Bytes the host copies out of the plugin in one call (all results together).
    pub max_output_bytes: usize,
    pub max_metrics: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { call_timeout: Duration::from_millis(100), max_output_bytes: 1 << 20, max_metrics: 1000 }
    }
}

/// The longest error message kept from a plugin.
pub const MAX_ERROR_BYTES: usize = 1024;

pub use super::fault::Fault;

pub struct Instance {
    store: Store<Sandbox>,
    plugin: guest::plugin::Guest,
    metrics: Option<guest::metrics::Guest>,
    progress: Option<guest::progress::Guest>,
    alerts: Option<AlertsExport>,
    formatter: Option<guest::formatter::Guest>,
    bounds: Bounds,
}

/// An alert handler's export: the event with its transition, or, built before
/// that existed, the alert alone.
enum AlertsExport {
    Events(guest::alert_events::Guest),
    Alerts(guest::alerts::Guest),
}

/// What every call of an instance runs under, worked out once.
struct Bounds {
    limits: Limits,
    /// Says to the ticker when the instance is in a call.
    slot: Arc<deadline::Slot>,
    /// The epoch deadline of a call, in ticks.
    epoch_ticks: u64,
    /// What the watchdog times, when the instance runs on a plugin thread.
    busy: Option<Arc<Busy>>,
}

impl Instance {
    pub fn new(
        loaded: &Loaded,
        spec: &SandboxSpec,
        limits: Limits,
        busy: Option<Arc<Busy>>,
    ) -> Result<Instance, Fault> {
        // Opening granted directories can block (a mount that is gone): the
        // watchdog times it with the instantiation that follows.
        let slot = deadline::Slot::new(busy.clone());
        let timed = deadline::Call::start(&slot, busy.as_deref(), "instantiate");
        let mut sandbox =
            Sandbox::new(spec).map_err(|e| Fault::Denied { call: "instantiate", detail: format!("{e:#}") })?;
        sandbox.busy.clone_from(&busy);
        let mut store = Store::new(loaded.pre.engine(), sandbox);
        store.limiter(|s| &mut s.limiter);
        let pre = &loaded.pre;
        let mut this = None;
        // Instantiation runs guest code (start functions), so it is bounded
        // too; the watchdog times it as one with opening the sandbox, above.
        let epoch_ticks = deadline::epoch_ticks(limits.call_timeout);
        let untimed = Bounds { limits, slot: slot.clone(), epoch_ticks, busy: None };
        let instance = guarded(&mut store, &untimed, "instantiate", |store| {
            let instance = pre.instantiate(&mut *store)?;
            this = Some((
                guest::plugin::GuestIndices::new(pre)?.load(&mut *store, &instance)?,
                optional(guest::metrics::GuestIndices::new(pre).and_then(|i| i.load(&mut *store, &instance))),
                optional(guest::progress::GuestIndices::new(pre).and_then(|i| i.load(&mut *store, &instance))),
                optional(guest::alert_events::GuestIndices::new(pre).and_then(|i| i.load(&mut *store, &instance)))
                    .map(AlertsExport::Events)
                    .or_else(|| {
                        optional(guest::alerts::GuestIndices::new(pre).and_then(|i| i.load(&mut *store, &instance)))
                            .map(AlertsExport::Alerts)
                    }),
                optional(guest::formatter::GuestIndices::new(pre).and_then(|i| i.load(&mut *store, &instance))),
            ));
            Ok(())
        });
        drop(timed);
        instance?;
        let (plugin, metrics, progress, alerts, formatter) = this.expect("set on success");
        let bounds = Bounds { busy, ..untimed };
        Ok(Instance { store, plugin, metrics, progress, alerts, formatter, bounds })
    }

    /// The highest linear memory size the plugin reached, in bytes.
    pub fn memory_peak(&self) -> usize {
        self.store.data().limiter.peak
    }

    pub fn describe(&mut self) -> Result<Description, Fault> {
        let plugin = &self.plugin;
        let info = guarded(&mut self.store, &self.bounds, "describe", |s| plugin.call_describe(s))?;
        validate(info).map_err(|detail| Fault::Returned { call: "describe", message: detail })
    }

    pub fn configure(&mut self, config: &str) -> Result<(), Fault> {
        let plugin = &self.plugin;
        let result = guarded(&mut self.store, &self.bounds, "configure", |s| plugin.call_configure(s, config))?;
        result.map_err(|message| returned("configure", &message))
    }

    pub fn collect(&mut self) -> Result<Vec<types::Metric>, Fault> {
        let Some(metrics) = &self.metrics else {
            return Ok(Vec::new());
        };
        let result = guarded(&mut self.store, &self.bounds, "collect", |s| metrics.call_collect(s))?;
        let list = result.map_err(|message| returned("collect", &message))?;
        if list.len() > self.bounds.limits.max_metrics {
            let detail = format!("{} metrics, the cap is {}", list.len(), self.bounds.limits.max_metrics);
            return Err(Fault::OutputTooLarge { call: "collect", detail });
        }
        Ok(list)
    }

    pub fn compute(
        &mut self,
        parent: &types::ProgressNode,
        children: &[types::ProgressNode],
    ) -> Result<types::ProgressEstimate, Fault> {
        let Some(progress) = &self.progress else {
            return Err(Fault::Returned { call: "compute", message: "not a progress calculator".into() });
        };
        let result = guarded(&mut self.store, &self.bounds, "compute", |s| progress.call_compute(s, parent, children))?;
        let mut estimate = result.map_err(|message| returned("compute", &message))?;
        if !estimate.progress.is_finite() {
            return Err(Fault::Returned {
                call: "compute",
                message: format!("progress {} is not a number", estimate.progress),
            });
        }
        estimate.progress = estimate.progress.clamp(0.0, 1.0);
        estimate.eta_secs = estimate.eta_secs.filter(|e| e.is_finite() && *e >= 0.0);
        Ok(estimate)
    }

    pub fn handle(&mut self, event: &types::AlertEvent) -> Result<(), Fault> {
        let result = match &self.alerts {
            None => return Ok(()),
            Some(AlertsExport::Events(events)) => {
                guarded(&mut self.store, &self.bounds, "handle", |s| events.call_handle(s, event))?
            }
            Some(AlertsExport::Alerts(alerts)) => {
                guarded(&mut self.store, &self.bounds, "handle", |s| alerts.call_handle(s, &event.alert))?
            }
        };
        result.map_err(|message| returned("handle", &message))
    }

    pub fn format(&mut self, view: &types::View) -> Result<String, Fault> {
        let Some(formatter) = &self.formatter else {
            return Err(Fault::Returned { call: "format", message: "not a display formatter".into() });
        };
        let result = guarded(&mut self.store, &self.bounds, "format", |s| formatter.call_format(s, view))?;
        // Printed on terminals and status bars: lines stay, escape sequences do not.
        result
            .map(|text| crate::text::lines(&text, self.bounds.limits.max_output_bytes))
            .map_err(|message| returned("format", &message))
    }
}

/// A plugin's error answer, bounded and with its control characters escaped.
#[cold]
fn returned(call: &'static str, message: &str) -> Fault {
    Fault::Returned { call, message: crate::text::line(message, MAX_ERROR_BYTES) }
}

/// An export the component may or may not have; its roles were checked at load.
fn optional<T>(loaded: wasmtime::Result<T>) -> Option<T> {
    loaded.ok()
}

/// Runs `f` with a fresh deadline and output budget, and names what went wrong.
fn guarded<R>(
    store: &mut Store<Sandbox>,
    bounds: &Bounds,
    call: &'static str,
    f: impl FnOnce(&mut Store<Sandbox>) -> wasmtime::Result<R>,
) -> Result<R, Fault> {
    let limits = bounds.limits;
    store.data_mut().start_call(limits.call_timeout);
    store.set_epoch_deadline(bounds.epoch_ticks);
    store.set_hostcall_fuel(limits.max_output_bytes);
    let timed = deadline::Call::start(&bounds.slot, bounds.busy.as_deref(), call);
    let result = f(store);
    drop(timed);
    result.map_err(|e| fault(store.data(), &limits, call, &e))
}

/// What a failed call's error means: cold, and out of the call path.
#[cold]
#[inline(never)]
fn fault(sandbox: &Sandbox, limits: &Limits, call: &'static str, e: &wasmtime::Error) -> Fault {
    if let Some(detail) = sandbox.denied.clone() {
        Fault::Denied { call, detail }
    } else if sandbox.limiter.exceeded {
        Fault::Memory { call, cap: sandbox.limiter.cap }
    } else if sandbox.deadline_reached || e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
        Fault::Deadline { call, limit: limits.call_timeout }
    } else {
        let detail = format!("{e:#}");
        if detail.contains("fuel allocated for hostcalls has been exhausted") {
            let detail = format!("more than {} KiB of results", limits.max_output_bytes >> 10);
            Fault::OutputTooLarge { call, detail }
        } else {
            Fault::Trap { call, detail: first_line(&detail) }
        }
    }
}

fn first_line(s: &str) -> String {
    crate::text::line(s.lines().next().unwrap_or_default(), 300)
}

/// The most capabilities a plugin may ask for.
const MAX_REQUESTS: usize = 16;

/// Checks what a plugin says about itself; the error names the field and value.
pub(crate) fn validate(info: types::PluginInfo) -> Result<Description, String> {
    let name_ok = !info.name.is_empty()
        && info.name.len() <= 64
        && info.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !info.name.starts_with('-');
    if !name_ok {
        let name = crate::text::line(&info.name, 64);
        return Err(format!("name '{name}' is not kebab-case (a-z, 0-9, '-', at most 64)"));
    }
    if info.version.is_empty() || info.version.len() > 64 || info.version.chars().any(char::is_control) {
        let version = crate::text::line(&info.version, 64);
        return Err(format!("version '{version}' must be 1 to 64 printable characters"));
    }
    if info.capabilities.len() > MAX_REQUESTS {
        return Err(format!("asks for {} capabilities; at most {MAX_REQUESTS}", info.capabilities.len()));
    }
    let mut requests = Vec::new();
    for c in info.capabilities {
        let kind = Capability::parse(&c.name).map_err(|_| {
            let name = crate::text::line(&c.name, 64);
            format!("asks for unknown capability '{name}'; known: kv, fs-read, fs-write")
        })?;
        requests.push(CapabilityRequest { kind, reason: crate::text::line(&c.reason, 200) });
    }
    Ok(Description {
        name: info.name,
        version: info.version,
        summary: crate::text::line(&info.summary, 200),
        roles: Vec::new(),
        requests,
    })
}
