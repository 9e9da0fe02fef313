//! `monitor run`: the host in the foreground. It owns the data directory (lock,
//! database, token), samples the machine, runs the plugins, reloads them when the
//! directory changes, serves the API, and stops cleanly on SIGINT or SIGTERM.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use notify::Watcher;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::alerts::{Alerting, JobInput};
use crate::api::{self, AppState};
use crate::config::HostConfig;
use crate::error::{CommandResult, UsageError};
use crate::history::{HistoryWriter, Keeping};
use crate::lock::InstanceLock;
use crate::metrics::{self, Board};
use crate::paths::DaemonInfo;
use crate::paths::DataDir;
use crate::plugin::stats::Latencies;
use crate::plugin::{Manager, Runtime};
use crate::sampler::{self, Sampler, SharedProcesses, SharedSnapshot};
use crate::store::Store;
use crate::stream::Hub;
use crate::writer::{PRUNE_EVERY, PluginCalculator, Writer};

mod followers;
use followers::Followers;

/// How long the plugin directory must be quiet before a reload.
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(150);
/// How long a stop waits for the stream clients to be told.
const STREAMS_END: Duration = Duration::from_secs(3);
/// How often self-metrics are written to the database.
const PERSIST_EVERY: Duration = Duration::from_secs(10);
/// The second process sample comes this soon after the first: CPU shares are differences
/// between two, and the list should not wait a whole interval to have them.
const SECOND_PROCESS_SAMPLE: Duration = Duration::from_secs(1);

pub struct Options {
    pub data: DataDir,
    pub plugins_dir: PathBuf,
    pub config: HostConfig,
}

