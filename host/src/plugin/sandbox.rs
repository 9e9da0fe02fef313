//! What one plugin's store holds: a deny-by-default WASI context, the limits on
//! its memory, and the host imports, each checked against the plugin's grants.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::monitor::plugin::{host, kv, types};
use super::capability::{Capability, Grant, HostDirs};
use crate::sampler::SharedSnapshot;
use crate::store::Store;

/// Limits on what one key-value store may hold.
pub const KV_MAX_KEY_BYTES: usize = 256;
pub const KV_MAX_VALUE_BYTES: usize = 64 * 1024;
pub const KV_MAX_KEYS: usize = 1024;
/// Log output a plugin may write per call (log calls, stdout and stderr together).
pub const LOG_BUDGET_BYTES: usize = 64 * 1024;
/// The longest log line kept; longer ones are cut.
const LOG_LINE_BYTES: usize = 4096;

/// Everything a sandbox is built from.
#[derive(Clone)]
pub struct SandboxSpec {
    pub plugin: Arc<str>,
    pub grants: Vec<Grant>,
    pub memory_bytes: usize,
    /// Checked again as each granted directory is opened: a link changed since
    /// the grant cannot lead into the host's own files.
    pub host_dirs: HostDirs,
    pub store: Option<Store>,
    pub snapshot: SharedSnapshot,
    /// The last process sample, for `top-processes`.
    pub processes: crate::sampler::SharedProcesses,
    /// The host's own series of the last tick, for `host-metrics`.
    pub host_metrics: crate::metrics::SharedSamples,
    /// How `http` requests verify certificates (none: the Mozilla roots alone).
    pub http_tls: Option<Arc<rustls::ClientConfig>>,
}

impl SandboxSpec {
    /// No grants, no database, an empty snapshot: for asking a plugin to describe
    /// itself before anything is granted.
    pub fn bare(plugin: &str) -> SandboxSpec {
        SandboxSpec {
            plugin: plugin.into(),
            grants: Vec::new(),
            memory_bytes: 64 << 20,
            host_dirs: HostDirs::default(),
            store: None,
            snapshot: SharedSnapshot::default(),
            processes: Default::default(),
            host_metrics: Default::default(),
            http_tls: None,
        }
    }
}

/// The Mozilla roots alone, made once.
fn default_http_tls() -> Arc<rustls::ClientConfig> {
    static TLS: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    TLS.get_or_init(|| super::http::client_tls(None).expect("the built-in roots make a TLS configuration")).clone()
}

pub struct Sandbox {
    plugin: Arc<str>,
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    /// The running call's start (in epoch ticks: cheaper than the clock on
    /// every call) and limit; waits in WASI stop at its deadline ([`super::wait`]).
    call_started: u64,
    call_limit: std::time::Duration,
    /// Set when a wait was stopped at the deadline during the current call.
    pub deadline_reached: bool,
    /// The plugin thread's watch: once it was given up on, its host calls are refused.
    pub(super) busy: Option<Arc<super::deadline::Busy>>,
    pub limiter: MemoryLimiter,
    /// The database, when the plugin holds the `kv` grant.
    kv: Option<Store>,
    /// The database, for reading the runs (every plugin may).
    store: Option<Store>,
    snapshot: SharedSnapshot,
    processes: crate::sampler::SharedProcesses,
    host_metrics: crate::metrics::SharedSamples,
    log_budget: Arc<AtomicUsize>,
    /// Why the last call was refused, when it used a power it was not granted.
    pub denied: Option<String>,
    http: WasiHttpCtx,
    http_hooks: super::http::Hooks,
}

