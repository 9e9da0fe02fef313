//! The host's redb database: tables, schema version, and the records kept in it.
//!
//! One process owns the file at a time (redb locks it); the daemon while it runs,
//! otherwise the CLI command that needs it.
//!
//! **When the disk fails.** After one failed write or sync (a full disk, an
//! I/O error) redb refuses every later transaction until the database is
//! opened again. The store notices, refuses work at once with
//! [`StoreError::Unavailable`] (the API answers 503), and opens the file again
//! on a thread of its own, with a growing pause between tries, until the disk
//! takes writes again; then it goes on as before. What was committed before
//! stays; what was refused was never acknowledged. [`Store::health`] says how
//! it stands: the host publishes it as `monitor_database_healthy`, and a
//! built-in alert fires while it is 0.
//!
//! **A damaged file.** redb repairs a file left by a crash when it opens it.
//! A file damaged otherwise (overwritten, truncated, not a database) is
//! refused with one line naming it and what to do; the host never works on
//! it. `monitor db check` verifies a file (and has redb repair what it can).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

pub mod access;
pub mod alerts;
mod chunk;
#[cfg(test)]
mod faults;
pub mod layouts;
pub mod metrics;
pub mod plugins;
pub mod progress;
pub mod space;

pub use plugins::PluginRecord;

/// Bump when a table's layout or meaning changes; add a migration in [`Store::open`].
pub const SCHEMA_VERSION: u64 = 2;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const PLUGINS: TableDefinition<&str, &str> = TableDefinition::new("plugins");
const PLUGIN_KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("plugin_kv");
const PROGRESS_NODES: TableDefinition<&str, &str> = TableDefinition::new("progress_nodes");
/// Each parent's sums of its direct children (JSON [`crate::progress::Children`]);
/// added in schema version 2.
const PROGRESS_CHILDREN: TableDefinition<&str, &str> = TableDefinition::new("progress_children");
const PROGRESS_EVENTS: TableDefinition<(&str, u64), &str> = TableDefinition::new("progress_events");
/// Every progress event's place in one host-wide order: feed id → (run, seq).
const PROGRESS_FEED: TableDefinition<u64, (&str, u64)> = TableDefinition::new("progress_feed");
/// The nodes following a process, still live: path → JSON [`crate::sampler::follow::Attach`].
const PROGRESS_FOLLOWED: TableDefinition<&str, &str> = TableDefinition::new("progress_followed");
/// What each watch job has done, so a restart keeps it: job name → JSON.
const WATCH_JOBS: TableDefinition<&str, &str> = TableDefinition::new("watch_jobs");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path} is in use by another monitor process; stop it or use another --data-dir")]
    Locked { path: PathBuf },
    #[error(
        "database {path} has schema version {found}, newer than this monitor's {SCHEMA_VERSION}; upgrade monitor or use another --data-dir"
    )]
    TooNew { path: PathBuf, found: u64 },
    #[error(
        "database {path} is damaged ({detail}); move it aside (mv {path} {path}.damaged) to start with an empty one, or first try 'monitor db check', which has redb repair what it can"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error("cannot open database {path}: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error(
        "database {path} cannot be written now ({cause}); the host opens it again by itself once its disk takes writes (free space on it, or check it for errors)"
    )]
    Unavailable { path: PathBuf, cause: String },
    #[error(
        "database {path} stayed busy with other work for 10 s, so it was not compacted; try again when the host is less busy"
    )]
    Busy { path: PathBuf },
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    #[error("stored record for '{key}' is unreadable: {source}")]
    Corrupt { key: String, source: serde_json::Error },
}

impl crate::error::Classified for StoreError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            StoreError::Unavailable { .. } | StoreError::Busy { .. } => crate::error::ErrorKind::Unavailable,
            _ => crate::error::ErrorKind::Failed,
        }
    }
}

impl StoreError {
    /// Whether the database cannot be used for now (a full or failing disk),
    /// as opposed to a request it refused.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

fn db(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(e.into())
}

/// redb's errors become [`StoreError::Db`], so storage code writes `?`.
macro_rules! from_redb {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(e: $error) -> StoreError {
                db(e)
            }
        }
    )*};
}
from_redb!(redb::TableError, redb::StorageError, redb::TransactionError, redb::CommitError);

/// Whether redb can go on only after the database is opened again.
fn needs_reopen(e: &redb::Error) -> bool {
    matches!(
        e,
        redb::Error::Io(_)
            | redb::Error::PreviousIo
            | redb::Error::DatabaseClosed
            | redb::Error::Backend(_)
            | redb::Error::LockPoisoned(_)
    ) || matches!(e, redb::Error::Corrupted(m) if m.contains("reopen"))
}