/// Runs until a signal; an error before the host is up means it did not start.
/// Driven by `Runtime::block_on`: the tick blocks the thread it runs on.
pub async fn run(options: Options) -> CommandResult<()> {
    let started = Instant::now();
    let Options { data, plugins_dir, config } = options;
    data.create().with_context(|| format!("cannot create data directory {}", data.root.display()))?;
    // It holds the token and plugins' data: what was opened to others is closed again first.
    for line in data.secure() {
        tracing::warn!("{line}");
    }
    let _lock = InstanceLock::acquire(&data.lock())?;
    // A host that stops cleanly takes its daemon.json away; one still here (and no
    // host running, by the lock) was left by a host that crashed or was killed.
    if let Some(info) = DaemonInfo::read(&data) {
        tracing::warn!(
            "the last host (pid {}) did not stop cleanly; its database is verified, and repaired where it must be, before this one starts",
            info.pid
        );
    }
    let store = Store::open_checked(&data.database())?;
    let token = load_or_create_token(&data.token())?;
    if !plugins_dir.is_dir() {
        return Err(UsageError(format!(
            "plugin directory {} does not exist; create it or pass --plugins DIR",
            plugins_dir.display()
        ))
        .into());
    }
    // One spelling of the directory, so a plugin's file is the same file
    // whichever way the directory was named (grants are bound to it).
    let plugins_dir = plugins_dir.canonicalize().unwrap_or(plugins_dir);

    let processes: SharedProcesses = Arc::default();
    let own_metrics = crate::metrics::SharedSamples::default();
    let mut settings = config.plugin_settings(plugins_dir.clone(), &data.root);
    settings.processes = processes.clone();
    settings.host_metrics = own_metrics.clone();
    if let Some(file) = &config.plugins.http_ca_file {
        settings.http_tls = Some(crate::plugin::http::client_tls(Some(file)).context("plugins.http_ca_file")?);
    }
    let runtime = Runtime::new(Some(data.compile_cache())).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let runtime = Arc::new(runtime.compile_with(config.compiler()));
    let mut sampler = Sampler::new();
    let snapshot: SharedSnapshot = Arc::new(RwLock::new(Arc::new(sampler.sample())));
    let manager = Arc::new(Manager::new(runtime, store.clone(), snapshot.clone(), settings));
    // Plugins load on a thread of their own, from the start: compiling and
    // asking plugins to describe themselves never hold up the tick or a signal.
    let (scanned_tx, mut scanned) = mpsc::unbounded_channel();
    let loader = Loader::start(manager.clone(), scanned_tx)?;
    let _watcher = watch(&plugins_dir, loader.clone())?;

    let listener = bind(&data, &config.api.listen).await?;
    let addr = listener.addr()?;
    let tls = api::tls::load(&config.api, &data, &api::tls::names(&config.api.hosts, addr.ip()))?;
    if !addr.ip().is_loopback() && tls.is_none() {
        tracing::warn!(
            "the API listens on {addr}, beyond this machine, over plain HTTP: requests need the token, but it travels in clear; keep the address on a private network, or listen on 127.0.0.1 and reach it through an SSH tunnel"
        );
    }
    let board = Arc::new(Mutex::new(Board::default()));
    let calculator = PluginCalculator::new(manager.clone(), tokio::runtime::Handle::current());
    let hub = Hub::default();
    let history = HistoryWriter::start(
        store.clone(),
        Keeping {
            max_series_per_plugin: config.metrics.max_series_per_plugin,
            retention: config.metric_retention(),
            commit_every: config.history_commit_every(),
        },
    )
    .context("cannot start the metric history's writer")?;
    let (writer, writer_thread) = Writer::start(store.clone(), Some(Box::new(calculator)), hub.clone())
        .context("cannot start the progress writer")?;
    // Jobs start after the writer (each run is a progress node) and stop before it goes.
    let jobs = Arc::new(crate::watch::Jobs::start(
        config.watch_jobs(),
        crate::watch::jobs::Options {
            progress: Some(writer.clone()),
            data_dir: Some(data.root.clone()),
            echo: false,
            store: Some(store.clone()),
        },
    )?);
    let alerting = Arc::new(
        Alerting::start(
            &config.alerts,
            store.clone(),
            Some(manager.clone()),
            Some(jobs.clone()),
            tokio::runtime::Handle::current(),
            hub.clone(),
        )
        .context("cannot start alerting")?,
    );
    match store.audit_trim(sampler::now_ms(), config.keep_audit_ms()) {
        Ok(0) => {}
        Ok(n) => tracing::info!("{n} audit entries older than api.keep_audit ({}) removed", config.api.keep_audit),
        Err(e) => tracing::warn!("cannot trim the audit log to api.keep_audit: {e}"),
    }
    let streams = Arc::new(tokio::sync::Semaphore::new(api::MAX_STREAMS));
    let state = AppState {
        manager: manager.clone(),
        store: store.clone(),
        board: board.clone(),
        snapshot: snapshot.clone(),
        processes: processes.clone(),
        token: token.into(),
        tokens: Arc::new(api::access::Tokens::load(&store).context("cannot read the API's tokens")?),
        keep_audit_ms: config.keep_audit_ms(),
        failures: Arc::default(),
        refusals: Arc::default(),
        streams: streams.clone(),
        writer: writer.clone(),
        data: data.clone(),
        alerting: alerting.clone(),
        jobs: jobs.clone(),
        hub: hub.clone(),
        unwritten: history.unwritten(),
        hosts: Arc::new(api::dashboard::Hosts::new(&config.api.hosts)),
        fleet: Arc::new(api::Fleet::new(config.api.fleet_hosts.clone())),
    };
    tokio::spawn(forward_job_events(jobs.subscribe(), hub.clone()));
    // The plugins' state is on the stream before the first client can connect.
    let mut plugin_states = Vec::new();
    // The alert-handler plugins running at the last look.
    let mut handlers = HashSet::new();
    publish_plugins(&manager.listing()?, &hub, &mut plugin_states);
    let trust = tls.as_ref().map(|t| t.trust.clone());
    let server = listener.serve(api::router(state), tls.map(|t| t.acceptor));
    // Where this machine's clients connect: loopback when listening on every
    // address (a name the certificate carries, and one that always works).
    let local = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    };
    write_daemon_info(&data, &DaemonInfo { pid: std::process::id(), addr: local.to_string(), tls: trust })?;
    // Only a hint for the next run: if it cannot be written, that run picks a free port.
    let _ = crate::paths::write_private(&data.last_addr(), addr.to_string().as_bytes());
    let mut ready = false;

    let mut tick = tokio::time::interval(config.sample_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let processes_every = Duration::from_millis(config.processes_interval_ms);
    let mut process_tick = tokio::time::interval(processes_every);
    process_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let second_process_sample = tokio::time::sleep(SECOND_PROCESS_SAMPLE.min(processes_every));
    tokio::pin!(second_process_sample);
    let mut second_process_sampled = false;
    let followers = Followers::default();
    let mut exposed = Exposed::new(config.progress.metrics_depth);
    let mut persist = tokio::time::interval(PERSIST_EVERY);
    let mut ticks = Latencies::default();
    let mut ticks_total = 0u64;
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    let retention = config.retention();
    // Streams made once, so a signal that lands during a tick is not lost.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    // This loop runs on the thread that called `block_on`, not on a worker, so
    // the tick does its blocking work (sampling, rules) in place: no hand-off
    // to another thread that could wait behind others for the CPU. The history
    // is the exception: its commits wait for the disk, so a thread of its own
    // takes the samples and the tick goes on. From here on this thread is the
    // tick's, with a short slice; threads started before keep the default one,
    // and the runtime's threads that start later reset it.
    crate::sched::prompt();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // A tick, in order, all of it stamped with the time of its machine sample.
                let started = Instant::now();
                ticks_total += 1;
                // 1. The machine.
                let machine = Arc::new(sampler.sample());
                let at = sampler::now_ms();
                *snapshot.write().expect("snapshot lock") = machine.clone();
                // 2. The host's own series.
                let database_bytes = std::fs::metadata(data.database()).map_or(0, |m| m.len());
                let mut own = host_metrics(&ticks, ticks_total, (database_bytes, &store.health()), at);
                own.extend(alerting.metrics(at));
                own.extend(hub.metrics(at));
                own.extend(history.metrics(at));
                own.extend(exposed.samples(&store, writer.commits(), at));
                // 3. The plugins' metrics, beside the machine's and the host's own.
                sample_plugins(&manager, &board, own, &own_metrics, &machine, at).await;
                let samples = Arc::new(board.lock().expect("board lock").samples());
                // 4. The rules, first so that their latency counts from the sample,
                //    over one read of the plugins' states.
                let listing = manager.listing().map_err(|e| tracing::error!("reading plugin states: {e}")).ok();
                let quarantined: Vec<String> = listing.iter().flat_map(|l| &l.plugins)
                    .filter(|p| matches!(p.state, crate::plugin::PluginState::Quarantined { .. }))
                    .map(|p| p.name.clone())
                    .collect();
                alerting.evaluate(&samples, writer.commits(), &quarantined, &job_inputs(&jobs), at, started);
                // 5. The stream: plugin states that changed, then the samples; alert
                //    handlers that started since hear of what is firing.
                if let Some(listing) = &listing {
                    publish_plugins(listing, &hub, &mut plugin_states);
                    if ready {
                        for name in started_handlers(listing, &mut handlers) {
                            alerting.catch_up(&name, at);
                        }
                    }
                }
                hub.publish_samples(at, &samples);
                // 6. The history, on its writer's thread.
                history.record(&samples);
                ticks.record(started.elapsed());
            }
            _ = process_tick.tick() => {
                let table = Arc::new(sampler.processes());
                followers.observe_soon(&store, &writer, table.clone(), sampler::now_ms());
                *processes.write().expect("processes lock") = table;
            }
            _ = &mut second_process_sample, if !second_process_sampled => {
                second_process_sampled = true;
                let table = Arc::new(sampler.processes());
                followers.observe_soon(&store, &writer, table.clone(), sampler::now_ms());
                *processes.write().expect("processes lock") = table;
                process_tick.reset();
            }
            Some(()) = scanned.recv() => {
                if ready {
                    continue;
                }
                ready = true;
                let listing = manager.listing()?;
                // A client that connects once the host says it is ready hears the loaded plugins first.
                publish_plugins(&listing, &hub, &mut plugin_states);
                // Those running at start heard of the firing alerts before the restart.
                started_handlers(&listing, &mut handlers);
                let running = listing.plugins.iter().filter(|p| p.state == crate::plugin::PluginState::Running).count();
                let loaded = listing.plugins.iter().filter(|p| p.state != crate::plugin::PluginState::Absent).count();
                tracing::info!(
                    api = %addr, loaded, running, problems = listing.problems.len(),
                    "monitor ready in {:.1} ms (data in {})", started.elapsed().as_secs_f64() * 1e3, data.root.display()
                );
            }
            _ = persist.tick() => {
                if let Err(e) = manager.persist_stats() {
                    tracing::error!("saving plugin self-metrics: {e}");
                }
            }
            _ = prune.tick() => {
                let writer = writer.clone();
                tokio::spawn(async move {
                    if let Err(e) = writer.prune(retention).await {
                        tracing::error!("pruning progress events: {e}");
                    }
                });
                let alerts = alerting.clone();
                tokio::task::spawn_blocking(move || match alerts.prune(sampler::now_ms()) {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "old alert history pruned"),
                    Err(e) => tracing::error!("pruning alert history: {e}"),
                });
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }

    tracing::info!("stopping");
    // A load under way is left to end on its own (a compiler child dies with the host).
    drop(loader);
    jobs.stop().await;
    hub.close();
    // Every stream client is told the host is going (a last message, a close)
    // before the API's threads end: they run below the tick and may be slow to.
    let all = u32::try_from(api::MAX_STREAMS).expect("a small number");
    let _ = tokio::time::timeout(STREAMS_END, streams.acquire_many(all)).await;
    server.stop().await;
    // The writer ends once the last handle is gone, after what was queued.
    drop(writer);
    let _ =
        tokio::time::timeout(Duration::from_secs(2), tokio::task::spawn_blocking(move || writer_thread.join())).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), tokio::task::spawn_blocking(move || history.stop())).await;
    // Gone even when the plugins' shutdown fails: the process still ends here,
    // not in a crash, and the next host would say it had.
    let shut = manager.shutdown();
    let _ = std::fs::remove_file(data.daemon_info());
    shut?;
    tracing::info!("stopped");
    Ok(())
}

