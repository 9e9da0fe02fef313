//! One interface for every command: it talks to the running daemon over its API,
//! or, when no daemon runs, works on the database directly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::access::{AuditEntry, Token};
use crate::alerts::{Alert, AlertState, Labels, Silence};
use crate::api::access::{CreateRequest, Created};
use crate::api::alerts::{AckRequest, Removed, ResolveRequest, SilenceRequest, TestRequest, TestResult};
use crate::api::{ApiError, BatchItem, BatchRequest, BatchResponse, BatchResult, EnableRequest, Health, RevokeRequest};
use crate::error::{CommandError, CommandResult, ErrorKind, UsageError};
use crate::fleet::{agent, refused_certificate, trusting};
pub use crate::paths::DaemonInfo;
use crate::paths::DataDir;
use crate::plugin::{Grant, Listing, PluginRecord};
use crate::progress::{Node, NodePath, Update};
pub use crate::query::KvEntry;
use crate::sampler::{ProcessSample, Snapshot};
use crate::store::alerts::HistoryEntry;
use crate::store::metrics::{SeriesListing, SeriesPoints};
use crate::store::progress::ProgressEvent;
use crate::store::space::{Compacted, Space};
use crate::watch::JobView;

pub mod fleet;
pub mod local;
pub mod pin;
pub mod sse;

pub use local::Local;

pub trait Client {
    /// Whether this client reaches a running daemon.
    fn is_live(&self) -> bool;
    fn listing(&self) -> CommandResult<Listing>;
    fn plugin(&self, name: &str) -> CommandResult<PluginRecord>;
    fn enable(&self, name: &str, grants: &[Grant]) -> CommandResult<PluginRecord>;
    fn disable(&self, name: &str) -> CommandResult<PluginRecord>;
    fn revoke(&self, name: &str, grant: &str) -> CommandResult<PluginRecord>;
    /// A plugin's key-value data, every key with its value.
    fn plugin_kv(&self, name: &str) -> CommandResult<Vec<KvEntry>>;
    /// The one-line status, through a display formatter when one is named.
    fn status(&self, format: Option<&str>) -> CommandResult<String>;
    /// Applies one progress update; the node as it is afterwards.
    fn progress(&self, path: &NodePath, update: &Update) -> CommandResult<Node>;
    /// The root node of every run.
    fn runs(&self) -> CommandResult<Vec<Node>>;
    /// A run's nodes, root first, in path order.
    fn tree(&self, run: &str) -> CommandResult<Vec<Node>>;
    /// A run's events after `since` (a sequence number; 0 for all).
    fn history(&self, run: &str, since: u64) -> CommandResult<Vec<ProgressEvent>>;
    /// A run's tree rendered by a display-formatter plugin.
    fn format_run(&self, run: &str, plugin: &str) -> CommandResult<String>;
    /// Every series in the metric history.
    fn metric_series(&self) -> CommandResult<SeriesListing>;
    /// The history since `since_ms` of the series named `name` with all of `labels`.
    fn metric_history(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        since_ms: u64,
    ) -> CommandResult<Vec<SeriesPoints>>;
    /// The alerts as they stand, optionally only those in one state.
    fn alerts(&self, state: Option<AlertState>) -> CommandResult<Vec<Alert>>;
    /// Alert transitions at or after `since_ms`, oldest first.
    fn alert_history(&self, since_ms: u64) -> CommandResult<Vec<HistoryEntry>>;
    fn ack(&self, id: &str, by: &str, note: &str) -> CommandResult<HistoryEntry>;
    fn resolve(&self, id: &str) -> CommandResult<HistoryEntry>;
    /// Silences alerts matching `matchers` for `duration` (like `2h`).
    fn silence(&self, matchers: &Labels, duration: &str) -> CommandResult<Silence>;
    fn unsilence(&self, id: u64) -> CommandResult<()>;
    fn silences(&self) -> CommandResult<Vec<Silence>>;
    /// Sends a synthetic alert of `rule` through the routes; each handler's outcome.
    fn test_alert(&self, rule: &str) -> CommandResult<Vec<TestResult>>;
    /// The machine as last sampled.
    fn resources(&self) -> CommandResult<Snapshot>;
    /// Every process as last sampled, busiest first.
    fn processes(&self) -> CommandResult<Vec<ProcessSample>>;
    /// What takes the database's space.
    fn space(&self) -> CommandResult<Space>;
    /// Gives the database's free pages back to the file system.
    fn compact(&self) -> CommandResult<Compacted>;
    /// Every API token, revoked ones included.
    fn tokens(&self) -> CommandResult<Vec<Token>>;
    /// Makes a token; its secret is in the answer only.
    fn token_create(&self, request: &CreateRequest) -> CommandResult<Created>;
    fn token_revoke(&self, name: &str) -> CommandResult<Token>;
    /// The changes made at or after `since_ms`, oldest first.
    fn audit(&self, since_ms: u64) -> CommandResult<Vec<AuditEntry>>;
    /// The running host's watch jobs.
    fn jobs(&self) -> CommandResult<Vec<JobView>> {
        Err(no_host_for_jobs())
    }
    /// `pause`, `resume` or `run` a watch job of the running host.
    fn job_action(&self, name: &str, action: &str) -> CommandResult<JobView> {
        let _ = (name, action);
        Err(no_host_for_jobs())
    }
}

