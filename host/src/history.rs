//! The metric history's writer: a thread of its own that stores each tick's
//! samples, so neither a slow disk nor a progress commit holding the database
//! ever delays sampling, the rules or the stream.
//!
//! The tick hands its samples over and goes on. The thread gathers them for
//! [`Keeping::commit_every`] and writes them in one durable transaction, and
//! compacts old points between batches: a commit rewrites the tail page of every
//! series, so one commit of thirty ticks writes about a thirtieth of what thirty
//! commits do. A crash loses at most the samples gathered since the last commit; a stop
//! writes them. If the thread falls a whole queue behind (the disk stalled for
//! [`QUEUE`] ticks), further ticks are left out of the history and counted,
//! rather than held in memory without bound.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::{Sample, gauge};
use crate::plugin::stats::Latencies;
use crate::store::Store;
use crate::store::metrics::{MetricRetention, Point, SeriesInfo, SeriesPoints};

/// Ticks that may wait for the writer before ticks are left out.
pub const QUEUE: usize = 128;
/// How often old points are folded into minutes.
pub const COMPACT_EVERY: Duration = Duration::from_secs(60);

/// What the writer thread and the tick share.
#[derive(Default)]
struct Shared {
    commits: Mutex<Latencies>,
    commits_total: AtomicU64,
    skipped: AtomicU64,
    /// Set when a tick is left out, cleared by the next commit: one warning a stall.
    behind: AtomicBool,
}

/// The samples handed to the writer and not committed yet (at most
/// [`Keeping::commit_every`] of them), so that history answers reach the
/// present rather than the last commit.
#[derive(Clone, Default)]
pub struct Unwritten(Arc<Mutex<Vec<Arc<Vec<Sample>>>>>);

/// The ticks not committed at one moment.
pub struct Pending(Vec<Arc<Vec<Sample>>>);

impl Unwritten {
    /// The ticks not committed now. Taken before the stored history is read,
    /// a commit in between shows a point in both, never in neither.
    pub fn now(&self) -> Pending {
        Pending(self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }

    fn add(&self, tick: Arc<Vec<Sample>>) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(tick);
    }

    /// Forgets the oldest `n` ticks: they are committed (or lost to a failed commit).
    fn written(&self, n: usize) {
        let mut ticks = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = n.min(ticks.len());
        ticks.drain(..n);
    }
}

impl Pending {
    /// Adds to `known` (sorted by key) the series not stored yet.
    pub fn add_series(&self, known: &mut Vec<SeriesInfo>) {
        let mut keys: HashSet<String> = known.iter().map(SeriesInfo::key).collect();
        for sample in self.0.iter().flat_map(|tick| tick.iter()) {
            let series =
                SeriesInfo { name: sample.name.clone(), labels: sample.labels.clone(), unit: sample.unit.clone() };
            if keys.insert(series.key()) {
                known.push(series);
            }
        }
        known.sort_by_key(SeriesInfo::key);
    }

    /// Adds to `found`, the stored history of the series named `name` with
    /// all of `matchers` since `since_ms`, the points not written yet, and the
    /// series that have none written yet; a point no later than its series'
    /// last stored one is already there.
    pub fn complete(
        &self,
        found: &mut Vec<SeriesPoints>,
        name: &str,
        matchers: &BTreeMap<String, String>,
        since_ms: u64,
    ) {
        for sample in self.0.iter().flat_map(|tick| tick.iter()) {
            if sample.name != name
                || sample.timestamp_ms < since_ms
                || !matchers.iter().all(|(k, v)| sample.labels.get(k) == Some(v))
            {
                continue;
            }
            let at = found.iter().position(|h| h.series.labels == sample.labels);
            let history = match at {
                Some(i) => &mut found[i],
                None => {
                    let series =
                        SeriesInfo { name: name.into(), labels: sample.labels.clone(), unit: sample.unit.clone() };
                    found.push(SeriesPoints { series, points: Vec::new() });
                    found.last_mut().expect("just pushed")
                }
            };
            if history.points.last().is_none_or(|p| p.at_ms < sample.timestamp_ms) {
                let value = sample.value;
                history.points.push(Point { at_ms: sample.timestamp_ms, value, min: None, max: None, last: None });
            }
        }
    }
}