/// How the database stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// False while it cannot be used, and for [`HEALTHY_AFTER`] after it last
    /// failed: a disk that is nearly full takes some writes and refuses others,
    /// and the health says so steadily rather than flickering.
    pub healthy: bool,
    /// Since when it cannot be used, and why.
    pub since_ms: Option<u64>,
    pub cause: Option<String>,
    /// Tries to open it again so far.
    pub reopen_attempts: u64,
    /// When it last failed.
    pub failed_ms: Option<u64>,
}

/// How long after its last failure the database counts as healthy again.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// Why the database cannot be used now.
struct Trouble {
    since_ms: u64,
    cause: String,
    attempts: u64,
}

type Opener = Box<dyn Fn() -> Result<Database, DatabaseError> + Send + Sync>;

struct Shared {
    path: PathBuf,
    open: Opener,
    db: RwLock<Option<Arc<Database>>>,
    trouble: Mutex<Option<Trouble>>,
    /// When it last failed (ms since the epoch; 0: never).
    failed_ms: std::sync::atomic::AtomicU64,
    /// Held while a progress batch is worked out and stored: see
    /// [`Store::progress_apply_with`].
    progress_turn: Mutex<()>,
}

/// A handle to the open database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

/// The longest pause between two tries to open a failed database again.
const REOPEN_PAUSE_MAX: Duration = Duration::from_secs(5);

