//! What takes the database's space (`monitor db stats`), and giving freed
//! space back to the file system (`monitor db compact`).
//!
//! redb reuses the pages that retention frees, so the file stops growing once
//! retention removes as much as comes in; it does not shrink by itself.
//! Compacting moves the live pages to the front and truncates the file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{CompactionError, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};
use serde::{Deserialize, Serialize};

use super::metrics::{CHUNKS, HOURS, SERIES_INFO, SeriesInfo};
use super::{Store, StoreError, chunk};

/// The database's space, by table and by plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Space {
    /// The file's size.
    pub file_bytes: u64,
    /// Pages in use; the rest of the file is free pages, which new writes reuse.
    pub allocated_bytes: u64,
    pub tables: Vec<TableSpace>,
    /// The metric history by plugin (`host` for the host's own series).
    pub plugins: Vec<PluginSpace>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSpace {
    pub name: String,
    pub entries: u64,
    /// Keys and values as stored.
    pub stored_bytes: u64,
    /// Its pages, with their free room and the B-tree's branches.
    pub page_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginSpace {
    pub plugin: String,
    pub series: u64,
    pub raw_points: u64,
    pub minutes: u64,
    /// Keys and values of its points and minutes as stored.
    pub stored_bytes: u64,
}

/// Bytes of a row's key `(u64, u64)`.
const KEY_BYTES: u64 = 16;

/// What compacting did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compacted {
    pub before_bytes: u64,
    pub after_bytes: u64,
}

/// How long compacting waits for transactions already under way to end.
const QUIET_WAIT: Duration = Duration::from_secs(10);

impl Store {
    pub fn space(&self) -> Result<Space, StoreError> {
        let file_bytes = std::fs::metadata(self.path()).map(|m| m.len()).unwrap_or(0);
        // Only a write transaction tells the allocated pages; it is aborted.
        let (allocated_bytes, page_size) = {
            let tx = self.write()?;
            let stats = tx.stats()?;
            tx.abort()?;
            let page_size = stats.page_size() as u64;
            (stats.allocated_pages() * page_size, page_size)
        };
        let tx = self.read()?;
        let mut tables = Vec::new();
        macro_rules! measure {
            ($($def:expr),* $(,)?) => {$(
                tables.push(table_space(&tx, $def, page_size)?);
            )*};
        }
        measure!(
            super::PLUGINS,
            super::PLUGIN_KV,
            super::PROGRESS_NODES,
            super::PROGRESS_CHILDREN,
            super::PROGRESS_EVENTS,
            super::PROGRESS_FEED,
            super::PROGRESS_FOLLOWED,
            super::WATCH_JOBS,
            super::metrics::SERIES_IDS,
            SERIES_INFO,
            CHUNKS,
            HOURS,
            super::metrics::SERIES_PER_PLUGIN,
            super::alerts::HISTORY,
            super::alerts::STATE,
            super::layouts::LAYOUTS,
            super::access::TOKENS,
            super::access::AUDIT,
        );
        tables.sort_by(|a, b| b.page_bytes.cmp(&a.page_bytes).then_with(|| a.name.cmp(&b.name)));

        let infos = tx.open_table(SERIES_INFO)?;
        let chunks = tx.open_table(CHUNKS)?;
        let hours = tx.open_table(HOURS)?;
        let mut plugins: BTreeMap<String, PluginSpace> = BTreeMap::new();
        for entry in infos.iter()? {
            let (id, json) = entry?;
            let id = id.value();
            let plugin = serde_json::from_str::<SeriesInfo>(json.value())
                .ok()
                .and_then(|info| info.labels.get("plugin").cloned())
                .unwrap_or_else(|| "host".into());
            let (raw, raw_bytes) = packed(&chunks, id)?;
            let (folded, folded_bytes) = packed(&hours, id)?;
            let space = plugins.entry(plugin.clone()).or_insert(PluginSpace {
                plugin,
                series: 0,
                raw_points: 0,
                minutes: 0,
                stored_bytes: 0,
            });
            space.series += 1;
            space.raw_points += raw;
            space.minutes += folded;
            space.stored_bytes += raw_bytes + folded_bytes;
        }
        let mut plugins: Vec<PluginSpace> = plugins.into_values().collect();
        plugins.sort_by(|a, b| b.stored_bytes.cmp(&a.stored_bytes).then_with(|| a.plugin.cmp(&b.plugin)));
        Ok(Space { file_bytes, allocated_bytes, tables, plugins })
    }

