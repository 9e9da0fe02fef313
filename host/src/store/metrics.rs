//! Metric history: every sample the host keeps, then one-minute aggregates.
//!
//! A series (a name plus a label set) gets a number the first time it is seen
//! (`metric_series`: canonical key → id; `metric_series_info`: id → JSON
//! [`SeriesInfo`]). Raw points live in `metric_chunks`, a minute of a series a
//! row, keyed by `(id, minute_ms)` and packed by [`super::chunk`]; once older
//! than the raw window, [`Store::metrics_compact`] folds each minute into its
//! aggregate (min, max, sum, last, count), kept an hour of a series a row in
//! `metric_hours` (`(id, hour_ms)`, packed the same way), and removes
//! aggregates older than the aggregate window. A chunk that
//! cannot be read is left out of answers and dropped when written or folded,
//! with a warning: one damaged minute never stops the history. A tick's samples
//! are written in one transaction ([`Store::metrics_record`]), by the history's
//! writer ([`crate::history`]).

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::chunk;
pub use super::chunk::Minute;

/// A series' minute aggregates of one hour, starting at the hour's first ms.
pub type HourRow<'a> = (&'a SeriesInfo, u64, Vec<(u64, Minute)>);
use super::{META, Store, StoreError};
use crate::metrics::Sample;

pub(super) const SERIES_IDS: TableDefinition<&str, u64> = TableDefinition::new("metric_series");
pub(super) const SERIES_INFO: TableDefinition<u64, &str> = TableDefinition::new("metric_series_info");
/// A minute of a series' raw points, packed; since schema version 2.
pub(super) const CHUNKS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("metric_chunks");
/// A row per raw point, as schema version 1 kept them; moved into chunks at open.
const POINTS_V1: TableDefinition<(u64, u64), f64> = TableDefinition::new("metric_points");
/// How many series each plugin has in the history, for [`Store::metrics_record`]'s cap.
pub(super) const SERIES_PER_PLUGIN: TableDefinition<&str, u64> = TableDefinition::new("metric_series_per_plugin");
/// An hour of a series' minute aggregates, packed; since schema version 2.
pub(super) const HOURS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("metric_hours");
/// A row per minute aggregate, as schema version 1 kept them; moved into hours at open.
const MINUTES_V1: TableDefinition<(u64, u64), Minute> = TableDefinition::new("metric_minutes");

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;
/// Most raw points one compaction folds, so it never holds the write lock long.
const COMPACT_LIMIT: usize = 200_000;

/// What a series is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub unit: String,
}

impl SeriesInfo {
    /// `name{a="1",b="2"}`: one key per series, labels in order.
    pub fn key(&self) -> String {
        let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

/// One point of a series' history: a raw sample, or a minute's aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub at_ms: u64,
    /// The sample, or the minute's mean.
    pub value: f64,
    /// For a minute's aggregate: its lowest, highest and last sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<f64>,
}

/// A series with the points asked for, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoints {
    #[serde(flatten)]
    pub series: SeriesInfo,
    pub points: Vec<Point>,
}

/// What `monitor metrics list` shows: the series and the database's size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesListing {
    pub series: Vec<SeriesInfo>,
    pub database_bytes: u64,
}

/// How long raw points and minute aggregates are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricRetention {
    pub raw_ms: u64,
    pub minutes_ms: u64,
}

