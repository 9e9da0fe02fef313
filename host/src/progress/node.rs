//! One node of a progress tree and the rules for changing it.
//!
//! A reporter sends [`Update`]s; [`Node::apply`] is the only way a node changes.
//! The rules, in the order they are checked:
//!
//! 1. **Bad input is refused and changes nothing**: units, totals and weights must
//!    be finite and at least 0, a percent within 0..=100, `metadata` a JSON
//!    object, a `message` at most [`MAX_MESSAGE_BYTES`]; an `Advance` whose sum
//!    would not be finite is refused too, and so is metadata that would leave
//!    the node with more than [`MAX_METADATA_KEYS`] keys or
//!    [`MAX_METADATA_BYTES`] of it (a reporter cannot grow the host without
//!    bound). Input is checked before state, so a bad update is an error even
//!    for a finished node.
//! 2. **Finished nodes stay finished**: any update other than `Start` to a
//!    completed, failed or cancelled node is ignored ([`Applied::IgnoredTerminal`]),
//!    message and metadata included, so late updates from a pipeline cannot
//!    resurrect it. `Start` on a finished node is a re-run: status running,
//!    done 0, progress 0, started now, finished cleared.
//! 3. **`Start` never loses progress of a live node**: on a pending, running or
//!    paused node it sets status running, sets `started_ms` if unset, and keeps
//!    `done` (a retried `Start` is harmless). A `total` or `weight` it carries
//!    replaces the old one; `None` keeps it.
//! 4. **Units**: `Done(x)` sets done, `Advance(x)` adds to it. Done above a known
//!    total is clamped to the total ([`Applied::Clamped`]); so is done when a
//!    `Start` lowers the total. Decreases are allowed: a reporter may correct itself.
//! 5. **Progress** is done/total when the total is known and above 0. Otherwise
//!    it is what the last `Percent` set (else 0). `Percent(p)` sets progress p/100
//!    and, with a known total, done = p/100 × total. Progress is always in 0..=1.
//! 6. A progress report (`Done`, `Advance`, `Percent`) on a pending node starts it
//!    (running, started now); on a paused node it stays paused until `Resume`.
//! 7. `Finish` → completed, progress 1, done = total if known. `Fail` and
//!    `Cancel` set their status and leave progress as it was. All three set
//!    `finished_ms` (and `started_ms` if unset).
//! 8. `Pause` only turns running into paused and `Resume` only paused into
//!    running; from any other live state the status is left as it is, and the
//!    message and metadata still apply.
//! 9. `message` replaces the node's message (an empty one clears it); `metadata`
//!    keys merge into the node's object, a `null` value deleting the key.
//!    `calculator` names the progress-calculator plugin for the node's subtree
//!    (an empty name goes back to the default aggregation) and `on_failure` its
//!    [`FailurePolicy`]; both ride along with any update, usually `Start`.
//! 10. Every update that is not refused or ignored sets `updated_ms` to now and
//!     adds a sample to the node's [`Rate`], except `Resources` and `Declare`,
//!     which only bring figures or a weight: a node whose processes run but whose
//!     reporter is silent has not moved.
//! 11. `resources` replaces the node's own [`Resources`] (with any op; alone with
//!     `Resources`); `pid` names the process the node follows (the store checks
//!     it is running and the host's user's). A re-run clears the figures.
//! 12. `Plan` declares the node's children by name (the store creates the missing
//!     ones pending, with their weights, through `Declare`): a run whose phases run
//!     one after another stays open between them, and the phases to come count in
//!     its progress. `Declare` sets a node's weight and changes nothing else; it is
//!     not accepted from reporters.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::aggregate::FailurePolicy;
use super::path::NodePath;
use super::rate::Rate;
use super::resources::Resources;

/// The longest message a node keeps, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// The most metadata one node may hold: keys, and bytes (keys and values as JSON).
pub const MAX_METADATA_KEYS: usize = 64;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// The most phases one plan declares.
pub const MAX_PLAN: usize = 256;

/// Where a node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    Paused,
}