/// Watch jobs live in the running host; without one there is nothing to show or change.
fn no_host_for_jobs() -> CommandError {
    CommandError::new(
        ErrorKind::NeedsHost,
        "no monitor host is running on this data directory; watch jobs run inside it: start it with 'monitor run --config FILE' (jobs are [[watch]] tables)",
    )
}

/// The error of a command that needs the host of `data` when none runs there.
pub fn no_host(data: &DataDir, hint: &str) -> CommandError {
    CommandError::new(
        ErrorKind::NeedsHost,
        format!("no monitor host is running on {}; start one with 'monitor run'{hint}", data.root.display()),
    )
}

/// The host named by `--url` (with `--token`), for every command of this process.
static REMOTE: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

/// Points every command of this process at a host elsewhere: `url` like
/// `http://gpu-box-1:8750` (its `api.listen`), `token` the content of its `api-token`.
pub fn use_remote(url: &str, token: Option<&str>) -> Result<(), UsageError> {
    let base = crate::fleet::parse_url(url).map_err(|e| UsageError(format!("--url {e}")))?;
    let Some(token) = token.filter(|t| !t.trim().is_empty()) else {
        return Err(UsageError(format!(
            "--url '{url}' needs the host's API token; pass --token TOKEN or set MONITOR_TOKEN to the content of api-token in its data directory"
        )));
    };
    let _ = REMOTE.set((base, token.trim().to_string()));
    Ok(())
}

/// The host `--url` named, if any.
pub fn remote() -> Option<Remote> {
    REMOTE.get().map(|(base, token)| Remote::new(base, token))
}

/// What to trust at `addr` over https: its pin, else the Mozilla roots if they
/// vouch for it, else what it shows now, pinned.
fn trust(addr: &str, timeout: Duration) -> (ureq::tls::TlsConfig, Option<pin::Pin>) {
    let file = pin::known_hosts();
    if let Some(pin) = pin::pinned(&file, addr) {
        return (trusting(std::slice::from_ref(&pin.cert)), Some(pin));
    }
    let roots = ureq::tls::TlsConfig::default();
    let probe = agent(&roots, Some(timeout)).get(format!("https://{addr}/v1/health")).call();
    if !probe.as_ref().is_err_and(refused_certificate) {
        return (roots, None);
    }
    let Some(cert) = pin::presented(addr, timeout).ok().and_then(|chain| chain.last().cloned()) else {
        return (roots, None);
    };
    let sha256 = crate::tls::fingerprint(&cert);
    match pin::pin(&file, addr, &cert) {
        Ok(()) => eprintln!(
            "monitor: pinned the TLS certificate of {addr} (sha256 {sha256}) in {}; from now on another one is refused",
            file.display()
        ),
        Err(e) => eprintln!(
            "monitor: trusting the TLS certificate of {addr} (sha256 {sha256}) this once: cannot write {}: {e}",
            file.display()
        ),
    }
    let line = pin::pinned(&file, addr).map_or(0, |p| p.line);
    (trusting(std::slice::from_ref(&cert)), Some(pin::Pin { line, sha256, cert }))
}

/// The host `--url` names, else the daemon if it runs, else the database.
/// `plugins_dir` lets the offline client find plugins the database does not know yet.
pub fn connect(data: &DataDir, plugins_dir: Option<PathBuf>) -> CommandResult<Box<dyn Client>> {
    match running(data)? {
        Some(remote) => Ok(Box::new(remote)),
        None => Ok(Box::new(Local::open(data, plugins_dir)?)),
    }
}

