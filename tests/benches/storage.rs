//! The store at scale, on this machine's disk, through the same calls the host
//! makes:
//!
//! - **Ten simulated days** of the metric history: 100 series at a 1 s tick,
//!   committed 30 ticks at a time and compacted every simulated minute (the
//!   host's defaults: raw points kept 1 hour, minutes 7 days). The file's size
//!   at the end of each day shows whether it settles; then `compact` gives the
//!   free pages back, and a week of one series is queried.
//! - **10,000 series** from plugins: commits of 30 ticks, their time and the
//!   samples stored per second.
//! - **100 runs of 1,000 nodes** side by side: updates spread over every run,
//!   a batch at a time as the host's group commit makes them, and the time to
//!   read one whole run.
//! - **A year of one-minute aggregates for 1,000 series**, loaded an hour of a
//!   series a row as compaction leaves them (replaying a year of samples would
//!   take days); then what the host does with such a file: an hour of 1 s
//!   ticks written into it beside the same into an empty file, compaction at
//!   the year's edge, and a week and a year of one series read back. It needs
//!   about 15 GB of free disk for a while.
//!
//! `cargo bench -p monitor-tests --bench storage` (about twenty minutes); a word
//! after `--` runs the parts whose name has it: `days`, `series`, `runs`, `year`.

use std::time::Instant;

use monitor_host::metrics::Sample;
use monitor_host::progress::{NodePath, Op, Update};
use monitor_host::store::Store;
use monitor_host::store::metrics::{HourRow, MetricRetention, Minute, SeriesInfo};
use monitor_tests::median;

const SECOND: u64 = 1_000;
const DAY: u64 = 86_400 * SECOND;
const START: u64 = 1_780_000_000_000;

fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |part: &str| only.as_deref().is_none_or(|o| part.contains(o));
    if run("days") {
        simulated_days(&dir.path().join("days.redb"));
    }
    if run("series") {
        many_series(&dir.path().join("series.redb"));
    }
    if run("runs") {
        many_runs(&dir.path().join("runs.redb"));
    }
    if run("year") {
        a_year_of_minutes(dir.path());
    }
}

