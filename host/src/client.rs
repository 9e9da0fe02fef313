//! One interface for every command: it talks to the running daemon over its API,
//! or, when no daemon runs, works on the database directly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::alerts::{Alert, Labels, Silence, State as AlertState};
use crate::api::alerts::{AckRequest, Removed, ResolveRequest, SilenceRequest, TestRequest, TestResult};
use crate::api::{ApiError, BatchItem, BatchRequest, BatchResponse, BatchResult, EnableRequest, Health, RevokeRequest};
use crate::error::UsageError;
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

pub mod local;
pub mod sse;

pub use local::Local;

pub trait Client {
    /// Whether this client reaches a running daemon.
    fn is_live(&self) -> bool;
    fn listing(&self) -> anyhow::Result<Listing>;
    fn plugin(&self, name: &str) -> anyhow::Result<PluginRecord>;
    fn enable(&self, name: &str, grants: &[Grant]) -> anyhow::Result<PluginRecord>;
    fn disable(&self, name: &str) -> anyhow::Result<PluginRecord>;
    fn revoke(&self, name: &str, grant: &str) -> anyhow::Result<PluginRecord>;
    /// A plugin's key-value data, every key with its value.
    fn plugin_kv(&self, name: &str) -> anyhow::Result<Vec<KvEntry>>;
    /// The one-line status, through a display formatter when one is named.
    fn status(&self, format: Option<&str>) -> anyhow::Result<String>;
    /// Applies one progress update; the node as it is afterwards.
    fn progress(&self, path: &NodePath, update: &Update) -> anyhow::Result<Node>;
    /// The root node of every run.
    fn runs(&self) -> anyhow::Result<Vec<Node>>;
    /// A run's nodes, root first, in path order.
    fn tree(&self, run: &str) -> anyhow::Result<Vec<Node>>;
    /// A run's events after `since` (a sequence number; 0 for all).
    fn history(&self, run: &str, since: u64) -> anyhow::Result<Vec<ProgressEvent>>;
    /// A run's tree rendered by a display-formatter plugin.
    fn format_run(&self, run: &str, plugin: &str) -> anyhow::Result<String>;
    /// Every series in the metric history.
    fn metric_series(&self) -> anyhow::Result<SeriesListing>;
    /// The history since `since_ms` of the series named `name` with all of `labels`.
    fn metric_history(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        since_ms: u64,
    ) -> anyhow::Result<Vec<SeriesPoints>>;
    /// The alerts as they stand, optionally only those in one state.
    fn alerts(&self, state: Option<AlertState>) -> anyhow::Result<Vec<Alert>>;
    /// Alert transitions at or after `since_ms`, oldest first.
    fn alert_history(&self, since_ms: u64) -> anyhow::Result<Vec<HistoryEntry>>;
    fn ack(&self, id: &str, by: &str, note: &str) -> anyhow::Result<HistoryEntry>;
    fn resolve(&self, id: &str) -> anyhow::Result<HistoryEntry>;
    /// Silences alerts matching `matchers` for `duration` (like `2h`).
    fn silence(&self, matchers: &Labels, duration: &str) -> anyhow::Result<Silence>;
    fn unsilence(&self, id: u64) -> anyhow::Result<()>;
    fn silences(&self) -> anyhow::Result<Vec<Silence>>;
    /// Sends a synthetic alert of `rule` through the routes; each handler's outcome.
    fn test_alert(&self, rule: &str) -> anyhow::Result<Vec<TestResult>>;
    /// The machine as last sampled.
    fn resources(&self) -> anyhow::Result<Snapshot>;
    /// Every process as last sampled, busiest first.
    fn processes(&self) -> anyhow::Result<Vec<ProcessSample>>;
    /// What takes the database's space.
    fn space(&self) -> anyhow::Result<Space>;
    /// Gives the database's free pages back to the file system.
    fn compact(&self) -> anyhow::Result<Compacted>;
    /// The running host's watch jobs.
    fn jobs(&self) -> anyhow::Result<Vec<JobView>> {
        Err(no_host_for_jobs())
    }
    /// `pause`, `resume` or `run` a watch job of the running host.
    fn job_action(&self, name: &str, action: &str) -> anyhow::Result<JobView> {
        let _ = (name, action);
        Err(no_host_for_jobs())
    }
}