/// The host `--url` names, else the daemon of this data directory if it runs.
pub fn running(data: &DataDir) -> CommandResult<Option<Remote>> {
    match remote() {
        Some(remote) => Ok(Some(remote)),
        None => Remote::find(data),
    }
}

/// The largest answer read from a host.
const ANSWER_LIMIT: u64 = 1 << 30;

pub struct Remote {
    base: String,
    token: String,
    agent: ureq::Agent,
    /// Whom it trusts over https (by default: the Mozilla roots).
    tls: ureq::tls::TlsConfig,
    /// The pin it holds the host to, to say so when the host's certificate changed.
    pin: Option<pin::Pin>,
}

impl Remote {
    /// The host at `base` (`http://host:port` or `https://host:port`).
    pub fn new(base: &str, token: &str) -> Remote {
        Remote::with_timeout(base, token, Duration::from_secs(30))
    }

    /// A host that must answer each request within `timeout`. Over https it
    /// is held to its pinned certificate, pinned now if it has none and the
    /// Mozilla roots do not vouch for it.
    pub fn with_timeout(base: &str, token: &str, timeout: Duration) -> Remote {
        let (tls, pin) = match base.strip_prefix("https://") {
            Some(addr) => trust(addr, timeout),
            None => (ureq::tls::TlsConfig::default(), None),
        };
        let agent = agent(&tls, Some(timeout));
        Remote { base: base.to_string(), token: token.trim().to_string(), agent, tls, pin }
    }

    /// The host of this machine, over https when `trust` names the certificate to trust.
    fn local(addr: &str, token: &str, trust: Option<&std::path::Path>) -> CommandResult<Remote> {
        let Some(file) = trust else { return Ok(Remote::new(&format!("http://{addr}"), token)) };
        let chain = crate::tls::read_chain(file)?;
        let tls = trusting(&chain[chain.len() - 1..]);
        let agent = agent(&tls, Some(Duration::from_secs(30)));
        Ok(Remote { base: format!("https://{addr}"), token: token.trim().to_string(), agent, tls, pin: None })
    }

    /// The web dashboard's address, the token in its fragment (never sent by a browser).
    pub fn dashboard_link(&self) -> String {
        format!("{}{}#token={}", self.base, crate::api::dashboard::PATH, self.token)
    }

    /// Where it sends requests, like `http://127.0.0.1:8750`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The daemon named in `daemon.json`, if it answers as that process.
    pub fn find(data: &DataDir) -> CommandResult<Option<Remote>> {
        let Some(info) = DaemonInfo::read(data) else {
            return Ok(None);
        };
        let token = std::fs::read_to_string(data.token()).with_context(|| {
            format!(
                "the host runs but its token {} cannot be read; run this as the user who started it",
                data.token().display()
            )
        })?;
        let remote = Remote::local(&info.addr, &token, info.tls.as_deref())?;
        // The token goes only to a host that proves it holds it: after a crash
        // another program may answer on the old port.
        let mut challenge = [0u8; 16];
        getrandom::fill(&mut challenge).map_err(|e| anyhow::anyhow!("no randomness for the API challenge: {e}"))?;
        let challenge: String = challenge.iter().map(|b| format!("{b:02x}")).collect();
        let health = remote.agent.get(format!("{}/v1/health?challenge={challenge}", remote.base)).call();
        let Ok(mut response) = health else {
            return Ok(None);
        };
        match response.body_mut().read_json::<Health>() {
            Ok(h) if h.proof.as_deref() == Some(crate::api::proof(remote.token.as_str(), &challenge).as_str()) => {
                Ok(Some(remote))
            }
            _ => {
                tracing::warn!(
                    addr = %info.addr,
                    "something other than this data directory's host answers at the address in daemon.json; it is not sent the token"
                );
                Ok(None)
            }
        }
    }