impl Status {
    pub const ALL: [Status; 6] =
        [Status::Pending, Status::Running, Status::Completed, Status::Failed, Status::Cancelled, Status::Paused];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Paused => "paused",
        }
    }

    /// Finished for good: only a new `Start` changes the node again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node of the progress tree: a run, or a phase, step, ... inside one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub path: NodePath,
    pub status: Status,
    /// Units of work done, in whatever unit the reporter counts.
    pub done: f64,
    /// Units of work in all, when known.
    pub total: Option<f64>,
    /// The node's share of its parent when totals are not comparable.
    pub weight: Option<f64>,
    /// Fraction complete, 0..=1.
    pub progress: f64,
    pub started_ms: Option<u64>,
    pub updated_ms: u64,
    pub finished_ms: Option<u64>,
    pub message: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The progress-calculator plugin named for this subtree, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculator: Option<String>,
    /// Set for this subtree; parents below without their own inherit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<FailurePolicy>,
    /// When a calculator's estimate says this node finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_at_ms: Option<u64>,
    /// Recent samples for speed and ETA; see [`Rate`].
    #[serde(default, skip_serializing_if = "Rate::is_empty")]
    pub rate: Rate,
    /// The process this node follows, with its descendants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// What the followed processes used; see [`Resources`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// [`Node::pace_at`] when the node was read for a view (never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace: Option<Pace>,
}

/// How a node moves: seconds left, or since when it has not moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Pace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<f64>,
    /// When the node last moved, once it has been silent far longer than it used to be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled_since_ms: Option<u64>,
}

/// What a reporter asks a node to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    Start {
        #[serde(default)]
        total: Option<f64>,
        #[serde(default)]
        weight: Option<f64>,
    },
    Done {
        units: f64,
    },
    Advance {
        units: f64,
    },
    Percent {
        percent: f64,
    },
    Finish,
    Fail,
    Cancel,
    Pause,
    Resume,
    /// New resource figures only (`resources`), from whatever follows the node's processes.
    Resources,
    /// The node's children to come, in order, with their weights if given.
    Plan {
        phases: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weights: Option<Vec<f64>>,
    },
    /// A planned child: its weight, nothing else (made by the store from a `Plan`).
    Declare {
        #[serde(default)]
        weight: Option<f64>,
    },
}

/// One update from a reporter: an operation plus an optional message and metadata.
///
/// Read strictly: `op` must be one of the operations by name (not a number),
/// and a field the operation does not take is refused by name, so a typo such
/// as `"totl"` is an error rather than silently nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct Update {
    #[serde(flatten)]
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Must be a JSON object; its keys merge into the node's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// A progress-calculator plugin that computes this node and the parents
    /// below it, instead of the default aggregation; empty to go back to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculator: Option<String>,
    /// What a failed child does to this node and the parents below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<FailurePolicy>,
    /// The process the node follows from now on, with its descendants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The node's own resource figures, replacing what it had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

/// [`Update`] as its fields read, before the checks of [`Update`]'s `TryFrom`.
#[derive(Deserialize)]
struct UpdateFields {
    #[serde(flatten)]
    op: Op,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    calculator: Option<String>,
    #[serde(default)]
    on_failure: Option<FailurePolicy>,
    #[serde(default)]
    pid: Option<u32>,
    #[serde(default)]
    resources: Option<Resources>,
}

/// The operations by name, with the fields each takes besides the common ones
/// (`declare` is the store's own, not a reporter's).
const OPS: [(&str, &[&str]); 11] = [
    ("start", &["total", "weight"]),
    ("done", &["units"]),
    ("advance", &["units"]),
    ("percent", &["percent"]),
    ("finish", &[]),
    ("fail", &[]),
    ("cancel", &[]),
    ("pause", &[]),
    ("resume", &[]),
    ("resources", &[]),
    ("plan", &["phases", "weights"]),
];
const COMMON: [&str; 7] = ["op", "message", "metadata", "calculator", "on_failure", "pid", "resources"];

impl TryFrom<Map<String, Value>> for Update {
    type Error = String;

    fn try_from(fields: Map<String, Value>) -> Result<Update, String> {
        let names = || OPS.iter().map(|(op, _)| *op).collect::<Vec<_>>().join(", ");
        let op = match fields.get("op") {
            Some(Value::String(op)) => op.as_str(),
            Some(other) => return Err(format!("op {} is not an operation; send one of {}", excerpt(other), names())),
            None => return Err(format!("op is missing; send one of {}", names())),
        };
        let Some((_, own)) = OPS.iter().find(|(name, _)| *name == op) else {
            return Err(format!("op '{}' is not an operation; send one of {}", crate::text::line(op, 40), names()));
        };
        if let Some(unknown) = fields.keys().find(|k| !COMMON.contains(&k.as_str()) && !own.contains(&k.as_str())) {
            let takes: Vec<&str> = own.iter().chain(&COMMON[1..]).copied().collect();
            let unknown = crate::text::line(unknown, 40);
            return Err(format!("unknown field '{unknown}' for op '{op}'; it takes {}", takes.join(", ")));
        }
        let f: UpdateFields = serde_json::from_value(Value::Object(fields)).map_err(|e| e.to_string())?;
        Ok(Update {
            op: f.op,
            message: f.message,
            metadata: f.metadata,
            calculator: f.calculator,
            on_failure: f.on_failure,
            pid: f.pid,
            resources: f.resources,
        })
    }
}

