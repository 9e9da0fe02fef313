//! The host's own cost beside the usual collectors, side by side for the same
//! minute on this machine: the release `monitor` daemon with the five example
//! plugins at 1 s ticks (sampling, plugins, the history committed every 30 s on
//! its writer's thread, the default), the same host committing every 10 s and
//! every tick (`metrics.commit_every = "10s"`, `"0s"`), `prometheus-node-exporter` scraped every
//! second (it collects on scrape), and `collectd` at a 1 s interval writing CSV.
//! CPU is the process's user + system time over the minute, as a percentage of
//! one core; RSS is read at the end, split into anonymous memory and file-backed
//! pages (code, mapped files); disk writes are the bytes the process sent to the
//! disk over the minute (`write_bytes` of `/proc/PID/io`; the data directories are
//! on the machine's disk, not a tmpfs). Enough `sleep` processes are started to
//! bring the machine to ~150 processes.
//!
//! `cargo bench -p monitor-tests --bench footprint` (the Debian packages
//! `prometheus-node-exporter` and `collectd-core` must be installed for their rows)

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use monitor_tests::{Sandbox, wait_for};

const MINUTE: Duration = Duration::from_secs(60);
const PROCESSES: usize = 150;

/// User + system CPU seconds of a process so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which may hold spaces) start at ") ".
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ
}

/// Bytes the process (all its threads) has caused to be written to storage so far.
fn written(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let line = io.lines().find(|l| l.starts_with("write_bytes:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A `/proc/PID/status` memory field (`VmRSS:`, `RssAnon:`, `RssFile:`), in MiB.
fn mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

fn process_count() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .count()
}

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn installed(path: &str) -> bool {
    std::path::Path::new(path).exists()
}

fn main() {
    let sandbox = Sandbox::new();
    sandbox.install_examples();
    let _fillers: Vec<Reaped> = (process_count()..PROCESSES)
        .map(|_| Reaped(Command::new("sleep").arg("600").spawn().expect("sleep")))
        .collect();
    // Warm the compile cache, so the minute measures running, not compiling.
    let mut host = sandbox.start(&[]);
    host.signal("TERM");
    host.wait_exit(Duration::from_secs(10));

    let host = sandbox.start(&[]);
    // The same host in data directories of their own, committing the history
    // more often: every 10 s, and every tick.
    let often: Vec<(Sandbox, monitor_tests::Daemon)> = ["10s", "0s"]
        .into_iter()
        .map(|every| {
            let other = Sandbox::new();
            other.install_examples();
            let config = other.root.path().join("host.toml");
            std::fs::write(&config, format!("[metrics]\ncommit_every = \"{every}\"\n")).unwrap();
            let mut warm = other.start(&["--config", config.to_str().unwrap()]);
            warm.signal("TERM");
            warm.wait_exit(Duration::from_secs(10));
            let daemon = other.start(&["--config", config.to_str().unwrap()]);
            (other, daemon)
        })
        .collect();
    let mut others: Vec<(&str, Reaped)> = Vec::new();
    let exporter_port = free_port();
    if installed("/usr/bin/prometheus-node-exporter") {
        let child = Command::new("/usr/bin/prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        others.push(("prometheus-node-exporter (scraped every 1 s)", Reaped(child)));
    }
    if installed("/usr/sbin/collectd") {
        let dir = sandbox.root.path().join("collectd");
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("collectd.conf");
        std::fs::write(
            &conf,
            format!(
                "Interval 1\nBaseDir \"{0}\"\nPIDFile \"{0}/collectd.pid\"\nTypesDB \"/usr/share/collectd/types.db\"\n\
                 LoadPlugin cpu\nLoadPlugin memory\nLoadPlugin swap\nLoadPlugin load\nLoadPlugin uptime\n\
                 LoadPlugin df\nLoadPlugin disk\nLoadPlugin interface\nLoadPlugin processes\nLoadPlugin csv\n\
                 <Plugin csv>\n  DataDir \"{0}/csv\"\n</Plugin>\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/collectd")
            .args(["-f", "-C"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        others.push(("collectd (1 s interval, CSV)", Reaped(child)));
    }

    let mut measured: Vec<(&str, u32, f64, u64)> = vec![
        ("monitor (5 example plugins, 1 s ticks, history committed every 30 s)", host.child.id(), 0.0, 0),
        ("monitor, the same, history committed every 10 s", often[0].1.child.id(), 0.0, 0),
        ("monitor, the same, history committed every tick", often[1].1.child.id(), 0.0, 0),
    ];
    measured.extend(others.iter().map(|(name, child)| (*name, child.0.id(), 0.0, 0)));
    let database = |sandbox: &Sandbox| std::fs::metadata(sandbox.data().join("monitor.redb")).map_or(0, |m| m.len());
    let sandboxes = [&sandbox, &often[0].0, &often[1].0];
    let databases = sandboxes.map(database);
    for entry in &mut measured {
        entry.2 = cpu_secs(entry.1);
        entry.3 = written(entry.1);
    }
    let started = Instant::now();
    let scrape = format!("127.0.0.1:{exporter_port}");
    let mut scrapes = 0;
    while started.elapsed() < MINUTE {
        let tick = Instant::now();
        if installed("/usr/bin/prometheus-node-exporter") && scrape_once(&scrape) {
            scrapes += 1;
        }
        wait_for("the next second", Duration::from_secs(5), || {
            (tick.elapsed() >= Duration::from_secs(1)).then_some(())
        });
    }
    let elapsed = started.elapsed().as_secs_f64();
    let tick_p99 = sandbox.metric_host("monitor_tick_duration_p99_seconds").map(|s| s * 1e3);
    let tick_p50 = sandbox.metric_host("monitor_tick_duration_p50_seconds").map(|s| s * 1e3);
    let commit_p99 = sandbox.metric_host("monitor_history_commit_p99_seconds").map(|s| s * 1e3);
    let commit_p50 = sandbox.metric_host("monitor_history_commit_p50_seconds").map(|s| s * 1e3);

    println!("one minute side by side on this machine ({} processes running)", process_count());
    println!(
        "| collector | CPU, % of one core | RSS at the end, MiB | of which anonymous / file-backed | disk writes, KiB/s |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (name, pid, before, written_before) in &measured {
        let cpu = (cpu_secs(*pid) - before) / elapsed * 100.0;
        let (rss, anon, file) = (mib(*pid, "VmRSS:"), mib(*pid, "RssAnon:"), mib(*pid, "RssFile:"));
        let writes = (written(*pid) - written_before) as f64 / 1024.0 / elapsed;
        println!("| {name} | {cpu:.2} | {rss:.1} | {anon:.1} / {file:.1} | {writes:.1} |");
    }
    let grown: Vec<String> = sandboxes
        .iter()
        .zip(databases)
        .map(|(s, before)| format!("{:.0}", (database(s) as f64 - before as f64) / 1024.0))
        .collect();
    println!("database growth over the minute, KiB, committing every 30 s / 10 s / tick: {}", grown.join(" / "));
    println!("node-exporter scrapes answered: {scrapes}");
    println!("monitor tick (sampling, plugins, rules, stream): p50 {} ms, p99 {} ms", ms(tick_p50), ms(tick_p99));
    println!("monitor history commit (its own thread): p50 {} ms, p99 {} ms", ms(commit_p50), ms(commit_p99));
}

fn ms(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2}"))
}

/// One GET /metrics; true if it answered 200.
fn scrape_once(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}
