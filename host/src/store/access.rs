//! The API's tokens (hashes only) and the audit log of changes.

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::access::{AuditEntry, Token};

/// Name → JSON [`Stored`].
pub(super) const TOKENS: TableDefinition<&str, &str> = TableDefinition::new("api_tokens");
/// Sequence → JSON [`AuditEntry`], oldest first.
pub(super) const AUDIT: TableDefinition<u64, &str> = TableDefinition::new("audit_log");

/// Most tokens kept, revoked ones included.
pub const MAX_TOKENS: usize = 1000;
/// Most audit entries one listing returns (the newest).
pub const MAX_AUDIT_LISTED: usize = 10_000;
/// Most audit entries kept, whatever their age: the oldest go first.
pub const MAX_AUDIT_KEPT: u64 = 200_000;

#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    token: Token,
    hash: String,
}

/// Why a token was not created.
#[derive(Debug, PartialEq, Eq)]
pub enum NotCreated {
    /// An active token has the name.
    Exists,
    /// [`MAX_TOKENS`] are kept.
    Full,
}

impl Store {
    /// Every token with its secret's hash, by name.
    pub fn tokens(&self) -> Result<Vec<(Token, String)>, StoreError> {
        let tx = self.read()?;
        let table = tx.open_table(TOKENS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, value) = entry?;
            if let Ok(stored) = serde_json::from_str::<Stored>(value.value()) {
                out.push((stored.token, stored.hash));
            }
        }
        Ok(out)
    }

    /// Adds `token`, found by `hash`; a revoked or expired one of the same name is replaced.
    pub fn token_create(&self, token: &Token, hash: &str, now_ms: u64) -> Result<Result<(), NotCreated>, StoreError> {
        let tx = self.write()?;
        {
            let mut table = tx.open_table(TOKENS)?;
            let existing = table.get(token.name.as_str())?.and_then(|v| serde_json::from_str::<Stored>(v.value()).ok());
            match existing {
                Some(old) if old.token.check(now_ms).is_ok() => return Ok(Err(NotCreated::Exists)),
                None if table.len()? as usize >= MAX_TOKENS => return Ok(Err(NotCreated::Full)),
                _ => {}
            }
            let stored =
                serde_json::to_string(&Stored { token: token.clone(), hash: hash.into() }).expect("plain data");
            table.insert(token.name.as_str(), stored.as_str())?;
        }
        self.commit(tx)?;
        Ok(Ok(()))
    }

    /// Marks token `name` revoked at `now_ms`; the token as it is now, if there is one.
    pub fn token_revoke(&self, name: &str, now_ms: u64) -> Result<Option<Token>, StoreError> {
        let tx = self.write()?;
        let token = {
            let mut table = tx.open_table(TOKENS)?;
            let found = table.get(name)?.and_then(|v| serde_json::from_str::<Stored>(v.value()).ok());
            let Some(mut stored) = found else { return Ok(None) };
            stored.token.revoked_ms.get_or_insert(now_ms);
            table.insert(name, serde_json::to_string(&stored).expect("plain data").as_str())?;
            stored.token
        };
        self.commit(tx)?;
        Ok(Some(token))
    }

    /// Records `entry`, and forgets entries older than `keep_ms` before it and
    /// the oldest beyond [`MAX_AUDIT_KEPT`].
    pub fn audit_record(&self, entry: &AuditEntry, keep_ms: u64) -> Result<(), StoreError> {
        let tx = self.write()?;
        {
            let mut table = tx.open_table(AUDIT)?;
            let next = table.last()?.map_or(0, |(k, _)| k.value() + 1);
            table.insert(next, serde_json::to_string(entry).expect("plain data").as_str())?;
            trim(&mut table, entry.at_ms.saturating_sub(keep_ms))?;
        }
        self.commit(tx)
    }

    /// Forgets the entries older than `keep_ms` at `now_ms` (the host does it as
    /// it starts, so a log no change was added to for a while is trimmed too);
    /// how many.
    pub fn audit_trim(&self, now_ms: u64, keep_ms: u64) -> Result<usize, StoreError> {
        let tx = self.write()?;
        let removed = trim(&mut tx.open_table(AUDIT)?, now_ms.saturating_sub(keep_ms))?;
        self.commit(tx)?;
        Ok(removed)
    }

    /// The entries at or after `since_ms`, oldest first; at most the newest [`MAX_AUDIT_LISTED`].
    pub fn audit(&self, since_ms: u64) -> Result<Vec<AuditEntry>, StoreError> {
        let tx = self.read()?;
        let table = tx.open_table(AUDIT)?;
        let mut out = Vec::new();
        for entry in table.iter()?.rev() {
            let (_, json) = entry?;
            let Ok(entry) = serde_json::from_str::<AuditEntry>(json.value()) else { continue };
            if entry.at_ms < since_ms || out.len() == MAX_AUDIT_LISTED {
                break;
            }
            out.push(entry);
        }
        out.reverse();
        Ok(out)
    }
}

