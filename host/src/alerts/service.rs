//! The daemon's alerting: the engine, fed on every tick, whose transitions are
//! stored in the database and only then routed to the handlers.
//!
//! Rules see the tick's samples, the running and failed progress nodes (of runs
//! still running, or failed in the last day: an old failure does not alert for
//! ever), and the quarantined plugins. The engine's state is stored with every
//! change and taken up again at start, so a restart neither loses nor re-sends
//! a firing alert, and acknowledgements and silences hold.
//!
//! If the database refuses a commit, the transitions are still routed (an alert
//! about a broken host matters more than its record) and the error is logged.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::dispatch::{CurrentAlerts, DeliveryResult, Dispatcher, HandlerStatus};
use super::eval::{AlertError, Engine, Inputs, JobInput, NodeInput};
use super::lifecycle::{Alert, AlertState, Transition};
use super::rule::{Labels, Level};
use super::silence::Silence;
use super::{AlertsConfig, alert_id};
use crate::metrics::Sample;
use crate::plugin::Manager;
use crate::progress::Status;
use crate::store::alerts::HistoryEntry;
use crate::store::{Store, StoreError};
use crate::stream::Hub;
use crate::watch::Jobs;

use crate::alerts::rule::RUN_ENDED_FRESH_MS;

/// A failed run's nodes are looked at for this long after its last update.
const FAILED_FRESH_MS: u64 = 24 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error(transparent)]
    Alert(#[from] AlertError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no rule '{rule}'; the rules are {known}")]
    UnknownRule { rule: String, known: String },
    #[error("the alert configuration is invalid: {0}")]
    Config(String),
}

impl crate::error::Classified for AlertingError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            AlertingError::Alert(AlertError::Unknown(_)) | AlertingError::UnknownRule { .. } => ErrorKind::NotFound,
            AlertingError::Alert(AlertError::NotFiring { .. } | AlertError::AlreadyAcknowledged { .. }) => {
                ErrorKind::Conflict
            }
            AlertingError::Alert(_) => ErrorKind::Usage,
            AlertingError::Store(e) => e.kind(),
            AlertingError::Config(_) => ErrorKind::Failed,
        }
    }
}

/// See the [module docs](self).
pub struct Alerting {
    /// Shared (weakly) with the Alertmanager handlers, which send the alerts
    /// standing now again every `resend`.
    engine: Arc<Mutex<Engine>>,
    store: Store,
    dispatcher: Dispatcher,
    /// The watch jobs critical alerts pause.
    jobs: Option<Arc<Jobs>>,
    nodes: Mutex<Nodes>,
    keep_history_ms: u64,
    /// Stored transitions go on the live stream.
    hub: Hub,
}

/// The running and failed nodes, re-read only when progress was written.
#[derive(Default)]
struct Nodes {
    commits: Option<u64>,
    inputs: Arc<Vec<NodeInput>>,
}