impl Store {
    /// Opens (or creates) the database, checking and migrating its schema. It
    /// trusts a file that redb closed cleanly: for short-lived commands.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let file = path.to_path_buf();
        Store::open_with(path, Box::new(move || Database::create(&file)))
    }

    /// [`Store::open`], first reading every page of the file to verify it
    /// (redb repairs what it can): a file damaged since it was written is
    /// refused with [`StoreError::Damaged`] instead of failing later. The
    /// host opens its database this way; it costs a read of the whole file.
    pub fn open_checked(path: &Path) -> Result<Store, StoreError> {
        let file = path.to_path_buf();
        Store::open_with(
            path,
            Box::new(move || {
                // redb's check on open is its repair pass, run on a clean file too:
                // its callback says nothing about damage, so it is not logged.
                let mut builder = redb::Builder::new();
                builder.set_check_integrity_on_open(true);
                builder.create(&file)
            }),
        )
    }

    /// [`Store::open`] with the database made by `open` (a storage backend of
    /// one's own, as the tests inject faults with); it is called again to
    /// reopen the database after a failed write.
    pub fn open_with(path: &Path, open: Opener) -> Result<Store, StoreError> {
        // A new database starts as an empty file only its owner may read (redb fills it).
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
        }
        let database = opened(path, &open)?;
        let store = Store {
            shared: Arc::new(Shared {
                path: path.into(),
                open,
                db: RwLock::new(Some(Arc::new(database))),
                trouble: Mutex::new(None),
                failed_ms: std::sync::atomic::AtomicU64::new(0),
                progress_turn: Mutex::new(()),
            }),
        };
        let tx = store.write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::TooNew { path: path.into(), found: v });
                }
                Some(SCHEMA_VERSION) => {}
                Some(_) => {
                    progress::count_children(&tx)?;
                    metrics::pack_points(&tx)?;
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
            }
            tx.open_table(PLUGINS)?;
            tx.open_table(PLUGIN_KV)?;
            tx.open_table(PROGRESS_NODES)?;
            tx.open_table(PROGRESS_CHILDREN)?;
            tx.open_table(PROGRESS_EVENTS)?;
            tx.open_table(PROGRESS_FEED)?;
            tx.open_table(PROGRESS_FOLLOWED)?;
            tx.open_table(WATCH_JOBS)?;
            tx.open_table(metrics::SERIES_IDS)?;
            tx.open_table(metrics::SERIES_INFO)?;
            tx.open_table(metrics::CHUNKS)?;
            tx.open_table(metrics::HOURS)?;
            tx.open_table(metrics::SERIES_PER_PLUGIN)?;
            tx.open_table(alerts::HISTORY)?;
            tx.open_table(alerts::STATE)?;
            tx.open_table(layouts::LAYOUTS)?;
            tx.open_table(access::TOKENS)?;
            tx.open_table(access::AUDIT)?;
        }
        store.commit(tx)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let tx = self.read()?;
        let meta = tx.open_table(META)?;
        Ok(meta.get("schema_version")?.map(|v| v.value()).unwrap_or(0))
    }

    /// How the database stands now.
    pub fn health(&self) -> Health {
        let failed_ms = match self.shared.failed_ms.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        };
        let recent =
            failed_ms.is_some_and(|ms| crate::sampler::now_ms().saturating_sub(ms) < HEALTHY_AFTER.as_millis() as u64);
        match &*self.shared.trouble.lock().expect("store trouble") {
            None => Health { healthy: !recent, failed_ms, ..Health::default() },
            Some(t) => Health {
                healthy: false,
                since_ms: Some(t.since_ms),
                cause: Some(t.cause.clone()),
                reopen_attempts: t.attempts,
                failed_ms,
            },
        }
    }

    /// The open database, unless it cannot be used now.
    fn database(&self) -> Result<Arc<Database>, StoreError> {
        if let Some(t) = &*self.shared.trouble.lock().expect("store trouble") {
            return Err(self.unavailable(&t.cause));
        }
        let db = self.shared.db.read().expect("store handle").clone();
        db.ok_or_else(|| self.unavailable("it is being opened again"))
    }

    /// [`Store::database`], refusing at once rather than waiting while the
    /// handle is taken (a compaction, a reopen): for plugins' calls, which
    /// run under a deadline.
    fn database_now(&self) -> Result<Arc<Database>, StoreError> {
        if let Some(t) = &*self.shared.trouble.lock().expect("store trouble") {
            return Err(self.unavailable(&t.cause));
        }
        let db = match self.shared.db.try_read() {
            Ok(guard) => guard.clone(),
            Err(std::sync::TryLockError::WouldBlock) => None,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().clone(),
        };
        db.ok_or_else(|| self.unavailable("it is being compacted or opened again"))
    }

    fn unavailable(&self, cause: &str) -> StoreError {
        StoreError::Unavailable { path: self.shared.path.clone(), cause: cause.into() }
    }

    fn read_now(&self) -> Result<ReadTransaction, StoreError> {
        self.database_now()?.begin_read().map_err(|e| self.failed(e.into()))
    }

    fn write_now(&self) -> Result<WriteTransaction, StoreError> {
        self.database_now()?.begin_write().map_err(|e| self.failed(e.into()))
    }

    fn write(&self) -> Result<WriteTransaction, StoreError> {
        self.database()?.begin_write().map_err(|e| self.failed(e.into()))
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.database()?.begin_read().map_err(|e| self.failed(e.into()))
    }

    fn commit(&self, tx: WriteTransaction) -> Result<(), StoreError> {
        tx.commit().map_err(|e| self.failed(e.into()))
    }

    /// A redb error as the caller sees it; one after which redb cannot go on
    /// also starts opening the database again.
    fn failed(&self, e: redb::Error) -> StoreError {
        if !needs_reopen(&e) {
            return StoreError::Db(e);
        }
        let cause = e.to_string();
        self.shared.failed_ms.store(crate::sampler::now_ms(), std::sync::atomic::Ordering::Relaxed);
        let mut trouble = self.shared.trouble.lock().expect("store trouble");
        if trouble.is_none() {
            tracing::error!(
                path = %self.shared.path.display(),
                "the database cannot be written: {cause}; refusing work and opening it again until the disk takes writes"
            );
            *trouble = Some(Trouble { since_ms: crate::sampler::now_ms(), cause: cause.clone(), attempts: 0 });
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new().name("database-reopen".into()).spawn(move || reopen(&shared));
            if let Err(e) = spawned {
                tracing::error!("cannot start the thread that reopens the database: {e}");
            }
        }
        self.unavailable(&cause)
    }
}

/// Opens the database again after a failure, with a growing pause between
/// tries, until it works.
fn reopen(shared: &Shared) {
    let mut pause = Duration::from_millis(50);
    loop {
        std::thread::sleep(pause);
        pause = (pause * 2).min(REOPEN_PAUSE_MAX);
        // Our handle goes first: redb lets go of the file once the last one has.
        drop(shared.db.write().expect("store handle").take());
        let result = opened(&shared.path, &shared.open).and_then(|database| {
            // A commit that writes proves the disk takes writes again.
            let tx = database.begin_write()?;
            tx.open_table(META)?.insert("reopened_ms", crate::sampler::now_ms())?;
            tx.commit()?;
            Ok(database)
        });
        let mut trouble = shared.trouble.lock().expect("store trouble");
        match result {
            Ok(database) => {
                *shared.db.write().expect("store handle") = Some(Arc::new(database));
                let attempts = trouble.as_ref().map_or(0, |t| t.attempts + 1);
                *trouble = None;
                tracing::info!(path = %shared.path.display(), attempts, "the database takes writes again");
                return;
            }
            Err(e) => {
                if let Some(t) = trouble.as_mut() {
                    t.attempts += 1;
                    if !matches!(e, StoreError::Locked { .. }) {
                        t.cause = e.to_string();
                    }
                }
            }
        }
    }
}

