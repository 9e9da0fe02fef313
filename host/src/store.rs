//! The host's redb database: tables, schema version, and the records kept in it.
//!
//! One process owns the file at a time (redb locks it); the daemon while it runs,
//! otherwise the CLI command that needs it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

pub mod alerts;
pub mod metrics;
pub mod plugins;
pub mod progress;

pub use plugins::PluginRecord;

/// Bump when a table's layout or meaning changes; add a migration in [`Store::open`].
pub const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const PLUGINS: TableDefinition<&str, &str> = TableDefinition::new("plugins");
const PLUGIN_KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("plugin_kv");
const PROGRESS_NODES: TableDefinition<&str, &str> = TableDefinition::new("progress_nodes");
const PROGRESS_EVENTS: TableDefinition<(&str, u64), &str> = TableDefinition::new("progress_events");
/// Every progress event's place in one host-wide order: feed id → (run, seq).
const PROGRESS_FEED: TableDefinition<u64, (&str, u64)> = TableDefinition::new("progress_feed");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path} is in use by another monitor process; stop it or use another --data-dir")]
    Locked { path: PathBuf },
    #[error(
        "database {path} has schema version {found}, newer than this monitor's {SCHEMA_VERSION}; upgrade monitor or use another --data-dir"
    )]
    TooNew { path: PathBuf, found: u64 },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: redb::DatabaseError },
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    #[error("stored record for '{key}' is unreadable: {source}")]
    Corrupt { key: String, source: serde_json::Error },
}

fn db(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into())
}

/// A handle to the open database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
}

impl Store {
    /// Opens (or creates) the database, checking and migrating its schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let database = Database::create(path).map_err(|source| match source {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path: path.into() },
            source => StoreError::Open { path: path.into(), source },
        })?;
        let store = Store { db: Arc::new(database) };
        let tx = store.db.begin_write().map_err(db)?;
        {
            let mut meta = tx.open_table(META).map_err(db)?;
            let found = meta.get("schema_version").map_err(db)?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::TooNew { path: path.into(), found: v });
                }
                Some(_) => {}
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION).map_err(db)?;
                }
            }
            tx.open_table(PLUGINS).map_err(db)?;
            tx.open_table(PLUGIN_KV).map_err(db)?;
            tx.open_table(PROGRESS_NODES).map_err(db)?;
            tx.open_table(PROGRESS_EVENTS).map_err(db)?;
            tx.open_table(PROGRESS_FEED).map_err(db)?;
            tx.open_table(metrics::SERIES_IDS).map_err(db)?;
            tx.open_table(metrics::SERIES_INFO).map_err(db)?;
            tx.open_table(metrics::POINTS).map_err(db)?;
            tx.open_table(metrics::MINUTES).map_err(db)?;
            tx.open_table(metrics::SERIES_PER_PLUGIN).map_err(db)?;
            tx.open_table(alerts::HISTORY).map_err(db)?;
            tx.open_table(alerts::STATE).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(store)
    }

    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let meta = tx.open_table(META).map_err(db)?;
        Ok(meta.get("schema_version").map_err(db)?.map(|v| v.value()).unwrap_or(0))
    }
}

/// Per-plugin key-value data (the `kv` host interface).
impl Store {
    pub fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(PLUGIN_KV).map_err(db)?;
        Ok(table.get((plugin, key)).map_err(db)?.map(|v| v.value().to_vec()))
    }

    /// Sets `key`, refusing a new key once the plugin holds `max_keys`.
    pub fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        max_keys: usize,
    ) -> Result<Result<(), usize>, StoreError> {
        let tx = self.db.begin_write().map_err(db)?;
        {
            let mut table = tx.open_table(PLUGIN_KV).map_err(db)?;
            if table.get((plugin, key)).map_err(db)?.is_none() {
                let held = table.range((plugin, "")..).map_err(db)?;
                let mut count = 0;
                for entry in held {
                    if entry.map_err(db)?.0.value().0 != plugin {
                        break;
                    }
                    count += 1;
                }
                if count >= max_keys {
                    return Ok(Err(count));
                }
            }
            table.insert((plugin, key), value).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(Ok(()))
    }

    pub fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(db)?;
        tx.open_table(PLUGIN_KV).map_err(db)?.remove((plugin, key)).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(())
    }

    pub fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(PLUGIN_KV).map_err(db)?;
        let mut keys = Vec::new();
        for entry in table.range((plugin, prefix)..).map_err(db)? {
            let entry = entry.map_err(db)?;
            let (plugin_key, key) = entry.0.value();
            if plugin_key != plugin || !key.starts_with(prefix) {
                break;
            }
            keys.push(key.to_string());
        }
        Ok(keys)
    }
}

#[cfg(test)]
impl Store {
    /// Takes the database's one write lock, as a long commit would, until dropped.
    pub(crate) fn hold_writes(&self) -> redb::WriteTransaction {
        self.db.begin_write().expect("write lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_database_from_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("monitor.redb");
        {
            let store = Store::open(&path).unwrap();
            let tx = store.db.begin_write().unwrap();
            tx.open_table(META).unwrap().insert("schema_version", SCHEMA_VERSION + 1).unwrap();
            tx.commit().unwrap();
        }
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("schema version 2, newer than this monitor's 1"), "{err}");
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_holds_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("monitor.redb");
        let _first = Store::open(&path).unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    }

    #[test]
    fn kv_is_private_per_plugin_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.redb")).unwrap();
        store.kv_set("a", "k1", b"1", 2).unwrap().unwrap();
        store.kv_set("a", "k2", b"2", 2).unwrap().unwrap();
        store.kv_set("b", "k1", b"other", 2).unwrap().unwrap();
        assert_eq!(store.kv_set("a", "k3", b"3", 2).unwrap(), Err(2));
        store.kv_set("a", "k2", b"22", 2).unwrap().unwrap();
        assert_eq!(store.kv_get("a", "k2").unwrap().unwrap(), b"22");
        assert_eq!(store.kv_get("b", "k1").unwrap().unwrap(), b"other");
        assert_eq!(store.kv_keys("a", "k").unwrap(), ["k1", "k2"]);
        store.kv_delete("a", "k1").unwrap();
        assert_eq!(store.kv_keys("a", "").unwrap(), ["k2"]);
        assert_eq!(store.kv_keys("b", "").unwrap(), ["k1"]);
    }
}