/// The progress nodes exposed as metrics ([`crate::progress::gauges`]). They are read
/// again off the tick when the progress writer has committed since, or a while has
/// passed (a finished run leaves the metrics a few minutes after it ends); the tick
/// uses the last read.
struct Exposed {
    depth: usize,
    /// The commit count and time of the last read asked for.
    asked: Option<(u64, u64)>,
    nodes: Arc<Mutex<Vec<crate::progress::Node>>>,
    reading: Arc<std::sync::atomic::AtomicBool>,
}

impl Exposed {
    const FRESH_MS: u64 = 30_000;

    fn new(depth: u64) -> Exposed {
        Exposed {
            depth: usize::try_from(depth).unwrap_or(usize::MAX),
            asked: None,
            nodes: Arc::default(),
            reading: Arc::default(),
        }
    }

    fn samples(&mut self, store: &Store, commits: u64, now_ms: u64) -> Vec<metrics::Sample> {
        let stale = self.asked.is_none_or(|(c, at)| c != commits || now_ms.saturating_sub(at) > Self::FRESH_MS);
        if stale && self.depth > 0 && !self.reading.swap(true, std::sync::atomic::Ordering::AcqRel) {
            self.asked = Some((commits, now_ms));
            let (store, nodes, reading, depth) = (store.clone(), self.nodes.clone(), self.reading.clone(), self.depth);
            tokio::task::spawn_blocking(move || {
                match crate::query::exposed_nodes(&store, depth) {
                    Ok(read) => *nodes.lock().expect("exposed nodes lock") = read,
                    Err(e) => tracing::error!("reading the runs for their metrics: {e}"),
                }
                reading.store(false, std::sync::atomic::Ordering::Release);
            });
        }
        crate::progress::gauges::samples(&self.nodes.lock().expect("exposed nodes lock"), self.depth, now_ms)
    }
}

