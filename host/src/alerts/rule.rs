//! A rule as the engine runs it, built from a [`RuleConfig`] by checking every
//! field. Errors are collected, not returned at the first one, so one run of
//! `monitor alerts check` lists everything to fix; each names the rule, the
//! field and what to write instead.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::config::RuleConfig;
use super::template::{Field, Template};
use crate::metrics::{valid_label_name, valid_metric_name};
use crate::progress::NodePath;

pub type Labels = BTreeMap<String, String>;

/// How urgent an alert is; routing and actions go by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Info, Level::Warning, Level::Error, Level::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A threshold comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Gt, Op::Ge, Op::Lt, Op::Le];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    pub fn parse(text: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// Whether the rule fires on high values (`>`, `>=`).
    pub fn is_upper(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }

    /// `value op threshold`; NaN never holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// One alert per series of `metric` matching `matchers` while `value op
    /// threshold`; once active it stays so until the value is strictly past
    /// `clear` (or, without `clear`, until the comparison fails).
    Threshold { metric: String, matchers: Labels, op: Op, threshold: f64, clear: Option<f64> },
    /// One alert while no series of `metric` matching `matchers` has had a sample for `after_ms`.
    Absence { metric: String, matchers: Labels, after_ms: u64 },
    /// One alert per running node (under `prefix`) not updated for `after_ms`.
    Stalled { prefix: Option<NodePath>, after_ms: u64 },
    /// One alert per failed node (under `prefix`).
    ProgressFailed { prefix: Option<NodePath> },
    /// One alert per quarantined plugin (or only `plugin`).
    PluginQuarantined { plugin: Option<String> },
    /// One alert per watch job (or only `job`) whose last command failed.
    WatchFailed { job: Option<String> },
    /// One alert per run (under `prefix`) that ended, however, in the last [`RUN_ENDED_FRESH_MS`].
    RunFinished { prefix: Option<NodePath> },
    /// One alert per run (under `prefix`) that failed in the last [`RUN_ENDED_FRESH_MS`].
    RunFailed { prefix: Option<NodePath> },
}

/// How long a run's end stays an alert: the notification goes out when it fires;
/// it resolves on its own after this.
pub const RUN_ENDED_FRESH_MS: u64 = 15 * 60_000;

/// The kinds as written in the config, with the fields each one takes.
pub(crate) const KINDS: [(&str, &[&str]); 8] = [
    ("threshold", &["metric", "matchers", "op", "value", "clear"]),
    ("absence", &["metric", "matchers", "after"]),
    ("stalled", &["path", "after"]),
    ("progress_failed", &["path"]),
    ("plugin_quarantined", &["plugin"]),
    ("watch_failed", &["job"]),
    ("run_finished", &["path"]),
    ("run_failed", &["path"]),
];

impl RuleKind {
    pub fn name(&self) -> &'static str {
        let i = match self {
            RuleKind::Threshold { .. } => 0,
            RuleKind::Absence { .. } => 1,
            RuleKind::Stalled { .. } => 2,
            RuleKind::ProgressFailed { .. } => 3,
            RuleKind::PluginQuarantined { .. } => 4,
            RuleKind::WatchFailed { .. } => 5,
            RuleKind::RunFinished { .. } => 6,
            RuleKind::RunFailed { .. } => 7,
        };
        KINDS[i].0
    }

    /// The placeholders a message of this kind can use.
    fn fields(name: &str) -> &'static [Field] {
        use Field::*;
        match name {
            "threshold" => &[Rule, Level, For, Value, Percent, Metric, Op, Threshold],
            "absence" => &[Rule, Level, For, Value, Age, Metric, After],
            "stalled" => &[Rule, Level, For, Value, Age, After],
            "watch_failed" => &[Rule, Level, For, Outcome],
            _ => &[Rule, Level, For],
        }
    }

    /// The message used when a rule has none.
    fn default_message(name: &str) -> &'static str {
        match name {
            "threshold" => "{metric} is {value} ({op} {threshold})",
            "absence" => "no sample of {metric} for {age}",
            "stalled" => "{labels.path} is running but has not reported for {age}",
            "progress_failed" => "{labels.path} failed",
            "watch_failed" => "watch job {labels.job} failed: {outcome}",
            "run_finished" | "run_failed" => "run {labels.run} {labels.status}",
            _ => "plugin {labels.plugin} is quarantined",
        }
    }
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub level: Level,
    /// How long the condition must hold before the alert fires.
    pub for_ms: u64,
    /// Re-send a firing, unacknowledged alert this often.
    pub repeat_ms: Option<u64>,
    pub kind: RuleKind,
    /// Added to every alert of the rule, over the series' own labels.
    pub labels: Labels,
    pub message: Template,
}

