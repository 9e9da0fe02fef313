//! The set of plugins in one directory: loading and reloading files, deciding
//! from the user's choices and grants which ones run, calling them, and
//! quarantining the ones that keep faulting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::actor::{Actor, Plan};
use super::bindings::types;
use super::capability::{CapabilityError, Grant, HostDirs};
use super::engine::Runtime;
use super::instance::{Fault, Instance, Limits};
use super::load::{self, LoadError, Loaded};
use super::record::{ChangeError, Description, PluginRecord, PluginState, Role};
use super::sandbox::SandboxSpec;
use super::stats::Stats;
use crate::metrics::{Metric, Sample};
use crate::progress::Node;
use crate::sampler::SharedSnapshot;
use crate::store::alerts::HistoryEntry;
use crate::store::{Store, StoreError};

/// How the host runs plugins; from the host configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub dir: PathBuf,
    /// What no grant may reach.
    pub host_dirs: HostDirs,
    pub limits: Limits,
    pub memory_bytes: usize,
    /// Faults in a row that quarantine a plugin.
    pub quarantine_after: u32,
    /// Larger plugin files are refused unread.
    pub max_file_bytes: u64,
    /// How plugins' `http` requests verify certificates (none: the Mozilla roots alone).
    pub http_tls: Option<Arc<rustls::ClientConfig>>,
    /// The last process sample, which plugins may read.
    pub processes: crate::sampler::SharedProcesses,
    /// The host's own series of the last tick, which plugins may read.
    pub host_metrics: crate::metrics::SharedSamples,
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("no plugin named '{name}'; known plugins: {known}")]
    NoSuchPlugin { name: String, known: String },
    #[error("plugin '{name}' is not running ({state})")]
    NotRunning { name: String, state: String },
    #[error("plugin '{name}' is not a {role}")]
    WrongRole { name: String, role: Role },
    #[error("plugin '{name}': {fault}")]
    Fault { name: String, fault: Fault },
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error(transparent)]
    Grant(#[from] CapabilityError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::Classified for ManagerError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            ManagerError::NoSuchPlugin { .. } => ErrorKind::NotFound,
            ManagerError::Change(_) | ManagerError::Grant(_) => ErrorKind::Usage,
            ManagerError::NotRunning { .. } | ManagerError::WrongRole { .. } => ErrorKind::Conflict,
            ManagerError::Fault { .. } => ErrorKind::PluginFault,
            ManagerError::Store(e) => e.kind(),
        }
    }
}

/// A loaded plugin's self-metrics, read from memory.
#[derive(Debug, Clone)]
pub struct LiveStats {
    pub name: String,
    pub running: bool,
    pub stats: super::stats::StatsSnapshot,
}

/// A file in the plugin directory that could not be loaded.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Problem {
    pub file: PathBuf,
    pub error: String,
}

/// What `monitor plugins list` shows.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Listing {
    pub plugins: Vec<PluginRecord>,
    pub problems: Vec<Problem>,
}

struct Entry {
    file: PathBuf,
    loaded: Loaded,
    actor: Option<Actor>,
    stats: Arc<Mutex<Stats>>,
}

/// What a file in the directory held when last loaded. The fingerprint covers
/// the `.wasm` and its configuration, so editing either reloads the plugin.
enum FileState {
    Plugin { name: String, fingerprint: String },
    Broken { fingerprint: String, error: String },
}

impl FileState {
    fn fingerprint(&self) -> &str {
        match self {
            FileState::Plugin { fingerprint, .. } | FileState::Broken { fingerprint, .. } => fingerprint,
        }
    }

    fn name(&self) -> Option<&str> {
        match self {
            FileState::Plugin { name, .. } => Some(name),
            FileState::Broken { .. } => None,
        }
    }
}

#[derive(Default)]
struct Inner {
    plugins: BTreeMap<String, Entry>,
    files: BTreeMap<PathBuf, FileState>,
}