impl Store {
    /// Stores samples (a tick's, or several ticks') in one transaction. A
    /// plugin (a sample's `plugin` label) may have at most
    /// `max_series_per_plugin` series; samples of further new series are not
    /// stored. Returns those refused, by plugin.
    pub fn metrics_record<'a>(
        &self,
        samples: impl IntoIterator<Item = &'a Sample>,
        max_series_per_plugin: u64,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut refused = BTreeMap::new();
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return Ok(refused);
        }
        let tx = self.write()?;
        {
            let mut per_plugin = tx.open_table(SERIES_PER_PLUGIN)?;
            let mut ids = tx.open_table(SERIES_IDS)?;
            let mut infos = tx.open_table(SERIES_INFO)?;
            let mut chunks = tx.open_table(CHUNKS)?;
            let mut meta = tx.open_table(META)?;
            let mut fresh: BTreeMap<(u64, u64), Vec<(u64, f64)>> = BTreeMap::new();
            for sample in samples {
                let info =
                    SeriesInfo { name: sample.name.clone(), labels: sample.labels.clone(), unit: sample.unit.clone() };
                let key = info.key();
                let known = ids.get(key.as_str())?.map(|v| v.value());
                let id = match known {
                    Some(id) => id,
                    None => {
                        if let Some(plugin) = sample.labels.get("plugin") {
                            let held = per_plugin.get(plugin.as_str())?.map_or(0, |v| v.value());
                            if held >= max_series_per_plugin {
                                *refused.entry(plugin.clone()).or_default() += 1;
                                continue;
                            }
                            per_plugin.insert(plugin.as_str(), held + 1)?;
                        }
                        let id = meta.get("next_series_id")?.map_or(1, |v| v.value());
                        meta.insert("next_series_id", id + 1)?;
                        ids.insert(key.as_str(), id)?;
                        let json = serde_json::to_string(&info).expect("series info serialises");
                        infos.insert(id, json.as_str())?;
                        id
                    }
                };
                fresh
                    .entry((id, minute_of(sample.timestamp_ms)))
                    .or_default()
                    .push((sample.timestamp_ms, sample.value));
            }
            for ((id, minute), mut points) in fresh {
                let stored = chunks.get((id, minute))?.map(|bytes| read_chunk(id, minute, bytes.value()));
                let mut all = stored.unwrap_or_default();
                all.append(&mut points);
                in_order(&mut all);
                chunks.insert((id, minute), chunk::encode(minute, &all).as_slice())?;
            }
        }
        self.commit(tx)?;
        Ok(refused)
    }

    /// Every series, by key.
    pub fn metrics_series(&self) -> Result<Vec<SeriesInfo>, StoreError> {
        Ok(self.series_with_ids()?.into_iter().map(|(_, info)| info).collect())
    }

    fn series_with_ids(&self) -> Result<Vec<(u64, SeriesInfo)>, StoreError> {
        let tx = self.read()?;
        let infos = tx.open_table(SERIES_INFO)?;
        let mut out = Vec::new();
        for entry in infos.iter()? {
            let (id, json) = entry?;
            let info: SeriesInfo = serde_json::from_str(json.value())
                .map_err(|source| StoreError::Corrupt { key: format!("series #{}", id.value()), source })?;
            out.push((id.value(), info));
        }
        out.sort_by_key(|(_, info)| info.key());
        Ok(out)
    }

    /// The history since `since_ms` of every series named `name` whose labels
    /// include all of `matchers`: minute aggregates where raw points are gone.
    pub fn metrics_query(
        &self,
        name: &str,
        matchers: &BTreeMap<String, String>,
        since_ms: u64,
    ) -> Result<Vec<SeriesPoints>, StoreError> {
        let wanted: Vec<(u64, SeriesInfo)> = self
            .series_with_ids()?
            .into_iter()
            .filter(|(_, s)| s.name == name && matchers.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .collect();
        let tx = self.read()?;
        let chunks = tx.open_table(CHUNKS)?;
        let hours = tx.open_table(HOURS)?;
        let mut out = Vec::with_capacity(wanted.len());
        for (id, series) in wanted {
            let mut raw = Vec::new();
            for entry in chunks.range((id, minute_of(since_ms))..=(id, u64::MAX))? {
                let (key, bytes) = entry?;
                let minute = key.value().1;
                for (at_ms, value) in read_chunk(id, minute, bytes.value()) {
                    if at_ms >= since_ms {
                        raw.push(Point { at_ms, value, min: None, max: None, last: None });
                    }
                }
            }
            // Aggregates only before the first raw point: no minute is counted twice.
            let until = raw.first().map_or(u64::MAX, |p| p.at_ms);
            let mut history = Vec::new();
            for entry in hours.range((id, hour_of(since_ms))..(id, until))? {
                let (key, bytes) = entry?;
                for (at_ms, (min, max, sum, last, count)) in read_minutes(id, key.value().1, bytes.value()) {
                    if at_ms < minute_of(since_ms) || at_ms >= until {
                        continue;
                    }
                    let value = sum / count.max(1) as f64;
                    history.push(Point { at_ms, value, min: Some(min), max: Some(max), last: Some(last) });
                }
            }
            history.extend(raw);
            out.push(SeriesPoints { series, points: history });
        }
        Ok(out)
    }

    /// Stores an hour of minute aggregates for each `(series, hour_ms,
    /// minutes)`, as compaction leaves them, replacing the row there was; rows
    /// of series the history does not know are left out. Returns the rows
    /// stored. For the scale bench: a year of aggregates without replaying a
    /// year of samples.
    #[doc(hidden)]
    pub fn metrics_load_hours(&self, rows: &[HourRow]) -> Result<usize, StoreError> {
        let tx = self.write()?;
        let mut stored = 0;
        {
            let ids = tx.open_table(SERIES_IDS)?;
            let mut hours = tx.open_table(HOURS)?;
            for (info, hour, minutes) in rows {
                if let Some(id) = ids.get(info.key().as_str())?.map(|v| v.value()) {
                    hours.insert((id, hour_of(*hour)), chunk::encode_minutes(hour_of(*hour), minutes).as_slice())?;
                    stored += 1;
                }
            }
        }
        self.commit(tx)?;
        Ok(stored)
    }

    /// Folds raw points older than the raw window into minute aggregates and
    /// removes aggregates older than theirs; a series with nothing left goes
    /// too (and no longer counts against its plugin's cap). Returns how many
    /// raw points and minute aggregates went.
    pub fn metrics_compact(&self, retention: &MetricRetention, now_ms: u64) -> Result<u64, StoreError> {
        // Only whole minutes are folded, so a minute is never aggregated in two parts.
        let raw_cutoff = now_ms.saturating_sub(retention.raw_ms) / MINUTE_MS * MINUTE_MS;
        let minute_cutoff = now_ms.saturating_sub(retention.minutes_ms);
        let series = self.series_with_ids()?;
        let tx = self.write()?;
        let mut removed = 0u64;
        {
            let mut chunks = tx.open_table(CHUNKS)?;
            let mut hours = tx.open_table(HOURS)?;
            let mut ids = tx.open_table(SERIES_IDS)?;
            let mut infos = tx.open_table(SERIES_INFO)?;
            let mut per_plugin = tx.open_table(SERIES_PER_PLUGIN)?;
            for (id, info) in series {
                // Each chunk is one minute: it folds into that minute's aggregate.
                let mut folded: Vec<(u64, Option<Minute>)> = Vec::new();
                for entry in chunks.range((id, 0)..(id, raw_cutoff))? {
                    if removed as usize >= COMPACT_LIMIT {
                        break;
                    }
                    let (key, bytes) = entry?;
                    let minute = key.value().1;
                    let points = read_chunk(id, minute, bytes.value());
                    removed += points.len() as u64;
                    let agg = points.first().map(|&(_, first)| {
                        points.iter().fold((first, first, 0.0, first, 0), |(min, max, sum, _, n), &(_, v)| {
                            (min.min(v), max.max(v), sum + v, v, n + 1)
                        })
                    });
                    folded.push((minute, agg));
                }
                let mut by_hour: BTreeMap<u64, Vec<(u64, Minute)>> = BTreeMap::new();
                for (minute, agg) in folded {
                    chunks.remove((id, minute))?;
                    if let Some(agg) = agg {
                        by_hour.entry(hour_of(minute)).or_default().push((minute, agg));
                    }
                }
                for (hour, fresh) in by_hour {
                    let stored = hours.get((id, hour))?.map(|bytes| read_minutes(id, hour, bytes.value()));
                    let mut all: BTreeMap<u64, Minute> = stored.unwrap_or_default().into_iter().collect();
                    for (minute, (min, max, sum, last, count)) in fresh {
                        let merged = match all.get(&minute) {
                            Some(&(m0, m1, s, _, c)) => (m0.min(min), m1.max(max), s + sum, last, c + count),
                            None => (min, max, sum, last, count),
                        };
                        all.insert(minute, merged);
                    }
                    let all: Vec<(u64, Minute)> = all.into_iter().collect();
                    hours.insert((id, hour), chunk::encode_minutes(hour, &all).as_slice())?;
                }
                // Hours that began before the cutoff lose their minutes before it.
                let mut old = Vec::new();
                for entry in hours.range((id, 0)..(id, minute_cutoff))? {
                    let (key, bytes) = entry?;
                    let hour = key.value().1;
                    old.push((hour, read_minutes(id, hour, bytes.value())));
                }
                for (hour, minutes) in old {
                    let before = minutes.len();
                    let kept: Vec<(u64, Minute)> = minutes.into_iter().filter(|(m, _)| *m >= minute_cutoff).collect();
                    removed += (before - kept.len()) as u64;
                    if kept.is_empty() {
                        hours.remove((id, hour))?;
                    } else if kept.len() < before {
                        hours.insert((id, hour), chunk::encode_minutes(hour, &kept).as_slice())?;
                    }
                }
                let empty = chunks.range((id, 0)..=(id, u64::MAX))?.next().is_none()
                    && hours.range((id, 0)..=(id, u64::MAX))?.next().is_none();
                if empty {
                    ids.remove(info.key().as_str())?;
                    infos.remove(id)?;
                    if let Some(plugin) = info.labels.get("plugin") {
                        let held = per_plugin.get(plugin.as_str())?.map_or(0, |v| v.value());
                        per_plugin.insert(plugin.as_str(), held.saturating_sub(1))?;
                    }
                }
            }
        }
        self.commit(tx)?;
        Ok(removed)
    }
}

