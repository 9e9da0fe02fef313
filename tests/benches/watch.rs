//! File watching through the real `monitor watch-files`: latency from a file
//! write to the start of the command, and the watcher's memory over 10,000
//! changes. Prints a table for BENCHMARKS.md.
//!
//! `cargo bench -p monitor-tests --bench watch`
//!
//! The command is this bench binary itself in `--record DIR` mode: the first
//! thing it does is write the wall-clock time and its arguments to
//! `DIR/start-SEQ`, so the latency ends when the command has started, not when
//! a shell got round to asking the time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use monitor_tests::{monitor_bin, wait_for};

const LATENCY_SAMPLES: usize = 200;
const CHANGES: usize = 10_000;
const CHECKPOINTS: usize = 4;
const DEBOUNCE_MS: u64 = 100;

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// `--record DIR PATHS...`: the command the watcher runs.
fn record(dir: &Path, paths: &[String]) {
    let started = now_ns();
    let seq = std::env::var("MONITOR_WATCH_SEQ").unwrap_or_default();
    let tmp = dir.join(format!(".start-{seq}"));
    std::fs::write(&tmp, format!("{started}\n{}\n", paths.join("\n"))).unwrap();
    std::fs::rename(tmp, dir.join(format!("start-{seq}"))).unwrap();
}

struct Watcher {
    child: Child,
    out: PathBuf,
}

impl Watcher {
    fn start(root: &Path, out: &Path, debounce_ms: u64) -> Watcher {
        use std::io::BufRead;
        std::fs::create_dir_all(out).unwrap();
        let me = std::env::current_exe().unwrap();
        let mut child = Command::new(monitor_bin())
            .arg("watch-files")
            .arg(root)
            .args(["--debounce", &format!("{debounce_ms}ms"), "--"])
            .arg(me)
            .arg("--record")
            .arg(out)
            .env("MONITOR_DATA_DIR", root.parent().unwrap().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Watching once it says so; the rest of its log is drained and dropped.
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        for line in lines.by_ref() {
            if line.unwrap().contains("[monitor watch] watching") {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Watcher { child, out: out.to_path_buf() }
    }

    /// The start time and paths the command recorded for run `seq`.
    fn record_of(&self, seq: u64) -> Option<(u128, Vec<String>)> {
        let text = std::fs::read_to_string(self.out.join(format!("start-{seq}"))).ok()?;
        let mut lines = text.lines();
        let time = lines.next()?.parse().ok()?;
        Some((time, lines.map(str::to_string).collect()))
    }

    fn runs(&self) -> u64 {
        std::fs::read_dir(&self.out)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("start-"))
            .count() as u64
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--record") {
        record(Path::new(&args[2]), &args[3..]);
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    // Latency: one write, then wait for its command to record its start.
    let root = dir.path().join("latency");
    std::fs::create_dir(&root).unwrap();
    let w = Watcher::start(&root, &dir.path().join("latency-out"), DEBOUNCE_MS);
    let first = w.runs() + 1;
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for (i, seq) in (0..LATENCY_SAMPLES).zip(first..) {
        let path = root.join(format!("f{}", i % 10));
        let written = now_ns();
        std::fs::write(&path, format!("{i}")).unwrap();
        let (started, paths) = wait_for("the command to start", Duration::from_secs(10), || w.record_of(seq));
        assert_eq!(paths, [path.display().to_string()], "one write, one run");
        latencies.push((started - written) as f64 / 1e6);
    }
    drop(w);
    latencies.sort_by(f64::total_cmp);

    // Memory: 10,000 changes over 1,000 names, in bursts of 50, each burst run
    // before the next; RSS at 0, 2,500, 5,000, 7,500 and 10,000 changes.
    let root = dir.path().join("churn");
    std::fs::create_dir(&root).unwrap();
    let w = Watcher::start(&root, &dir.path().join("churn-out"), 20);
    let mut seq = w.runs();
    let mut rss = vec![(0, w.rss_kib())];
    let burst = 50;
    for b in 0..CHANGES / burst {
        for i in 0..burst {
            let n = b * burst + i;
            std::fs::write(root.join(format!("d{}/f{}", n % 10, n % 1000)).as_path(), format!("{n}"))
                .or_else(|_| {
                    std::fs::create_dir_all(root.join(format!("d{}", n % 10)))?;
                    std::fs::write(root.join(format!("d{}/f{}", n % 10, n % 1000)), format!("{n}"))
                })
                .unwrap();
        }
        // The burst's last file is in some run's paths.
        let last = root.join(format!("d{}/f{}", (b * burst + burst - 1) % 10, (b * burst + burst - 1) % 1000));
        let last = last.display().to_string();
        wait_for("the burst to be run", Duration::from_secs(10), || {
            while w.record_of(seq + 1).is_some() {
                seq += 1;
                if w.record_of(seq).is_some_and(|(_, paths)| paths.contains(&last)) {
                    return Some(());
                }
            }
            None
        });
        let changes = (b + 1) * burst;
        if changes % (CHANGES / CHECKPOINTS) == 0 {
            rss.push((changes, w.rss_kib()));
        }
    }
    let runs = w.runs();
    drop(w);

    println!("| measure | value |");
    println!("| --- | --- |");
    println!(
        "| write → command start, debounce {DEBOUNCE_MS} ms, {LATENCY_SAMPLES} writes | min {:.1} / p50 {:.1} / p99 {:.1} / max {:.1} ms |",
        latencies[0],
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    let samples: Vec<String> = rss.iter().map(|(n, kib)| format!("{n}: {:.1}", *kib as f64 / 1024.0)).collect();
    println!("| watcher RSS (MiB) after N changes, debounce 20 ms, {runs} runs | {} |", samples.join(" / "));
}
