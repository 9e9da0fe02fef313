//! The engine: rules plus the state of their alert instances, advanced one
//! evaluation at a time by whoever holds it (the daemon, a test).
//!
//! Per evaluation the samples are indexed by name once, so a rule costs one
//! lookup plus its matching series; an instance is allocated only when its
//! condition first holds, and a transition only when something changes.
//!
//! Which instances a rule has, and what happens when their input goes away:
//!
//! - threshold: one per matching series. A series that is no longer among the
//!   inputs counts as "condition false": its alert resolves (with no value)
//!   rather than staying firing forever on data that is gone.
//! - absence: one. The clock starts at the rule's first evaluation, so a metric
//!   never seen fires `after` the engine started; a sample counts at its
//!   timestamp (capped at now).
//! - stalled: one per running node with no running node below it (the step
//!   actually working, not every parent above it), not updated for `after`.
//! - progress_failed: one per failed node with no failed node below it (the
//!   cause, not the parents that failed with it). A failed node stays failed,
//!   so its alert stays firing until it is acknowledged, resolved by hand, or
//!   the node is re-run or no longer fed in.
//! - plugin_quarantined: one per quarantined plugin.
//! - watch_failed: one per watch job whose last command failed; it resolves
//!   when a later run succeeds.
//! - run_finished, run_failed: one per run that ended (failed) in the last
//!   [`super::rule::RUN_ENDED_FRESH_MS`], fired once as it ends (the notification) and
//!   resolved when that time has passed; a run that starts again resolves it too.

use std::collections::{HashMap, HashSet};

use super::derive::derive;
use super::lifecycle::{Ack, Alert, AlertState, Instance, Step, Transition};
use super::rule::{Labels, Level, Rule, RuleKind};
use super::silence::Silence;
use crate::metrics::Sample;
use crate::progress::{NodePath, Status};

/// A progress node as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInput {
    pub path: NodePath,
    pub status: Status,
    pub updated_ms: u64,
}

/// A watch job as the rules see it: how its last command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInput {
    pub job: String,
    /// The job's project root.
    pub project: String,
    pub failed: bool,
    /// How the last command ended, in words.
    pub outcome: String,
}

/// What one evaluation looks at: the latest samples, the progress nodes, the
/// names of the quarantined plugins and the watch jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    pub samples: &'a [Sample],
    pub nodes: &'a [NodeInput],
    pub quarantined: &'a [String],
    pub jobs: &'a [JobInput],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("no alert '{0}'; 'monitor alerts list' shows the ids")]
    Unknown(String),
    #[error("'{id}' could be any of {candidates}; give more of the id")]
    Ambiguous { id: String, candidates: String },
    #[error("alert '{id}' is {state}; only a firing alert can be {action}")]
    NotFiring { id: String, state: AlertState, action: &'static str },
    #[error("alert '{id}' is already acknowledged by {by}")]
    AlreadyAcknowledged { id: String, by: String },
    #[error("a silence needs at least one matcher, like rule=cpu-hot")]
    NoMatchers,
    #[error("a silence until {until_ms} ends before now ({now_ms}); give a time in the future")]
    Past { until_ms: u64, now_ms: u64 },
    #[error(
        "a silence may have at most {MAX_MATCHERS} matchers of at most {MAX_MATCHER_BYTES} bytes each; this one has {0}"
    )]
    TooManyMatchers(usize),
    #[error("a silence may last at most a year; give a shorter 'for' or an earlier 'until_ms'")]
    TooLong,
    #[error("{MAX_SILENCES} silences are active, the most there may be; end some with 'monitor alerts unsilence ID'")]
    TooManySilences,
}

/// Bounds on what silences may hold: a client cannot grow the host with them.
pub const MAX_MATCHERS: usize = 32;
pub const MAX_MATCHER_BYTES: usize = 256;
pub const MAX_SILENCES: usize = 1000;
const MAX_SILENCE_MS: u64 = 366 * 24 * 3600 * 1000;