/// Watch jobs live in the running host; without one there is nothing to show or change.
fn no_host_for_jobs() -> anyhow::Error {
    anyhow::anyhow!(
        "no monitor host is running on this data directory; watch jobs run inside it: start it with 'monitor run --config FILE' (jobs are [[watch]] tables)"
    )
}

/// The host named by `--url` (with `--token`), for every command of this process.
static REMOTE: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

/// Points every command of this process at a host elsewhere: `url` like
/// `http://gpu-box-1:8750` (its `api.listen`), `token` the content of its `api-token`.
pub fn use_remote(url: &str, token: Option<&str>) -> Result<(), UsageError> {
    let addr = parse_url(url)?;
    let Some(token) = token.filter(|t| !t.trim().is_empty()) else {
        return Err(UsageError(format!(
            "--url '{url}' needs the host's API token; pass --token TOKEN or set MONITOR_TOKEN to the content of api-token in its data directory"
        )));
    };
    let _ = REMOTE.set((addr, token.trim().to_string()));
    Ok(())
}

/// The host `--url` named, if any.
pub fn remote() -> Option<Remote> {
    REMOTE.get().map(|(addr, token)| Remote::new(addr, token))
}

/// `http://host:port`, `host:port` → `host:port`; https is refused (the API speaks plain HTTP).
fn parse_url(text: &str) -> Result<String, UsageError> {
    if text.starts_with("https://") {
        return Err(UsageError(format!(
            "--url '{text}': the host's API speaks plain HTTP; use http://, through an SSH tunnel off a private network"
        )));
    }
    let addr = text.strip_prefix("http://").unwrap_or(text).trim_end_matches('/');
    if addr.is_empty() || addr.contains('/') || !addr.contains(':') {
        return Err(UsageError(format!(
            "--url '{text}' is not a host's address; write one like http://gpu-box-1:8750"
        )));
    }
    Ok(addr.to_string())
}

/// The host `--url` names, else the daemon if it runs, else the database.
/// `plugins_dir` lets the offline client find plugins the database does not know yet.
pub fn connect(data: &DataDir, plugins_dir: Option<PathBuf>) -> anyhow::Result<Box<dyn Client>> {
    match running(data)? {
        Some(remote) => Ok(Box::new(remote)),
        None => Ok(Box::new(Local::open(data, plugins_dir)?)),
    }
}

/// The host `--url` names, else the daemon of this data directory if it runs.
pub fn running(data: &DataDir) -> anyhow::Result<Option<Remote>> {
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
}

impl Remote {
    pub fn new(addr: &str, token: &str) -> Remote {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Remote { base: format!("http://{addr}"), token: token.trim().to_string(), agent }
    }

    /// Where it sends requests, like `http://127.0.0.1:8750`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The daemon named in `daemon.json`, if it answers as that process.
    pub fn find(data: &DataDir) -> anyhow::Result<Option<Remote>> {
        let Ok(text) = std::fs::read_to_string(data.daemon_info()) else {
            return Ok(None);
        };
        let Ok(info) = serde_json::from_str::<DaemonInfo>(&text) else {
            return Ok(None);
        };
        let token = std::fs::read_to_string(data.token()).with_context(|| {
            format!(
                "the host runs but its token {} cannot be read; run this as the user who started it",
                data.token().display()
            )
        })?;
        let remote = Remote::new(&info.addr, &token);
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
    ) -> anyhow::Result<T> {
        // Answers can be large (a run of many nodes): more than ureq's 10 MiB default.
        let mut response = self.success(response)?;
        response.body_mut().with_config().limit(ANSWER_LIMIT).read_json::<T>().context("reading the host's answer")
    }

