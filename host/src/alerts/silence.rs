//! Silences: "do not bother anyone about alerts like these until then".
//!
//! A silence matches an alert when every matcher does: the keys `rule` and
//! `level` match the alert's rule name and level, every other key one of its
//! labels, by exact value. A silence changes no state; it marks the alert's
//! transitions `silenced` while `now < until_ms`, so that routing can skip them.

use serde::{Deserialize, Serialize};

use super::rule::{Labels, Level};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: u64,
    pub matchers: Labels,
    pub created_ms: u64,
    /// The first moment the silence no longer applies.
    pub until_ms: u64,
}

impl Silence {
    pub fn is_active(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }

    pub fn matches(&self, rule: &str, level: Level, labels: &Labels) -> bool {
        self.matchers.iter().all(|(key, want)| match key.as_str() {
            "rule" => rule == want,
            "level" => level.as_str() == want,
            _ => labels.get(key) == Some(want),
        })
    }
}

/// Whether any active silence covers the alert.
pub(crate) fn silenced(silences: &[Silence], now_ms: u64, rule: &str, level: Level, labels: &Labels) -> bool {
    silences.iter().any(|s| s.is_active(now_ms) && s.matches(rule, level, labels))
}