/// Removes the entries before `cutoff_ms` and the oldest beyond [`MAX_AUDIT_KEPT`]; how many.
fn trim(table: &mut redb::Table<u64, &str>, cutoff_ms: u64) -> Result<usize, StoreError> {
    let mut over = table.len()?.saturating_sub(MAX_AUDIT_KEPT);
    // Oldest first: the scan ends at the first entry kept.
    let mut old = Vec::new();
    for item in table.iter()? {
        let (seq, json) = item?;
        let expired = serde_json::from_str::<AuditEntry>(json.value()).is_ok_and(|e| e.at_ms < cutoff_ms);
        if !expired && over == 0 {
            break;
        }
        over = over.saturating_sub(1);
        old.push(seq.value());
    }
    for seq in &old {
        table.remove(*seq)?;
    }
    Ok(old.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Scope;

    fn token(name: &str) -> Token {
        Token { name: name.into(), scope: Scope::Read, created_ms: 0, expires_ms: None, revoked_ms: None }
    }

    #[test]
    fn tokens_are_created_once_revoked_and_then_replaceable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.redb")).unwrap();
        assert_eq!(store.token_create(&token("ci"), "h1", 0).unwrap(), Ok(()));
        assert_eq!(store.token_create(&token("ci"), "h2", 0).unwrap(), Err(NotCreated::Exists));
        assert_eq!(store.token_revoke("ci", 7).unwrap().unwrap().revoked_ms, Some(7));
        assert_eq!(store.token_revoke("ci", 9).unwrap().unwrap().revoked_ms, Some(7), "revoked once");
        assert!(store.token_revoke("nobody", 9).unwrap().is_none());
        assert_eq!(store.token_create(&token("ci"), "h3", 10).unwrap(), Ok(()));
        let all = store.tokens().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].0.revoked_ms, all[0].1.as_str()), (None, "h3"));
    }

    #[test]
    fn the_audit_log_keeps_what_is_recent_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.redb")).unwrap();
        let entry = |at_ms| AuditEntry {
            at_ms,
            token: "ops".into(),
            address: "127.0.0.1".into(),
            method: "POST".into(),
            path: "/v1/alerts/ack".into(),
            detail: String::new(),
            status: 200,
            outcome: "ok".into(),
        };
        for at in [1_000, 2_000, 3_000] {
            store.audit_record(&entry(at), 60_000).unwrap();
        }
        assert_eq!(store.audit(2_000).unwrap().iter().map(|e| e.at_ms).collect::<Vec<_>>(), [2_000, 3_000]);
        store.audit_record(&entry(62_500), 60_000).unwrap();
        let kept: Vec<u64> = store.audit(0).unwrap().iter().map(|e| e.at_ms).collect();
        assert_eq!(kept, [3_000, 62_500], "entries older than the keep time are forgotten");
        assert_eq!(store.audit_trim(70_000, 60_000).unwrap(), 1);
        let kept: Vec<u64> = store.audit(0).unwrap().iter().map(|e| e.at_ms).collect();
        assert_eq!(kept, [62_500], "and trimmed without a new entry");
    }
}
