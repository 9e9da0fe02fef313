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
//!
//! An Alertmanager handler ([`super::alertmanager`]) posts each transition as
//! Alertmanager's API wants it, to every Alertmanager it names (a retry goes
//! only to those that failed; the delivery counts as delivered once all took
//! it), and its task also sends the alerts standing now every `resend`
//! interval: one post at a time, so an Alertmanager that is down never
//! gathers a pile of them, and a resend that is due while one is still being
//! tried is made once that one is over.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::alertmanager::{self, Alertmanager, PostableAlert};
use super::lifecycle::{Alert, Transition};
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

/// The alerts as they stand at a time (what `GET /v1/alerts` lists), for the
/// Alertmanager handlers' resends; `None` once the host that keeps them is gone.
pub type CurrentAlerts = Arc<dyn Fn(u64) -> Option<Vec<Alert>> + Send + Sync>;

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
    /// What the Alertmanager handlers send again every `resend`.
    current: Option<CurrentAlerts>,
}

impl Dispatcher {
    /// `manager` delivers to alert-handler plugins; without it, plugin targets fail.
    pub fn new(routing: Routing, manager: Option<Arc<Manager>>, runtime: tokio::runtime::Handle) -> Dispatcher {
        let host = sysinfo::System::host_name().unwrap_or_default();
        Dispatcher {
            routing,
            manager,
            host,
            queues: Mutex::default(),
            counters: Arc::default(),
            runtime,
            current: None,
        }
    }

    /// Starts every Alertmanager handler's task now, with `current` for its
    /// resends: from the host's start, not its first transition, so the alerts
    /// still firing after a restart reach the Alertmanagers again.
    pub fn resend_from(mut self, current: CurrentAlerts) -> Dispatcher {
        self.current = Some(current);
        {
            let mut queues = self.queues.lock().expect("queues lock");
            for handler in self.routing.handlers.iter().filter(|h| h.alertmanager.is_some()) {
                let target = Target::Handler(handler.name.clone());
                let queue = self.spawn(&target);
                queues.insert(target, queue);
            }
        }
        self
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
        let queue = queues.entry(target.clone()).or_insert_with(|| self.spawn(&target));
        if let Err(mpsc::error::TrySendError::Full(_) | mpsc::error::TrySendError::Closed(_)) = queue.try_send(job) {
            tracing::warn!(handler = %target.name(), "alert handler queue full: an alert was dropped");
            self.counters.lock().expect("counters lock").entry(target.name()).or_default().dropped += 1;
        }
    }

    /// A queue and a task for `target`.
    fn spawn(&self, target: &Target) -> mpsc::Sender<Dispatch> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let handler = match target {
            Target::Handler(name) => self.routing.handler(name).cloned(),
            _ => None,
        };
        let agent = webhook_agent(handler.as_ref());
        let resend = match (&handler, &self.current) {
            (Some(h), Some(current)) if h.alertmanager.is_some() => {
                Some(Resend { current: current.clone(), routing: self.routing.clone() })
            }
            _ => None,
        };
        let delivery = Delivery {
            target: target.clone(),
            handler,
            manager: self.manager.clone(),
            host: self.host.clone(),
            counters: self.counters.clone(),
            agent,
            resend,
        };
        self.runtime.spawn(delivery.run(rx));
        tx
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
    /// An Alertmanager handler's source of the alerts it sends again.
    resend: Option<Resend>,
}

/// What an Alertmanager handler's resends need: the alerts now, and the
/// routes, to send again only what its routes send it.
struct Resend {
    current: CurrentAlerts,
    routing: Routing,
}

#[derive(Serialize)]
struct Payload<'a> {
    host: &'a str,
    #[serde(flatten)]
    entry: &'a HistoryEntry,
}