impl Sandbox {
    pub fn new(spec: &SandboxSpec) -> anyhow::Result<Sandbox> {
        let log_budget = Arc::new(AtomicUsize::new(LOG_BUDGET_BYTES));
        // A new builder grants nothing: no environment, arguments or directories,
        // and no network (TCP, UDP and name lookup off, every address refused).
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(LogPipe::new(&spec.plugin, "stdout", &log_budget));
        wasi.stderr(LogPipe::new(&spec.plugin, "stderr", &log_budget));
        for grant in &spec.grants {
            let perms = match grant.kind {
                Capability::FsRead => FsPerms::ReadOnly,
                Capability::FsWrite => FsPerms::ReadWrite,
                Capability::Kv | Capability::Http => continue,
            };
            // The plugin sees the directory under the name granted; the host
            // opens it as it resolves now.
            let named = grant.path.as_ref().expect("file-system grants carry a path");
            let guest =
                named.to_str().ok_or_else(|| anyhow::anyhow!("granted directory {} is not UTF-8", named.display()))?;
            let resolved = spec
                .host_dirs
                .check(grant)
                .map_err(|e| anyhow::anyhow!("{e}; run 'monitor plugins revoke {} {grant}'", spec.plugin))?;
            let dir = resolved.as_ref().expect("file-system grants carry a path");
            wasi.preopened_dir(dir, guest, perms).map_err(|e| {
                anyhow::anyhow!("cannot open granted directory {}: {e}; create it or revoke '{grant}'", dir.display())
            })?;
        }
        let kv = spec.grants.iter().any(|g| g.kind == Capability::Kv).then(|| spec.store.clone()).flatten();
        let origins = spec.grants.iter().filter_map(|g| g.origin.clone()).collect();
        let tls = spec.http_tls.clone().unwrap_or_else(default_http_tls);
        Ok(Sandbox {
            plugin: spec.plugin.clone(),
            wasi: wasi.build(),
            table: ResourceTable::new(),
            call_started: 0,
            call_limit: std::time::Duration::ZERO,
            deadline_reached: false,
            busy: None,
            limiter: MemoryLimiter::new(spec.memory_bytes),
            kv,
            store: spec.store.clone(),
            snapshot: spec.snapshot.clone(),
            processes: spec.processes.clone(),
            host_metrics: spec.host_metrics.clone(),
            log_budget,
            denied: None,
            http: WasiHttpCtx::new(),
            http_hooks: super::http::Hooks::new(spec.plugin.clone(), origins, tls),
        })
    }

    /// Gives the next call, limited to `limit`, a fresh log budget and a clean
    /// record of refusals.
    pub fn start_call(&mut self, limit: std::time::Duration) {
        self.call_started = super::deadline::ticks();
        self.call_limit = limit;
        self.deadline_reached = false;
        self.log_budget.store(LOG_BUDGET_BYTES, Ordering::Relaxed);
        self.denied = None;
        self.limiter.exceeded = false;
        // Set at the call's first use of wasi:http: reading the clock on every
        // call would cost more than the rest of this reset.
        self.http_hooks.deadline = None;
        self.http_hooks.sent = 0;
    }

    /// When the running call must end, to within a tick or two (more on a machine
    /// so busy that the ticker runs late): the ticks only advance once the call
    /// woke the ticker.
    pub(super) fn call_deadline(&self) -> Option<std::time::Instant> {
        let spent = super::deadline::EPOCH_TICK * (super::deadline::ticks().saturating_sub(self.call_started) as u32);
        std::time::Instant::now().checked_add(self.call_limit.saturating_sub(spent))
    }

    /// The trap that ends a call whose wait reached its deadline.
    pub(super) fn waited_out(&mut self) -> wasmtime::Error {
        self.deadline_reached = true;
        wasmtime::format_err!("the call's deadline passed while it waited in wasi:io/poll")
    }

    /// Refuses every host call of a thread the host gave up on: the fresh
    /// instance that replaced it has the plugin's powers now.
    fn check_live(&self) -> wasmtime::Result<()> {
        match &self.busy {
            Some(busy) if busy.abandoned() => Err(wasmtime::format_err!("the host gave up on this call")),
            _ => Ok(()),
        }
    }

