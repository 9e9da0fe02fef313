//! Delivery: hands each routed transition to its handlers.
//!
//! Every handler (and every alert-handler plugin) has its own queue and task,
//! so a slow or failing one never holds up the others, and each receives its
//! alerts in order. A delivery that fails or times out is tried again after the
//! handler's backoff, doubled each time, up to its retries; then it is given up,
//! logged and counted. A full queue (1,024 waiting) drops the newest delivery,
//! counted as `dropped`.
//!
//! Commands and webhooks receive the history entry as JSON, with the host's
//! name: `{"host":"build-1","seq":42,"id":"cpu-hot","rule":"cpu-hot","level":"warning","labels":{},"from":"pending","to":"firing","value":97.0,"message":"...","at_ms":1700000000000,"silenced":false}`.
//! A command runs without a shell, in its own process group, with the JSON (and
//! a newline) on stdin; a non-zero exit is a failure and the end of its stderr the reason.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::lifecycle::Transition;
use super::route::{Action, Handler, Routing, Target};
use super::rule::Level;
use crate::plugin::Manager;
use crate::plugin::stats::Latencies;
use crate::store::alerts::HistoryEntry;

const QUEUE: usize = 1024;
/// Plugins' own per-call deadline applies; this is only the wait between tries.
const PLUGIN_BACKOFF: Duration = Duration::from_millis(500);
/// How much of a failed command's stderr goes into the reason.
const STDERR_TAIL: usize = 400;

/// One delivery's outcome, for `monitor alerts test`.
pub type DeliveryResult = Result<(), String>;

struct Dispatch {
    entry: Arc<HistoryEntry>,
    /// When the sample that caused it was taken: latency is counted from here.
    since: Instant,
    reply: Option<oneshot::Sender<DeliveryResult>>,
}

/// What the host tells about one handler.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct HandlerStatus {
    pub name: String,
    pub delivered: u64,
    /// Deliveries given up after every retry.
    pub failed: u64,
    pub retries: u64,
    pub dropped: u64,
    pub last_error: Option<String>,
    /// From the sample that raised the alert to the start of the first try.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
}

#[derive(Default)]
struct Counters {
    delivered: u64,
    failed: u64,
    retries: u64,
    dropped: u64,
    last_error: Option<String>,
    latency: Latencies,
}

/// Routes transitions to handlers; see the [module docs](self).
pub struct Dispatcher {
    routing: Routing,
    manager: Option<Arc<Manager>>,
    host: String,
    queues: Mutex<HashMap<Target, mpsc::Sender<Dispatch>>>,
    counters: Arc<Mutex<BTreeMap<String, Counters>>>,
    runtime: tokio::runtime::Handle,
}

impl Dispatcher {
    /// `manager` delivers to alert-handler plugins; without it, plugin targets fail.
    pub fn new(routing: Routing, manager: Option<Arc<Manager>>, runtime: tokio::runtime::Handle) -> Dispatcher {
        let host = sysinfo::System::host_name().unwrap_or_default();
        Dispatcher { routing, manager, host, queues: Mutex::default(), counters: Arc::default(), runtime }
    }

    /// Sends every routed transition to its handlers; returns at once.
    pub fn dispatch(&self, entries: &[HistoryEntry], since: Instant) {
        for entry in entries {
            let targets = self.routing.targets(&entry.transition);
            if targets.is_empty() {
                continue;
            }
            let entry = Arc::new(entry.clone());
            for target in self.expand(targets) {
                self.enqueue(target, Dispatch { entry: entry.clone(), since, reply: None });
            }
        }
    }

    /// Sends `entries` (alerts firing now) to the alert-handler plugin `plugin`, which
    /// has just started, where a route sends them to plugins.
    pub fn catch_up(&self, plugin: &str, entries: &[HistoryEntry]) {
        for entry in entries {
            if self.routing.targets(&entry.transition).contains(&Target::Plugins) {
                let job = Dispatch { entry: Arc::new(entry.clone()), since: Instant::now(), reply: None };
                self.enqueue(Target::Plugin(plugin.to_string()), job);
            }
        }
    }

    /// Sends one transition to the handlers its routes name (ignoring
    /// silences) and waits for each outcome, retries included.
    pub async fn test(&self, entry: HistoryEntry) -> Vec<(String, DeliveryResult)> {
        let mut routed = entry.clone();
        routed.transition.silenced = false;
        let targets = self.expand(self.routing.targets(&routed.transition));
        let entry = Arc::new(entry);
        let mut waiting = Vec::new();
        for target in targets {
            let (reply, outcome) = oneshot::channel();
            waiting.push((target.name(), outcome));
            self.enqueue(target, Dispatch { entry: entry.clone(), since: Instant::now(), reply: Some(reply) });
        }
        let mut out = Vec::new();
        for (name, outcome) in waiting {
            out.push((name, outcome.await.unwrap_or_else(|_| Err("the delivery was dropped: queue full".into()))));
        }
        out
    }

