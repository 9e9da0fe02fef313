//! What the engine remembers across a restart, so that an alert firing when
//! the host stopped is still firing (not sent again) when it starts, an
//! acknowledgement still holds, silences still apply, and absence clocks go on.
//!
//! Pending instances are not kept: after a restart their `for` starts again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::eval::Engine;
use super::lifecycle::{Alert, AlertState, Instance, Transition};
use super::rule::{Level, RuleKind};
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

/// One firing, acknowledged or (by hand) resolved alert: the instance, with
/// what it needs to be found again or resolved without its rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedInstance {
    pub rule: String,
    pub level: Level,
    /// The instance's name within a rule that is not a threshold (node path,
    /// plugin, `""`); none for a threshold rule's series.
    pub name: Option<String>,
    pub message: String,
    #[serde(flatten)]
    pub(crate) instance: Instance,
}

impl SavedInstance {
    pub fn id(&self) -> &str {
        &self.instance.id
    }

    /// The alert as listed, silenced or not.
    pub fn alert(self, silenced: bool) -> Alert {
        let i = self.instance;
        Alert {
            id: i.id,
            rule: self.rule,
            level: self.level,
            labels: i.labels,
            state: i.state,
            since_ms: i.since_ms,
            fired_ms: i.fired_ms,
            value: i.value,
            message: self.message,
            silenced,
            ack: i.ack,
        }
    }
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
                    rule: slot.rule.name.clone(),
                    level: slot.rule.level,
                    name,
                    message: inst.message(&slot.rule),
                    instance: inst.clone(),
                });
            }
        }
        saved.instances.sort_by(|a, b| a.id().cmp(b.id()));
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
            let is_threshold = |kind: &RuleKind| matches!(kind, RuleKind::Threshold { .. });
            let slot = self
                .slots
                .iter_mut()
                .find(|slot| slot.rule.name == s.rule && is_threshold(&slot.rule.kind) == s.name.is_none());
            let Some(slot) = slot else {
                let i = s.instance;
                if matches!(i.state, AlertState::Firing | AlertState::Acknowledged) {
                    orphans.push(Transition {
                        id: i.id,
                        rule: s.rule.clone(),
                        level: s.level,
                        labels: i.labels,
                        from: i.state,
                        to: AlertState::Resolved,
                        value: i.value,
                        message: format!("{} (rule '{}' is no longer configured)", s.message, s.rule),
                        at_ms: now_ms,
                        silenced: false,
                        ack: i.ack,
                    });
                }
                continue;
            };
            // Id and labels as the rule now makes them (its labels may have changed).
            let fresh = Instance::new(&slot.rule, s.instance.key.clone(), 0, self.generation);
            let inst = Instance {
                id: fresh.id,
                labels: fresh.labels,
                seen: fresh.seen,
                restored_ms: Some(now_ms),
                ..s.instance
            };
            match s.name {
                Some(name) => slot.named.insert(name, inst),
                None => slot.series.insert(inst.key.clone(), inst),
            };
        }
        orphans
    }
}