    fn kv_store(&mut self, call: &str) -> wasmtime::Result<Store> {
        self.check_live()?;
        match &self.kv {
            Some(store) => Ok(store.clone()),
            None => {
                let why = format!(
                    "called kv.{call} without the 'kv' capability; declare it in the plugin's capabilities and run 'monitor plugins enable {} --grant kv'",
                    self.plugin
                );
                self.denied = Some(why.clone());
                Err(wasmtime::format_err!(why))
            }
        }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for Sandbox {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        if self.http_hooks.deadline.is_none() {
            self.http_hooks.deadline = self.call_deadline();
        }
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}

/// Most linear memories, tables and core instances one plugin may have. A
/// component from Rust has one memory and a few instances; one from Python a
/// few dozen instances.
pub const MAX_MEMORIES: usize = 16;
pub const MAX_TABLES: usize = 64;
pub const MAX_INSTANCES: usize = 256;
/// Most table elements one plugin may have, all tables together.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Caps the plugin's memory as a whole (every linear memory together, not
/// each alone) and its tables, and records the high-water mark.
pub struct MemoryLimiter {
    pub cap: usize,
    /// Bytes of all linear memories together, and their highest.
    pub total: usize,
    pub peak: usize,
    table_elements: usize,
    /// The last growth allowed, undone if it fails after all (past a
    /// memory's own maximum): totals and peak as they were before it.
    undo_memory: Option<(usize, usize)>,
    undo_table: Option<usize>,
    /// Set when a growth was refused during the current call.
    pub exceeded: bool,
}

impl MemoryLimiter {
    fn new(cap: usize) -> MemoryLimiter {
        MemoryLimiter {
            cap,
            total: 0,
            peak: 0,
            table_elements: 0,
            undo_memory: None,
            undo_table: None,
            exceeded: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.total - current.min(self.total) + desired;
        if total > self.cap {
            self.exceeded = true;
            return Ok(false);
        }
        self.undo_memory = Some((self.total, self.peak));
        self.total = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        if let Some((total, peak)) = self.undo_memory.take() {
            (self.total, self.peak) = (total, peak);
        }
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.table_elements - current.min(self.table_elements) + desired;
        if total > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.undo_table = Some(self.table_elements);
        self.table_elements = total;
        Ok(true)
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        if let Some(elements) = self.undo_table.take() {
            self.table_elements = elements;
        }
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::ResourceLimiter;

    use super::*;

    #[test]
    fn a_calls_http_deadline_is_its_own() {
        let mut sandbox = Sandbox::new(&SandboxSpec::bare("x")).unwrap();
        sandbox.start_call(std::time::Duration::from_secs(5));
        assert_eq!(sandbox.http_hooks.deadline, None, "no clock read until the call uses wasi:http");
        let _ = sandbox.http();
        let first = sandbox.http_hooks.deadline.expect("set at the first use");
        let _ = sandbox.http();
        assert_eq!(sandbox.http_hooks.deadline, Some(first), "once per call");
        sandbox.start_call(std::time::Duration::from_secs(60));
        assert_eq!(sandbox.http_hooks.deadline, None, "the next call does not inherit it");
        let _ = sandbox.http();
        assert!(sandbox.http_hooks.deadline.unwrap() > first + std::time::Duration::from_secs(50));
    }

    #[test]
    fn memories_count_together_and_a_failed_growth_is_undone() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 40, None).unwrap());
        assert!(limiter.memory_growing(0, 40, None).unwrap(), "a second memory");
        assert!(!limiter.memory_growing(40, 70, None).unwrap(), "70 + 40 > 100: the cap is for both");
        assert!(limiter.exceeded);
        assert!(limiter.memory_growing(40, 50, None).unwrap());
        assert_eq!((limiter.total, limiter.peak), (90, 90));
        limiter.memory_grow_failed(wasmtime::format_err!("past its maximum")).unwrap();
        assert_eq!((limiter.total, limiter.peak), (80, 80), "undone");
        assert!(limiter.memory_growing(40, 60, None).unwrap(), "room again for what really is there");
    }
}

/// Takes `len` bytes from a shared per-call budget; false once it is spent.
fn spend(budget: &AtomicUsize, len: usize) -> bool {
    budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(len)).is_ok()
}

fn emit(plugin: &str, stream: &str, level: tracing::Level, line: &str) {
    let line = crate::text::line(line, LOG_LINE_BYTES);
    match level {
        tracing::Level::TRACE => tracing::trace!(target: "plugin", plugin, stream, "{line}"),
        tracing::Level::DEBUG => tracing::debug!(target: "plugin", plugin, stream, "{line}"),
        tracing::Level::INFO => tracing::info!(target: "plugin", plugin, stream, "{line}"),
        tracing::Level::WARN => tracing::warn!(target: "plugin", plugin, stream, "{line}"),
        tracing::Level::ERROR => tracing::error!(target: "plugin", plugin, stream, "{line}"),
    }
}

impl types::Host for Sandbox {}

impl host::Host for Sandbox {
    fn log(&mut self, level: host::LogLevel, message: String) -> wasmtime::Result<()> {
        self.check_live()?;
        if spend(&self.log_budget, message.len()) {
            let level = match level {
                host::LogLevel::Trace => tracing::Level::TRACE,
                host::LogLevel::Debug => tracing::Level::DEBUG,
                host::LogLevel::Info => tracing::Level::INFO,
                host::LogLevel::Warn => tracing::Level::WARN,
                host::LogLevel::Error => tracing::Level::ERROR,
            };
            emit(&self.plugin, "log", level, &message);
        }
        Ok(())
    }

    fn snapshot(&mut self) -> wasmtime::Result<types::SystemSnapshot> {
        let snapshot = self.snapshot.read().expect("snapshot lock").clone();
        Ok(types::SystemSnapshot::from(&*snapshot))
    }

    fn mounts(&mut self) -> wasmtime::Result<Vec<types::Mount>> {
        let snapshot = self.snapshot.read().expect("snapshot lock").clone();
        Ok(snapshot.disks.iter().take(MAX_LISTED).map(Into::into).collect())
    }

    fn block_devices(&mut self) -> wasmtime::Result<Vec<types::BlockDevice>> {
        let snapshot = self.snapshot.read().expect("snapshot lock").clone();
        Ok(snapshot.block_devices.iter().take(MAX_LISTED).map(Into::into).collect())
    }

    fn network_interfaces(&mut self) -> wasmtime::Result<Vec<types::NetworkInterface>> {
        let snapshot = self.snapshot.read().expect("snapshot lock").clone();
        Ok(snapshot.networks.iter().take(MAX_LISTED).map(Into::into).collect())
    }