/// One thing wrong with one rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule '{rule}': {message}")]
pub struct RuleError {
    /// The rule's name, or `#N` (from 1) when it has none.
    pub rule: String,
    pub field: &'static str,
    /// What is wrong and what to write instead; starts with the field.
    pub message: String,
}

impl RuleConfig {
    /// Checks every field; `index` (from 0) names a rule without a name.
    pub fn build(&self, index: usize) -> Result<Rule, Vec<RuleError>> {
        let rule = if self.name.is_empty() { format!("#{}", index + 1) } else { self.name.clone() };
        let mut errors = Vec::new();
        let mut err = |field: &'static str, message: String| {
            errors.push(RuleError { rule: rule.clone(), field, message });
        };

        if self.name.is_empty() {
            err("name", "name is missing; add name = \"...\"".into());
        } else if !valid_rule_name(&self.name) {
            err("name", format!("name '{}' may only use letters, digits, '.', '_' and '-' (at most 64)", self.name));
        }
        let level = Level::parse(&self.level);
        if level.is_none() {
            let what =
                if self.level.is_empty() { "level is missing".into() } else { format!("level '{}'", self.level) };
            err("level", format!("{what}; use one of info, warning, error, critical"));
        }
        let for_ms = duration(&mut err, "for", self.for_.as_deref()).unwrap_or(0);
        let repeat_ms = duration(&mut err, "repeat", self.repeat.as_deref());
        if repeat_ms == Some(0) {
            err("repeat", "repeat must be longer than 0; remove it to never repeat".into());
        }
        check_labels(&mut err, "labels", &self.labels);