fn minute_of(ms: u64) -> u64 {
    ms / MINUTE_MS * MINUTE_MS
}

fn hour_of(ms: u64) -> u64 {
    ms / HOUR_MS * HOUR_MS
}

/// An hour row's minute aggregates; none, with a warning, if it cannot be read.
fn read_minutes(id: u64, hour_ms: u64, bytes: &[u8]) -> Vec<(u64, Minute)> {
    chunk::decode_minutes(hour_ms, bytes).unwrap_or_else(|e| {
        tracing::warn!(series = id, hour_ms, "{e}; that hour of the series' minute aggregates is left out");
        Vec::new()
    })
}

/// A chunk's points; none, with a warning, if it cannot be read.
fn read_chunk(id: u64, minute_ms: u64, bytes: &[u8]) -> Vec<(u64, f64)> {
    chunk::decode(minute_ms, bytes).unwrap_or_else(|e| {
        tracing::warn!(series = id, minute_ms, "{e}; that minute of the series is left out");
        Vec::new()
    })
}

/// Sorts points by time; of two at the same millisecond the later written stays.
fn in_order(points: &mut Vec<(u64, f64)>) {
    if points.is_sorted_by(|a, b| a.0 < b.0) {
        return;
    }
    points.sort_by_key(|p| p.0); // stable: the later written stays after
    let mut kept: Vec<(u64, f64)> = Vec::with_capacity(points.len());
    for point in points.drain(..) {
        match kept.last_mut() {
            Some(last) if last.0 == point.0 => *last = point,
            _ => kept.push(point),
        }
    }
    *points = kept;
}