    fn top_processes(&mut self, limit: u32) -> wasmtime::Result<Vec<types::Process>> {
        let table = self.processes.read().expect("processes lock").clone();
        let mut busiest: Vec<&crate::sampler::ProcessSample> = table.iter().collect();
        let limit = (limit as usize).min(MAX_PROCESSES);
        if busiest.len() > limit {
            busiest.select_nth_unstable_by(limit, |a, b| b.cpu_percent.total_cmp(&a.cpu_percent));
            busiest.truncate(limit);
        }
        busiest.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent).then(a.pid.cmp(&b.pid)));
        Ok(busiest.into_iter().map(Into::into).collect())
    }

    fn runs(&mut self) -> wasmtime::Result<Vec<types::ProgressNode>> {
        self.check_live()?;
        let Some(store) = &self.store else { return Ok(Vec::new()) };
        let mut runs = store.progress_runs().unwrap_or_else(|e| {
            tracing::warn!(plugin = %self.plugin, "host.runs: {e}");
            Vec::new()
        });
        runs.retain(|r| matches!(r.status, crate::progress::Status::Running | crate::progress::Status::Paused));
        runs.sort_by_key(|r| std::cmp::Reverse(r.updated_ms));
        Ok(runs.iter().take(MAX_RUNS).map(Into::into).collect())
    }

    fn host_metrics(&mut self) -> wasmtime::Result<Vec<types::Metric>> {
        let own = self.host_metrics.read().expect("host metrics lock").clone();
        Ok(own.iter().take(MAX_HOST_METRICS).map(Into::into).collect())
    }
}

/// Most mounts, devices or interfaces one call returns; most processes; most
/// runs; most of the host's own series.
const MAX_LISTED: usize = 256;
const MAX_PROCESSES: usize = 100;
const MAX_RUNS: usize = 100;
const MAX_HOST_METRICS: usize = 1000;

impl kv::Host for Sandbox {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        let store = self.kv_store("get")?;
        Ok(store.kv_get(&self.plugin, &key).unwrap_or_else(|e| {
            tracing::error!(plugin = %self.plugin, "kv.get: {e}");
            None
        }))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        let store = self.kv_store("set")?;
        if key.is_empty() || key.len() > KV_MAX_KEY_BYTES {
            return Ok(Err(format!("key of {} bytes; keys are 1 to {KV_MAX_KEY_BYTES} bytes", key.len())));
        }
        if value.len() > KV_MAX_VALUE_BYTES {
            return Ok(Err(format!("value of {} bytes; values are at most {KV_MAX_VALUE_BYTES} bytes", value.len())));
        }
        Ok(match store.kv_set(&self.plugin, &key, &value, KV_MAX_KEYS) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(held)) => Err(format!("the store holds {held} keys, the most allowed; delete some first")),
            Err(e) => Err(format!("the host could not store the value: {e}")),
        })
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        let store = self.kv_store("delete")?;
        if let Err(e) = store.kv_delete(&self.plugin, &key) {
            tracing::error!(plugin = %self.plugin, "kv.delete: {e}");
        }
        Ok(())
    }

    fn keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        let store = self.kv_store("keys")?;
        Ok(store.kv_keys(&self.plugin, &prefix).unwrap_or_else(|e| {
            tracing::error!(plugin = %self.plugin, "kv.keys: {e}");
            Vec::new()
        }))
    }
}

/// A plugin's stdout or stderr: each line goes to the host log, tagged.
#[derive(Clone)]
struct LogPipe {
    plugin: Arc<str>,
    stream: &'static str,
    budget: Arc<AtomicUsize>,
}

impl LogPipe {
    fn new(plugin: &Arc<str>, stream: &'static str, budget: &Arc<AtomicUsize>) -> LogPipe {
        LogPipe { plugin: plugin.clone(), stream, budget: budget.clone() }
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter { pipe: self.clone(), line: Vec::new() })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter { pipe: self.clone(), line: Vec::new() })
    }
}

struct LineWriter {
    pipe: LogPipe,
    line: Vec<u8>,
}

impl LineWriter {
    /// Buffers bytes and logs each complete line; bytes over the budget are dropped.
    fn push(&mut self, bytes: &[u8]) {
        if !spend(&self.pipe.budget, bytes.len()) {
            return;
        }
        for &b in bytes {
            if b == b'\n' || self.line.len() >= LOG_LINE_BYTES {
                self.flush_line();
            }
            if b != b'\n' {
                self.line.push(b);
            }
        }
    }

    fn flush_line(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        emit(&self.pipe.plugin, self.pipe.stream, tracing::Level::INFO, &text);
        self.line.clear();
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.flush_line();
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(LOG_LINE_BYTES)
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.get_mut().push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
