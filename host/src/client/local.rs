//! The client used when no daemon runs: changes go straight to the database and
//! take effect when the host next starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Client;
use crate::access::{AuditEntry, DETAIL_CHARS, Token};
use crate::alerts::service::stored_alerts;
use crate::alerts::{Alert, AlertState, Labels, Silence};
use crate::api::access::{CreateRequest, Created};
use crate::api::alerts::{HISTORY_LIMIT, TestResult};
use crate::error::{CommandError, CommandResult, ErrorKind, UsageError};
use crate::paths::DataDir;
use crate::plugin::capability::HostDirs;
use crate::plugin::manager::inspect;
use crate::plugin::sandbox::SandboxSpec;
use crate::plugin::{Grant, Limits, Listing, PluginRecord, Runtime};
use crate::progress::{Node, NodePath, Update};
use crate::query::{history, series_listing, tree};
use crate::sampler::now_ms;
use crate::sampler::{ProcessSample, Sampler, Snapshot};
use crate::store::alerts::HistoryEntry;
use crate::store::{Store, StoreError};

/// How long an offline command waits for another one to let go of the database.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// CPU use and rates are differences between two samples this far apart.
const SAMPLE_GAP: std::time::Duration = std::time::Duration::from_millis(250);
use crate::store::metrics::{SeriesListing, SeriesPoints};
use crate::store::progress::ProgressEvent;
use crate::store::space::{Compacted, Space};

pub struct Local {
    store: Store,
    data: DataDir,
    plugins_dir: Option<PathBuf>,
}