    /// Every handler's counters, by name.
    pub fn status(&self) -> Vec<HandlerStatus> {
        let counters = self.counters.lock().expect("counters lock");
        counters
            .iter()
            .map(|(name, c)| {
                let (p50, p99) = c.latency.p50_p99_us();
                HandlerStatus {
                    name: name.clone(),
                    delivered: c.delivered,
                    failed: c.failed,
                    retries: c.retries,
                    dropped: c.dropped,
                    last_error: c.last_error.clone(),
                    latency_p50_ms: p50 / 1e3,
                    latency_p99_ms: p99 / 1e3,
                }
            })
            .collect()
    }

    /// `plugins` becomes each running alert-handler plugin.
    fn expand(&self, targets: Vec<Target>) -> Vec<Target> {
        let mut out = Vec::with_capacity(targets.len());
        for target in targets {
            if target == Target::Plugins {
                for name in self.manager.as_ref().map(|m| m.alert_handlers()).unwrap_or_default() {
                    out.push(Target::Plugin(name));
                }
            } else {
                out.push(target);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn enqueue(&self, target: Target, job: Dispatch) {
        if target == Target::Log {
            log(&job.entry.transition);
            let mut counters = self.counters.lock().expect("counters lock");
            let c = counters.entry(target.name()).or_default();
            c.delivered += 1;
            c.latency.record(job.since.elapsed());
            if let Some(reply) = job.reply {
                let _ = reply.send(Ok(()));
            }
            return;
        }
        let mut queues = self.queues.lock().expect("queues lock");
        let queue = queues.entry(target.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            let handler = match &target {
                Target::Handler(name) => self.routing.handler(name).cloned(),
                _ => None,
            };
            let agent = webhook_agent(handler.as_ref());
            let delivery = Delivery {
                target: target.clone(),
                handler,
                manager: self.manager.clone(),
                host: self.host.clone(),
                counters: self.counters.clone(),
                agent,
            };
            self.runtime.spawn(delivery.run(rx));
            tx
        });
        if let Err(mpsc::error::TrySendError::Full(_) | mpsc::error::TrySendError::Closed(_)) = queue.try_send(job) {
            tracing::warn!(handler = %target.name(), "alert handler queue full: an alert was dropped");
            self.counters.lock().expect("counters lock").entry(target.name()).or_default().dropped += 1;
        }
    }
}

/// The HTTP client of one webhook: certificates verified (against its
/// `ca_file` when it has one), no redirect followed (an alert goes where it
/// was configured to, or fails), one try bounded by the handler's timeout.
fn webhook_agent(handler: Option<&Handler>) -> ureq::Agent {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(Action::Webhook(_, Some(ca_file))) = handler.map(|h| &h.action) {
        match super::route::read_certificates(ca_file) {
            Ok(certificates) => tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certificates)),
            Err(e) => tracing::error!("{e}; the built-in roots are used"),
        }
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(handler.map(|h| h.timeout))
        .tls_config(tls.build())
        .build();
    ureq::Agent::new_with_config(config)
}

/// The `log` handler: the host's log, at the alert's level.
fn log(t: &Transition) {
    let (id, change) = (&t.id, format!("{} → {}", t.from, t.to));
    match t.level {
        Level::Info => tracing::info!(alert = %id, level = "info", "{change}: {}", t.message),
        Level::Warning => tracing::warn!(alert = %id, level = "warning", "{change}: {}", t.message),
        Level::Error | Level::Critical => {
            tracing::error!(alert = %id, level = %t.level, "{change}: {}", t.message)
        }
    }
}

/// One handler's task.
struct Delivery {
    target: Target,
    handler: Option<Handler>,
    manager: Option<Arc<Manager>>,
    host: String,
    counters: Arc<Mutex<BTreeMap<String, Counters>>>,
    /// One HTTP client per webhook, so its connections are reused.
    agent: ureq::Agent,
}

#[derive(Serialize)]
struct Payload<'a> {
    host: &'a str,
    #[serde(flatten)]
    entry: &'a HistoryEntry,
}