/// One rule and its instances.
#[derive(Debug)]
pub(super) struct Slot {
    pub rule: Rule,
    /// Threshold instances, by their series' labels.
    pub series: HashMap<Labels, Instance>,
    /// Other instances, by node path, plugin name, or `""` for absence.
    pub named: HashMap<String, Instance>,
    /// Absence: the newest sample seen so far.
    pub last_seen_ms: Option<u64>,
}

/// Rule evaluation and alert lifecycle; see the [module docs](super).
#[derive(Debug)]
pub struct Engine {
    pub(super) slots: Vec<Slot>,
    pub(super) silences: Vec<Silence>,
    pub(super) next_silence: u64,
    pub(super) generation: u64,
}

/// What every rule of one evaluation shares.
struct Tick<'a> {
    index: &'a HashMap<&'a str, Vec<&'a Sample>>,
    inputs: &'a Inputs<'a>,
    /// Paths with a running (failed) node below them.
    running_below: HashSet<&'a str>,
    failed_below: HashSet<&'a str>,
    now_ms: u64,
    generation: u64,
    silences: &'a [Silence],
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Engine {
        let slots = rules
            .into_iter()
            .map(|rule| Slot { rule, series: HashMap::new(), named: HashMap::new(), last_seen_ms: None })
            .collect();
        Engine { slots, silences: Vec::new(), next_silence: 1, generation: 0 }
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.slots.iter().map(|s| &s.rule)
    }

    /// Advances every rule to `now_ms`; the transitions come per rule in rule
    /// order, and within a rule by alert id.
    pub fn evaluate(&mut self, inputs: &Inputs, now_ms: u64) -> Vec<Transition> {
        self.generation += 1;
        self.silences.retain(|s| s.is_active(now_ms));
        let mut index: HashMap<&str, Vec<&Sample>> = HashMap::with_capacity(inputs.samples.len().min(256));
        for sample in inputs.samples {
            index.entry(sample.name.as_str()).or_default().push(sample);
        }
        let derived = derive(&index);
        for sample in &derived {
            index.entry(sample.name.as_str()).or_default().push(sample);
        }
        let uses = |f: fn(&RuleKind) -> bool| self.slots.iter().any(|s| f(&s.rule.kind));
        let below = |status: Status| -> HashSet<&str> {
            let mut set = HashSet::new();
            for node in inputs.nodes.iter().filter(|n| n.status == status) {
                let path = node.path.as_str();
                set.extend(path.match_indices('/').map(|(i, _)| &path[..i]));
            }
            set
        };
        let running_below =
            if uses(|k| matches!(k, RuleKind::Stalled { .. })) { below(Status::Running) } else { HashSet::new() };
        let failed_below =
            if uses(|k| matches!(k, RuleKind::ProgressFailed { .. })) { below(Status::Failed) } else { HashSet::new() };
        let tick = Tick {
            index: &index,
            inputs,
            running_below,
            failed_below,
            now_ms,
            generation: self.generation,
            silences: &self.silences,
        };
        let mut out = Vec::new();
        for slot in &mut self.slots {
            let start = out.len();
            slot.evaluate(&tick, &mut out);
            if out.len() - start > 1 {
                out[start..].sort_by(|a, b| a.id.cmp(&b.id));
            }
        }
        out
    }

    /// Acknowledges a firing alert until it resolves; stops its repeats.
    pub fn ack(&mut self, id: &str, by: &str, note: &str, now_ms: u64) -> Result<Transition, AlertError> {
        let silences = &self.silences;
        let (rule, inst) = find(&mut self.slots, id)?;
        match inst.state {
            AlertState::Firing => {}
            AlertState::Acknowledged => {
                let by = inst.ack.as_ref().map(|a| a.by.clone()).unwrap_or_default();
                return Err(AlertError::AlreadyAcknowledged { id: id.into(), by });
            }
            state => return Err(AlertError::NotFiring { id: id.into(), state, action: "acknowledged" }),
        }
        inst.ack = Some(Ack { by: by.into(), note: note.into(), at_ms: now_ms });
        let mut out = Vec::with_capacity(1);
        inst.emit(AlertState::Acknowledged, &Step { rule, now_ms, silences }, &mut out);
        Ok(out.remove(0))
    }

    /// Resolves a firing alert by hand. If its condition still holds it stays
    /// resolved until the condition is false once, then may fire again.
    pub fn resolve(&mut self, id: &str, now_ms: u64) -> Result<Transition, AlertError> {
        let silences = &self.silences;
        let (rule, inst) = find(&mut self.slots, id)?;
        if !matches!(inst.state, AlertState::Firing | AlertState::Acknowledged) {
            return Err(AlertError::NotFiring { id: id.into(), state: inst.state, action: "resolved" });
        }
        let mut out = Vec::with_capacity(1);
        inst.emit(AlertState::Resolved, &Step { rule, now_ms, silences }, &mut out);
        inst.ack = None;
        Ok(out.remove(0))
    }

    /// Silences alerts matching `matchers` until `until_ms`; returns its id.
    pub fn silence(&mut self, matchers: Labels, until_ms: u64, now_ms: u64) -> Result<u64, AlertError> {
        if matchers.is_empty() {
            return Err(AlertError::NoMatchers);
        }
        if until_ms <= now_ms {
            return Err(AlertError::Past { until_ms, now_ms });
        }
        let too_big = |(k, v): (&String, &String)| k.len() > MAX_MATCHER_BYTES || v.len() > MAX_MATCHER_BYTES;
        if matchers.len() > MAX_MATCHERS || matchers.iter().any(too_big) {
            return Err(AlertError::TooManyMatchers(matchers.len()));
        }
        if until_ms - now_ms > MAX_SILENCE_MS {
            return Err(AlertError::TooLong);
        }
        self.silences.retain(|s| s.is_active(now_ms));
        if self.silences.len() >= MAX_SILENCES {
            return Err(AlertError::TooManySilences);
        }
        let id = self.next_silence;
        self.next_silence += 1;
        self.silences.push(Silence { id, matchers, created_ms: now_ms, until_ms });
        Ok(id)
    }

    /// Ends a silence early; false if there is none with that id.
    pub fn unsilence(&mut self, id: u64) -> bool {
        let before = self.silences.len();
        self.silences.retain(|s| s.id != id);
        self.silences.len() != before
    }

    /// The silences not expired at the last evaluation.
    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    /// How many alerts stand in each state and level, without rendering them.
    pub fn counts(&self) -> HashMap<(AlertState, Level), u64> {
        let mut counts = HashMap::new();
        for slot in &self.slots {
            for inst in slot.series.values().chain(slot.named.values()) {
                *counts.entry((inst.state, slot.rule.level)).or_default() += 1;
            }
        }
        counts
    }

    /// Every pending, firing, acknowledged (or latched resolved) alert, by rule then id.
    pub fn alerts(&self, now_ms: u64) -> Vec<Alert> {
        let mut out = Vec::new();
        for slot in &self.slots {
            let start = out.len();
            let ctx = Step { rule: &slot.rule, now_ms, silences: &self.silences };
            out.extend(slot.series.values().chain(slot.named.values()).map(|i| i.snapshot(&ctx)));
            out[start..].sort_by(|a: &Alert, b| a.id.cmp(&b.id));
        }
        out
    }
}