impl Local {
    /// Opens the database. Another command may hold it for a moment (offline,
    /// each command opens it in turn), so a busy database is retried for a while.
    pub fn open(data: &DataDir, plugins_dir: Option<PathBuf>) -> CommandResult<Local> {
        // Files it records are named as the host names them: by their full path,
        // so that grants made here bind to the file the host sees.
        let plugins_dir = plugins_dir.map(|dir| dir.canonicalize().unwrap_or(dir));
        data.create().with_context(|| format!("cannot create data directory {}", data.root.display()))?;
        let deadline = std::time::Instant::now() + BUSY_WAIT;
        loop {
            match Store::open(&data.database()) {
                Ok(store) => return Ok(Local { store, data: data.clone(), plugins_dir }),
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn known(&self) -> CommandResult<String> {
        let names: Vec<String> = self.store.plugins()?.into_iter().map(|r| r.name).collect();
        Ok(if names.is_empty() { "none".into() } else { names.join(", ") })
    }

    /// The record for `name`, looking in the plugin directory for a plugin the
    /// database has not seen yet.
    fn record(&self, name: &str) -> CommandResult<PluginRecord> {
        if let Some(record) = self.store.plugin(name)? {
            return Ok(record);
        }
        if let Some(dir) = &self.plugins_dir {
            if self.discover(dir, name)? {
                return Ok(self.store.plugin(name)?.expect("just recorded"));
            }
            return Err(CommandError::new(
                ErrorKind::NotFound,
                format!(
                    "no plugin named '{name}' in {} or the database; known plugins: {}",
                    dir.display(),
                    self.known()?
                ),
            ));
        }
        Err(CommandError::new(
            ErrorKind::NotFound,
            format!(
                "no plugin named '{name}'; known plugins: {}; pass --plugins DIR to find a plugin the host has not loaded yet",
                self.known()?
            ),
        ))
    }

    fn discover(&self, dir: &Path, name: &str) -> CommandResult<bool> {
        let runtime = Runtime::new(Some(self.data.compile_cache()))
            .map_err(|e| anyhow::anyhow!("{e:#}"))?
            .compile_with(crate::config::HostConfig::default().compiler());
        let spec = SandboxSpec::bare("(loading)");
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read plugin directory {}", dir.display()))?;
        for path in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "wasm")) {
            let max = crate::config::HostConfig::default().plugins.max_file_mib << 20;
            let Ok(bytes) = crate::plugin::manager::read_capped(&path, max) else {
                continue;
            };
            let Ok((loaded, desc)) = inspect(&runtime, &spec, Limits::default(), &path, &bytes) else {
                continue;
            };
            if desc.name == name {
                self.store.update_plugin(name, |r| r.observe(path.clone(), &loaded.hash, &desc))?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn change(
        &self,
        name: &str,
        f: impl FnOnce(&mut PluginRecord) -> CommandResult<()>,
    ) -> CommandResult<PluginRecord> {
        self.record(name)?;
        self.store.update_plugin(name, |r| {
            f(r)?;
            r.state = r.desired_state();
            Ok(r.clone())
        })?
    }
}

impl Client for Local {
    fn is_live(&self) -> bool {
        false
    }

    fn listing(&self) -> CommandResult<Listing> {
        Ok(Listing { plugins: self.store.plugins()?, problems: Vec::new() })
    }

    fn plugin(&self, name: &str) -> CommandResult<PluginRecord> {
        self.record(name)
    }

    fn enable(&self, name: &str, grants: &[Grant]) -> CommandResult<PluginRecord> {
        let enabled = (|| {
            let record = self.record(name)?;
            let plugins = self.plugins_dir.clone().or_else(|| record.file.as_deref()?.parent().map(Path::to_path_buf));
            let dirs = HostDirs::new(&self.data.root, plugins.as_deref().unwrap_or(&self.data.root));
            for grant in grants {
                dirs.check(grant).map_err(|e| UsageError(e.to_string()))?;
            }
            self.change(name, |r| {
                r.enable(grants);
                Ok(())
            })
        })();
        let detail = serde_json::json!({ "grants": grants }).to_string();
        self.audited(&format!("/v1/plugins/{name}/enable"), detail, enabled)
    }

    fn disable(&self, name: &str) -> CommandResult<PluginRecord> {
        let disabled = self.change(name, |r| {
            r.disable();
            Ok(())
        });
        self.audited(&format!("/v1/plugins/{name}/disable"), String::new(), disabled)
    }

    fn plugin_kv(&self, name: &str) -> CommandResult<Vec<super::KvEntry>> {
        self.record(name)?;
        Ok(self.store.kv_entries(name)?.into_iter().map(|(k, v)| super::KvEntry::new(k, v)).collect())
    }

    fn revoke(&self, name: &str, grant: &str) -> CommandResult<PluginRecord> {
        let revoked = self.change(name, |r| r.revoke(grant).map(drop).map_err(Into::into));
        let detail = serde_json::json!({ "grant": grant }).to_string();
        self.audited(&format!("/v1/plugins/{name}/revoke"), detail, revoked)
    }

    fn progress(&self, path: &NodePath, update: &Update) -> CommandResult<Node> {
        apply_progress(&self.store, path, update)
    }

    fn runs(&self) -> CommandResult<Vec<Node>> {
        crate::query::runs(&self.store)
    }

    fn tree(&self, run: &str) -> CommandResult<Vec<Node>> {
        tree(&self.store, run)
    }

    fn history(&self, run: &str, since: u64) -> CommandResult<Vec<ProgressEvent>> {
        history(&self.store, run, since)
    }

    fn metric_series(&self) -> CommandResult<SeriesListing> {
        series_listing(&self.store, &self.data)
    }

    fn metric_history(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        since_ms: u64,
    ) -> CommandResult<Vec<SeriesPoints>> {
        Ok(self.store.metrics_query(name, labels, since_ms)?)
    }

    fn format_run(&self, run: &str, plugin: &str) -> CommandResult<String> {
        tree(&self.store, run)?;
        Err(needs_host(format!("formatting with plugin '{plugin}'")))
    }

    fn status(&self, format: Option<&str>) -> CommandResult<String> {
        if let Some(plugin) = format {
            return Err(needs_host(format!("formatting with plugin '{plugin}'")));
        }
        let mut sampler = Sampler::new();
        // CPU use is measured between two samples.
        std::thread::sleep(std::time::Duration::from_millis(250));
        Ok(crate::status::plain(&sampler.sample(), 0, &stored_alerts(&self.store, now_ms())?))
    }

    fn alerts(&self, state: Option<AlertState>) -> CommandResult<Vec<Alert>> {
        let mut alerts = stored_alerts(&self.store, now_ms())?;
        alerts.retain(|a| state.is_none_or(|s| a.state == s));
        Ok(alerts)
    }

    fn alert_history(&self, since_ms: u64) -> CommandResult<Vec<HistoryEntry>> {
        Ok(self.store.alerts_history(since_ms, 0, HISTORY_LIMIT)?)
    }

    fn ack(&self, _: &str, _: &str, _: &str) -> CommandResult<HistoryEntry> {
        Err(needs_host("acknowledging an alert"))
    }

    fn resolve(&self, _: &str) -> CommandResult<HistoryEntry> {
        Err(needs_host("resolving an alert"))
    }

    fn silence(&self, _: &Labels, _: &str) -> CommandResult<Silence> {
        Err(needs_host("silencing alerts"))
    }

    fn unsilence(&self, _: u64) -> CommandResult<()> {
        Err(needs_host("ending a silence"))
    }

    fn silences(&self) -> CommandResult<Vec<Silence>> {
        let now = now_ms();
        Ok(self.store.alerts_saved()?.silences.into_iter().filter(|s| s.is_active(now)).collect())
    }

    fn test_alert(&self, _: &str) -> CommandResult<Vec<TestResult>> {
        Err(needs_host("testing the alert routes"))
    }

    fn resources(&self) -> CommandResult<Snapshot> {
        let mut sampler = Sampler::new();
        // CPU use is measured between two samples.
        std::thread::sleep(SAMPLE_GAP);
        Ok(sampler.sample())
    }

    fn processes(&self) -> CommandResult<Vec<ProcessSample>> {
        let mut sampler = Sampler::new();
        sampler.processes();
        std::thread::sleep(SAMPLE_GAP);
        let mut processes = sampler.processes();
        processes.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent).then(a.pid.cmp(&b.pid)));
        Ok(processes)
    }

    fn space(&self) -> CommandResult<Space> {
        Ok(self.store.space()?)
    }

    fn compact(&self) -> CommandResult<Compacted> {
        let compacted = self.store.compact().map_err(Into::into);
        self.audited("/v1/db/compact", String::new(), compacted)
    }

    fn tokens(&self) -> CommandResult<Vec<Token>> {
        Ok(self.store.tokens()?.into_iter().map(|(token, _)| token).collect())
    }

    fn token_create(&self, request: &CreateRequest) -> CommandResult<Created> {
        let created = match crate::api::access::create_in(&self.store, request, now_ms()) {
            Ok(Ok(created)) => Ok(created),
            Ok(Err(refusal)) => Err(UsageError(refusal).into()),
            Err(e) => Err(CommandError::new(ErrorKind::Unavailable, e)),
        };
        let detail = serde_json::to_string(request).expect("plain data");
        self.audited("/v1/tokens", detail, created)
    }

    fn token_revoke(&self, name: &str) -> CommandResult<Token> {
        let revoked = match self.store.token_revoke(name, now_ms()) {
            Ok(Some(token)) => Ok(token),
            Ok(None) => Err(no_token(name)),
            Err(e) => Err(e.into()),
        };
        self.audited(&format!("/v1/tokens/{name}/revoke"), String::new(), revoked)
    }

    fn audit(&self, since_ms: u64) -> CommandResult<Vec<AuditEntry>> {
        Ok(self.store.audit(since_ms)?)
    }
}

impl Local {
    /// Records a change made here on the database, as the host records those
    /// made through its API; the host trims the log to its keep time.
    fn audited<T>(&self, path: &str, detail: String, result: CommandResult<T>) -> CommandResult<T> {
        let (status, outcome) = match &result {
            Ok(_) => (200, "ok".to_string()),
            Err(e) => (e.kind().http_status(), crate::text::line(&e.to_string(), DETAIL_CHARS)),
        };
        let entry = AuditEntry {
            at_ms: now_ms(),
            token: crate::access::LOCAL.into(),
            address: crate::access::LOCAL.into(),
            method: "POST".into(),
            path: path.into(),
            detail: crate::text::line(&detail, DETAIL_CHARS),
            status,
            outcome,
        };
        if let Err(e) = self.store.audit_record(&entry, u64::MAX) {
            eprintln!("warning: the change was made but could not be written to the audit log: {e}");
        }
        result
    }
}

fn no_token(name: &str) -> CommandError {
    CommandError::new(
        ErrorKind::NotFound,
        format!("no token '{}'; 'monitor tokens list' lists them", crate::text::line(name, 80)),
    )
}

/// The error of something only the running host does.
fn needs_host(what: impl std::fmt::Display) -> CommandError {
    CommandError::new(ErrorKind::NeedsHost, format!("{what} needs the running host; start it with 'monitor run'"))
}

/// Applies one update and reads the node back; a refused update is bad input.
pub fn apply_progress(store: &Store, path: &NodePath, update: &Update) -> CommandResult<Node> {
    let now = crate::sampler::now_ms();
    let mut results = store.progress_apply(&[(path.clone(), update.clone())], now)?;
    results.pop().expect("one result per update").map_err(|e| UsageError(format!("{path}: {e}")))?;
    Ok(store.progress_node(path)?.expect("an applied update leaves its node"))
}