impl Delivery {
    async fn run(self, mut jobs: mpsc::Receiver<Dispatch>) {
        let name = self.target.name();
        while let Some(job) = jobs.recv().await {
            let latency = job.since.elapsed();
            let (retries, mut backoff) = match &self.handler {
                Some(h) => (h.retries, h.backoff),
                None => (super::route::DEFAULT_RETRIES, PLUGIN_BACKOFF),
            };
            let mut outcome = self.try_once(&job.entry).await;
            let mut tries = 0;
            while let Err(e) = &outcome
                && tries < retries
            {
                tracing::debug!(handler = %name, alert = %job.entry.transition.id, "delivery failed, retrying in {backoff:?}: {e}");
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
                tries += 1;
                outcome = self.try_once(&job.entry).await;
            }
            {
                let mut counters = self.counters.lock().expect("counters lock");
                let c = counters.entry(name.clone()).or_default();
                c.latency.record(latency);
                c.retries += u64::from(tries);
                match &outcome {
                    Ok(()) => c.delivered += 1,
                    Err(e) => {
                        c.failed += 1;
                        c.last_error = Some(e.clone());
                    }
                }
            }
            if let Err(e) = &outcome {
                tracing::warn!(handler = %name, alert = %job.entry.transition.id, "alert not delivered after {} tries: {e}", tries + 1);
            }
            if let Some(reply) = job.reply {
                let _ = reply.send(outcome);
            }
        }
    }

    async fn try_once(&self, entry: &HistoryEntry) -> DeliveryResult {
        match (&self.target, &self.handler) {
            (Target::Plugin(name), _) => {
                let Some(manager) = &self.manager else {
                    return Err(format!("plugin '{name}' cannot run here: no host is running plugins"));
                };
                manager.handle_alert(name, entry).await.map_err(|e| e.to_string())
            }
            (_, Some(handler)) => {
                let mut payload =
                    serde_json::to_vec(&Payload { host: &self.host, entry }).expect("an alert serializes");
                payload.push(b'\n');
                let attempt = match &handler.action {
                    Action::Command(argv) => tokio::time::timeout(handler.timeout, command(argv, payload)).await,
                    Action::Webhook(url, _) => {
                        let (url, agent) = (url.clone(), self.agent.clone());
                        let post = tokio::task::spawn_blocking(move || webhook(&agent, &url, &payload));
                        tokio::time::timeout(handler.timeout + Duration::from_millis(100), async {
                            post.await.unwrap_or_else(|e| Err(e.to_string()))
                        })
                        .await
                    }
                };
                attempt.unwrap_or_else(|_| Err(format!("timed out after {:?}", handler.timeout)))
            }
            (target, None) => Err(format!("handler '{}' is not defined", target.name())),
        }
    }
}

/// Runs `argv` with `payload` on stdin. Dropping the future (a timeout) kills
/// the process group.
async fn command(argv: &[String], payload: Vec<u8>) -> DeliveryResult {
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    let group = KillGroup(child.id());
    if let Some(mut stdin) = child.stdin.take() {
        // A program that does not read its stdin is fine.
        let _ = stdin.write_all(&payload).await;
    }
    // Only the end of its stderr is kept, however much it writes.
    let mut stderr = child.stderr.take().expect("piped");
    let tail = async {
        use tokio::io::AsyncReadExt;
        let (mut tail, mut buf) = (Vec::new(), [0u8; 4096]);
        while let Ok(n @ 1..) = stderr.read(&mut buf).await {
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 2 * STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        tail
    };
    let (status, tail) = tokio::join!(child.wait(), tail);
    let status = status.map_err(|e| format!("{}: {e}", argv[0]))?;
    std::mem::forget(group);
    if status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&tail);
    let stderr = stderr.trim();
    let tail =
        crate::text::line(&stderr[stderr.floor_char_boundary(stderr.len().saturating_sub(STDERR_TAIL))..], STDERR_TAIL);
    Err(if tail.is_empty() { format!("{} {status}", argv[0]) } else { format!("{} {status}: {tail}", argv[0]) })
}

/// Kills a command's whole process group when a timeout drops its future.
struct KillGroup(Option<u32>);

impl Drop for KillGroup {
    fn drop(&mut self) {
        // The group's id is the command's PID; this reaches what it started, too.
        if let Some(pid) = self.0.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

fn webhook(agent: &ureq::Agent, url: &str, payload: &[u8]) -> DeliveryResult {
    let response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(payload)
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    match status.as_u16() {
        _ if status.is_success() => Ok(()),
        code @ 300..=399 => {
            Err(format!("POST {url}: HTTP {code}, a redirect, not followed; set url to where it points"))
        }
        code => Err(format!("POST {url}: HTTP {code}")),
    }
}