/// Moves schema version 1's raw points and minute aggregates, a row each,
/// into packed rows: the migration to version 2, in the transaction that
/// opens the database.
pub(super) fn pack_points(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut grouped: BTreeMap<(u64, u64), Vec<(u64, f64)>> = BTreeMap::new();
    {
        let old = tx.open_table(POINTS_V1)?;
        for entry in old.iter()? {
            let (key, value) = entry?;
            let (id, at_ms) = key.value();
            grouped.entry((id, minute_of(at_ms))).or_default().push((at_ms, value.value()));
        }
    }
    let mut chunks = tx.open_table(CHUNKS)?;
    for ((id, minute), points) in &grouped {
        chunks.insert((*id, *minute), chunk::encode(*minute, points).as_slice())?;
    }
    drop(chunks);
    tx.delete_table(POINTS_V1)?;
    let mut by_hour: BTreeMap<(u64, u64), Vec<(u64, Minute)>> = BTreeMap::new();
    {
        let old = tx.open_table(MINUTES_V1)?;
        for entry in old.iter()? {
            let (key, agg) = entry?;
            let (id, minute) = key.value();
            by_hour.entry((id, hour_of(minute))).or_default().push((minute, agg.value()));
        }
    }
    let mut hours = tx.open_table(HOURS)?;
    for ((id, hour), minutes) in &by_hour {
        hours.insert((*id, *hour), chunk::encode_minutes(*hour, minutes).as_slice())?;
    }
    drop(hours);
    tx.delete_table(MINUTES_V1)?;
    if !grouped.is_empty() {
        tracing::info!(minutes = grouped.len(), "the metric history keeps its raw points packed a minute a row now");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, labels: &[(&str, &str)], value: f64, at: u64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            value,
            unit: "percent".into(),
            timestamp_ms: at,
        }
    }

    impl Store {
        fn metrics_record_all(&self, samples: &[Sample]) -> Result<(), StoreError> {
            assert!(self.metrics_record(samples, u64::MAX)?.is_empty());
            Ok(())
        }
    }

    #[test]
    fn loaded_hours_read_back_as_minutes_and_unknown_series_are_left_out() {
        let (_dir, store) = open();
        let present = sample("cpu", &[], 9.0, 10 * HOUR_MS);
        store.metrics_record_all(std::slice::from_ref(&present)).unwrap();
        let known = SeriesInfo { name: "cpu".into(), labels: BTreeMap::new(), unit: "percent".into() };
        let unknown = SeriesInfo { name: "gone".into(), ..known.clone() };
        let minutes = |hour: u64| (0..60).map(move |m| (hour + m * MINUTE_MS, (1.0, 3.0, 120.0, 2.0, 60))).collect();
        let rows = [(&known, HOUR_MS, minutes(HOUR_MS)), (&unknown, HOUR_MS, minutes(HOUR_MS))];
        assert_eq!(store.metrics_load_hours(&rows).unwrap(), 1);
        let found = store.metrics_query("cpu", &BTreeMap::new(), 0).unwrap();
        let points = &found[0].points;
        assert_eq!(points.len(), 61, "an hour of minutes, then the raw sample");
        assert_eq!(
            (points[0].at_ms, points[0].value, points[0].min, points[0].max),
            (HOUR_MS, 2.0, Some(1.0), Some(3.0))
        );
        assert_eq!((points[60].at_ms, points[60].value), (10 * HOUR_MS, 9.0));
        assert!(store.metrics_query("gone", &BTreeMap::new(), 0).unwrap().is_empty());
    }

    #[test]
    fn a_plugin_cannot_flood_the_history_with_series() {
        let (_dir, store) = open();
        let tick = |t: u64| -> Vec<Sample> {
            let mut batch: Vec<Sample> =
                (0..5).map(|i| sample("req", &[("plugin", "flood"), ("id", &format!("{t}-{i}"))], 1.0, t)).collect();
            batch.push(sample("ok", &[("plugin", "calm")], 1.0, t));
            batch
        };
        assert!(store.metrics_record(&tick(1), 8).unwrap().is_empty());
        let refused = store.metrics_record(&tick(2), 8).unwrap();
        assert_eq!(refused, BTreeMap::from([("flood".to_string(), 2)]), "5 + 3 new series fit, 2 do not");
        assert_eq!(store.metrics_record(&tick(3), 8).unwrap()["flood"], 5);
        let series = store.metrics_series().unwrap();
        assert_eq!(series.iter().filter(|s| s.labels["plugin"] == "flood").count(), 8);
        assert_eq!(store.metrics_query("ok", &BTreeMap::new(), 0).unwrap()[0].points.len(), 3, "others go on");

        // Once their history has aged out, old series go and make room for new ones.
        let retention = MetricRetention { raw_ms: 0, minutes_ms: 0 };
        store.metrics_compact(&retention, 10 * MINUTE_MS).unwrap();
        assert!(store.metrics_series().unwrap().is_empty(), "nothing kept, no series left");
        assert!(store.metrics_record(&tick(4), 8).unwrap().is_empty(), "the plugin's cap is free again");
    }

    #[test]
    fn the_history_of_schema_version_1_is_packed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.redb");
        {
            let store = Store::open(&file).unwrap();
            store.metrics_record_all(&[sample("x", &[], 0.0, 1)]).unwrap();
            // As version 1 kept them: a row a point, and no chunks.
            let tx = store.write().unwrap();
            tx.delete_table(CHUNKS).unwrap();
            tx.delete_table(HOURS).unwrap();
            {
                let mut old = tx.open_table(POINTS_V1).unwrap();
                for at in [7_261_000u64, 7_205_000, 7_207_000, 7_325_000] {
                    old.insert((1, at), (at - 7_200_000) as f64 / 1000.0).unwrap();
                }
                let mut minutes = tx.open_table(MINUTES_V1).unwrap();
                minutes.insert((1, 60_000), (1.0, 3.0, 4.0, 3.0, 2)).unwrap();
                minutes.insert((1, 3_660_000), (5.0, 5.0, 5.0, 5.0, 1)).unwrap();
            }
            tx.open_table(META).unwrap().insert("schema_version", 1).unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(&file).unwrap();
        let got = store.metrics_query("x", &BTreeMap::new(), 0).unwrap().remove(0);
        let got: Vec<(u64, f64)> = got.points.iter().map(|p| (p.at_ms, p.value)).collect();
        assert_eq!(
            got,
            [
                (60_000, 2.0),
                (3_660_000, 5.0),
                (7_205_000, 5.0),
                (7_207_000, 7.0),
                (7_261_000, 61.0),
                (7_325_000, 125.0)
            ],
            "minutes, then raw points"
        );
        store.metrics_record_all(&[sample("x", &[], 6.0, 7_206_000)]).unwrap();
        assert_eq!(store.metrics_query("x", &BTreeMap::new(), 7_205_500).unwrap()[0].points[0].value, 6.0);
        let tx = store.read().unwrap();
        assert!(tx.open_table(POINTS_V1).is_err() && tx.open_table(MINUTES_V1).is_err(), "the old tables are gone");
    }

    #[test]
    fn a_damaged_minute_is_left_out_and_the_rest_goes_on() {
        let (_dir, store) = open();
        store.metrics_record_all(&[sample("x", &[], 1.0, 1_000), sample("x", &[], 2.0, 61_000)]).unwrap();
        let tx = store.write().unwrap();
        tx.open_table(CHUNKS).unwrap().insert((1, 0), [5u8, 0, 1].as_slice()).unwrap();
        tx.commit().unwrap();
        let got = store.metrics_query("x", &BTreeMap::new(), 0).unwrap().remove(0);
        assert_eq!(got.points.iter().map(|p| p.value).collect::<Vec<_>>(), [2.0]);
        store.metrics_record_all(&[sample("x", &[], 3.0, 2_000)]).unwrap();
        let got = store.metrics_query("x", &BTreeMap::new(), 0).unwrap().remove(0);
        assert_eq!(got.points.iter().map(|p| p.value).collect::<Vec<_>>(), [3.0, 2.0], "written over");
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.redb")).unwrap();
        (dir, store)
    }

    fn values(history: &SeriesPoints) -> Vec<(u64, f64)> {
        history.points.iter().map(|p| (p.at_ms, p.value)).collect()
    }

    #[test]
    fn records_series_and_queries_by_name_and_labels() {
        let (_dir, store) = open();
        for t in 0..3u64 {
            let at = 1_000 + t * 1_000;
            store
                .metrics_record_all(&[
                    sample("cpu", &[("core", "0")], t as f64, at),
                    sample("cpu", &[("core", "1")], 10.0 + t as f64, at),
                    sample("mem", &[], 5.0, at),
                ])
                .unwrap();
        }
        let keys: Vec<String> = store.metrics_series().unwrap().iter().map(SeriesInfo::key).collect();
        assert_eq!(keys, [r#"cpu{core="0"}"#, r#"cpu{core="1"}"#, "mem{}"]);
        let all = store.metrics_query("cpu", &BTreeMap::new(), 0).unwrap();
        assert_eq!(all.len(), 2);
        let one = store.metrics_query("cpu", &[("core".into(), "1".into())].into(), 2_000).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(values(&one[0]), [(2_000, 11.0), (3_000, 12.0)]);
        assert!(store.metrics_query("nope", &BTreeMap::new(), 0).unwrap().is_empty());
    }

    #[test]
    fn old_points_become_minute_aggregates_then_go() {
        let (_dir, store) = open();
        // Four minutes of samples every 10 s: 0..=5 in minute 0, 6..=11 in minute 1, ...
        let batch: Vec<Sample> = (0..24u64).map(|i| sample("x", &[], i as f64, i * 10_000)).collect();
        for s in &batch {
            store.metrics_record_all(std::slice::from_ref(s)).unwrap();
        }
        let retention = MetricRetention { raw_ms: 60_000, minutes_ms: 3_600_000 };
        // At 2:30, raw points before 1:00 (whole minutes only) are folded.
        assert_eq!(store.metrics_compact(&retention, 150_000).unwrap(), 6);
        let history = &store.metrics_query("x", &BTreeMap::new(), 0).unwrap()[0];
        let first = &history.points[0];
        assert_eq!(
            (first.at_ms, first.value, first.min, first.max, first.last),
            (0, 2.5, Some(0.0), Some(5.0), Some(5.0))
        );
        assert_eq!(history.points.len(), 1 + 18, "minute 0 aggregated, the rest raw");
        assert_eq!(store.metrics_compact(&retention, 150_000).unwrap(), 0, "nothing left to fold");

        // Much later, the aggregates expire too, and the series with them.
        let later = retention.minutes_ms + 200_000;
        assert_eq!(store.metrics_compact(&retention, later).unwrap(), 18 + 4, "18 points folded, 4 minutes gone");
        assert!(store.metrics_query("x", &BTreeMap::new(), 0).unwrap().is_empty());
        assert!(store.metrics_series().unwrap().is_empty());
    }

    #[test]
    fn a_minute_folded_in_two_compactions_merges() {
        let (_dir, store) = open();
        let retention = MetricRetention { raw_ms: 0, minutes_ms: u64::MAX };
        store.metrics_record_all(&[sample("x", &[], 4.0, 1_000)]).unwrap();
        store.metrics_compact(&retention, 60_000).unwrap();
        store.metrics_record_all(&[sample("x", &[], 2.0, 2_000)]).unwrap();
        store.metrics_compact(&retention, 60_000).unwrap();
        let point = store.metrics_query("x", &BTreeMap::new(), 0).unwrap()[0].points[0].clone();
        assert_eq!((point.value, point.min, point.max, point.last), (3.0, Some(2.0), Some(4.0), Some(2.0)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        /// However often compaction runs in between, each minute ends up with
        /// the min, max, mean and last of exactly its own samples.
        #[test]
        fn aggregates_match_the_samples(
            points in proptest::collection::btree_map(0..300_000u64, -1e6..1e6f64, 1..60),
            stops in proptest::collection::vec(0..400_000u64, 0..4),
        ) {
            let (_dir, store) = open();
            let retention = MetricRetention { raw_ms: 0, minutes_ms: u64::MAX };
            let mut stops = stops;
            stops.sort();
            let mut stops = stops.into_iter().peekable();
            for (&at, &value) in &points {
                while let Some(now) = stops.next_if(|now| *now <= at) {
                    store.metrics_compact(&retention, now).unwrap();
                }
                store.metrics_record_all(&[sample("x", &[], value, at)]).unwrap();
            }
            store.metrics_compact(&retention, 1_000_000).unwrap();
            let got = store.metrics_query("x", &BTreeMap::new(), 0).unwrap().remove(0).points;
            let mut expected: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for (&at, &value) in &points {
                expected.entry(at / MINUTE_MS * MINUTE_MS).or_default().push(value);
            }
            proptest::prop_assert_eq!(got.len(), expected.len());
            for (point, (minute, values)) in got.iter().zip(&expected) {
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                proptest::prop_assert_eq!(point.at_ms, *minute);
                proptest::prop_assert!((point.value - mean).abs() <= 1e-6 * mean.abs().max(1.0));
                proptest::prop_assert_eq!(point.min, values.iter().copied().reduce(f64::min));
                proptest::prop_assert_eq!(point.max, values.iter().copied().reduce(f64::max));
                proptest::prop_assert_eq!(point.last, values.last().copied());
            }
        }
    }
}
