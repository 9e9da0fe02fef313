//! Alert history and the alert engine's state.
//!
//! `alert_history` holds every transition, keyed by a sequence number that
//! only grows (the newest entry is never pruned, so numbering never starts
//! over); `alert_state` holds the engine's [`Saved`] state under one key. Both
//! change in one transaction ([`Store::alerts_record`]), and the daemon routes a
//! transition only after that commit: nothing is sent that is not on disk.

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::alerts::{Saved, Transition};

pub(super) const HISTORY: TableDefinition<u64, &str> = TableDefinition::new("alert_history");
pub(super) const STATE: TableDefinition<&str, &str> = TableDefinition::new("alert_state");
const ENGINE: &str = "engine";
/// Most entries one prune removes, so a backlog cannot hold the write lock for long.
const PRUNE_LIMIT: usize = 100_000;

/// One stored transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub seq: u64,
    #[serde(flatten)]
    pub transition: Transition,
}

impl Store {
    /// Appends `transitions` to the history and replaces the engine's state,
    /// in one durable commit; returns the entries as numbered.
    pub fn alerts_record(&self, transitions: &[Transition], saved: &Saved) -> Result<Vec<HistoryEntry>, StoreError> {
        let tx = self.write()?;
        let mut out = Vec::with_capacity(transitions.len());
        {
            let mut history = tx.open_table(HISTORY)?;
            let mut seq = history.last()?.map_or(0, |(k, _)| k.value());
            for t in transitions {
                seq += 1;
                let json = serde_json::to_string(t).expect("a transition serializes");
                history.insert(seq, json.as_str())?;
                out.push(HistoryEntry { seq, transition: t.clone() });
            }
            let state = serde_json::to_string(saved).expect("the engine state serializes");
            tx.open_table(STATE)?.insert(ENGINE, state.as_str())?;
        }
        self.commit(tx)?;
        Ok(out)
    }

    /// The engine's state as last recorded; empty on a new database.
    pub fn alerts_saved(&self) -> Result<Saved, StoreError> {
        let tx = self.read()?;
        let table = tx.open_table(STATE)?;
        match table.get(ENGINE)? {
            Some(json) => serde_json::from_str(json.value())
                .map_err(|source| StoreError::Corrupt { key: "alert_state/engine".into(), source }),
            None => Ok(Saved::default()),
        }
    }

    /// Transitions at or after `since_ms` with a sequence number above
    /// `after_seq`, oldest first, at most `limit` (the newest ones).
    pub fn alerts_history(&self, since_ms: u64, after_seq: u64, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        let tx = self.read()?;
        let table = tx.open_table(HISTORY)?;
        let mut out = Vec::new();
        // Entries are appended in time order, so walk back from the newest.
        for entry in table.range(after_seq.saturating_add(1)..)?.rev() {
            let (key, json) = entry?;
            let entry = decode(key.value(), json.value())?;
            if entry.transition.at_ms < since_ms || out.len() >= limit {
                break;
            }
            out.push(entry);
        }
        out.reverse();
        Ok(out)
    }

    /// Entries with a sequence number above `after_seq`, oldest first, at most
    /// `limit`; and the oldest number still kept (`None` when there is no
    /// history), by which a reader tells that entries it missed were pruned.
    pub fn alerts_after(&self, after_seq: u64, limit: usize) -> Result<(Vec<HistoryEntry>, Option<u64>), StoreError> {
        let tx = self.read()?;
        let table = tx.open_table(HISTORY)?;
        let oldest = table.first()?.map(|(k, _)| k.value());
        let mut out = Vec::new();
        for entry in table.range(after_seq.saturating_add(1)..)?.take(limit) {
            let (key, json) = entry?;
            out.push(decode(key.value(), json.value())?);
        }
        Ok((out, oldest))
    }

    /// The newest sequence number (0 when there is no history).
    pub fn alerts_last_seq(&self) -> Result<u64, StoreError> {
        let tx = self.read()?;
        let table = tx.open_table(HISTORY)?;
        Ok(table.last()?.map_or(0, |(k, _)| k.value()))
    }