/// The instance named `id`, or the only one whose id starts with it (so
/// `cpu-hot` finds `cpu-hot{core="0"}` when that is the rule's one alert).
fn find<'a>(slots: &'a mut [Slot], id: &str) -> Result<(&'a Rule, &'a mut Instance), AlertError> {
    let ids = || slots.iter().flat_map(|s| s.series.values().chain(s.named.values())).map(|i| i.id.as_str());
    let full = if ids().any(|i| i == id) {
        id.to_string()
    } else {
        let mut candidates: Vec<&str> = ids().filter(|i| i.starts_with(id)).collect();
        match candidates.len() {
            0 => return Err(AlertError::Unknown(id.into())),
            1 => candidates[0].to_string(),
            _ => {
                candidates.sort_unstable();
                let candidates = candidates.join(", ");
                return Err(AlertError::Ambiguous { id: id.into(), candidates });
            }
        }
    };
    for slot in slots {
        let Slot { rule, series, named, .. } = slot;
        if let Some(inst) = series.values_mut().chain(named.values_mut()).find(|i| i.id == full) {
            return Ok((rule, inst));
        }
    }
    unreachable!("the id was just found")
}

impl Slot {
    fn evaluate(&mut self, tick: &Tick, out: &mut Vec<Transition>) {
        let Slot { rule, series, named, last_seen_ms } = self;
        let step = Step { rule, now_ms: tick.now_ms, silences: tick.silences };
        let now = tick.now_ms;
        let samples = |metric: &str| tick.index.get(metric).map_or(&[][..], Vec::as_slice);
        match &rule.kind {
            RuleKind::Threshold { metric, matchers, op, threshold, clear } => {
                for sample in samples(metric).iter().filter(|s| matches(matchers, &s.labels)) {
                    let v = sample.value;
                    let cond = |active: bool| match clear {
                        Some(clear) if active => {
                            if op.is_upper() {
                                v >= *clear
                            } else {
                                v <= *clear
                            }
                        }
                        _ => op.holds(v, *threshold),
                    };
                    if let Some(inst) = series.get_mut(&sample.labels) {
                        inst.seen = tick.generation;
                        inst.restored_ms = None;
                        inst.value = Some(v);
                        if !inst.step(cond(inst.is_active()), &step, out) {
                            series.remove(&sample.labels);
                        }
                    } else if cond(false) {
                        let mut inst = Instance::new(rule, sample.labels.clone(), now, tick.generation);
                        inst.value = Some(v);
                        if inst.step(true, &step, out) {
                            series.insert(sample.labels.clone(), inst);
                        }
                    }
                }
                sweep(series, tick.generation, &step, out);
            }
            RuleKind::Absence { metric, matchers, after_ms } => {
                let mut last = last_seen_ms.unwrap_or(now);
                for sample in samples(metric).iter().filter(|s| matches(matchers, &s.labels)) {
                    last = last.max(sample.timestamp_ms.min(now));
                }
                *last_seen_ms = Some(last);
                let age = now - last;
                let key = || matchers.clone();
                visit(named, "", age >= *after_ms, (Some(age), None), &step, tick.generation, key, out);
                sweep(named, tick.generation, &step, out);
            }
            RuleKind::Stalled { prefix, after_ms } => {
                for node in tick.inputs.nodes {
                    let path = node.path.as_str();
                    if node.status != Status::Running || tick.running_below.contains(path) || !under(prefix, path) {
                        continue;
                    }
                    let age = now.saturating_sub(node.updated_ms);
                    let key = || Labels::from([("path".to_string(), path.to_string())]);
                    visit(named, path, age >= *after_ms, (Some(age), None), &step, tick.generation, key, out);
                }
                sweep(named, tick.generation, &step, out);
            }
            RuleKind::ProgressFailed { prefix } => {
                for node in tick.inputs.nodes {
                    let path = node.path.as_str();
                    if node.status != Status::Failed || tick.failed_below.contains(path) || !under(prefix, path) {
                        continue;
                    }
                    let key = || Labels::from([("path".to_string(), path.to_string())]);
                    visit(named, path, true, (None, None), &step, tick.generation, key, out);
                }
                sweep(named, tick.generation, &step, out);
            }
            RuleKind::RunFinished { prefix } | RuleKind::RunFailed { prefix } => {
                let failed_only = matches!(rule.kind, RuleKind::RunFailed { .. });
                for node in tick.inputs.nodes.iter().filter(|n| n.path.depth() == 1) {
                    let path = node.path.as_str();
                    let ended = if failed_only { node.status == Status::Failed } else { node.status.is_terminal() };
                    let fresh = now.saturating_sub(node.updated_ms) < super::rule::RUN_ENDED_FRESH_MS;
                    if !ended || !fresh || !under(prefix, path) {
                        continue;
                    }
                    let key = || {
                        Labels::from([
                            ("run".to_string(), path.to_string()),
                            ("status".to_string(), node.status.to_string()),
                        ])
                    };
                    visit(named, path, true, (None, None), &step, tick.generation, key, out);
                }
                sweep(named, tick.generation, &step, out);
            }
            RuleKind::PluginQuarantined { plugin } => {
                for name in tick.inputs.quarantined {
                    if plugin.as_ref().is_some_and(|p| p != name) {
                        continue;
                    }
                    let key = || Labels::from([("plugin".to_string(), name.clone())]);
                    visit(named, name, true, (None, None), &step, tick.generation, key, out);
                }
                sweep(named, tick.generation, &step, out);
            }
            RuleKind::WatchFailed { job } => {
                for input in tick.inputs.jobs {
                    if job.as_ref().is_some_and(|j| j != &input.job) {
                        continue;
                    }
                    let key = || {
                        Labels::from([
                            ("job".to_string(), input.job.clone()),
                            ("project".to_string(), input.project.clone()),
                        ])
                    };
                    let detail = Some(input.outcome.as_str());
                    visit(named, &input.job, input.failed, (None, detail), &step, tick.generation, key, out);
                }
                sweep(named, tick.generation, &step, out);
            }
        }
    }
}