/// The handle the tick holds. Dropping it lets the thread write what is queued
/// and end; [`HistoryWriter::stop`] also waits for that.
pub struct HistoryWriter {
    queue: SyncSender<Arc<Vec<Sample>>>,
    shared: Arc<Shared>,
    unwritten: Unwritten,
    thread: std::thread::JoinHandle<()>,
}

/// How the thread stores: the cap on each plugin's series, what is kept how long,
/// and how long samples are gathered before a commit.
#[derive(Debug, Clone, Copy)]
pub struct Keeping {
    pub max_series_per_plugin: u64,
    pub retention: MetricRetention,
    pub commit_every: Duration,
}

impl HistoryWriter {
    /// Starts the thread; it compacts once right away, then every [`COMPACT_EVERY`].
    pub fn start(store: Store, keeping: Keeping) -> std::io::Result<HistoryWriter> {
        let (queue, ticks) = std::sync::mpsc::sync_channel(QUEUE);
        let shared = Arc::new(Shared::default());
        let unwritten = Unwritten::default();
        let thread = {
            let (shared, unwritten) = (shared.clone(), unwritten.clone());
            std::thread::Builder::new()
                .name("metric-history".into())
                .spawn(move || run(&store, keeping, &shared, &unwritten, &ticks))?
        };
        Ok(HistoryWriter { queue, shared, unwritten, thread })
    }

    /// What the thread holds and has not committed yet.
    pub fn unwritten(&self) -> Unwritten {
        self.unwritten.clone()
    }

    /// Hands a tick's samples to the thread; never waits.
    pub fn record(&self, samples: &Arc<Vec<Sample>>) {
        match self.queue.try_send(samples.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.skipped.fetch_add(1, Ordering::Relaxed);
                if !self.shared.behind.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the metric history is {QUEUE} ticks behind (the database is slow to commit); ticks are left out of the history until it catches up"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => tracing::error!("the metric history's writer has stopped"),
        }
    }

    /// The writer's own series: how long its commits take, and how many ticks it left out.
    pub fn metrics(&self, now_ms: u64) -> Vec<Sample> {
        let (p50_us, p99_us) = self.shared.commits.lock().expect("history latencies").p50_p99_us();
        vec![
            gauge("monitor_history_commit_p50_seconds", p50_us / 1e6, "seconds", now_ms),
            gauge("monitor_history_commit_p99_seconds", p99_us / 1e6, "seconds", now_ms),
            gauge(
                "monitor_history_commits_total",
                self.shared.commits_total.load(Ordering::Relaxed) as f64,
                "",
                now_ms,
            ),
            gauge(
                "monitor_history_skipped_ticks_total",
                self.shared.skipped.load(Ordering::Relaxed) as f64,
                "",
                now_ms,
            ),
        ]
    }

    /// Writes what is queued, then ends the thread.
    pub fn stop(self) {
        drop(self.queue);
        let _ = self.thread.join();
    }
}