    /// The response if it is a success; the daemon's error otherwise.
    fn success(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
        let mut response = response.with_context(|| format!("cannot reach the host at {}", self.base))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        match response.body_mut().read_json::<ApiError>() {
            // The daemon refused what was asked: bad input, as when no daemon runs.
            Ok(e) if status == 400 => Err(UsageError(e.error).into()),
            Ok(e) => bail!("{}", e.error),
            Err(_) => bail!("the host answered {status}"),
        }
    }

    /// Opens the live stream (`/v1/stream?QUERY`), resuming after `cursor`;
    /// its body is read as it comes, with no time limit.
    pub fn stream(&self, query: &str, cursor: Option<&str>) -> anyhow::Result<impl std::io::BufRead + use<>> {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut request = agent
            .get(format!("{}/v1/stream?{query}", self.base))
            .header("Authorization", format!("Bearer {}", self.token));
        if let Some(cursor) = cursor {
            request = request.header("Last-Event-ID", cursor);
        }
        let response = self.success(request.call())?;
        Ok(std::io::BufReader::new(response.into_body().into_reader()))
    }

    /// Sends many progress updates in one request; one result per update.
    pub fn progress_batch(&self, updates: Vec<BatchItem>) -> anyhow::Result<Vec<BatchResult>> {
        let answer: BatchResponse = self.post("/v1/progress", &BatchRequest { updates })?;
        Ok(answer.results)
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.answer(response)
    }