/// Steps the instance `name` (creating it, with labels from `key`, only when
/// the condition holds). `age_ms` is the value of absence and stalled alerts,
/// in seconds; `detail` what a watch job's failure was.
#[allow(clippy::too_many_arguments)]
fn visit(
    named: &mut HashMap<String, Instance>,
    name: &str,
    cond: bool,
    (age_ms, detail): (Option<u64>, Option<&str>),
    step: &Step,
    generation: u64,
    key: impl FnOnce() -> Labels,
    out: &mut Vec<Transition>,
) {
    let value = age_ms.map(|ms| ms as f64 / 1000.0);
    if let Some(inst) = named.get_mut(name) {
        inst.seen = generation;
        inst.restored_ms = None;
        inst.value = value;
        inst.age_ms = age_ms;
        inst.detail = detail.map(str::to_string);
        if !inst.step(cond, step, out) {
            named.remove(name);
        }
    } else if cond {
        let mut inst = Instance::new(step.rule, key(), step.now_ms, generation);
        inst.value = value;
        inst.age_ms = age_ms;
        inst.detail = detail.map(str::to_string);
        if inst.step(true, step, out) {
            named.insert(name.to_string(), inst);
        }
    }
}

/// Instances whose input was not seen this evaluation: condition false, no
/// value; but one taken up after a restart waits a while for its input first.
fn sweep<K>(instances: &mut HashMap<K, Instance>, generation: u64, step: &Step, out: &mut Vec<Transition>) {
    if instances.is_empty() {
        return;
    }
    instances.retain(|_, inst| {
        let waiting =
            inst.restored_ms.is_some_and(|at| step.now_ms < at.saturating_add(super::lifecycle::RESTORED_WAIT_MS));
        if inst.seen == generation || waiting {
            return true;
        }
        inst.value = None;
        inst.age_ms = None;
        inst.step(false, step, out)
    });
}

fn matches(matchers: &Labels, labels: &Labels) -> bool {
    matchers.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `path` is `prefix` or below it.
fn under(prefix: &Option<NodePath>, path: &str) -> bool {
    prefix.as_ref().is_none_or(|p| {
        let p = p.as_str();
        path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}