fn run(store: &Store, keeping: Keeping, shared: &Shared, unwritten: &Unwritten, ticks: &Receiver<Arc<Vec<Sample>>>) {
    // Handed samples at the end of each tick, it must not take the core from
    // the tick before the tick is done.
    crate::sched::batch(0);
    let mut flooding = HashSet::new();
    let mut next_compaction = Instant::now();
    let mut last_commit = Instant::now();
    loop {
        if Instant::now() >= next_compaction {
            compact(store, &keeping.retention);
            next_compaction = Instant::now() + COMPACT_EVERY;
        }
        let first = match ticks.recv_timeout(next_compaction.saturating_duration_since(Instant::now())) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        unwritten.add(first.clone());
        let mut batch = vec![first];
        let mut stopping = false;
        let due = last_commit + keeping.commit_every;
        // Gathered until the commit is due; a stop writes what was gathered.
        while batch.len() < QUEUE {
            match ticks.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(tick) => {
                    unwritten.add(tick.clone());
                    batch.push(tick);
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    stopping = true;
                    break;
                }
            }
        }
        let started = Instant::now();
        last_commit = started;
        let result = store.metrics_record(batch.iter().flat_map(|tick| tick.iter()), keeping.max_series_per_plugin);
        unwritten.written(batch.len());
        shared.commits.lock().expect("history latencies").record(started.elapsed());
        shared.commits_total.fetch_add(1, Ordering::Relaxed);
        shared.behind.store(false, Ordering::Relaxed);
        match result {
            Ok(refused) => {
                for (plugin, n) in refused {
                    if flooding.insert(plugin.clone()) {
                        let max = keeping.max_series_per_plugin;
                        tracing::warn!(plugin = %plugin, "{n} samples of new series not kept in the history: the plugin has {max} series, the most metrics.max_series_per_plugin allows; its known series go on being kept");
                    }
                }
            }
            Err(e) => tracing::error!("recording metric history: {e}"),
        }
        if stopping {
            return;
        }
    }
}