    /// Removes history older than `keep_ms` (at most [`PRUNE_LIMIT`] entries per
    /// call; never the newest). Returns how many went.
    pub fn alerts_prune(&self, keep_ms: u64, now_ms: u64) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct AtMs {
            at_ms: u64,
        }
        let cutoff = now_ms.saturating_sub(keep_ms);
        let tx = self.write()?;
        let mut doomed = Vec::new();
        {
            let mut history = tx.open_table(HISTORY)?;
            let last = history.last()?.map_or(0, |(k, _)| k.value());
            for entry in history.range(..last)? {
                let (key, json) = entry?;
                let at_ms = serde_json::from_str::<AtMs>(json.value()).map_or(0, |e| e.at_ms);
                if at_ms >= cutoff || doomed.len() >= PRUNE_LIMIT {
                    break;
                }
                doomed.push(key.value());
            }
            for seq in &doomed {
                history.remove(*seq)?;
            }
        }
        if doomed.is_empty() {
            tx.abort()?;
        } else {
            self.commit(tx)?;
        }
        Ok(doomed.len() as u64)
    }
}

fn decode(seq: u64, json: &str) -> Result<HistoryEntry, StoreError> {
    let transition = serde_json::from_str(json)
        .map_err(|source| StoreError::Corrupt { key: format!("alert_history/{seq}"), source })?;
    Ok(HistoryEntry { seq, transition })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{AlertState, Level};

    fn transition(id: &str, to: AlertState, at_ms: u64) -> Transition {
        Transition {
            id: id.into(),
            rule: id.into(),
            level: Level::Warning,
            labels: Default::default(),
            from: AlertState::Pending,
            to,
            value: Some(1.5),
            message: "m".into(),
            at_ms,
            silenced: false,
            ack: None,
        }
    }

    #[test]
    fn history_and_state_survive_reopen_and_prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.redb");
        let saved = Saved { next_silence: 7, ..Saved::default() };
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.alerts_saved().unwrap(), Saved::default());
            let entries = store
                .alerts_record(
                    &[transition("a", AlertState::Firing, 10), transition("a", AlertState::Resolved, 20)],
                    &saved,
                )
                .unwrap();
            assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
            store.alerts_record(&[transition("b", AlertState::Firing, 30)], &saved).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.alerts_saved().unwrap(), saved);
        let all = store.alerts_history(0, 0, usize::MAX).unwrap();
        assert_eq!(all.iter().map(|e| (e.seq, e.transition.at_ms)).collect::<Vec<_>>(), [(1, 10), (2, 20), (3, 30)]);
        assert_eq!(all[1].transition, transition("a", AlertState::Resolved, 20));
        assert_eq!(store.alerts_history(20, 0, usize::MAX).unwrap().len(), 2);
        assert_eq!(store.alerts_history(0, 2, usize::MAX).unwrap()[0].seq, 3);
        assert_eq!(store.alerts_history(0, 0, 1).unwrap()[0].seq, 3, "the newest within the limit");
        let (after, oldest) = store.alerts_after(1, 1).unwrap();
        assert_eq!((after.iter().map(|e| e.seq).collect::<Vec<_>>(), oldest), (vec![2], Some(1)), "the oldest first");
        assert_eq!(store.alerts_last_seq().unwrap(), 3);

        assert_eq!(store.alerts_prune(5, 1_000).unwrap(), 2, "everything is old, but the newest stays");
        assert_eq!(store.alerts_history(0, 0, usize::MAX).unwrap()[0].seq, 3);
        assert_eq!(store.alerts_after(0, 10).unwrap().1, Some(3), "a reader after 0 can tell that 1 and 2 are gone");
        let next = store.alerts_record(&[transition("c", AlertState::Firing, 1_000)], &saved).unwrap();
        assert_eq!(next[0].seq, 4, "numbering goes on after a prune");
    }
}