/// A tick's samples of `series` series: gauges that wander, counters that
/// climb, and values that stay put, as the example plugins' do.
fn tick(series: usize, at_ms: u64, plugin: &str) -> Vec<Sample> {
    let t = (at_ms - START) / SECOND;
    (0..series)
        .map(|i| {
            let value = match i % 3 {
                0 => ((t * 7 + i as u64 * 13) % 1000) as f64 / 10.0,
                1 => (t * 4096 * (i as u64 + 1)) as f64,
                _ => 42.0,
            };
            Sample {
                name: format!("series_{i}"),
                labels: [("plugin".to_string(), format!("{plugin}-{}", i % 5))].into(),
                value,
                unit: String::new(),
                timestamp_ms: at_ms,
            }
        })
        .collect()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

fn simulated_days(file: &std::path::Path) {
    let store = Store::open(file).unwrap();
    let retention = MetricRetention { raw_ms: 3_600 * SECOND, minutes_ms: 7 * DAY };
    println!("ten simulated days: 100 series, 1 s tick, a commit every 30 ticks, compaction every minute");
    println!("| day | file | in use | raw points (their pages) | minutes (their pages) | commit p50 |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut at = START;
    for day in 1..=10 {
        let mut commits = Vec::new();
        while at < START + day * DAY {
            let batch: Vec<Sample> = (0..30).flat_map(|k| tick(100, at + k * SECOND, "p")).collect();
            let started = Instant::now();
            store.metrics_record(&batch, u64::MAX).unwrap();
            commits.push(started.elapsed().as_secs_f64() * 1e3);
            at += 30 * SECOND;
            if (at - START).is_multiple_of(60 * SECOND) {
                store.metrics_compact(&retention, at).unwrap();
            }
        }
        let space = store.space().unwrap();
        let raw: u64 = space.plugins.iter().map(|p| p.raw_points).sum();
        let minutes: u64 = space.plugins.iter().map(|p| p.minutes).sum();
        let pages = |name: &str| space.tables.iter().find(|t| t.name == name).map_or(0, |t| t.page_bytes);
        println!(
            "| {day} | {:.1} MiB | {:.1} MiB | {raw} ({:.1} MiB) | {minutes} ({:.1} MiB) | {:.2} ms |",
            mib(space.file_bytes),
            mib(space.allocated_bytes),
            mib(pages("metric_chunks")),
            mib(pages("metric_hours")),
            median(commits)
        );
    }
    let compacted = store.compact().unwrap();
    println!("compacted: {:.1} MiB before, {:.1} MiB after", mib(compacted.before_bytes), mib(compacted.after_bytes));
    let labels = [("plugin".to_string(), "p-0".to_string())].into();
    let mut times = Vec::new();
    let mut points = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let found = store.metrics_query("series_0", &labels, at - 7 * DAY).unwrap();
        times.push(started.elapsed().as_secs_f64() * 1e3);
        points = found[0].points.len();
    }
    println!("a week of one series ({points} points: minutes, then the last hour raw): median {:.1} ms", median(times));
}

fn many_series(file: &std::path::Path) {
    let store = Store::open(file).unwrap();
    let mut commits = Vec::new();
    let started = Instant::now();
    for c in 0..20u64 {
        let batch: Vec<Sample> = (0..30).flat_map(|k| tick(10_000, START + (c * 30 + k) * SECOND, "q")).collect();
        let commit = Instant::now();
        store.metrics_record(&batch, u64::MAX).unwrap();
        commits.push(commit.elapsed().as_secs_f64() * 1e3);
    }
    let rate = (20 * 30 * 10_000) as f64 / started.elapsed().as_secs_f64();
    commits.sort_by(f64::total_cmp);
    let space = store.space().unwrap();
    println!(
        "10,000 series, 10 minutes of 1 s ticks in 20 commits: {rate:.0} samples/s stored (sample making included), commit of 30 ticks median {:.0} ms, max {:.0} ms; file {:.1} MiB, {:.1} MiB in use",
        commits[10],
        commits[19],
        mib(space.file_bytes),
        mib(space.allocated_bytes)
    );
}

fn many_runs(file: &std::path::Path) {
    let store = Store::open(file).unwrap();
    let start: Vec<(NodePath, Update)> = (0..100)
        .flat_map(|run| {
            (0..10).flat_map(move |phase| {
                (0..99).map(move |step| {
                    let path = NodePath::parse(&format!("run-{run}/phase-{phase}/step-{step}")).unwrap();
                    (path, Update::new(Op::Start { total: Some(100.0), weight: None }))
                })
            })
        })
        .collect();
    let started = Instant::now();
    for chunk in start.chunks(1_000) {
        store.progress_apply(chunk, 1).unwrap();
    }
    let created = started.elapsed().as_secs_f64();
    // Each batch: one advance in every run, on a step that moves along.
    let batches = 200;
    let started = Instant::now();
    for b in 0..batches {
        let batch: Vec<(NodePath, Update)> = (0..100)
            .map(|run| {
                let path = format!("run-{run}/phase-{}/step-{}", b % 10, (b * 7 + run) % 99);
                (NodePath::parse(&path).unwrap(), Update::new(Op::Advance { units: 1.0 }))
            })
            .collect();
        store.progress_apply(&batch, 2 + b as u64).unwrap();
    }
    let rate = (batches * 100) as f64 / started.elapsed().as_secs_f64();
    let mut reads = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(store.progress_tree("run-42").unwrap().len(), 1 + 10 + 990);
        reads.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "100 runs of 1,001 nodes: created in {created:.1} s; {rate:.0} updates/s in batches of one advance per run; one run read whole, median {:.1} ms",
        median(reads)
    );
}

/// Minute `minute` (counted from `START`) of series `i` of [`tick`], aggregated.
fn minute_of_series(i: usize, minute: u64) -> Minute {
    let t = minute * 60;
    match i % 3 {
        0 => {
            let v = ((t * 7 + i as u64 * 13) % 1000) as f64 / 10.0;
            (v - 1.0, v + 1.0, v * 60.0, v, 60)
        }
        1 => {
            let step = 4096.0 * (i as f64 + 1.0);
            let first = t as f64 * step;
            (first, first + 59.0 * step, 60.0 * first + 1770.0 * step, first + 59.0 * step, 60)
        }
        _ => (42.0, 42.0, 2520.0, 42.0, 60),
    }
}