/// Opens the database with `open`, turning redb's errors (and a panic on a
/// damaged file) into one line.
fn opened(path: &Path, open: &Opener) -> Result<Database, StoreError> {
    let result = quietly(open);
    let damaged = |detail: String| StoreError::Damaged { path: path.into(), detail };
    match result {
        Ok(Ok(database)) => Ok(database),
        Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => Err(StoreError::Locked { path: path.into() }),
        Ok(Err(DatabaseError::Storage(redb::StorageError::Corrupted(detail)))) => Err(damaged(detail)),
        Ok(Err(DatabaseError::Storage(redb::StorageError::Io(e)))) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(damaged(e.to_string()))
        }
        Ok(Err(DatabaseError::RepairAborted)) => Err(damaged("redb's repair was aborted".into())),
        Ok(Err(e)) => Err(StoreError::Open { path: path.into(), detail: e.to_string() }),
        Err(panic) => Err(damaged(panic)),
    }
}

/// Runs `f`, turning a panic into its message and keeping it off the
/// terminal: redb may panic on a file damaged in place.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "redb stopped on it".into());
        format!("reading it failed: {}", crate::text::line(&text, 200))
    })
}

/// What each watch job has done (runs, failures, its last run), as JSON the
/// jobs service writes, so a restart shows and alerts on it as before.
impl Store {
    pub fn watch_job(&self, name: &str) -> Result<Option<String>, StoreError> {
        let tx = self.read()?;
        let table = tx.open_table(WATCH_JOBS)?;
        Ok(table.get(name)?.map(|v| v.value().to_string()))
    }

    pub fn put_watch_job(&self, name: &str, json: &str) -> Result<(), StoreError> {
        let tx = self.write()?;
        tx.open_table(WATCH_JOBS)?.insert(name, json)?;
        self.commit(tx)
    }
}

/// Per-plugin key-value data (the `kv` host interface). Plugins call these
/// under a deadline, so they refuse at once while a compaction has the
/// database rather than wait for it.
impl Store {
    pub fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.read_now()?;
        let table = tx.open_table(PLUGIN_KV)?;
        Ok(table.get((plugin, key))?.map(|v| v.value().to_vec()))
    }

    /// Sets `key`, refusing a new key once the plugin holds `max_keys`.
    pub fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        max_keys: usize,
    ) -> Result<Result<(), usize>, StoreError> {
        let tx = self.write_now()?;
        {
            let mut table = tx.open_table(PLUGIN_KV)?;
            if table.get((plugin, key))?.is_none() {
                let held = table.range((plugin, "")..)?;
                let mut count = 0;
                for entry in held {
                    if entry?.0.value().0 != plugin {
                        break;
                    }
                    count += 1;
                }
                if count >= max_keys {
                    return Ok(Err(count));
                }
            }
            table.insert((plugin, key), value)?;
        }
        self.commit(tx)?;
        Ok(Ok(()))
    }

    pub fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        let tx = self.write_now()?;
        tx.open_table(PLUGIN_KV)?.remove((plugin, key))?;
        self.commit(tx)?;
        Ok(())
    }

    /// Every key of a plugin with its value, in key order: what `monitor plugins kv` shows.
    pub fn kv_entries(&self, plugin: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let tx = self.read()?;
        let table = tx.open_table(PLUGIN_KV)?;
        let mut out = Vec::new();
        for entry in table.range((plugin, "")..)? {
            let (key, value) = entry?;
            let (owner, key) = key.value();
            if owner != plugin {
                break;
            }
            out.push((key.to_string(), value.value().to_vec()));
        }
        Ok(out)
    }

    pub fn kv_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let tx = self.read_now()?;
        let table = tx.open_table(PLUGIN_KV)?;
        let mut keys = Vec::new();
        for entry in table.range((plugin, prefix)..)? {
            let entry = entry?;
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
        self.write().expect("write lock")
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
            let tx = store.write().unwrap();
            tx.open_table(META).unwrap().insert("schema_version", SCHEMA_VERSION + 1).unwrap();
            tx.commit().unwrap();
        }
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("schema version 3, newer than this monitor's 2"), "{err}");
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