    /// Moves the live pages to the front of the file and gives the rest back.
    /// Every other use of the database waits meanwhile (seconds for a large
    /// file); transactions under way are let finish first, for up to
    /// [`QUIET_WAIT`].
    pub fn compact(&self) -> Result<Compacted, StoreError> {
        let before_bytes = std::fs::metadata(self.path()).map(|m| m.len()).unwrap_or(0);
        let mut slot = self.shared.db.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(handle) = slot.as_mut() else {
            return Err(self.unavailable("it is being opened again"));
        };
        let deadline = Instant::now() + QUIET_WAIT;
        loop {
            let busy = match Arc::get_mut(handle) {
                None => true,
                Some(database) => match database.compact() {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(CompactionError::TransactionInProgress) => true,
                    Err(e) => return Err(self.failed(e.into())),
                },
            };
            if busy && Instant::now() >= deadline {
                return Err(StoreError::Busy { path: self.path().into() });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(slot);
        let after_bytes = std::fs::metadata(self.path()).map(|m| m.len()).unwrap_or(0);
        Ok(Compacted { before_bytes, after_bytes })
    }
}

/// How many values a series' packed rows in `table` hold, and their bytes with the keys.
fn packed(table: &redb::ReadOnlyTable<(u64, u64), &[u8]>, id: u64) -> Result<(u64, u64), StoreError> {
    let (mut values, mut bytes) = (0, 0);
    for entry in table.range((id, 0)..=(id, u64::MAX))? {
        let (_, row) = entry?;
        values += chunk::count(row.value()).unwrap_or(0);
        bytes += KEY_BYTES + row.value().len() as u64;
    }
    Ok((values, bytes))
}

fn table_space<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &redb::ReadTransaction,
    def: TableDefinition<K, V>,
    page_size: u64,
) -> Result<TableSpace, StoreError> {
    let table = tx.open_table(def)?;
    let stats = table.stats()?;
    Ok(TableSpace {
        name: def.name().to_string(),
        entries: table.len()?,
        stored_bytes: stats.stored_bytes(),
        page_bytes: (stats.leaf_pages() + stats.branch_pages()) * page_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Sample;
    use crate::store::metrics::MetricRetention;

    fn samples(plugin: Option<&str>, series: u64, at_ms: u64) -> Vec<Sample> {
        (0..series)
            .map(|i| Sample {
                name: format!("load_{i}"),
                labels: plugin.map(|p| [("plugin".to_string(), p.to_string())].into()).unwrap_or_default(),
                value: i as f64,
                unit: String::new(),
                timestamp_ms: at_ms,
            })
            .collect()
    }

    #[test]
    fn space_is_told_by_table_and_plugin_and_compacting_gives_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.redb")).unwrap();
        for tick in 0..600u64 {
            let mut batch = samples(Some("busy"), 20, tick * 1_000);
            batch.extend(samples(None, 2, tick * 1_000));
            store.metrics_record(&batch, u64::MAX).unwrap();
        }
        let space = store.space().unwrap();
        assert_eq!(space.plugins[0].plugin, "busy", "the largest first: {space:?}");
        assert_eq!((space.plugins[0].series, space.plugins[0].raw_points), (20, 12_000));
        assert_eq!((space.plugins[1].plugin.as_str(), space.plugins[1].raw_points), ("host", 1_200));
        let chunks = space.tables.iter().find(|t| t.name == "metric_chunks").unwrap();
        assert_eq!(chunks.entries, 22 * 10, "a row per series and minute");
        assert_eq!(space.tables[0].name, "metric_chunks", "the largest first");
        assert!(space.allocated_bytes <= space.file_bytes && chunks.stored_bytes <= space.allocated_bytes);

        // Everything past retention goes; the pages are free but the file keeps its size.
        let gone = MetricRetention { raw_ms: 0, minutes_ms: 0 };
        store.metrics_compact(&gone, 10_000_000).unwrap();
        let emptied = store.space().unwrap();
        assert!(emptied.plugins.is_empty(), "{emptied:?}");
        assert!(emptied.allocated_bytes < space.allocated_bytes);
        let compacted = store.compact().unwrap();
        assert_eq!(compacted.before_bytes, emptied.file_bytes);
        assert!(
            compacted.after_bytes < compacted.before_bytes / 2,
            "{} bytes after, {} before",
            compacted.after_bytes,
            compacted.before_bytes
        );
        store.metrics_record(&samples(Some("busy"), 1, 20_000_000), u64::MAX).unwrap();
        assert_eq!(store.space().unwrap().plugins[0].raw_points, 1, "the database works on after compacting");
    }

    #[test]
    fn compacting_waits_for_a_reader_and_refuses_plugins_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.redb")).unwrap();
        let reader = store.read().unwrap();
        let finished = std::thread::scope(|scope| {
            let compacting = scope.spawn(|| store.compact());
            // A plugin's key-value call is refused at once meanwhile, never held up.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let asked = Instant::now();
                match store.kv_get("p", "k") {
                    Err(e) => {
                        assert!(e.is_unavailable() && asked.elapsed() < Duration::from_secs(1), "{e}");
                        break;
                    }
                    Ok(_) => assert!(Instant::now() < deadline, "compaction never took the database"),
                }
                std::thread::yield_now();
            }
            let early = compacting.is_finished();
            drop(reader);
            (early, compacting.join().unwrap())
        });
        assert!(!finished.0, "compacting waited for the reader");
        finished.1.unwrap();
    }
}
