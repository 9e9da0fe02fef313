//! The life of one alert instance, one evaluation at a time.
//!
//! | state | condition holds | condition fails |
//! | --- | --- | --- |
//! | inactive | pending, or firing at once when `for` is 0 | stays inactive (no instance is kept) |
//! | pending | firing once `for` has elapsed since it became true | inactive, nothing emitted |
//! | firing | stays; re-emitted at `repeat`, or when a silence that covered it ends | resolved |
//! | acknowledged (by [`super::Engine::ack`]) | stays, no repeats | resolved |
//! | resolved by hand ([`super::Engine::resolve`]) | stays resolved | dropped, nothing emitted |
//!
//! Only what a person may act on is emitted: firing, acknowledged, resolved
//! and repeats (`from == to == firing`). Pending is visible in
//! [`super::Engine::alerts`] but leaves no history. A manual resolve latches the
//! instance in `resolved` until its condition is false once, so a condition that
//! stays true (a failed node) does not fire again at once. "Condition" is, for a
//! threshold rule with `clear`, the threshold while inactive or pending and
//! "not yet past clear" from firing on.

use serde::{Deserialize, Serialize};

use super::rule::{Labels, Level, Rule, RuleKind};
use super::silence::{Silence, silenced};
use super::template::Values;

/// Where an alert instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }
}

impl std::fmt::Display for AlertState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who acknowledged an alert; kept until it resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    pub note: String,
    pub at_ms: u64,
}

/// A change of an alert that history keeps and routing sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub id: String,
    pub rule: String,
    pub level: Level,
    pub labels: Labels,
    pub from: AlertState,
    pub to: AlertState,
    pub value: Option<f64>,
    pub message: String,
    pub at_ms: u64,
    /// A silence covered the alert: store it, do not route it.
    pub silenced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<Ack>,
}

impl Transition {
    /// The same firing alert sent again.
    pub fn is_repeat(&self) -> bool {
        self.from == AlertState::Firing && self.to == AlertState::Firing
    }
}

/// An alert instance as it stands, for listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub rule: String,
    pub level: Level,
    pub labels: Labels,
    pub state: AlertState,
    /// When the condition became true.
    pub since_ms: u64,
    pub fired_ms: Option<u64>,
    pub value: Option<f64>,
    pub message: String,
    pub silenced: bool,
    pub ack: Option<Ack>,
}

/// What one evaluation (or command) needs besides the instance.
pub(crate) struct Step<'a> {
    pub rule: &'a Rule,
    pub now_ms: u64,
    pub silences: &'a [Silence],
}

/// Stored as it is (see [`super::saved`]), but for `seen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Instance {
    pub id: String,
    /// What names the instance within its rule (series labels, path, plugin).
    pub key: Labels,
    /// `key` with the rule's labels over it.
    pub labels: Labels,
    pub state: AlertState,
    pub since_ms: u64,
    pub fired_ms: Option<u64>,
    /// When the last firing transition or repeat was emitted.
    pub sent_ms: u64,
    /// The current firing has been emitted unsilenced.
    pub notified: bool,
    pub value: Option<f64>,
    pub age_ms: Option<u64>,
    /// What happened, in words (a watch job's outcome).
    #[serde(default)]
    pub detail: Option<String>,
    pub ack: Option<Ack>,
    /// The evaluation that last saw the instance's series or node.
    #[serde(skip)]
    pub seen: u64,
    /// When a restart took the instance up from storage, until its input is
    /// seen again: no input yet is no evidence (see [`RESTORED_WAIT_MS`]).
    #[serde(skip)]
    pub restored_ms: Option<u64>,
}

/// How long an alert taken up after a restart waits for its input (a plugin's
/// series, a watch job's run) before its absence counts as the condition gone:
/// plugins load, and jobs run, some time after the host starts.
pub const RESTORED_WAIT_MS: u64 = 10 * 60 * 1000;