pub struct Manager {
    runtime: Arc<Runtime>,
    store: Store,
    snapshot: SharedSnapshot,
    settings: Settings,
    inner: Mutex<Inner>,
    /// The plugins' records as last committed, by name: read from the database
    /// once, then changed with every write the manager makes (nothing else
    /// writes them while it runs), so a tick's listing touches no disk.
    records: Mutex<Option<BTreeMap<String, PluginRecord>>>,
}

impl Manager {
    pub fn new(runtime: Arc<Runtime>, store: Store, snapshot: SharedSnapshot, settings: Settings) -> Manager {
        Manager { runtime, store, snapshot, settings, inner: Mutex::default(), records: Mutex::default() }
    }

    /// The database the plugins' records and key-value data are in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Brings the running set in line with the directory: loads new and changed
    /// files, stops plugins whose files are gone. Compiles, so call it off the
    /// async runtime's worker threads.
    pub fn scan(&self) -> Result<(), StoreError> {
        let listed = std::fs::read_dir(&self.settings.dir).map(|dir| {
            dir.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
                .collect()
        });
        let listed_ok = listed.is_ok();
        let mut on_disk: Vec<PathBuf> = match listed {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(dir = %self.settings.dir.display(), "cannot read the plugin directory: {e}");
                Vec::new()
            }
        };
        on_disk.sort();
        // Only a directory read in full says which artifacts are no longer needed.
        if listed_ok {
            self.runtime.retain(&on_disk);
        }