/// Calls the metric providers and refreshes the board with their metrics, the
/// machine's, and the host's own (plugins' self-metrics, `own`).
async fn sample_plugins(
    manager: &Manager,
    board: &Mutex<Board>,
    own: Vec<metrics::Sample>,
    shared: &metrics::SharedSamples,
    machine: &sampler::Snapshot,
    now: u64,
) {
    let results = manager.collect().await;
    let live = manager.live_stats();
    // What plugins read as `host-metrics` from the next tick on: the host's
    // fixed series and each plugin's first, the runs' gauges last (a plugin
    // sees at most 1000; it reads runs through `runs` anyway).
    let mut own = [crate::plugin::manager::plugin_self_metrics(&live, now), own].concat();
    own.sort_by_key(|s| s.name.starts_with("monitor_run_"));
    *shared.write().expect("host metrics lock") = Arc::new(own.clone());
    let mut board = board.lock().expect("board lock");
    for (plugin, metrics) in results {
        for why in board.put_plugin(&plugin, metrics, now) {
            tracing::warn!(plugin = %plugin, "metric refused: {why}");
        }
    }
    let mut host = sampler::samples(machine);
    host.extend(own);
    board.put_host(host);
}

/// How each watch job's last command ended, for the `watch_failed` rules. A
/// command stopped on purpose (a restart, the host stopping) is no failure.
fn job_inputs(jobs: &crate::watch::Jobs) -> Vec<JobInput> {
    jobs.list()
        .into_iter()
        .filter_map(|view| {
            let last = view.last?;
            let stopped = matches!(last.outcome, crate::watch::Ending::Stopped { .. });
            Some(JobInput {
                job: view.name,
                project: last.root.display().to_string(),
                failed: !last.succeeded() && !stopped,
                outcome: last.outcome.to_string(),
            })
        })
        .collect()
}