fn compact(store: &Store, retention: &MetricRetention) {
    match store.metrics_compact(retention, crate::sampler::now_ms()) {
        Ok(0) => {}
        Ok(removed) => tracing::debug!(removed, "metric history compacted"),
        Err(e) => tracing::error!("compacting metric history: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn tick(at_ms: u64) -> Arc<Vec<Sample>> {
        Arc::new(vec![gauge("load", at_ms as f64, "", at_ms), gauge("temp", 40.0, "celsius", at_ms)])
    }

    fn start() -> (tempfile::TempDir, Store, HistoryWriter) {
        start_committing_every(Duration::ZERO)
    }

    fn start_committing_every(commit_every: Duration) -> (tempfile::TempDir, Store, HistoryWriter) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("monitor.redb")).unwrap();
        let retention = MetricRetention { raw_ms: 3_600_000, minutes_ms: 86_400_000 };
        let keeping = Keeping { max_series_per_plugin: 100, retention, commit_every };
        let history = HistoryWriter::start(store.clone(), keeping).unwrap();
        (dir, store, history)
    }

    fn stored(store: &Store, name: &str) -> Vec<u64> {
        let found = store.metrics_query(name, &BTreeMap::new(), 0).unwrap();
        found.first().map(|h| h.points.iter().map(|p| p.at_ms).collect()).unwrap_or_default()
    }

    /// Polls `done` until it holds, for at most ten seconds.
    fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::yield_now();
        }
    }

    fn skipped(history: &HistoryWriter) -> f64 {
        let metrics = history.metrics(0);
        metrics.iter().find(|s| s.name == "monitor_history_skipped_ticks_total").unwrap().value
    }

    #[test]
    fn answers_reach_the_ticks_not_committed_yet() {
        let (_dir, store, history) = start_committing_every(Duration::from_secs(3_600));
        let unwritten = history.unwritten();
        let answer = |since: u64| {
            let pending = unwritten.now();
            let mut found = store.metrics_query("load", &BTreeMap::new(), since).unwrap();
            pending.complete(&mut found, "load", &BTreeMap::new(), since);
            found.first().map(|h| h.points.iter().map(|p| p.at_ms).collect::<Vec<_>>()).unwrap_or_default()
        };
        for at in 1..=5 {
            history.record(&tick(at));
        }
        until("the writer to take the ticks", || answer(0).len() == 5);
        assert!(stored(&store, "load").is_empty(), "nothing committed yet");
        assert_eq!(answer(0), [1, 2, 3, 4, 5], "a series not stored yet is answered too");
        assert_eq!(answer(4), [4, 5]);
        let pending = unwritten.now();
        let mut found = store.metrics_query("load", &BTreeMap::new(), 0).unwrap();
        pending.complete(&mut found, "load", &BTreeMap::from([("plugin".to_string(), "x".to_string())]), 0);
        assert!(found.is_empty(), "matchers hold for the unwritten too");
        history.stop();
        assert_eq!(stored(&store, "load"), [1, 2, 3, 4, 5]);
        let mut found = store.metrics_query("load", &BTreeMap::new(), 0).unwrap();
        pending.complete(&mut found, "load", &BTreeMap::new(), 0);
        assert_eq!(found[0].points.len(), 5, "what was committed since is not counted twice");
    }

    #[test]
    fn every_tick_handed_over_is_stored_by_the_time_it_stops() {
        let (_dir, store, history) = start();
        for at in 1..=50 {
            history.record(&tick(at));
        }
        assert_eq!(skipped(&history), 0.0);
        history.stop();
        assert_eq!(stored(&store, "load"), (1..=50).collect::<Vec<_>>());
        assert_eq!(stored(&store, "temp").len(), 50);
    }

    #[test]
    fn a_stalled_database_costs_ticks_in_the_history_never_a_wait() {
        let (_dir, store, history) = start();
        let lock = store.hold_writes();
        // The writer takes what it can, then waits for the lock; the queue fills.
        let mut at = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while skipped(&history) == 0.0 {
            assert!(Instant::now() < deadline, "no tick was left out after {at} ticks");
            at += 1;
            history.record(&tick(at));
        }
        assert!(at > QUEUE as u64, "left out at tick {at}, before the queue of {QUEUE} was full");
        for _ in 0..5 {
            at += 1;
            let before = Instant::now();
            history.record(&tick(at));
            assert!(before.elapsed() < Duration::from_secs(1), "recording waited for the database");
        }
        assert!(skipped(&history) >= 6.0, "{}", skipped(&history));
        drop(lock);
        // Every tick so far is either stored once the writer catches up, or counted.
        until("the writer to catch up", || stored(&store, "load").len() as f64 + skipped(&history) >= at as f64);
        history.record(&tick(at + 1));
        let left_out = skipped(&history);
        history.stop();
        let kept = stored(&store, "load");
        assert_eq!(kept.len() as f64 + left_out, (at + 1) as f64, "every tick is kept or counted");
        assert_eq!(kept.last(), Some(&(at + 1)), "once the database is back, ticks are kept again");
    }

    #[test]
    fn samples_are_gathered_until_a_commit_is_due_and_a_stop_writes_them() {
        let (_dir, store, history) = start_committing_every(Duration::from_secs(3600));
        for at in 1..=20 {
            history.record(&tick(at));
        }
        let commits = |history: &HistoryWriter| history.shared.commits_total.load(Ordering::Relaxed);
        assert_eq!(commits(&history), 0, "nothing is committed before the hour is up");
        let shared = history.shared.clone();
        history.stop();
        assert_eq!(shared.commits_total.load(Ordering::Relaxed), 1, "the stop wrote them in one commit");
        assert_eq!(stored(&store, "load"), (1..=20).collect::<Vec<_>>());
    }

    #[test]
    fn a_commit_comes_when_it_is_due_without_a_stop() {
        let (_dir, store, history) = start_committing_every(Duration::from_millis(200));
        history.record(&tick(1));
        until("the first tick stored", || stored(&store, "load") == [1]);
        history.record(&tick(2));
        until("the second", || stored(&store, "load") == [1, 2]);
        history.stop();
    }

    #[test]
    fn commits_are_timed() {
        let (_dir, _store, history) = start();
        history.record(&tick(1));
        let p99 = || history.metrics(0).iter().find(|s| s.name == "monitor_history_commit_p99_seconds").unwrap().value;
        until("a commit to be timed", || p99() > 0.0);
        history.stop();
    }
}