impl Instance {
    /// A new, inactive instance: `key` names it within the rule, the rule's labels go over it.
    pub fn new(rule: &Rule, key: Labels, now_ms: u64, seen: u64) -> Instance {
        let id = alert_id(&rule.name, &key);
        let mut labels = key.clone();
        labels.extend(rule.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        Instance {
            id,
            key,
            labels,
            state: AlertState::Inactive,
            since_ms: now_ms,
            fired_ms: None,
            sent_ms: now_ms,
            notified: false,
            value: None,
            age_ms: None,
            detail: None,
            ack: None,
            seen,
            restored_ms: None,
        }
    }

    /// Whether the instance is past pending: hysteresis applies.
    pub fn is_active(&self) -> bool {
        matches!(self.state, AlertState::Firing | AlertState::Acknowledged | AlertState::Resolved)
    }

    /// Advances the instance given its condition; false when it is to be dropped.
    pub fn step(&mut self, cond: bool, ctx: &Step, out: &mut Vec<Transition>) -> bool {
        let (rule, now) = (ctx.rule, ctx.now_ms);
        match (self.state, cond) {
            (AlertState::Inactive | AlertState::Pending, false) => false,
            (AlertState::Inactive, true) if rule.for_ms > 0 => {
                self.state = AlertState::Pending;
                self.since_ms = now;
                true
            }
            (AlertState::Inactive, true) => {
                self.since_ms = now;
                self.fire(ctx, out);
                true
            }
            (AlertState::Pending, true) => {
                if now.saturating_sub(self.since_ms) >= rule.for_ms {
                    self.fire(ctx, out);
                }
                true
            }
            (AlertState::Firing | AlertState::Acknowledged, false) => {
                self.emit(AlertState::Resolved, ctx, out);
                false
            }
            (AlertState::Firing, true) => {
                let quiet = self.is_silenced(ctx);
                let repeat_due = rule.repeat_ms.is_some_and(|r| now.saturating_sub(self.sent_ms) >= r);
                if (!self.notified && !quiet) || repeat_due {
                    self.sent_ms = now;
                    self.notified |= !quiet;
                    self.emit(AlertState::Firing, ctx, out);
                }
                true
            }
            (AlertState::Acknowledged, true) => true,
            (AlertState::Resolved, cond) => cond,
        }
    }

    fn fire(&mut self, ctx: &Step, out: &mut Vec<Transition>) {
        self.fired_ms = Some(ctx.now_ms);
        self.sent_ms = ctx.now_ms;
        self.notified = !self.is_silenced(ctx);
        self.emit(AlertState::Firing, ctx, out);
    }

    /// Moves to `to` and records the transition.
    pub fn emit(&mut self, to: AlertState, ctx: &Step, out: &mut Vec<Transition>) {
        let transition = Transition {
            id: self.id.clone(),
            rule: ctx.rule.name.clone(),
            level: ctx.rule.level,
            labels: self.labels.clone(),
            from: self.state,
            to,
            value: self.value,
            message: self.message(ctx.rule),
            at_ms: ctx.now_ms,
            silenced: self.is_silenced(ctx),
            ack: self.ack.clone(),
        };
        self.state = to;
        out.push(transition);
    }

    pub fn is_silenced(&self, ctx: &Step) -> bool {
        silenced(ctx.silences, ctx.now_ms, &ctx.rule.name, ctx.rule.level, &self.labels)
    }

    pub fn message(&self, rule: &Rule) -> String {
        let mut values = Values {
            rule: &rule.name,
            level: rule.level.as_str(),
            for_ms: rule.for_ms,
            value: self.value,
            age_ms: self.age_ms,
            outcome: self.detail.as_deref(),
            ..Values::default()
        };
        match &rule.kind {
            RuleKind::Threshold { metric, op, threshold, .. } => {
                values.metric = Some(metric);
                values.op = Some(op.as_str());
                values.threshold = Some(*threshold);
            }
            RuleKind::Absence { metric, after_ms, .. } => {
                values.metric = Some(metric);
                values.after_ms = Some(*after_ms);
            }
            RuleKind::Stalled { after_ms, .. } => values.after_ms = Some(*after_ms),
            RuleKind::ProgressFailed { .. }
            | RuleKind::PluginQuarantined { .. }
            | RuleKind::WatchFailed { .. }
            | RuleKind::RunFinished { .. }
            | RuleKind::RunFailed { .. } => {}
        }
        rule.message.render(&values, &self.labels)
    }

    pub fn snapshot(&self, ctx: &Step) -> Alert {
        Alert {
            id: self.id.clone(),
            rule: ctx.rule.name.clone(),
            level: ctx.rule.level,
            labels: self.labels.clone(),
            state: self.state,
            since_ms: self.since_ms,
            fired_ms: self.fired_ms,
            value: self.value,
            message: self.message(ctx.rule),
            silenced: self.is_silenced(ctx),
            ack: self.ack.clone(),
        }
    }
}

/// `rule{k="v",...}`, or just `rule` for a rule with one instance; stable
/// across restarts, so history and acks can refer to it.
pub fn alert_id(rule: &str, key: &Labels) -> String {
    if key.is_empty() {
        return rule.to_string();
    }
    let mut id = String::with_capacity(rule.len() + 16 * key.len());
    id.push_str(rule);
    id.push('{');
    for (i, (k, v)) in key.iter().enumerate() {
        if i > 0 {
            id.push(',');
        }
        id.push_str(k);
        id.push_str("=\"");
        for c in v.chars() {
            match c {
                '"' => id.push_str("\\\""),
                '\\' => id.push_str("\\\\"),
                '\n' => id.push_str("\\n"),
                c => id.push(c),
            }
        }
        id.push('"');
    }
    id.push('}');
    id
}