/// Puts the plugin listing on the stream when a plugin's state changed
/// (`last` is what was published before).
fn publish_plugins(listing: &crate::plugin::Listing, hub: &Hub, last: &mut Vec<(String, crate::plugin::PluginState)>) {
    let states: Vec<_> = listing.plugins.iter().map(|p| (p.name.clone(), p.state.clone())).collect();
    if states != *last {
        hub.publish_plugins(listing);
        *last = states;
    }
}

/// The alert-handler plugins running now that were not at the last look;
/// `running` becomes those running now.
fn started_handlers(listing: &crate::plugin::Listing, running: &mut HashSet<String>) -> Vec<String> {
    let now: HashSet<String> = listing
        .plugins
        .iter()
        .filter(|p| {
            p.state == crate::plugin::PluginState::Running && p.roles.contains(&crate::plugin::Role::AlertHandler)
        })
        .map(|p| p.name.clone())
        .collect();
    let started = now.difference(running).cloned().collect();
    *running = now;
    started
}

/// Puts the watch jobs' events on the stream until the jobs stop.
async fn forward_job_events(mut events: tokio::sync::broadcast::Receiver<crate::watch::JobEvent>, hub: Hub) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(event) => hub.publish_job(&event),
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// The thread that loads and reloads the plugin directory; clones ask it to
/// look again. Requests that come while it works make one more scan.
#[derive(Clone)]
struct Loader {
    requests: std::sync::mpsc::Sender<()>,
}