        let kinds: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        let Some((kind_name, fields)) = KINDS.iter().find(|(k, _)| *k == self.kind) else {
            let what = if self.kind.is_empty() { "kind is missing".into() } else { format!("kind '{}'", self.kind) };
            err("kind", format!("{what}; use one of {}", kinds.join(", ")));
            return Err(errors);
        };
        for (field, given) in self.given_kind_fields() {
            if given && !fields.contains(&field) {
                err(field, format!("{field} does not apply to kind '{kind_name}'; remove it"));
            }
        }
        let kind = self.kind_of(kind_name, &mut err);
        let text = self.message.as_deref().unwrap_or(RuleKind::default_message(kind_name));
        let message =
            Template::parse(text, RuleKind::fields(kind_name)).map_err(|e| err("message", format!("message {e}"))).ok();
        match (level, kind, message) {
            (Some(level), Some(kind), Some(message)) if errors.is_empty() => Ok(Rule {
                name: self.name.clone(),
                level,
                for_ms,
                repeat_ms,
                kind,
                labels: self.labels.clone(),
                message,
            }),
            _ => Err(errors),
        }
    }

    /// The kind-specific fields and whether each was written.
    fn given_kind_fields(&self) -> [(&'static str, bool); 9] {
        [
            ("metric", self.metric.is_some()),
            ("matchers", !self.matchers.is_empty()),
            ("op", self.op.is_some()),
            ("value", self.value.is_some()),
            ("clear", self.clear.is_some()),
            ("after", self.after.is_some()),
            ("path", self.path.is_some()),
            ("plugin", self.plugin.is_some()),
            ("job", self.job.is_some()),
        ]
    }

    fn kind_of(&self, kind: &str, err: &mut impl FnMut(&'static str, String)) -> Option<RuleKind> {
        match kind {
            "threshold" => {
                let metric = self.metric(err);
                check_labels(err, "matchers", &self.matchers);
                let op = match self.op.as_deref() {
                    None => {
                        err("op", "op is missing; use one of >, >=, <, <=".into());
                        None
                    }
                    Some(text) => Op::parse(text).or_else(|| {
                        err("op", format!("op '{text}' is not one of >, >=, <, <="));
                        None
                    }),
                };
                let threshold = match self.value {
                    None => {
                        err("value", "value is missing; add value = NUMBER".into());
                        None
                    }
                    Some(v) if !v.is_finite() => {
                        err("value", format!("value {v} is not a finite number"));
                        None
                    }
                    Some(v) => Some(v),
                };
                if let Some(clear) = self.clear {
                    if !clear.is_finite() {
                        err("clear", format!("clear {clear} is not a finite number"));
                    } else if let (Some(op), Some(value)) = (op, threshold) {
                        let (wrong_side, side) =
                            if op.is_upper() { (clear > value, "above") } else { (clear < value, "below") };
                        if wrong_side {
                            let want = if op.is_upper() { "at most" } else { "at least" };
                            err(
                                "clear",
                                format!(
                                    "clear {clear} is {side} value {value}; with op '{}' set clear {want} {value} \
                                     (the alert resolves once the value is past clear)",
                                    op.as_str()
                                ),
                            );
                        }
                    }
                }
                Some(RuleKind::Threshold {
                    metric: metric?,
                    matchers: self.matchers.clone(),
                    op: op?,
                    threshold: threshold?,
                    clear: self.clear,
                })
            }
            "absence" => {
                let metric = self.metric(err);
                check_labels(err, "matchers", &self.matchers);
                let after_ms = self.after(err);
                Some(RuleKind::Absence { metric: metric?, matchers: self.matchers.clone(), after_ms: after_ms? })
            }
            "stalled" => {
                let prefix = self.prefix(err);
                let after_ms = self.after(err);
                Some(RuleKind::Stalled { prefix: prefix?, after_ms: after_ms? })
            }
            "progress_failed" => Some(RuleKind::ProgressFailed { prefix: self.prefix(err)? }),
            "run_finished" => Some(RuleKind::RunFinished { prefix: self.prefix(err)? }),
            "run_failed" => Some(RuleKind::RunFailed { prefix: self.prefix(err)? }),
            "watch_failed" => {
                if self.job.as_deref() == Some("") {
                    err("job", "job is empty; name a watch job or remove the field".into());
                    return None;
                }
                Some(RuleKind::WatchFailed { job: self.job.clone() })
            }
            _ => {
                if self.plugin.as_deref() == Some("") {
                    err("plugin", "plugin is empty; name a plugin or remove the field".into());
                    return None;
                }
                Some(RuleKind::PluginQuarantined { plugin: self.plugin.clone() })
            }
        }
    }

    fn metric(&self, err: &mut impl FnMut(&'static str, String)) -> Option<String> {
        match self.metric.as_deref() {
            None => err("metric", "metric is missing; add metric = \"NAME\"".into()),
            Some(m) if !valid_metric_name(m) => {
                err("metric", format!("metric '{m}' is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"));
            }
            Some(m) => return Some(m.to_string()),
        }
        None
    }

    fn after(&self, err: &mut impl FnMut(&'static str, String)) -> Option<u64> {
        if self.after.is_none() {
            err("after", "after is missing; add after = \"10m\" (how long without data)".into());
        }
        match duration(err, "after", self.after.as_deref()) {
            Some(0) => {
                err("after", "after must be longer than 0".into());
                None
            }
            other => other,
        }
    }

    /// `Some(None)` when no prefix is given.
    fn prefix(&self, err: &mut impl FnMut(&'static str, String)) -> Option<Option<NodePath>> {
        match self.path.as_deref().map(NodePath::parse) {
            None => Some(None),
            Some(Ok(path)) => Some(Some(path)),
            Some(Err(e)) => {
                err("path", format!("path: {e}"));
                None
            }
        }
    }
}

fn duration(err: &mut impl FnMut(&'static str, String), field: &'static str, text: Option<&str>) -> Option<u64> {
    let text = text?;
    match humantime::parse_duration(text) {
        Ok(d) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        Err(_) => {
            err(field, format!("{field} '{text}' is not a duration; write one like 90s, 5m or 1h"));
            None
        }
    }
}

fn check_labels(err: &mut impl FnMut(&'static str, String), field: &'static str, labels: &Labels) {
    for name in labels.keys().filter(|k| !valid_label_name(k)) {
        err(field, format!("{field} key '{name}' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"));
    }
}

fn valid_rule_name(name: &str) -> bool {
    name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