impl Alerting {
    /// Builds the engine from the (validated) config and takes up the stored state.
    pub fn start(
        config: &AlertsConfig,
        store: Store,
        manager: Option<Arc<Manager>>,
        jobs: Option<Arc<Jobs>>,
        runtime: tokio::runtime::Handle,
        hub: Hub,
    ) -> Result<Alerting, AlertingError> {
        let rules = config
            .rules()
            .map_err(|e| AlertingError::Config(e.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
        let routing = config.routing().map_err(|e| AlertingError::Config(e.join("; ")))?;
        let mut engine = Engine::new(rules);
        let orphans = engine.restore(store.alerts_saved()?, crate::sampler::now_ms());
        let engine = Arc::new(Mutex::new(engine));
        let current: CurrentAlerts = {
            let engine = Arc::downgrade(&engine);
            Arc::new(move |now_ms: u64| -> Option<Vec<Alert>> {
                let engine = engine.upgrade()?;
                let alerts = engine.lock().expect("engine lock").alerts(now_ms);
                Some(alerts)
            })
        };
        let alerting = Alerting {
            engine,
            store,
            dispatcher: Dispatcher::new(routing, manager, runtime).resend_from(current),
            jobs,
            nodes: Mutex::default(),
            keep_history_ms: config.keep_history_ms().unwrap_or(u64::MAX),
            hub,
        };
        if !orphans.is_empty() {
            let engine = alerting.engine.lock().expect("engine lock");
            alerting.record(&engine, orphans, Instant::now(), false);
        }
        Ok(alerting)
    }

    /// One evaluation at `now_ms` of what the tick that began at `since` saw;
    /// `progress_commits` is the progress writer's count (see
    /// [`crate::writer::Writer::commits`]). Returns the transitions, as stored.
    /// Blocks on a database commit when something changed.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate(
        &self,
        samples: &[Sample],
        progress_commits: u64,
        quarantined: &[String],
        jobs: &[JobInput],
        now_ms: u64,
        since: Instant,
    ) -> Vec<HistoryEntry> {
        let nodes = self.nodes(progress_commits, now_ms);
        let mut engine = self.engine.lock().expect("engine lock");
        let transitions = engine.evaluate(&Inputs { samples, nodes: &nodes, quarantined, jobs }, now_ms);
        if transitions.is_empty() {
            return Vec::new();
        }
        self.record(&engine, transitions, since, false)
    }

    pub fn ack(&self, id: &str, by: &str, note: &str, now_ms: u64) -> Result<HistoryEntry, AlertingError> {
        let mut engine = self.engine.lock().expect("engine lock");
        let transition = engine.ack(id, by, note, now_ms)?;
        Ok(self.record(&engine, vec![transition], Instant::now(), true).remove(0))
    }

    pub fn resolve(&self, id: &str, now_ms: u64) -> Result<HistoryEntry, AlertingError> {
        let mut engine = self.engine.lock().expect("engine lock");
        let transition = engine.resolve(id, now_ms)?;
        Ok(self.record(&engine, vec![transition], Instant::now(), true).remove(0))
    }

    pub fn silence(&self, matchers: Labels, until_ms: u64, now_ms: u64) -> Result<Silence, AlertingError> {
        let mut engine = self.engine.lock().expect("engine lock");
        let id = engine.silence(matchers, until_ms, now_ms)?;
        self.store.alerts_record(&[], &engine.save())?;
        Ok(engine.silences().iter().find(|s| s.id == id).cloned().expect("just added"))
    }

    /// Ends a silence; false if there is none with that id.
    pub fn unsilence(&self, id: u64) -> Result<bool, AlertingError> {
        let mut engine = self.engine.lock().expect("engine lock");
        if !engine.unsilence(id) {
            return Ok(false);
        }
        self.store.alerts_record(&[], &engine.save())?;
        Ok(true)
    }

    pub fn silences(&self, now_ms: u64) -> Vec<Silence> {
        let engine = self.engine.lock().expect("engine lock");
        engine.silences().iter().filter(|s| s.is_active(now_ms)).cloned().collect()
    }

    pub fn alerts(&self, now_ms: u64) -> Vec<Alert> {
        self.engine.lock().expect("engine lock").alerts(now_ms)
    }

    /// Sends a synthetic firing alert of `rule` through the routes (silences do
    /// not apply; nothing is stored) and waits for every handler's outcome.
    pub async fn test(&self, rule: &str, now_ms: u64) -> Result<Vec<(String, DeliveryResult)>, AlertingError> {
        let transition = {
            let engine = self.engine.lock().expect("engine lock");
            let Some(r) = engine.rules().find(|r| r.name == rule) else {
                let known: Vec<&str> = engine.rules().map(|r| r.name.as_str()).collect();
                return Err(AlertingError::UnknownRule { rule: rule.into(), known: known.join(", ") });
            };
            let key = Labels::from([("test".to_string(), "true".to_string())]);
            let mut labels = r.labels.clone();
            labels.extend(key.clone());
            Transition {
                id: alert_id(rule, &key),
                rule: rule.into(),
                level: r.level,
                labels,
                from: AlertState::Inactive,
                to: AlertState::Firing,
                value: None,
                message: format!("test alert of rule '{rule}' from 'monitor alerts test'"),
                at_ms: now_ms,
                silenced: false,
                ack: None,
            }
        };
        Ok(self.dispatcher.test(HistoryEntry { seq: 0, transition }).await)
    }

    /// Hands the alerts firing now (not silenced, not acknowledged) to an
    /// alert-handler plugin that has just started: one granted, enabled or
    /// installed after they fired would otherwise never hear of them. Each goes
    /// as it stands, a repeat of its firing, where a route sends it to plugins.
    pub fn catch_up(&self, plugin: &str, now_ms: u64) {
        let entries: Vec<HistoryEntry> = self
            .alerts(now_ms)
            .into_iter()
            .filter(|a| a.state == AlertState::Firing && !a.silenced)
            .map(|a| HistoryEntry {
                seq: 0,
                transition: Transition {
                    id: a.id,
                    rule: a.rule,
                    level: a.level,
                    labels: a.labels,
                    from: AlertState::Firing,
                    to: AlertState::Firing,
                    value: a.value,
                    message: a.message,
                    at_ms: a.fired_ms.unwrap_or(a.since_ms),
                    silenced: false,
                    ack: None,
                },
            })
            .collect();
        if !entries.is_empty() {
            tracing::info!(plugin, "{} firing alerts handed to the alert handler that just started", entries.len());
            self.dispatcher.catch_up(plugin, &entries);
        }
    }

    pub fn handlers(&self) -> Vec<HandlerStatus> {
        self.dispatcher.status()
    }

    /// The host's alert series: alerts by state and level, deliveries by handler and result.
    pub fn metrics(&self, now_ms: u64) -> Vec<Sample> {
        let counts = self.engine.lock().expect("engine lock").counts();
        let sample = |name: &str, labels: &[(&str, &str)], value: f64| Sample {
            name: name.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            value,
            unit: String::new(),
            timestamp_ms: now_ms,
        };
        let mut out = Vec::new();
        for state in [AlertState::Pending, AlertState::Firing, AlertState::Acknowledged] {
            for level in Level::ALL {
                let n = counts.get(&(state, level)).copied().unwrap_or(0);
                out.push(sample("monitor_alerts", &[("state", state.as_str()), ("level", level.as_str())], n as f64));
            }
        }
        for h in self.handlers() {
            for (result, n) in [("delivered", h.delivered), ("failed", h.failed), ("dropped", h.dropped)] {
                let labels = [("handler", h.name.as_str()), ("result", result)];
                out.push(sample("monitor_alert_deliveries_total", &labels, n as f64));
            }
            out.push(sample("monitor_alert_delivery_retries_total", &[("handler", h.name.as_str())], h.retries as f64));
        }
        out
    }

    /// Removes history older than `alerts.keep_history`.
    pub fn prune(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.store.alerts_prune(self.keep_history_ms, now_ms)
    }

    /// Stores, then routes, then acts (`by_hand`: an ack or resolve from a
    /// person). Called with the engine locked, so history keeps the engine's order.
    fn record(
        &self,
        engine: &Engine,
        transitions: Vec<Transition>,
        since: Instant,
        by_hand: bool,
    ) -> Vec<HistoryEntry> {
        let entries = match self.store.alerts_record(&transitions, &engine.save()) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!("{} alert transitions not stored, routed anyway: {e}", transitions.len());
                transitions.into_iter().map(|transition| HistoryEntry { seq: 0, transition }).collect()
            }
        };
        self.hub.publish_alerts(&entries);
        self.dispatcher.dispatch(&entries, since);
        for entry in entries.iter().filter(|e| e.transition.level == Level::Critical) {
            self.act(&entry.transition, by_hand);
        }
        entries
    }

    /// A critical alert pauses the watch jobs it names (label `job`) or those
    /// of its project (label `project`) from when it fires until a person
    /// acknowledges or resolves it.
    fn act(&self, t: &Transition, by_hand: bool) {
        let Some(jobs) = &self.jobs else { return };
        let pause = match (t.from, t.to) {
            (AlertState::Firing, AlertState::Firing) => return,
            (_, AlertState::Firing) => true,
            (_, AlertState::Acknowledged) => false,
            (_, AlertState::Resolved) if by_hand => false,
            _ => return,
        };
        let names = match (t.labels.get("job"), t.labels.get("project")) {
            (Some(job), _) => {
                let changed = if pause { jobs.pause(job) } else { jobs.resume(job) };
                changed.map(|v| vec![v.name]).unwrap_or_default()
            }
            (None, Some(root)) => {
                let root = std::path::Path::new(root);
                if pause { jobs.pause_project(root) } else { jobs.resume_project(root) }
            }
            (None, None) => return,
        };
        if names.is_empty() {
            return;
        }
        if pause {
            tracing::warn!(alert = %t.id, "critical alert: watch jobs {} paused until it is acknowledged", names.join(", "));
        } else {
            tracing::info!(alert = %t.id, "watch jobs {} resumed: the critical alert was {}", names.join(", "), t.to);
        }
    }

    fn nodes(&self, commits: u64, now_ms: u64) -> Arc<Vec<NodeInput>> {
        let mut nodes = self.nodes.lock().expect("nodes lock");
        if nodes.commits != Some(commits) {
            match self.read_nodes(now_ms) {
                Ok(inputs) => *nodes = Nodes { commits: Some(commits), inputs: Arc::new(inputs) },
                Err(e) => tracing::error!("reading progress for the alert rules: {e}"),
            }
        }
        nodes.inputs.clone()
    }

    fn read_nodes(&self, now_ms: u64) -> Result<Vec<NodeInput>, StoreError> {
        let mut out = Vec::new();
        for run in self.store.progress_runs()? {
            let fresh_failure = run.status == Status::Failed && now_ms.saturating_sub(run.updated_ms) < FAILED_FRESH_MS;
            if run.status != Status::Running && !fresh_failure {
                // A run that just ended is news for run_finished.
                if run.status.is_terminal() && now_ms.saturating_sub(run.updated_ms) < RUN_ENDED_FRESH_MS {
                    out.push(NodeInput { path: run.path, status: run.status, updated_ms: run.updated_ms });
                }
                continue;
            }
            out.extend(
                self.store
                    .progress_tree(run.path.as_str())?
                    .into_iter()
                    .filter(|n| matches!(n.status, Status::Running | Status::Failed))
                    .map(|n| NodeInput { path: n.path, status: n.status, updated_ms: n.updated_ms }),
            );
        }
        Ok(out)
    }
}

/// Alerts as the CLI lists them when no host runs: the stored state.
pub fn stored_alerts(store: &Store, now_ms: u64) -> Result<Vec<Alert>, StoreError> {
    let saved = store.alerts_saved()?;
    let silences = saved.silences;
    Ok(saved
        .instances
        .into_iter()
        .map(|s| {
            let silenced = super::silence::silenced(&silences, now_ms, &s.rule, s.level, &s.instance.labels);
            s.alert(silenced)
        })
        .collect())
}