impl Delivery {
    async fn run(self, mut jobs: mpsc::Receiver<Dispatch>) {
        if let Some(am) = self.handler.as_ref().and_then(|h| h.alertmanager.clone()) {
            self.run_alertmanager(am, jobs).await;
            return;
        }
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
            self.count(Some(latency), tries, &outcome);
            if let Err(e) = &outcome {
                tracing::warn!(handler = %name, alert = %job.entry.transition.id, "alert not delivered after {} tries: {e}", tries + 1);
            }
            if let Some(reply) = job.reply {
                let _ = reply.send(outcome);
            }
        }
    }

    /// One delivery's outcome in the handler's counters; `latency` from the
    /// sample that caused it, when there was one.
    fn count(&self, latency: Option<Duration>, tries: u32, outcome: &DeliveryResult) {
        let mut counters = self.counters.lock().expect("counters lock");
        let c = counters.entry(self.target.name()).or_default();
        if let Some(latency) = latency {
            c.latency.record(latency);
        }
        c.retries += u64::from(tries);
        match outcome {
            Ok(()) => c.delivered += 1,
            Err(e) => {
                c.failed += 1;
                c.last_error = Some(e.clone());
            }
        }
    }

    /// An Alertmanager handler's task: each routed transition at once, and
    /// every `resend` the alerts standing now; one post at a time.
    async fn run_alertmanager(self, am: Alertmanager, mut jobs: mpsc::Receiver<Dispatch>) {
        let name = self.target.name();
        let mut resend = tokio::time::interval(am.resend);
        // A resend held up by a slow or failing Alertmanager is not followed by a burst.
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                job = jobs.recv() => {
                    let Some(job) = job else { return };
                    let latency = job.since.elapsed();
                    let now_ms = crate::sampler::now_ms();
                    let alert =
                        alertmanager::from_transition(&job.entry.transition, &self.host, now_ms, am.ends_after_ms());
                    let (outcome, tries) = self.post_alertmanager(&am, &[alert]).await;
                    self.count(Some(latency), tries, &outcome);
                    if let Err(e) = &outcome {
                        tracing::warn!(handler = %name, alert = %job.entry.transition.id, "alert not delivered after {} tries: {e}", tries + 1);
                    }
                    if let Some(reply) = job.reply {
                        let _ = reply.send(outcome);
                    }
                }
                _ = resend.tick(), if self.resend.is_some() => {
                    let Some(alerts) = self.standing(&am).await else { return };
                    if alerts.is_empty() {
                        continue;
                    }
                    let (outcome, tries) = self.post_alertmanager(&am, &alerts).await;
                    self.count(None, tries, &outcome);
                    if let Err(e) = &outcome {
                        tracing::warn!(handler = %name, "{} standing alerts not sent again after {} tries: {e}", alerts.len(), tries + 1);
                    }
                }
            }
        }
    }

    /// The alerts to send again now: firing or acknowledged, not silenced, and
    /// routed to this handler. `None` once the host that keeps them is gone.
    async fn standing(&self, am: &Alertmanager) -> Option<Vec<PostableAlert>> {
        let resend = self.resend.as_ref()?;
        let current = resend.current.clone();
        let now_ms = crate::sampler::now_ms();
        // The engine's lock may be held over a database commit: wait off the async workers.
        let alerts = tokio::task::spawn_blocking(move || (*current)(now_ms)).await.ok()??;
        Some(
            alerts
                .iter()
                .filter(|a| alertmanager::resent(a))
                .filter(|a| resend.routing.targets(&alertmanager::as_repeat(a)).contains(&self.target))
                .map(|a| alertmanager::from_alert(a, &self.host, now_ms, am.ends_after_ms()))
                .collect(),
        )
    }

    /// Posts `alerts` to every Alertmanager of the handler, each bounded by its
    /// timeout; those that fail are tried again after the backoff, doubled
    /// each time, up to the handler's retries. Returns the outcome (an error
    /// names each Alertmanager that never took them, and why) and the retries made.
    async fn post_alertmanager(&self, am: &Alertmanager, alerts: &[PostableAlert]) -> (DeliveryResult, u32) {
        let Some(handler) = &self.handler else {
            return (Err(format!("handler '{}' is not defined", self.target.name())), 0);
        };
        let body = Arc::new(serde_json::to_vec(alerts).expect("alerts serialize"));
        let mut pending = am.endpoints.clone();
        let (mut backoff, mut tries) = (handler.backoff, 0u32);
        loop {
            let posts: Vec<_> = pending
                .iter()
                .map(|endpoint| {
                    let (agent, endpoint, body) = (self.agent.clone(), endpoint.clone(), body.clone());
                    tokio::task::spawn_blocking(move || post_json(&agent, &endpoint, &body, true))
                })
                .collect();
            let mut failed: Vec<(String, String)> = Vec::new();
            for (endpoint, post) in pending.iter().zip(posts) {
                let outcome = match tokio::time::timeout(handler.timeout + Duration::from_millis(100), post).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(e)) => Err(format!("POST {endpoint}: {e}")),
                    Err(_) => Err(format!("POST {endpoint}: timed out after {:?}", handler.timeout)),
                };
                if let Err(e) = outcome {
                    failed.push((endpoint.clone(), e));
                }
            }
            if failed.is_empty() {
                return (Ok(()), tries);
            }
            if tries >= handler.retries {
                let reasons: Vec<String> = failed.into_iter().map(|(_, e)| e).collect();
                return (Err(reasons.join("; ")), tries);
            }
            tracing::debug!(handler = %self.target.name(), "{} of {} Alertmanagers failed, retrying in {backoff:?}: {}", failed.len(), am.endpoints.len(), failed[0].1);
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
            tries += 1;
            pending = failed.into_iter().map(|(endpoint, _)| endpoint).collect();
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
                        let post = tokio::task::spawn_blocking(move || post_json(&agent, &url, &payload, false));
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

/// How much of an Alertmanager's refusal goes into the error.
const REASON_BYTES: u64 = 1024;

/// One POST of the JSON `body` to `endpoint` (a webhook, an Alertmanager).
/// Blocks; `agent` bounds the time and follows no redirect. With `reason`, a
/// refusal's error carries the start of its body (Alertmanager says why there).
fn post_json(agent: &ureq::Agent, endpoint: &str, body: &[u8], reason: bool) -> DeliveryResult {
    use std::io::Read;
    let mut response = agent
        .post(endpoint)
        .header("content-type", "application/json")
        .send(body)
        .map_err(|e| format!("POST {endpoint}: {e}"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    if (300..400).contains(&code) {
        return Err(format!("POST {endpoint}: HTTP {code}, a redirect, not followed; set url to where it points"));
    }
    if !reason {
        return Err(format!("POST {endpoint}: HTTP {code}"));
    }
    // Alertmanager says why it refused (a bad label, an end before the start), as a JSON string.
    let mut text = Vec::new();
    let mut reader = response.body_mut().as_reader().take(REASON_BYTES);
    let _ = reader.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    let reason = crate::text::line(text.trim().trim_matches('"'), 300);
    if reason.is_empty() {
        Err(format!("POST {endpoint}: HTTP {code}"))
    } else {
        Err(format!("POST {endpoint}: HTTP {code}: {reason}"))
    }
}