    fn answer<T: serde::de::DeserializeOwned>(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> CommandResult<T> {
        // Answers can be large (a run of many nodes): more than ureq's 10 MiB default.
        let mut response = self.success(response)?;
        Ok(response
            .body_mut()
            .with_config()
            .limit(ANSWER_LIMIT)
            .read_json::<T>()
            .context("reading the host's answer")?)
    }

    /// The response if it is a success; the daemon's error otherwise.
    fn success(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> CommandResult<ureq::http::Response<ureq::Body>> {
        let mut response = response.map_err(|e| match &self.pin {
            Some(pin) if refused_certificate(&e) => self.changed(pin, &e),
            _ => CommandError::new(ErrorKind::Unreachable, format!("cannot reach the host at {}: {e}", self.base)),
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let message = match response.body_mut().read_json::<ApiError>() {
            Ok(e) => e.error,
            Err(_) => format!("the host answered {status}"),
        };
        Err(CommandError::new(ErrorKind::from_http_status(status), message))
    }

    /// The error of a host whose certificate is not the one pinned.
    fn changed(&self, pin: &pin::Pin, e: &ureq::Error) -> CommandError {
        let addr = self.base.trim_start_matches("https://");
        let now = match pin::presented(addr, Duration::from_secs(5)) {
            Ok(chain) => chain.last().map_or("none".into(), |c| crate::tls::fingerprint(c)),
            Err(_) => format!("unknown ({e})"),
        };
        CommandError::new(
            ErrorKind::Unreachable,
            format!(
                "the TLS certificate of {addr} is not the one pinned (sha256 {} on line {} of {}; it now shows sha256 {now}): if the host's certificate was replaced on purpose, delete that line and run again; if not, something may be between you and the host",
                pin.sha256,
                pin.line,
                pin::known_hosts().display()
            ),
        )
    }

    /// Opens the live stream (`/v1/stream?QUERY`), resuming after `cursor`;
    /// its body is read as it comes, with no time limit.
    pub fn stream(&self, query: &str, cursor: Option<&str>) -> CommandResult<impl std::io::BufRead + use<>> {
        let mut request = agent(&self.tls, None)
            .get(format!("{}/v1/stream?{query}", self.base))
            .header("Authorization", format!("Bearer {}", self.token));
        if let Some(cursor) = cursor {
            request = request.header("Last-Event-ID", cursor);
        }
        let response = self.success(request.call())?;
        Ok(std::io::BufReader::new(response.into_body().into_reader()))
    }

    /// Sends many progress updates in one request; one result per update.
    pub fn progress_batch(&self, updates: Vec<BatchItem>) -> CommandResult<Vec<BatchResult>> {
        let answer: BatchResponse = self.post("/v1/progress", &BatchRequest { updates })?;
        Ok(answer.results)
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> CommandResult<T> {
        let response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.answer(response)
    }

    fn post<T: serde::de::DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> CommandResult<T> {
        let response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body);
        self.answer(response)
    }
}

impl Client for Remote {
    fn is_live(&self) -> bool {
        true
    }

    fn listing(&self) -> CommandResult<Listing> {
        self.get("/v1/plugins")
    }

    fn plugin(&self, name: &str) -> CommandResult<PluginRecord> {
        self.get(&format!("/v1/plugins/{name}"))
    }

    fn enable(&self, name: &str, grants: &[Grant]) -> CommandResult<PluginRecord> {
        self.post(&format!("/v1/plugins/{name}/enable"), &EnableRequest { grants: grants.to_vec() })
    }

    fn disable(&self, name: &str) -> CommandResult<PluginRecord> {
        self.post(&format!("/v1/plugins/{name}/disable"), &serde_json::json!({}))
    }

    fn revoke(&self, name: &str, grant: &str) -> CommandResult<PluginRecord> {
        self.post(&format!("/v1/plugins/{name}/revoke"), &RevokeRequest { grant: grant.into() })
    }

    fn plugin_kv(&self, name: &str) -> CommandResult<Vec<KvEntry>> {
        self.get(&format!("/v1/plugins/{name}/kv"))
    }

    fn progress(&self, path: &NodePath, update: &Update) -> CommandResult<Node> {
        self.post(&format!("/v1/progress/{path}"), update)
    }

    fn runs(&self) -> CommandResult<Vec<Node>> {
        self.get("/v1/runs")
    }

    fn tree(&self, run: &str) -> CommandResult<Vec<Node>> {
        self.get(&format!("/v1/runs/{run}"))
    }

    fn history(&self, run: &str, since: u64) -> CommandResult<Vec<ProgressEvent>> {
        self.get(&format!("/v1/runs/{run}/events?since={since}"))
    }

    fn status(&self, format: Option<&str>) -> CommandResult<String> {
        self.text("/v1/status", format)
    }

    fn format_run(&self, run: &str, plugin: &str) -> CommandResult<String> {
        self.text(&format!("/v1/runs/{run}"), Some(plugin))
    }

    fn metric_series(&self) -> CommandResult<SeriesListing> {
        self.get("/v1/metrics/series")
    }

    fn metric_history(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        since_ms: u64,
    ) -> CommandResult<Vec<SeriesPoints>> {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let response = self
            .agent
            .get(format!("{}/v1/metrics/history", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .query("name", name)
            .query("since_ms", since_ms.to_string())
            .query("labels", labels.join(","))
            .call();
        self.answer(response)
    }

    fn alerts(&self, state: Option<AlertState>) -> CommandResult<Vec<Alert>> {
        match state {
            Some(state) => self.get(&format!("/v1/alerts?state={state}")),
            None => self.get("/v1/alerts"),
        }
    }

    fn alert_history(&self, since_ms: u64) -> CommandResult<Vec<HistoryEntry>> {
        self.get(&format!("/v1/alerts/history?since_ms={since_ms}"))
    }

    fn ack(&self, id: &str, by: &str, note: &str) -> CommandResult<HistoryEntry> {
        self.post("/v1/alerts/ack", &AckRequest { id: id.into(), by: by.into(), note: note.into() })
    }

    fn resolve(&self, id: &str) -> CommandResult<HistoryEntry> {
        self.post("/v1/alerts/resolve", &ResolveRequest { id: id.into() })
    }

    fn silence(&self, matchers: &Labels, duration: &str) -> CommandResult<Silence> {
        let request = SilenceRequest { matchers: matchers.clone(), for_: Some(duration.into()), until_ms: None };
        self.post("/v1/alerts/silences", &request)
    }

    fn unsilence(&self, id: u64) -> CommandResult<()> {
        let response = self
            .agent
            .delete(format!("{}/v1/alerts/silences/{id}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.answer::<Removed>(response).map(drop)
    }

    fn silences(&self) -> CommandResult<Vec<Silence>> {
        self.get("/v1/alerts/silences")
    }

    fn tokens(&self) -> CommandResult<Vec<Token>> {
        self.get("/v1/tokens")
    }

    fn token_create(&self, request: &CreateRequest) -> CommandResult<Created> {
        self.post("/v1/tokens", request)
    }

    fn token_revoke(&self, name: &str) -> CommandResult<Token> {
        self.post(&format!("/v1/tokens/{name}/revoke"), &serde_json::json!({}))
    }

    fn audit(&self, since_ms: u64) -> CommandResult<Vec<AuditEntry>> {
        self.get(&format!("/v1/audit?since_ms={since_ms}"))
    }

    fn test_alert(&self, rule: &str) -> CommandResult<Vec<TestResult>> {
        self.post("/v1/alerts/test", &TestRequest { rule: rule.into() })
    }

    fn jobs(&self) -> CommandResult<Vec<JobView>> {
        self.get("/v1/jobs")
    }

    fn job_action(&self, name: &str, action: &str) -> CommandResult<JobView> {
        self.post(&format!("/v1/jobs/{name}/{action}"), &serde_json::json!({}))
    }

    fn resources(&self) -> CommandResult<Snapshot> {
        self.get("/v1/resources")
    }

    fn processes(&self) -> CommandResult<Vec<ProcessSample>> {
        self.get("/v1/processes")
    }

    fn space(&self) -> CommandResult<Space> {
        self.get("/v1/db/space")
    }

    fn compact(&self) -> CommandResult<Compacted> {
        self.post("/v1/db/compact", &serde_json::json!({}))
    }
}

impl Remote {
    /// `GET path`, as text rendered by the display formatter `format`.
    fn text(&self, path: &str, format: Option<&str>) -> CommandResult<String> {
        let mut request =
            self.agent.get(format!("{}{path}", self.base)).header("Authorization", format!("Bearer {}", self.token));
        if let Some(plugin) = format {
            request = request.query("format", plugin);
        }
        let mut response = self.success(request.call())?;
        Ok(response.body_mut().read_to_string().context("reading the host's answer")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_needs_a_token() {
        assert!(use_remote("http://x:1", Some(" ")).unwrap_err().0.contains("needs the host's API token"));
    }
}