impl Update {
    pub fn new(op: Op) -> Update {
        Update { op, message: None, metadata: None, calculator: None, on_failure: None, pid: None, resources: None }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Update {
        self.message = Some(message.into());
        self
    }

    pub fn with_metadata(mut self, metadata: Value) -> Update {
        self.metadata = Some(metadata);
        self
    }
}

impl From<Op> for Update {
    fn from(op: Op) -> Update {
        Update::new(op)
    }
}

/// How an accepted update took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// Applied, with done lowered to the node's total.
    Clamped,
    /// Not applied: the node is finished and this was not a `Start`.
    IgnoredTerminal,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpdateError {
    #[error("{field} of {value} is invalid; send a finite number of at least 0")]
    BadNumber { field: &'static str, value: f64 },
    #[error("percent of {0} is outside 0..=100; send a percentage such as 42.5")]
    BadPercent(f64),
    #[error("advancing done {done} by {by} overflows; send the new count with 'done' instead")]
    Overflow { done: f64, by: f64 },
    #[error("metadata {0} is not a JSON object; send an object such as {{\"epoch\": 3}}")]
    MetadataNotObject(String),
    #[error("message of {0} bytes is too long; the limit is {MAX_MESSAGE_BYTES}")]
    MessageTooLong(usize),
    #[error(
        "metadata would hold {keys} keys and {bytes} bytes; a node holds at most {MAX_METADATA_KEYS} keys and {MAX_METADATA_BYTES} bytes (a null value deletes a key)"
    )]
    MetadataTooLarge { keys: usize, bytes: usize },
    #[error("calculator '{0}' is not a plugin name; use letters, digits, '-' and '_' (at most 64)")]
    BadCalculator(String),
    #[error("{0}")]
    BadResources(String),
    #[error("{0}")]
    BadPlan(String),
    /// The process named by `pid` cannot be followed (the store's check).
    #[error("{0}")]
    BadPid(String),
}

fn check_number(field: &'static str, value: f64) -> Result<(), UpdateError> {
    if value.is_finite() && value >= 0.0 { Ok(()) } else { Err(UpdateError::BadNumber { field, value }) }
}

/// A plan's phases must be child names, each once, with a weight each if any.
fn check_plan(parent: &NodePath, phases: &[String], weights: Option<&[f64]>) -> Result<(), UpdateError> {
    if phases.is_empty() || phases.len() > MAX_PLAN {
        let n = phases.len();
        return Err(UpdateError::BadPlan(format!("a plan of {n} phases; declare 1 to {MAX_PLAN}")));
    }
    let mut seen = std::collections::HashSet::new();
    for phase in phases {
        if phase.contains('/') {
            return Err(UpdateError::BadPlan(format!("phase '{phase}' holds a '/'; plan the direct children only")));
        }
        parent.child(phase).map_err(|e| UpdateError::BadPlan(format!("phase {e}")))?;
        if !seen.insert(phase.as_str()) {
            return Err(UpdateError::BadPlan(format!("phase '{phase}' is planned twice; name each phase once")));
        }
    }
    if let Some(weights) = weights {
        if weights.len() != phases.len() {
            let (w, p) = (weights.len(), phases.len());
            return Err(UpdateError::BadPlan(format!("{w} weights for {p} phases; give one weight per phase")));
        }
        for w in weights {
            check_number("weight", *w)?;
        }
    }
    Ok(())
}

