//! What the engine remembers across a restart, so that an alert firing when
//! the host stopped is still firing (not sent again) when it starts, an
//! acknowledgement still holds, silences still apply, and absence clocks go on.
//!
//! Pending instances are not kept: after a restart their `for` starts again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::eval::Engine;
use super::lifecycle::{Ack, Instance, State, Transition};
use super::rule::{Kind, Labels, Level};
use super::silence::Silence;

/// The engine's state as stored in the database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    pub instances: Vec<SavedInstance>,
    pub silences: Vec<Silence>,
    pub next_silence: u64,
    /// Absence rules: the newest sample seen, by rule name.
    pub last_seen_ms: BTreeMap<String, u64>,
}

/// One firing, acknowledged or (by hand) resolved alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedInstance {
    pub id: String,
    pub rule: String,
    pub level: Level,
    /// The instance's name within a rule that is not a threshold (node path,
    /// plugin, `""`); none for a threshold rule's series.
    pub name: Option<String>,
    pub key: Labels,
    pub labels: Labels,
    pub state: State,
    pub since_ms: u64,
    pub fired_ms: Option<u64>,
    pub sent_ms: u64,
    pub notified: bool,
    pub value: Option<f64>,
    pub age_ms: Option<u64>,
    #[serde(default)]
    pub detail: Option<String>,
    pub ack: Option<Ack>,
    pub message: String,
}

impl Engine {
    /// The state to store after a change.
    pub fn save(&self) -> Saved {
        let mut saved = Saved {
            instances: Vec::new(),
            silences: self.silences.clone(),
            next_silence: self.next_silence,
            last_seen_ms: BTreeMap::new(),
        };
        for slot in &self.slots {
            if let Some(seen) = slot.last_seen_ms {
                saved.last_seen_ms.insert(slot.rule.name.clone(), seen);
            }
            let series = slot.series.values().map(|i| (None, i));
            let named = slot.named.iter().map(|(name, i)| (Some(name.clone()), i));
            for (name, inst) in series.chain(named).filter(|(_, i)| i.is_active()) {
                saved.instances.push(SavedInstance {
                    id: inst.id.clone(),
                    rule: slot.rule.name.clone(),
                    level: slot.rule.level,
                    name,
                    key: inst.key.clone(),
                    labels: inst.labels.clone(),
                    state: inst.state,
                    since_ms: inst.since_ms,
                    fired_ms: inst.fired_ms,
                    sent_ms: inst.sent_ms,
                    notified: inst.notified,
                    value: inst.value,
                    age_ms: inst.age_ms,
                    detail: inst.detail.clone(),
                    ack: inst.ack.clone(),
                    message: inst.message(&slot.rule),
                });
            }
        }
        saved.instances.sort_by(|a, b| a.id.cmp(&b.id));
        saved
    }

    /// Takes up a stored state. An alert whose rule is gone from the
    /// configuration (or changed kind) resolves; those transitions are returned.
    pub fn restore(&mut self, saved: Saved, now_ms: u64) -> Vec<Transition> {
        self.silences = saved.silences;
        self.next_silence = saved.next_silence.max(1 + self.silences.iter().map(|s| s.id).max().unwrap_or(0));
        let mut orphans = Vec::new();
        for slot in &mut self.slots {
            if let Some(seen) = saved.last_seen_ms.get(&slot.rule.name) {
                slot.last_seen_ms = Some(*seen);
            }
        }
        for s in saved.instances {
            let is_threshold = |kind: &Kind| matches!(kind, Kind::Threshold { .. });
            let slot = self
                .slots
                .iter_mut()
                .find(|slot| slot.rule.name == s.rule && is_threshold(&slot.rule.kind) == s.name.is_none());
            let Some(slot) = slot else {
                if matches!(s.state, State::Firing | State::Acknowledged) {
                    orphans.push(Transition {
                        id: s.id,
                        rule: s.rule.clone(),
                        level: s.level,
                        labels: s.labels,
                        from: s.state,
                        to: State::Resolved,
                        value: s.value,
                        message: format!("{} (rule '{}' is no longer configured)", s.message, s.rule),
                        at_ms: now_ms,
                        silenced: false,
                        ack: s.ack,
                    });
                }
                continue;
            };
            let mut inst = Instance::new(&slot.rule, s.key, s.since_ms, self.generation);
            inst.state = s.state;
            inst.fired_ms = s.fired_ms;
            inst.sent_ms = s.sent_ms;
            inst.notified = s.notified;
            inst.value = s.value;
            inst.age_ms = s.age_ms;
            inst.detail = s.detail;
            inst.ack = s.ack;
            match s.name {
                Some(name) => slot.named.insert(name, inst),
                None => slot.series.insert(inst.key.clone(), inst),
            };
        }
        orphans
    }
}