fn a_year_of_minutes(dir: &std::path::Path) {
    const SERIES: usize = 1_000;
    const HOUR: u64 = 3_600 * SECOND;
    const HOURS: u64 = 365 * 24;
    const HOURS_A_COMMIT: u64 = 6;
    let end = START + HOURS * HOUR;
    let store = Store::open(&dir.join("year.redb")).unwrap();
    // The series are known to the history by a sample at the year's end, after its minutes.
    let present = tick(SERIES, end, "y");
    store.metrics_record(&present, u64::MAX).unwrap();
    let infos: Vec<SeriesInfo> = present
        .iter()
        .map(|s| SeriesInfo { name: s.name.clone(), labels: s.labels.clone(), unit: s.unit.clone() })
        .collect();
    let started = Instant::now();
    let mut commits = Vec::new();
    for first in (0..HOURS).step_by(HOURS_A_COMMIT as usize) {
        let rows: Vec<HourRow> = (first..first + HOURS_A_COMMIT)
            .flat_map(|h| {
                infos.iter().enumerate().map(move |(i, info)| {
                    let minutes = (h * 60..h * 60 + 60).map(|m| (START + m * 60 * SECOND, minute_of_series(i, m)));
                    (info, START + h * HOUR, minutes.collect())
                })
            })
            .collect();
        let commit = Instant::now();
        assert_eq!(store.metrics_load_hours(&rows).unwrap(), rows.len());
        commits.push(commit.elapsed().as_secs_f64() * 1e3);
    }
    let took = started.elapsed().as_secs_f64();
    let minutes = SERIES as u64 * HOURS * 60;
    let space = store.space().unwrap();
    let pages = space.tables.iter().find(|t| t.name == "metric_hours").map_or(0, |t| t.page_bytes);
    println!(
        "a year of one-minute aggregates for 1,000 series ({minutes} minutes in {} hour rows): loaded in {took:.0} s, {:.0} minutes/s (making them included), a commit of {HOURS_A_COMMIT} hours of every series median {:.0} ms; file {:.1} MiB, {:.1} MiB in use, the aggregates' pages {:.1} MiB ({:.1} bytes a minute)",
        SERIES as u64 * HOURS,
        minutes as f64 / took,
        median(commits),
        mib(space.file_bytes),
        mib(space.allocated_bytes),
        mib(pages),
        pages as f64 / minutes as f64,
    );
    let labels = [("plugin".to_string(), "y-0".to_string())].into();
    for (what, since) in [("a week", end - 7 * DAY), ("a year", START)] {
        let mut times = Vec::new();
        let mut points = 0;
        for _ in 0..10 {
            let at = Instant::now();
            let found = store.metrics_query("series_0", &labels, since).unwrap();
            times.push(at.elapsed().as_secs_f64() * 1e3);
            points = found[0].points.len();
        }
        println!("{what} of one series in the year's file ({points} points): median {:.1} ms", median(times));
    }
    // The host's own work on such a file: an hour of ticks, with a compaction a
    // minute that keeps a year of minutes, beside the same hour on an empty file.
    let retention = MetricRetention { raw_ms: HOUR, minutes_ms: 365 * DAY };
    let empty = Store::open(&dir.join("empty.redb")).unwrap();
    for (what, store) in [("the year's file", &store), ("an empty file", &empty)] {
        let mut commits = Vec::new();
        let mut compactions = Vec::new();
        let started = Instant::now();
        // From the minute after the present sample, so that a compaction comes every minute.
        let mut at = end + 60 * SECOND;
        while at < end + 60 * SECOND + HOUR {
            let batch: Vec<Sample> = (0..30).flat_map(|k| tick(SERIES, at + k * SECOND, "y")).collect();
            let commit = Instant::now();
            store.metrics_record(&batch, u64::MAX).unwrap();
            commits.push(commit.elapsed().as_secs_f64() * 1e3);
            at += 30 * SECOND;
            if (at - end).is_multiple_of(60 * SECOND) {
                let compaction = Instant::now();
                store.metrics_compact(&retention, at + HOUR).unwrap();
                compactions.push(compaction.elapsed().as_secs_f64() * 1e3);
            }
        }
        let rate = (SERIES as u64 * HOUR / SECOND) as f64 / started.elapsed().as_secs_f64();
        println!(
            "an hour of 1 s ticks of the 1,000 series into {what}: {rate:.0} samples/s (making them included), a commit of 30 ticks median {:.0} ms, a compaction median {:.0} ms, max {:.0} ms",
            median(commits),
            median(compactions.clone()),
            compactions.iter().copied().fold(0.0, f64::max),
        );
    }
}