/// A short rendering of a JSON value for an error message.
fn excerpt(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

impl Node {
    /// A new node that has not started.
    pub fn new(path: NodePath, now_ms: u64) -> Node {
        Node {
            path,
            status: Status::Pending,
            done: 0.0,
            total: None,
            weight: None,
            progress: 0.0,
            started_ms: None,
            updated_ms: now_ms,
            finished_ms: None,
            message: None,
            metadata: Map::new(),
            calculator: None,
            on_failure: None,
            eta_at_ms: None,
            rate: Rate::default(),
            pid: None,
            resources: None,
            pace: None,
        }
    }

    /// Seconds until the node completes: 0 once completed; a calculator's
    /// estimate if it gave one, else from the node's recent pace; `None` when
    /// finished otherwise, not moving, stalled or with too little to go on.
    pub fn eta_secs(&self, now_ms: u64) -> Option<f64> {
        self.pace_at(now_ms).eta_secs
    }

    /// How the node moves at `now_ms`, the one answer every view gives.
    pub fn pace_at(&self, now_ms: u64) -> Pace {
        match self.status {
            Status::Completed => Pace { eta_secs: Some(0.0), stalled_since_ms: None },
            Status::Running => match self.eta_at_ms {
                Some(at) => Pace { eta_secs: Some(at.saturating_sub(now_ms) as f64 / 1000.0), stalled_since_ms: None },
                None => self.rate.pace(self.progress, now_ms),
            },
            Status::Pending | Status::Paused | Status::Failed | Status::Cancelled => Pace::default(),
        }
    }

    /// Checks an update without changing anything (rule 1).
    fn validate(&self, update: &Update) -> Result<(), UpdateError> {
        match update.op {
            Op::Start { total, weight } => {
                total.map_or(Ok(()), |t| check_number("total", t))?;
                weight.map_or(Ok(()), |w| check_number("weight", w))?;
            }
            Op::Done { units } => check_number("done", units)?,
            Op::Advance { units } => {
                check_number("advance", units)?;
                if !(self.done + units).is_finite() {
                    return Err(UpdateError::Overflow { done: self.done, by: units });
                }
            }
            Op::Percent { percent } => {
                if !(0.0..=100.0).contains(&percent) {
                    return Err(UpdateError::BadPercent(percent));
                }
            }
            Op::Declare { weight } => weight.map_or(Ok(()), |w| check_number("weight", w))?,
            Op::Plan { ref phases, ref weights } => check_plan(&self.path, phases, weights.as_deref())?,
            Op::Finish | Op::Fail | Op::Cancel | Op::Pause | Op::Resume | Op::Resources => {}
        }
        if let Some(resources) = &update.resources {
            resources.check().map_err(UpdateError::BadResources)?;
        }
        if let Some(message) = &update.message
            && message.len() > MAX_MESSAGE_BYTES
        {
            return Err(UpdateError::MessageTooLong(message.len()));
        }
        if let Some(name) = &update.calculator
            && (name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(UpdateError::BadCalculator(name.chars().take(40).collect()));
        }
        match &update.metadata {
            None => Ok(()),
            Some(Value::Object(changes)) => self.check_metadata(changes),
            Some(other) => Err(UpdateError::MetadataNotObject(excerpt(other))),
        }
    }

    /// Refuses metadata that would leave the node holding too much.
    fn check_metadata(&self, changes: &Map<String, Value>) -> Result<(), UpdateError> {
        let size = |key: &str, value: &Value| key.len() + value.to_string().len();
        let (mut keys, mut bytes) = (0, 0);
        for (key, value) in &self.metadata {
            if !changes.contains_key(key) {
                keys += 1;
                bytes += size(key, value);
            }
        }
        for (key, value) in changes.iter().filter(|(_, v)| !v.is_null()) {
            keys += 1;
            bytes += size(key, value);
            if keys > MAX_METADATA_KEYS || bytes > MAX_METADATA_BYTES {
                // Counted this far only: a huge update is refused without reading all of it.
                return Err(UpdateError::MetadataTooLarge { keys, bytes });
            }
        }
        if keys > MAX_METADATA_KEYS || bytes > MAX_METADATA_BYTES {
            return Err(UpdateError::MetadataTooLarge { keys, bytes });
        }
        Ok(())
    }

    /// Applies one update under the rules in the module documentation.
    pub fn apply(&mut self, update: Update, now_ms: u64) -> Result<Applied, UpdateError> {
        self.validate(&update)?;
        let restart = matches!(update.op, Op::Start { .. });
        let finished_before = self.status.is_terminal();
        if finished_before && !restart {
            return Ok(Applied::IgnoredTerminal);
        }
        // New figures or a declared weight: the node has not moved (its stall clock goes on).
        let moved = !matches!(update.op, Op::Resources | Op::Declare { .. });
        let mut clamped = false;
        match update.op {
            Op::Start { total, weight } => {
                if self.status.is_terminal() {
                    self.done = 0.0;
                    self.progress = 0.0;
                    self.rate.clear();
                    self.started_ms = Some(now_ms);
                    self.finished_ms = None;
                }
                self.status = Status::Running;
                self.started_ms.get_or_insert(now_ms);
                self.total = total.or(self.total);
                self.weight = weight.or(self.weight);
                clamped = self.set_done(self.done);
            }
            Op::Done { units } => {
                self.report();
                clamped = self.set_done(units);
            }
            Op::Advance { units } => {
                self.report();
                clamped = self.set_done(self.done + units);
            }
            Op::Percent { percent } => {
                self.report();
                let fraction = (percent / 100.0).clamp(0.0, 1.0);
                self.progress = fraction;
                if let Some(total) = self.total {
                    self.done = (fraction * total).min(total);
                }
            }
            Op::Finish => {
                self.finish(Status::Completed, now_ms);
                self.progress = 1.0;
                if let Some(total) = self.total {
                    self.done = total;
                }
            }
            Op::Fail => self.finish(Status::Failed, now_ms),
            Op::Cancel => self.finish(Status::Cancelled, now_ms),
            Op::Pause => {
                if self.status == Status::Running {
                    self.status = Status::Paused;
                }
            }
            Op::Resume => {
                if self.status == Status::Paused {
                    self.status = Status::Running;
                }
            }
            Op::Declare { weight } => self.weight = weight.or(self.weight),
            Op::Resources | Op::Plan { .. } => {}
        }
        if self.status == Status::Running {
            self.started_ms.get_or_insert(now_ms);
        }
        if let Some(message) = update.message {
            self.message = (!message.is_empty()).then_some(message);
        }
        if let Some(name) = update.calculator {
            self.calculator = (!name.is_empty()).then_some(name);
            self.eta_at_ms = None;
        }
        if let Some(policy) = update.on_failure {
            self.on_failure = Some(policy);
        }
        if restart && finished_before {
            self.resources = None;
        }
        if let Some(resources) = update.resources {
            self.resources = Some(resources);
        }
        if let Some(pid) = update.pid {
            self.pid = Some(pid);
        }
        if let Some(Value::Object(changes)) = update.metadata {
            for (key, value) in changes {
                if value.is_null() {
                    self.metadata.remove(&key);
                } else {
                    self.metadata.insert(key, value);
                }
            }
        }
        if moved {
            self.updated_ms = now_ms;
            self.rate.record(now_ms, self.done, self.progress);
        }
        Ok(if clamped { Applied::Clamped } else { Applied::Changed })
    }

    /// A progress report starts a pending node (rule 6).
    fn report(&mut self) {
        if self.status == Status::Pending {
            self.status = Status::Running;
        }
    }

    fn finish(&mut self, status: Status, now_ms: u64) {
        self.status = status;
        self.started_ms.get_or_insert(now_ms);
        self.finished_ms = Some(now_ms);
        if let Some(r) = &mut self.resources {
            r.at_rest();
        }
    }

    /// Sets done, clamped to the total, and recomputes progress; true if clamped.
    fn set_done(&mut self, done: f64) -> bool {
        let mut clamped = false;
        self.done = done.max(0.0);
        if let Some(total) = self.total {
            if self.done > total {
                self.done = total;
                clamped = true;
            }
            if total > 0.0 {
                self.progress = (self.done / total).clamp(0.0, 1.0);
            }
        }
        clamped
    }
}

/// Random operations for property tests here and in the store.
#[cfg(test)]
pub(crate) fn op_strategy(
    units: impl proptest::strategy::Strategy<Value = f64> + Clone + 'static,
    percent: std::ops::RangeInclusive<f64>,
) -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        (proptest::option::of(units.clone()), proptest::option::of(0.0..10.0f64))
            .prop_map(|(total, weight)| Op::Start { total, weight }),
        units.clone().prop_map(|units| Op::Done { units }),
        units.prop_map(|units| Op::Advance { units }),
        percent.prop_map(|percent| Op::Percent { percent }),
        Just(Op::Finish),
        Just(Op::Fail),
        Just(Op::Cancel),
        Just(Op::Pause),
        Just(Op::Resume),
    ]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn node() -> Node {
        Node::new(NodePath::parse("run/step").unwrap(), 1)
    }

    fn start(total: Option<f64>) -> Update {
        Op::Start { total, weight: None }.into()
    }

    fn done(units: f64) -> Update {
        Op::Done { units }.into()
    }

    #[test]
    fn status_words_and_terminality() {
        let terminal: Vec<Status> = Status::ALL.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal, [Status::Completed, Status::Failed, Status::Cancelled]);
        for status in Status::ALL {
            assert_eq!(serde_json::to_value(status).unwrap(), json!(status.as_str()));
        }
    }

    #[test]
    fn counts_units_against_a_total() {
        let mut n = node();
        assert_eq!(n.apply(start(Some(200.0)), 10), Ok(Applied::Changed));
        assert_eq!((n.status, n.started_ms, n.updated_ms), (Status::Running, Some(10), 10));
        n.apply(done(50.0), 11).unwrap();
        assert_eq!(n.progress, 0.25);
        n.apply(Op::Advance { units: 50.0 }.into(), 12).unwrap();
        assert_eq!((n.done, n.progress, n.updated_ms), (100.0, 0.5, 12));
        n.apply(done(20.0), 13).unwrap();
        assert_eq!((n.done, n.progress), (20.0, 0.1), "a reporter may correct itself downwards");
        assert_eq!(n.apply(done(500.0), 14), Ok(Applied::Clamped));
        assert_eq!((n.done, n.progress), (200.0, 1.0));
        assert_eq!(n.status, Status::Running, "clamping to the total does not finish the node");
    }

    #[test]
    fn percent_sets_progress_and_done() {
        let mut n = node();
        n.apply(Op::Percent { percent: 30.0 }.into(), 5).unwrap();
        assert_eq!((n.status, n.started_ms, n.progress, n.done), (Status::Running, Some(5), 0.3, 0.0));
        n.apply(done(7.0), 6).unwrap();
        assert_eq!(n.progress, 0.3, "with no total, units leave progress as the last percent set");
        n.apply(start(Some(10.0)), 7).unwrap();
        assert_eq!((n.done, n.progress), (7.0, 0.7));
        n.apply(Op::Percent { percent: 40.0 }.into(), 8).unwrap();
        assert_eq!((n.done, n.progress), (4.0, 0.4));
    }

    #[test]
    fn finish_fail_and_cancel() {
        let mut n = node();
        n.apply(start(Some(8.0)), 1).unwrap();
        n.apply(done(2.0), 2).unwrap();
        n.apply(Op::Finish.into(), 3).unwrap();
        assert_eq!((n.status, n.done, n.progress, n.finished_ms), (Status::Completed, 8.0, 1.0, Some(3)));

        let mut n = node();
        n.apply(Op::Finish.into(), 4).unwrap();
        assert_eq!((n.progress, n.done, n.started_ms), (1.0, 0.0, Some(4)), "no total: done stays, progress is 1");

        for (op, status) in [(Op::Fail, Status::Failed), (Op::Cancel, Status::Cancelled)] {
            let mut n = node();
            n.apply(start(Some(4.0)), 1).unwrap();
            n.apply(done(1.0), 2).unwrap();
            n.apply(op.into(), 3).unwrap();
            assert_eq!((n.status, n.progress, n.finished_ms), (status, 0.25, Some(3)));
        }
    }

    #[test]
    fn late_updates_do_not_resurrect_a_finished_node() {
        let mut n = node();
        n.apply(start(Some(4.0)), 1).unwrap();
        n.apply(Op::Fail.into(), 2).unwrap();
        let before = n.clone();
        for op in [Op::Done { units: 3.0 }, Op::Percent { percent: 99.0 }, Op::Finish, Op::Resume, Op::Cancel] {
            let update = Update::new(op).with_message("late").with_metadata(json!({"k": 1}));
            assert_eq!(n.apply(update, 9), Ok(Applied::IgnoredTerminal));
            assert_eq!(n, before);
        }
    }

    #[test]
    fn start_restarts_a_finished_node_but_keeps_a_live_ones_progress() {
        let mut n = node();
        n.apply(start(Some(4.0)), 1).unwrap();
        n.apply(done(3.0), 2).unwrap();
        n.apply(start(None), 3).unwrap();
        assert_eq!((n.done, n.total, n.started_ms), (3.0, Some(4.0), Some(1)), "a retried start is harmless");
        assert_eq!(n.apply(start(Some(2.0)), 4), Ok(Applied::Clamped));
        assert_eq!((n.done, n.progress), (2.0, 1.0));

        n.apply(Op::Finish.into(), 5).unwrap();
        n.apply(start(None), 6).unwrap();
        assert_eq!((n.status, n.done, n.progress), (Status::Running, 0.0, 0.0));
        assert_eq!((n.started_ms, n.finished_ms, n.total), (Some(6), None, Some(2.0)));
    }

    #[test]
    fn pause_and_resume_only_between_running_and_paused() {
        let mut n = node();
        n.apply(Op::Pause.into(), 1).unwrap();
        assert_eq!(n.status, Status::Pending);
        n.apply(Op::Resume.into(), 2).unwrap();
        assert_eq!(n.status, Status::Pending);
        n.apply(start(Some(10.0)), 3).unwrap();
        n.apply(Op::Pause.into(), 4).unwrap();
        assert_eq!(n.status, Status::Paused);
        n.apply(done(5.0), 5).unwrap();
        assert_eq!((n.status, n.progress), (Status::Paused, 0.5), "reports count but do not resume");
        n.apply(Op::Resume.into(), 6).unwrap();
        assert_eq!((n.status, n.updated_ms), (Status::Running, 6));
    }

    #[test]
    fn message_and_metadata_merge() {
        let mut n = node();
        let update = Update::new(start(None).op).with_message("warming up").with_metadata(json!({"a": 1, "b": 2}));
        n.apply(update, 1).unwrap();
        n.apply(Update::new(Op::Pause).with_metadata(json!({"b": null, "c": "x"})), 2).unwrap();
        assert_eq!(Value::Object(n.metadata.clone()), json!({"a": 1, "c": "x"}));
        assert_eq!(n.message.as_deref(), Some("warming up"));
        n.apply(Update::new(Op::Resume).with_message(""), 3).unwrap();
        assert_eq!(n.message, None);
    }

    #[test]
    fn refuses_bad_input_and_changes_nothing() {
        let mut n = node();
        n.apply(start(Some(10.0)), 1).unwrap();
        n.apply(done(f64::MAX), 2).unwrap();
        let before = n.clone();
        let big = "m".repeat(MAX_MESSAGE_BYTES + 1);
        let cases = [
            (done(-1.0), "done of -1 is invalid; send a finite number of at least 0"),
            (done(f64::NAN), "done of NaN is invalid"),
            (Op::Advance { units: f64::INFINITY }.into(), "advance of inf is invalid"),
            (start(Some(-3.0)), "total of -3 is invalid"),
            (Op::Start { total: None, weight: Some(f64::NAN) }.into(), "weight of NaN is invalid"),
            (Op::Percent { percent: 100.5 }.into(), "percent of 100.5 is outside 0..=100"),
            (Op::Percent { percent: -0.1 }.into(), "percent of -0.1 is outside 0..=100"),
            (Update::new(Op::Resume).with_metadata(json!([1, 2])), "metadata [1,2] is not a JSON object"),
            (Update::new(Op::Resume).with_metadata(json!("x".repeat(100))), "is not a JSON object"),
            (Update::new(Op::Resume).with_message(big), "message of 4097 bytes is too long; the limit is 4096"),
        ];
        for (update, expected) in cases {
            let err = n.apply(update, 99).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains('\n') && err.len() < 120, "one short line: {err}");
            assert_eq!(n, before);
        }
        let mut n = node();
        n.apply(done(f64::MAX), 1).unwrap();
        let err = n.apply(Op::Advance { units: f64::MAX }.into(), 2).unwrap_err();
        assert!(matches!(err, UpdateError::Overflow { .. }), "{err}");
        assert_eq!(n.done, f64::MAX);
    }

    #[test]
    fn updates_and_nodes_serialise() {
        let update: Update = serde_json::from_value(json!({"op": "start", "total": 5.0, "message": "go"})).unwrap();
        assert_eq!(update, Update::new(Op::Start { total: Some(5.0), weight: None }).with_message("go"));
        let update: Update = serde_json::from_value(json!({"op": "advance", "units": 2.0})).unwrap();
        assert_eq!(update.op, Op::Advance { units: 2.0 });
        let mut n = node();
        n.apply(update, 3).unwrap();
        let back: Node = serde_json::from_value(serde_json::to_value(&n).unwrap()).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn updates_are_read_strictly() {
        let read = |text: &str| serde_json::from_str::<Update>(text).map_err(|e| e.to_string());
        assert_eq!(read(r#"{"op":"start","total":10}"#).unwrap(), start(Some(10.0)));
        let cases = [
            (r#"{"op":4}"#, "op 4 is not an operation; send one of start, done"),
            (r#"{"op":"jump"}"#, "op 'jump' is not an operation"),
            (r#"{"units":1}"#, "op is missing"),
            (r#"{"op":"start","totl":10}"#, "unknown field 'totl' for op 'start'; it takes total, weight, message"),
            (r#"{"op":"finish","units":1}"#, "unknown field 'units' for op 'finish'"),
            (r#"{"op":"done","units":"many"}"#, "invalid type: string"),
        ];
        for (text, expected) in cases {
            let err = read(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
        // Stored events read back as they were written.
        let full = Update::new(Op::Percent { percent: 5.0 }).with_message("m").with_metadata(json!({"a": 1}));
        assert_eq!(read(&serde_json::to_string(&full).unwrap()).unwrap(), full);
    }

    #[test]
    fn metadata_is_bounded_per_node() {
        let mut n = node();
        let many: Map<String, Value> = (0..MAX_METADATA_KEYS).map(|i| (format!("k{i}"), json!(i))).collect();
        n.apply(start(None).with_metadata(Value::Object(many)), 2).unwrap();
        let one_more = n.apply(done(1.0).with_metadata(json!({"extra": 1})), 3).unwrap_err();
        assert!(one_more.to_string().contains("at most 64 keys"), "{one_more}");
        // Replacing or deleting keys is fine at the cap.
        n.apply(done(1.0).with_metadata(json!({"k0": "new", "k1": null})), 4).unwrap();
        n.apply(done(2.0).with_metadata(json!({"extra": 1})), 5).unwrap();
        let big = n.apply(done(3.0).with_metadata(json!({"k2": "x".repeat(MAX_METADATA_BYTES)})), 6).unwrap_err();
        assert!(big.to_string().contains("16384 bytes"), "{big}");
        assert_eq!(n.done, 2.0, "a refused update changes nothing");
    }

    fn any_op() -> impl Strategy<Value = Op> {
        op_strategy(prop_oneof![Just(0.0), 0.0..1e3f64, 0.0..1e12f64], 0.0..=100.0)
    }

    proptest! {
        /// Any JSON object a client sends is an update or a one-line refusal.
        #[test]
        fn any_json_object_reads_or_is_refused(
            fields in proptest::collection::btree_map(
                prop_oneof![Just("op".to_string()), Just("units".to_string()), Just("total".to_string()), "[a-z_]{1,8}"],
                prop_oneof![Just(json!("start")), Just(json!("advance")), Just(json!(4)), Just(json!(null)), any::<f64>().prop_map(|f| json!(f)), "[ -~]{0,12}".prop_map(|s| json!(s))],
                0..6,
            )
        ) {
            let object: Map<String, Value> = fields.into_iter().collect();
            if let Err(e) = serde_json::from_value::<Update>(Value::Object(object)) {
                prop_assert!(!e.to_string().contains('\n'));
            }
        }

        /// Valid updates in any order keep the node consistent, and only `Start`
        /// moves a finished node.
        #[test]
        fn apply_keeps_invariants(ops in proptest::collection::vec(any_op(), 0..40)) {
            let mut n = node();
            for (i, op) in ops.into_iter().enumerate() {
                let before = n.clone();
                let is_start = matches!(op, Op::Start { .. });
                let applied = n.apply(op.into(), i as u64 + 2).unwrap();
                prop_assert!((0.0..=1.0).contains(&n.progress), "progress {}", n.progress);
                prop_assert!(n.done >= 0.0 && n.done.is_finite());
                if let Some(total) = n.total {
                    prop_assert!(n.done <= total, "done {} > total {}", n.done, total);
                }
                if before.status.is_terminal() && !is_start {
                    prop_assert_eq!(applied, Applied::IgnoredTerminal);
                    prop_assert_eq!(&n, &before);
                } else {
                    prop_assert_eq!(n.updated_ms, i as u64 + 2);
                }
                if n.status.is_terminal() {
                    prop_assert!(n.finished_ms.is_some() && n.started_ms.is_some());
                }
                if n.status == Status::Completed {
                    prop_assert_eq!(n.progress, 1.0);
                }
            }
        }
    }
}