        let gone: Vec<PathBuf> = self.inner().files.keys().filter(|f| !on_disk.contains(f)).cloned().collect();
        for file in gone {
            self.forget_file(&file)?;
        }
        for file in on_disk {
            let bytes = match read_capped(&file, self.settings.max_file_bytes) {
                Ok(bytes) => bytes,
                Err(error) => {
                    let fingerprint = format!("unread:{error}");
                    if self.inner().files.get(&file).is_some_and(|f| f.fingerprint() == fingerprint) {
                        continue;
                    }
                    self.forget_file(&file)?;
                    tracing::error!("plugin not loaded: {error}");
                    self.inner().files.insert(file, FileState::Broken { fingerprint, error });
                    continue;
                }
            };
            let name = self.inner().files.get(&file).and_then(|f| f.name().map(String::from));
            let fingerprint = fingerprint(&bytes, &file, name.as_deref());
            if self.inner().files.get(&file).is_some_and(|f| f.fingerprint() == fingerprint) {
                continue;
            }
            self.forget_file(&file)?;
            self.add_file(&file, &bytes, fingerprint)?;
        }
        Ok(())
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("manager lock")
    }

    /// Reads `pick` off the records in memory (read from the database the first time).
    fn with_records<T>(&self, pick: impl FnOnce(&BTreeMap<String, PluginRecord>) -> T) -> Result<T, StoreError> {
        let mut records = self.records.lock().expect("records lock");
        if records.is_none() {
            *records = Some(self.store.plugins()?.into_iter().map(|r| (r.name.clone(), r)).collect());
        }
        Ok(pick(records.as_ref().expect("just read")))
    }

    fn stored(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        self.with_records(|records| records.get(name).cloned())
    }

    /// Changes and commits one record, then keeps what was committed.
    fn update<R>(&self, name: &str, change: impl FnOnce(&mut PluginRecord) -> R) -> Result<R, StoreError> {
        let (result, record) = self.store.update_plugin(name, |r| {
            let result = change(r);
            (result, r.clone())
        })?;
        if let Some(records) = self.records.lock().expect("records lock").as_mut() {
            records.insert(name.to_string(), record);
        }
        Ok(result)
    }

    fn forget_file(&self, file: &Path) -> Result<(), StoreError> {
        let Some(FileState::Plugin { name, .. }) = self.inner().files.remove(file) else {
            return Ok(());
        };
        let entry = self.inner().plugins.remove(&name);
        if let Some(entry) = entry {
            let stats = entry.stats.lock().expect("stats lock").snapshot();
            self.update(&name, |r| {
                r.state = PluginState::Absent;
                r.stats = stats;
            })?;
            tracing::info!(plugin = %name, file = %file.display(), "plugin removed");
        }
        Ok(())
    }

    fn add_file(&self, file: &Path, bytes: &[u8], fingerprint: String) -> Result<(), StoreError> {
        let (loaded, desc) = match self.inspect(file, bytes) {
            Ok(found) => found,
            Err(error) => {
                tracing::error!(file = %file.display(), "plugin not loaded: {error}");
                self.inner().files.insert(file.into(), FileState::Broken { fingerprint, error });
                return Ok(());
            }
        };
        // The configuration may be named after the plugin, known only now.
        let fingerprint = self::fingerprint(bytes, file, Some(&desc.name));
        let name = desc.name.clone();
        let clash = self.inner().plugins.get(&name).map(|e| e.file.clone());
        if let Some(other) = clash {
            let error = format!(
                "two plugins are named '{name}': {} and {}; remove or rename one (the second is not loaded)",
                other.display(),
                file.display()
            );
            tracing::error!("{error}");
            self.inner().files.insert(file.into(), FileState::Broken { fingerprint, error });
            return Ok(());
        }
        let record = self.update(&name, |r| {
            r.observe(file.into(), &loaded.hash, &desc);
            r.clone()
        })?;
        tracing::info!(
            plugin = %name, version = %desc.version, roles = ?desc.roles, cached = loaded.from_cache,
            "plugin loaded from {}", file.display()
        );
        let stats = Arc::new(Mutex::new(Stats::new(&record.stats)));
        {
            let mut inner = self.inner();
            inner.files.insert(file.into(), FileState::Plugin { name: name.clone(), fingerprint });
            inner.plugins.insert(name.clone(), Entry { file: file.into(), loaded, actor: None, stats });
        }
        self.apply(&name)
    }

    /// Compiles and links a file and asks the plugin to describe itself, in a
    /// sandbox with no grants.
    fn inspect(&self, file: &Path, bytes: &[u8]) -> Result<(Loaded, Description), String> {
        inspect(&self.runtime, &self.spec("(loading)", Vec::new()), self.settings.limits, file, bytes)
    }

    fn spec(&self, name: &str, grants: Vec<Grant>) -> SandboxSpec {
        SandboxSpec {
            plugin: name.into(),
            grants,
            memory_bytes: self.settings.memory_bytes,
            host_dirs: self.settings.host_dirs.clone(),
            store: Some(self.store.clone()),
            snapshot: self.snapshot.clone(),
            processes: self.settings.processes.clone(),
            host_metrics: self.settings.host_metrics.clone(),
            http_tls: self.settings.http_tls.clone(),
        }
    }

    /// Starts or stops a plugin to match what its record says it should be doing.
    fn apply(&self, name: &str) -> Result<(), StoreError> {
        let Some(record) = self.stored(name)? else {
            return Ok(());
        };
        let desired = record.desired_state();
        let (running, loaded, stats, file) = {
            let inner = self.inner();
            let Some(entry) = inner.plugins.get(name) else {
                return Ok(());
            };
            (entry.actor.is_some(), entry.loaded.clone(), entry.stats.clone(), entry.file.clone())
        };
        let state = match (desired, running) {
            (PluginState::Running, true) => PluginState::Running,
            (PluginState::Running, false) => {
                *stats.lock().expect("stats lock") = Stats::new(&record.stats);
                match self.start(&record, loaded, &file, stats) {
                    Ok(actor) => {
                        self.set_actor(name, Some(actor));
                        tracing::info!(plugin = %name, "plugin running");
                        PluginState::Running
                    }
                    Err(error) => {
                        tracing::error!(plugin = %name, "plugin cannot run: {error}");
                        PluginState::Failed { error }
                    }
                }
            }
            (other, _) => {
                self.set_actor(name, None);
                if let PluginState::AwaitingConfirmation { granted_file } = &other {
                    tracing::warn!(
                        plugin = %name, file = %file.display(),
                        "a new file claims the name of a plugin whose grants were given to {}; it does not run until confirmed with 'monitor plugins enable {name}'",
                        granted_file.display()
                    );
                }
                if let PluginState::AwaitingGrant { missing } = &other {
                    let asks: Vec<String> =
                        record.requests.iter().map(|r| format!("{} ({})", r.kind, r.reason)).collect();
                    tracing::warn!(
                        plugin = %name,
                        "plugin waits for a grant; it asks for {}; run '{}'",
                        asks.join(", "),
                        super::capability::grant_command(name, missing)
                    );
                }
                other
            }
        };
        self.update(name, |r| r.state = state)?;
        Ok(())
    }

    fn set_actor(&self, name: &str, actor: Option<Actor>) {
        if let Some(entry) = self.inner().plugins.get_mut(name) {
            entry.actor = actor;
        }
    }

    fn start(
        &self,
        record: &PluginRecord,
        loaded: Loaded,
        file: &Path,
        stats: Arc<Mutex<Stats>>,
    ) -> Result<Actor, String> {
        let config = read_config(file, &record.name)?;
        let spec = self.spec(&record.name, record.bound_grants());
        let plan = Plan { loaded, spec, limits: self.settings.limits, config: Some(config) };
        let actor = Actor::spawn(&record.name, plan, stats);
        // Instantiate and configure now, so a plugin that cannot run says so at once.
        match actor.run_blocking(|w| w.call(|_| Ok(()))) {
            Some(Ok(())) => Ok(actor),
            Some(Err(Fault::Returned { call: "configure", message })) => {
                Err(format!("invalid configuration: {message}"))
            }
            Some(Err(fault)) => Err(fault.to_string()),
            None => Err("the plugin's thread ended before it started".into()),
        }
    }

    fn known(&self) -> String {
        let names: Vec<String> = self.inner().plugins.keys().cloned().collect();
        if names.is_empty() { "none".into() } else { names.join(", ") }
    }

    fn record(&self, name: &str) -> Result<PluginRecord, ManagerError> {
        match self.stored(name)? {
            Some(r) => Ok(r),
            None => Err(ManagerError::NoSuchPlugin { name: name.into(), known: self.known() }),
        }
    }

    /// Enables a plugin, clearing a quarantine, and adds grants bound to its
    /// file and content; none may reach the host's own directories.
    pub fn enable(&self, name: &str, grants: &[Grant]) -> Result<PluginRecord, ManagerError> {
        self.record(name)?;
        for grant in grants {
            self.settings.host_dirs.check(grant)?;
        }
        self.update(name, |r| r.enable(grants))?;
        // A restart picks up new grants, so stop a running instance first.
        self.set_actor(name, None);
        self.apply(name)?;
        self.view(name)
    }

    pub fn disable(&self, name: &str) -> Result<PluginRecord, ManagerError> {
        self.record(name)?;
        self.update(name, |r| r.disable())?;
        self.apply(name)?;
        self.view(name)
    }

    pub fn revoke(&self, name: &str, grant: &str) -> Result<PluginRecord, ManagerError> {
        self.record(name)?;
        self.update(name, |r| r.revoke(grant))??;
        self.set_actor(name, None);
        self.apply(name)?;
        self.view(name)
    }

    /// A plugin's record with its live self-metrics.
    pub fn view(&self, name: &str) -> Result<PluginRecord, ManagerError> {
        Ok(self.live(self.record(name)?))
    }

    /// A stored record with the live self-metrics, or marked absent when its file is gone.
    fn live(&self, mut record: PluginRecord) -> PluginRecord {
        match self.inner().plugins.get(&record.name) {
            Some(entry) => record.stats = entry.stats.lock().expect("stats lock").snapshot(),
            None => record.state = PluginState::Absent,
        }
        record
    }

    pub fn listing(&self) -> Result<Listing, ManagerError> {
        let records: Vec<PluginRecord> = self.with_records(|records| records.values().cloned().collect())?;
        let plugins = records.into_iter().map(|r| self.live(r)).collect();
        let problems = self
            .inner()
            .files
            .iter()
            .filter_map(|(file, state)| match state {
                FileState::Broken { error, .. } => Some(Problem { file: file.clone(), error: error.clone() }),
                FileState::Plugin { .. } => None,
            })
            .collect();
        Ok(Listing { plugins, problems })
    }

    /// Every loaded plugin's self-metrics, without touching the database: what
    /// each sampling tick publishes.
    pub fn live_stats(&self) -> Vec<LiveStats> {
        self.inner()
            .plugins
            .iter()
            .map(|(name, e)| LiveStats {
                name: name.clone(),
                running: e.actor.is_some(),
                stats: e.stats.lock().expect("stats lock").snapshot(),
            })
            .collect()
    }

    /// Writes every plugin's self-metrics to its record, in one transaction.
    pub fn persist_stats(&self) -> Result<(), StoreError> {
        let stats: BTreeMap<String, _> = self
            .inner()
            .plugins
            .iter()
            .map(|(name, e)| (name.clone(), e.stats.lock().expect("stats lock").snapshot()))
            .collect();
        self.store.update_all_plugins(|r| {
            if let Some(snapshot) = stats.get(&r.name) {
                r.stats = snapshot.clone();
            }
        })?;
        if let Some(records) = self.records.lock().expect("records lock").as_mut() {
            for (name, snapshot) in stats {
                if let Some(record) = records.get_mut(&name) {
                    record.stats = snapshot;
                }
            }
        }
        Ok(())
    }

    /// Stops every plugin thread and saves self-metrics.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        self.persist_stats()?;
        for entry in self.inner().plugins.values_mut() {
            entry.actor = None;
        }
        Ok(())
    }

    fn actors(&self, role: Role) -> Vec<(String, Actor)> {
        self.inner()
            .plugins
            .iter()
            .filter(|(_, e)| e.loaded.roles.contains(&role))
            .filter_map(|(name, e)| e.actor.clone().map(|a| (name.clone(), a)))
            .collect()
    }

    fn actor(&self, name: &str, role: Role) -> Result<Actor, ManagerError> {
        let inner = self.inner();
        let entry = inner.plugins.get(name).ok_or_else(|| ManagerError::NoSuchPlugin {
            name: name.into(),
            known: inner.plugins.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        if !entry.loaded.roles.contains(&role) {
            return Err(ManagerError::WrongRole { name: name.into(), role });
        }
        entry.actor.clone().ok_or_else(|| ManagerError::NotRunning {
            name: name.into(),
            state: self.stored(name).ok().flatten().map_or("unknown".into(), |r| r.state.to_string()),
        })
    }

    /// Notes a call's outcome; quarantines the plugin after too many faults in a
    /// row (errors it answered with are no faults).
    fn after_call<R>(&self, name: &str, result: Option<Result<R, Fault>>) -> Option<Result<R, Fault>> {
        let Some(Err(fault)) = &result else {
            return result;
        };
        if let Fault::Returned { .. } = fault {
            // An answer the contract allows: counted in the plugin's errors, never a quarantine.
            tracing::debug!(plugin = %name, "plugin error: {fault}");
            return result;
        }
        let (streak, hung) = match self.inner().plugins.get(name) {
            Some(e) => {
                let stats = e.stats.lock().expect("stats lock");
                (stats.consecutive_faults, stats.hung_threads)
            }
            None => return result,
        };
        tracing::warn!(plugin = %name, streak, "plugin fault: {fault}");
        let limit = self.settings.quarantine_after;
        if streak >= limit || hung >= limit {
            // Each call still blocked holds a thread and an instance: a plugin
            // that keeps leaving them is stopped even between successes.
            let reason = match streak >= limit {
                true => format!("{streak} faults in a row; last: {fault}"),
                false => format!("{hung} calls are still blocked past their deadline; last: {fault}"),
            };
            tracing::warn!(plugin = %name, "plugin quarantined: {reason}; 'monitor plugins enable {name}' runs it again");
            let stats = self.inner().plugins.get(name).map(|e| e.stats.lock().expect("stats lock").snapshot());
            let quarantined = self.update(name, |r| {
                r.quarantine = Some(reason);
                if let Some(stats) = stats {
                    r.stats = stats;
                }
            });
            if let Err(e) = quarantined.and_then(|_| self.apply(name)) {
                tracing::error!(plugin = %name, "cannot record the quarantine: {e}");
            }
        }
        result
    }

    /// Calls `collect` on every running metric provider, side by side.
    pub async fn collect(&self) -> Vec<(String, Vec<Metric>)> {
        // Every call is queued before the first is awaited, so they run side by side.
        let calls: Vec<_> = self
            .actors(Role::MetricProvider)
            .into_iter()
            .map(|(name, actor)| (name, actor.run(|w| w.call(Instance::collect))))
            .collect();
        let mut out = Vec::new();
        for (name, call) in calls {
            if let Some(Ok(metrics)) = self.after_call(&name, call.await) {
                out.push((name, metrics.into_iter().map(Metric::from).collect()));
            }
        }
        out
    }

    /// The running alert-handler plugins.
    pub fn alert_handlers(&self) -> Vec<String> {
        self.actors(Role::AlertHandler).into_iter().map(|(name, _)| name).collect()
    }

    /// Hands an alert transition to one alert-handler plugin.
    pub async fn handle_alert(&self, name: &str, entry: &HistoryEntry) -> Result<(), ManagerError> {
        let event = types::AlertEvent::from(entry);
        let actor = self.actor(name, Role::AlertHandler)?;
        let result = actor.run(move |w| w.call(|i| i.handle(&event))).await;
        self.finish(name, result)
    }

    /// The one-line status rendered by a display formatter: the machine, the
    /// runs still going and the alerts firing.
    pub async fn format_status(
        &self,
        name: &str,
        snapshot: &crate::sampler::Snapshot,
        runs: &[crate::progress::Node],
        alerts: &[crate::alerts::Alert],
    ) -> Result<String, ManagerError> {
        self.format(name, super::bindings::status_view(snapshot, runs, alerts)).await
    }

    /// A run's nodes rendered by a display formatter.
    pub async fn format_progress(&self, name: &str, nodes: &[crate::progress::Node]) -> Result<String, ManagerError> {
        self.format(name, types::View::Progress(nodes.iter().map(Into::into).collect())).await
    }

    async fn format(&self, name: &str, view: types::View) -> Result<String, ManagerError> {
        let actor = self.actor(name, Role::DisplayFormatter)?;
        let result = actor.run(move |w| w.call(|i| i.format(&view))).await;
        self.finish(name, result)
    }

    /// What a progress calculator makes of `parent` and its `children`: the
    /// parent's progress (0 to 1) and, if it has one, its ETA in seconds.
    pub async fn compute(
        &self,
        name: &str,
        parent: &Node,
        children: &[Node],
    ) -> Result<(f64, Option<f64>), ManagerError> {
        let parent = types::ProgressNode::from(parent);
        let children: Vec<types::ProgressNode> = children.iter().map(Into::into).collect();
        let actor = self.actor(name, Role::ProgressCalculator)?;
        let result = actor.run(move |w| w.call(|i| i.compute(&parent, &children))).await;
        self.finish(name, result).map(|estimate| (estimate.progress, estimate.eta_secs))
    }

    fn finish<R>(&self, name: &str, result: Option<Result<R, Fault>>) -> Result<R, ManagerError> {
        match self.after_call(name, result) {
            Some(Ok(value)) => Ok(value),
            Some(Err(fault)) => Err(ManagerError::Fault { name: name.into(), fault }),
            None => Err(ManagerError::NotRunning { name: name.into(), state: "stopped".into() }),
        }
    }
}

/// Loads a file and asks the plugin to describe itself; the error is one line.
pub fn inspect(
    runtime: &Runtime,
    spec: &SandboxSpec,
    limits: Limits,
    file: &Path,
    bytes: &[u8],
) -> Result<(Loaded, Description), String> {
    let loaded = load::load_bytes(runtime, bytes, &file.display().to_string()).map_err(|e: LoadError| e.to_string())?;
    // On a plugin thread of its own, so a plugin that never answers is given up on.
    let plan = Plan { loaded: loaded.clone(), spec: spec.clone(), limits, config: None };
    let actor = Actor::spawn(&spec.plugin, plan, Arc::new(Mutex::new(Stats::new(&Default::default()))));
    let mut desc = match actor.run_blocking(|w| w.call(Instance::describe)) {
        Some(Ok(desc)) => desc,
        Some(Err(fault)) => return Err(format!("{}: {fault}", file.display())),
        None => return Err(format!("{}: the plugin's thread ended before it answered", file.display())),
    };
    desc.roles.clone_from(&loaded.roles);
    Ok((loaded, desc))
}

/// A plugin file's bytes, refused unread when larger than `max` bytes.
pub fn read_capped(file: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", file.display());
    let too_large = |size: u64| {
        format!(
            "{} is {} MiB, larger than plugins.max_file_mib = {} MiB; it is not read",
            file.display(),
            size.div_ceil(1 << 20),
            max >> 20
        )
    };
    let handle = std::fs::File::open(file).map_err(cannot)?;
    let size = handle.metadata().map_err(cannot)?.len();
    if size > max {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    handle.take(max + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Where a plugin's configuration may be: `NAME.toml` beside the file (by plugin
/// name, then by file name).
fn config_paths(file: &Path, name: Option<&str>) -> Vec<PathBuf> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut paths: Vec<PathBuf> = name.map(|n| dir.join(format!("{n}.toml"))).into_iter().collect();
    paths.push(file.with_extension("toml"));
    paths
}

/// A digest of the plugin file and whatever configuration files it may read.
fn fingerprint(bytes: &[u8], file: &Path, name: Option<&str>) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(bytes);
    for path in config_paths(file, name) {
        hasher.update(path.as_os_str().as_encoded_bytes());
        hasher.update(&std::fs::read(&path).unwrap_or_default());
    }
    hasher.finalize().to_hex()[..32].to_string()
}

/// The plugin's configuration, checked to be TOML before the plugin sees it.
fn read_config(file: &Path, name: &str) -> Result<String, String> {
    let candidates = config_paths(file, Some(name));
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Ok(String::new());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.parse::<toml::Table>().map_err(|e| format!("{} is not valid TOML: {}", path.display(), e.message()))?;
    Ok(text)
}

/// Plugins' self-metrics as host series.
pub fn plugin_self_metrics(plugins: &[LiveStats], now_ms: u64) -> Vec<Sample> {
    let mut out = Vec::new();
    for p in plugins {
        let labels = BTreeMap::from([("plugin".to_string(), p.name.clone())]);
        let mut put =
            |name: &str, value: f64, unit: &str| out.push(crate::metrics::labelled(name, &labels, value, unit, now_ms));
        put("monitor_plugin_calls_total", p.stats.calls as f64, "");
        put("monitor_plugin_faults_total", p.stats.faults as f64, "");
        put("monitor_plugin_call_latency_p50_seconds", p.stats.p50_us / 1e6, "seconds");
        put("monitor_plugin_call_latency_p99_seconds", p.stats.p99_us / 1e6, "seconds");
        put("monitor_plugin_memory_peak_bytes", p.stats.memory_peak_bytes as f64, "bytes");
        put("monitor_plugin_errors_total", p.stats.errors as f64, "");
        put("monitor_plugin_hung_threads", f64::from(p.stats.hung_threads), "");
        put("monitor_plugin_running", f64::from(u8::from(p.running)), "");
    }
    out
}
