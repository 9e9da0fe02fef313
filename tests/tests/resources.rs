//! `monitor resources`: the real binary sampling this machine, with and without a host.

use std::process::{Command, Output};

use monitor_tests::{Reaped, Sandbox};
use serde_json::Value;

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn json(sandbox: &Sandbox, args: &[&str]) -> Value {
    let out = sandbox.monitor(&[&["resources", "--json"], args].concat());
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)))
}

fn number(v: &Value, field: &str) -> f64 {
    v[field].as_f64().unwrap_or_else(|| panic!("{field} is not a number in {v}"))
}

/// A child process to look for, killed when the test ends, even by a panic.
struct Sleeper {
    child: Reaped,
    /// Its command line, with an argument no other process is likely to have.
    command: String,
}

impl Sleeper {
    fn start() -> Sleeper {
        let seconds = format!("{}.{}", 300 + std::process::id() % 1000, std::process::id() % 997);
        // `spawn` returns once the child has run `exec`: it is `sleep` from here on.
        let child = Reaped::spawn(Command::new("sleep").arg(&seconds));
        Sleeper { child, command: format!("sleep {seconds}") }
    }
}

#[test]
fn the_snapshot_describes_this_machine() {
    let sandbox = Sandbox::new();
    let s = json(&sandbox, &[]);
    assert!(number(&s, "memory_total_bytes") > 0.0, "{s}");
    assert!(number(&s, "memory_used_bytes") <= number(&s, "memory_total_bytes"), "{s}");
    assert!((0.0..=100.0).contains(&number(&s, "cpu_percent")), "{s}");
    assert!(!s["per_core_percent"].as_array().unwrap().is_empty(), "{s}");
    assert!(number(&s, "uptime_secs") > 0.0 && number(&s, "process_count") >= 1.0, "{s}");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64;
    assert!((number(&s, "timestamp_ms") - now_ms).abs() < 60_000.0, "{s}");
    assert!(number(&s["footprint"], "rss_bytes") > 0.0, "its own RSS: {s}");
    assert!(number(&s["footprint"], "cpu_percent") >= 0.0, "{s}");
    assert!(s.get("processes").is_none(), "processes only when asked: {s}");

    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let disks = s["disks"].as_array().unwrap();
    if mounts.lines().any(|l| l.starts_with("/dev/")) {
        assert!(!disks.is_empty(), "a mounted device is listed: {s}");
    }
    for d in disks {
        assert!(d["mount_point"].as_str().is_some_and(|m| m.starts_with('/')), "{d}");
        assert!(number(d, "available_bytes") <= number(d, "total_bytes"), "{d}");
    }
    for d in s["block_devices"].as_array().unwrap() {
        // Two samples were taken, so every device seen in both has rates.
        for field in ["read_bytes_per_second", "write_bytes_per_second", "read_operations_per_second"] {
            assert!(number(d, field) >= 0.0, "{d}");
        }
    }

    let interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|dir| dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let networks = s["networks"].as_array().unwrap();
    if !interfaces.is_empty() {
        assert!(!networks.is_empty(), "{s}");
    }
    for n in networks {
        assert!(interfaces.iter().any(|i| n["interface"] == i.as_str()), "{n} is in /sys/class/net: {interfaces:?}");
        for field in ["receive_bytes_per_second", "transmit_packets_per_second", "receive_errors_per_second"] {
            assert!(number(n, field) >= 0.0, "{n}");
        }
    }
}