    fn post<T: serde::de::DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> anyhow::Result<T> {
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

    fn listing(&self) -> anyhow::Result<Listing> {
        self.get("/v1/plugins")
    }

    fn plugin(&self, name: &str) -> anyhow::Result<PluginRecord> {
        self.get(&format!("/v1/plugins/{name}"))
    }

    fn enable(&self, name: &str, grants: &[Grant]) -> anyhow::Result<PluginRecord> {
        self.post(&format!("/v1/plugins/{name}/enable"), &EnableRequest { grants: grants.to_vec() })
    }

    fn disable(&self, name: &str) -> anyhow::Result<PluginRecord> {
        self.post(&format!("/v1/plugins/{name}/disable"), &serde_json::json!({}))
    }

    fn revoke(&self, name: &str, grant: &str) -> anyhow::Result<PluginRecord> {
        self.post(&format!("/v1/plugins/{name}/revoke"), &RevokeRequest { grant: grant.into() })
    }

    fn plugin_kv(&self, name: &str) -> anyhow::Result<Vec<KvEntry>> {
        self.get(&format!("/v1/plugins/{name}/kv"))
    }

    fn progress(&self, path: &NodePath, update: &Update) -> anyhow::Result<Node> {
        self.post(&format!("/v1/progress/{path}"), update)
    }

    fn runs(&self) -> anyhow::Result<Vec<Node>> {
        self.get("/v1/runs")
    }

    fn tree(&self, run: &str) -> anyhow::Result<Vec<Node>> {
        self.get(&format!("/v1/runs/{run}"))
    }

    fn history(&self, run: &str, since: u64) -> anyhow::Result<Vec<ProgressEvent>> {
        self.get(&format!("/v1/runs/{run}/events?since={since}"))
    }

    fn status(&self, format: Option<&str>) -> anyhow::Result<String> {
        self.text("/v1/status", format)
    }

    fn format_run(&self, run: &str, plugin: &str) -> anyhow::Result<String> {
        self.text(&format!("/v1/runs/{run}"), Some(plugin))
    }

    fn metric_series(&self) -> anyhow::Result<SeriesListing> {
        self.get("/v1/metrics/series")
    }

    fn metric_history(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        since_ms: u64,
    ) -> anyhow::Result<Vec<SeriesPoints>> {
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

    fn alerts(&self, state: Option<AlertState>) -> anyhow::Result<Vec<Alert>> {
        match state {
            Some(state) => self.get(&format!("/v1/alerts?state={state}")),
            None => self.get("/v1/alerts"),
        }
    }

    fn alert_history(&self, since_ms: u64) -> anyhow::Result<Vec<HistoryEntry>> {
        self.get(&format!("/v1/alerts/history?since_ms={since_ms}"))
    }

    fn ack(&self, id: &str, by: &str, note: &str) -> anyhow::Result<HistoryEntry> {
        self.post("/v1/alerts/ack", &AckRequest { id: id.into(), by: by.into(), note: note.into() })
    }

    fn resolve(&self, id: &str) -> anyhow::Result<HistoryEntry> {
        self.post("/v1/alerts/resolve", &ResolveRequest { id: id.into() })
    }

    fn silence(&self, matchers: &Labels, duration: &str) -> anyhow::Result<Silence> {
        let request = SilenceRequest { matchers: matchers.clone(), for_: Some(duration.into()), until_ms: None };
        self.post("/v1/alerts/silences", &request)
    }

    fn unsilence(&self, id: u64) -> anyhow::Result<()> {
        let response = self
            .agent
            .delete(format!("{}/v1/alerts/silences/{id}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.answer::<Removed>(response).map(drop)
    }

    fn silences(&self) -> anyhow::Result<Vec<Silence>> {
        self.get("/v1/alerts/silences")
    }

    fn test_alert(&self, rule: &str) -> anyhow::Result<Vec<TestResult>> {
        self.post("/v1/alerts/test", &TestRequest { rule: rule.into() })
    }

    fn jobs(&self) -> anyhow::Result<Vec<JobView>> {
        self.get("/v1/jobs")
    }

    fn job_action(&self, name: &str, action: &str) -> anyhow::Result<JobView> {
        self.post(&format!("/v1/jobs/{name}/{action}"), &serde_json::json!({}))
    }

    fn resources(&self) -> anyhow::Result<Snapshot> {
        self.get("/v1/resources")
    }

    fn processes(&self) -> anyhow::Result<Vec<ProcessSample>> {
        self.get("/v1/processes")
    }

    fn space(&self) -> anyhow::Result<Space> {
        self.get("/v1/db/space")
    }

    fn compact(&self) -> anyhow::Result<Compacted> {
        self.post("/v1/db/compact", &serde_json::json!({}))
    }
}

impl Remote {
    /// `GET path`, as text rendered by the display formatter `format`.
    fn text(&self, path: &str, format: Option<&str>) -> anyhow::Result<String> {
        let mut request =
            self.agent.get(format!("{}{path}", self.base)).header("Authorization", format!("Bearer {}", self.token));
        if let Some(plugin) = format {
            request = request.query("format", plugin);
        }
        let mut response = request.call().with_context(|| format!("cannot reach the host at {}", self.base))?;
        if response.status().is_success() {
            return Ok(response.body_mut().read_to_string()?);
        }
        match response.body_mut().read_json::<ApiError>() {
            Ok(e) => bail!("{}", e.error),
            Err(_) => bail!("the host answered {}", response.status()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_host_and_port() {
        assert_eq!(parse_url("http://gpu-box:8750/").unwrap(), "gpu-box:8750");
        assert_eq!(parse_url("127.0.0.1:9").unwrap(), "127.0.0.1:9");
        assert!(parse_url("https://x:1").unwrap_err().0.contains("plain HTTP"));
        assert!(parse_url("http://x").unwrap_err().0.contains("like http://gpu-box-1:8750"));
        assert!(parse_url("http://x:1/v1").is_err());
        assert!(use_remote("http://x:1", Some(" ")).unwrap_err().0.contains("needs the host's API token"));
    }
}