impl Loader {
    /// Starts the thread and asks for the first scan; each finished scan is
    /// said on `scanned`.
    fn start(manager: Arc<Manager>, scanned: mpsc::UnboundedSender<()>) -> std::io::Result<Loader> {
        let (requests, inbox) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new().name("plugin-loader".into()).spawn(move || {
            let mut first = true;
            while inbox.recv().is_ok() {
                // Let a burst of events (a copy, an editor's save) settle first.
                while !first && inbox.recv_timeout(RELOAD_DEBOUNCE).is_ok() {}
                first = false;
                if let Err(e) = manager.scan() {
                    tracing::error!("loading plugins: {e}");
                }
                let _ = scanned.send(());
            }
        })?;
        let loader = Loader { requests };
        loader.rescan();
        Ok(loader)
    }

    fn rescan(&self) {
        let _ = self.requests.send(());
    }
}

/// Asks for a scan on every change in the plugin directory.
fn watch(dir: &Path, loader: Loader) -> anyhow::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(e) if e.kind.is_access() => {}
            Ok(_) => loader.rescan(),
            // An overflowed queue loses events: rescan everything.
            Err(e) => {
                tracing::warn!("plugin directory watch: {e}; rescanning");
                loader.rescan();
            }
        }
    })?;
    watcher
        .watch(dir, notify::RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch plugin directory {}", dir.display()))?;
    Ok(watcher)
}

/// Listens on `listen`; with port 0, on the port of the host's last run when
/// it is free, so a page or a tunnel opened on it finds the host again.
async fn bind(data: &DataDir, listen: &str) -> anyhow::Result<api::server::Listening> {
    let last = std::fs::read_to_string(data.last_addr()).ok().and_then(|text| text.trim().parse::<SocketAddr>().ok());
    let wanted = listen.parse::<SocketAddr>().ok();
    let first = last.filter(|last| wanted.is_some_and(|w| w.port() == 0 && w.ip() == last.ip()));
    api::server::Listening::bind(listen, first).await
}

fn write_daemon_info(data: &DataDir, info: &DaemonInfo) -> anyhow::Result<()> {
    let path = data.daemon_info();
    let tmp = path.with_extension("json.tmp");
    crate::paths::write_private(&tmp, &serde_json::to_vec(info)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// The API token: made at first start, readable only by the owner.
fn load_or_create_token(path: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(token) = std::fs::read_to_string(path)
        && token.trim().len() >= 32
    {
        return Ok(token.trim().to_string());
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the API token: {e}"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write API token {}", path.display()))?;
    file.write_all(token.as_bytes())?;
    Ok(token)
}

/// How long the host's ticks take (sampling, plugins, rules, the stream; the
/// history is written on a thread of its own) and how much disk its database
/// takes, as host series.
fn host_metrics(
    ticks: &crate::plugin::stats::Latencies,
    ticks_total: u64,
    database: (u64, &crate::store::Health),
    now_ms: u64,
) -> Vec<metrics::Sample> {
    let (p50_us, p99_us) = ticks.p50_p99_us();
    let (database_bytes, health) = database;
    [
        ("monitor_ticks_total", ticks_total as f64, ""),
        ("monitor_database_healthy", f64::from(u8::from(health.healthy)), ""),
        ("monitor_tick_duration_p50_seconds", p50_us / 1e6, "seconds"),
        ("monitor_tick_duration_p99_seconds", p99_us / 1e6, "seconds"),
        ("monitor_database_bytes", database_bytes as f64, "bytes"),
    ]
    .into_iter()
    .map(|(name, value, unit)| crate::metrics::gauge(name, value, unit, now_ms))
    .collect()
}