#[test]
fn processes_can_be_filtered_by_name_and_by_user() {
    let sandbox = Sandbox::new();
    let sleeper = Sleeper::start();
    let pid = sleeper.child.id();

    let s = json(&sandbox, &["--processes", "--filter", &sleeper.command]);
    let processes = s["processes"].as_array().expect("a process list");
    let found = processes.iter().find(|p| p["pid"] == pid).unwrap_or_else(|| panic!("sleep {pid} in {s}"));
    assert_eq!(found["name"], "sleep");
    assert_eq!(found["command"], sleeper.command.as_str());
    assert_eq!(found["status"], "sleeping", "{found}");
    assert_eq!(found["threads"], 1, "{found}");
    assert!(number(found, "memory_bytes") > 0.0 && number(found, "cpu_percent") >= 0.0, "{found}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as f64;
    assert!((now - number(found, "start_time_secs")).abs() < 120.0, "{found}");
    let user = found["user"].as_str().filter(|u| !u.is_empty()).expect("a user").to_string();
    assert!(processes.iter().all(|p| p["command"].as_str().unwrap().contains(&sleeper.command)), "{s}");

    let mine = json(&sandbox, &["--filter", &format!("user:{user}")]);
    let mine = mine["processes"].as_array().expect("--filter implies --processes");
    assert!(mine.iter().all(|p| p["user"] == user.as_str()), "{mine:?}");
    assert!(mine.iter().any(|p| p["pid"] == std::process::id()), "this test process runs as {user}: {mine:?}");
    assert!(mine.iter().any(|p| p["pid"] == pid), "{mine:?}");

    let by_name = json(&sandbox, &["--filter", "SLEE"]);
    assert!(by_name["processes"].as_array().unwrap().iter().any(|p| p["pid"] == pid), "by name, any case: {by_name}");

    // The command line of `monitor resources` holds the text too, but that is not a match.
    let none = json(&sandbox, &["--filter", "no-such-process-name-anywhere"]);
    assert_eq!(none["processes"], serde_json::json!([]));
}

#[test]
fn the_table_has_a_section_per_resource_and_the_top_processes() {
    let sandbox = Sandbox::new();
    let sleeper = Sleeper::start();
    let out = sandbox.monitor(&["resources", "--processes", "--sort", "pid", "--filter", &sleeper.command]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().next().is_some_and(|l| l.contains(" up ") && l.contains(" load ")), "{table}");
    assert!(table.contains("\nmem   ") && table.contains("\nself  cpu "), "{table}");
    if std::fs::read_dir("/sys/class/net").is_ok_and(|mut d| d.next().is_some()) {
        assert!(table.contains("\nINTERFACE "), "{table}");
    }
    let header = table.lines().position(|l| l.trim_start().starts_with("PID ")).expect("a process table");
    let rows: Vec<&str> = table.lines().skip(header + 1).collect();
    assert!(rows.iter().any(|r| r.trim_start().starts_with(&format!("{} ", sleeper.child.id()))), "{table}");

    let out = sandbox.monitor(&["resources", "--limit", "1", "--sort", "mem"]);
    let table = String::from_utf8_lossy(&out.stdout);
    let header = table.lines().position(|l| l.trim_start().starts_with("PID ")).expect("--limit implies --processes");
    assert_eq!(table.lines().skip(header + 1).count(), 1, "{table}");
}

#[test]
fn bad_options_are_refused_with_the_reason() {
    let sandbox = Sandbox::new();
    for (args, reason) in [
        (&["--sort", "bogus"][..], "invalid value 'bogus' for '--sort <KEY>'"),
        (&["--limit", "0"][..], "invalid value '0' for '--limit <N>'"),
        (&["--limit", "-3"][..], "'-3'"),
        (&["--bogus"][..], "unexpected argument '--bogus'"),
    ] {
        let out = sandbox.monitor(&[&["resources"], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let first = String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or_default().to_string();
        assert!(first.starts_with("error: ") && first.contains(reason), "{args:?}: {}", text(&out));
    }
}

#[test]
fn a_running_host_changes_nothing() {
    let sandbox = Sandbox::new();
    let _daemon = sandbox.start(&[]);
    let s = json(&sandbox, &["--limit", "3"]);
    assert!(number(&s, "memory_total_bytes") > 0.0, "{s}");
    assert_eq!(s["processes"].as_array().map(Vec::len), Some(3), "{s}");
}

#[test]
fn the_host_serves_the_machine_and_its_processes() {
    let sandbox = Sandbox::new();
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "processes_interval_ms = 500\n").unwrap();
    let _host = sandbox.start(&["--config", config.to_str().unwrap()]);
    let sleeper = Sleeper::start();
    let pid = sleeper.child.id();
    let found =
        monitor_tests::wait_for("the sleeper in the host's process table", std::time::Duration::from_secs(30), || {
            let (_, body) = sandbox.api_get("/v1/processes?filter=sleep&sort=pid", Some(&sandbox.token()));
            let table: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
            table.into_iter().find(|p| p["pid"] == pid)
        });
    assert_eq!(found["name"], "sleep");
    let (_, body) = sandbox.api_get("/v1/processes?sort=mem&limit=3", Some(&sandbox.token()));
    let table: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let memory: Vec<u64> = table.iter().map(|p| p["memory_bytes"].as_u64().unwrap()).collect();
    assert!(memory.len() == 3 && memory.windows(2).all(|w| w[0] >= w[1]), "{memory:?}");
    let (status, _) = sandbox.api_get("/v1/processes?sort=bogus", Some(&sandbox.token()));
    assert!(status.contains("400"), "{status}");

    let (_, body) = sandbox.api_get("/v1/resources", Some(&sandbox.token()));
    let machine: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(machine["memory_total_bytes"].as_u64().unwrap() > 0, "{machine}");
    assert!(machine["footprint"]["rss_bytes"].as_u64().unwrap() > 0, "the host's own: {machine}");
}
