//! The web dashboard against the release host, in Debian's chromium:
//!
//! - **First load to charts drawn**, over loopback, with an hour of history
//!   (written into the database before the host starts): the first chart and
//!   every panel loaded, from the navigation's start, cold and then warm.
//! - **The host's CPU** over 30 s with 10 dashboards open, beside none, and its
//!   RSS before the first page and with the 10 open. One is the real page; nine
//!   more tabs of it would starve this two-core machine's renderer, so nine
//!   clients ask the host what an open page asks in its steady state: its stream,
//!   with the page's own query.
//! - **Bytes a second one dashboard receives** on its stream (the machine
//!   panel's series and the health series) at the default tick.
//!
//! `cargo bench -p monitor-tests --bench dashboard` (about three minutes);
//! `MONITOR_SCREENSHOT=docs/dashboard.png` also takes the README's picture.

use std::time::{Duration, Instant};

use monitor_host::metrics::Sample;
use monitor_host::store::Store;
use monitor_tests::browser::Browser;
use monitor_tests::{Sandbox, median};

const TABS: usize = 10;
const WINDOW: Duration = Duration::from_secs(30);

/// The host's CPU time so far, in seconds (utime + stime).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

/// The share of one core the host used over `WINDOW`.
fn cpu_share(pid: u32) -> f64 {
    let (before, at) = (cpu_secs(pid), Instant::now());
    std::thread::sleep(WINDOW);
    (cpu_secs(pid) - before) / at.elapsed().as_secs_f64() * 100.0
}

/// A mark's time from the navigation's start, in ms, once the page made it.
fn mark(browser: &Browser, name: &str) -> f64 {
    browser.wait(name, &format!("performance.getEntriesByName('{name}')[0]?.startTime")).as_f64().unwrap()
}

fn main() {
    let sandbox = Sandbox::new();
    // An hour of the host's own series, as the last hour before it starts.
    let host = sandbox.start(&[]);
    let (_, body) = sandbox.api_get("/v1/metrics", Some(&sandbox.token()));
    drop(host);
    let now: Vec<Sample> = serde_json::from_str::<Vec<serde_json::Value>>(&body)
        .unwrap()
        .into_iter()
        .map(|s| serde_json::from_value(s).unwrap())
        .collect();
    let store = Store::open(&sandbox.data().join("monitor.redb")).unwrap();
    let end = monitor_host::sampler::now_ms();
    for minute in 0..60u64 {
        let batch: Vec<Sample> = (0..60u64)
            .flat_map(|s| {
                let at = end - 3_600_000 + (minute * 60 + s) * 1000;
                // A slow wave around the value sampled; totals stay as they are.
                let wave = 1.0 + 0.1 * (((minute * 60 + s) as f64) / 600.0).sin();
                now.iter().map(move |x| Sample {
                    timestamp_ms: at,
                    value: if x.name.ends_with("_total_bytes") { x.value } else { x.value * wave },
                    ..x.clone()
                })
            })
            .collect();
        store.metrics_record(&batch, u64::MAX).unwrap();
    }
    drop(store);
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "[metrics]\ncommit_every = \"5s\"\n").unwrap();
    let host = sandbox.start(&["--config", config.to_str().unwrap()]);
    let pid = host.child.id();
    let link = String::from_utf8_lossy(&sandbox.monitor(&["dashboard"]).stdout).lines().next().unwrap().to_string();

    let idle_rss = rss_mib(pid);
    let idle_cpu = cpu_share(pid);

    let browser = Browser::start();
    let mut first = Vec::new();
    let mut ready = Vec::new();
    for _ in 0..6 {
        browser.goto("about:blank");
        browser.goto(&link);
        first.push(mark(&browser, "monitor-first-chart"));
        ready.push(mark(&browser, "monitor-ready"));
    }
    let points = browser.eval("return document.querySelectorAll('[data-chart=\"machine-0\"] canvas').length;");
    assert_eq!(points, serde_json::json!(1), "the CPU chart is drawn");

    if let Some(path) = std::env::var_os("MONITOR_SCREENSHOT") {
        screenshot(&sandbox, &browser, std::path::Path::new(&path));
    }

    // One dashboard's stream, at the default tick.
    let bytes = |b: &Browser| b.eval("return Number(document.body.dataset.streamBytes || 0);").as_f64().unwrap();
    let (before, at) = (bytes(&browser), Instant::now());
    std::thread::sleep(WINDOW);
    let stream_rate = (bytes(&browser) - before) / at.elapsed().as_secs_f64();

    // Ten dashboards: the page, and nine clients of its stream.
    // The page's stream asks for every series its source names (charts and health).
    let source = std::fs::read_to_string(monitor_tests::workspace().join("host/dashboard/app.js")).unwrap();
    let mut names: Vec<&str> = source.split('"').filter(|s| s.starts_with("monitor_") && !s.contains(' ')).collect();
    names.sort_unstable();
    names.dedup();
    let query = format!("series={}", names.join(","));
    let (addr, token) = (sandbox.addr(), sandbox.token());
    for _ in 1..TABS {
        let (addr, token, query) = (addr.clone(), token.clone(), query.clone());
        std::thread::spawn(move || {
            let mut stream = monitor_tests::stream::Sse::connect(&addr, &token, &query, None);
            while stream.next_raw().is_some() {}
        });
    }
    let open_cpu = cpu_share(pid);
    let open_rss = rss_mib(pid);
    drop(browser);

    println!("dashboard against the release host, Debian's chromium headless, an hour of history");
    println!("| measure | result |");
    println!("| --- | --- |");
    println!(
        "| first chart drawn, from navigation: first load / median of 5 more | {:.0} ms / {:.0} ms |",
        first[0],
        median(first[1..].to_vec())
    );
    println!(
        "| every panel loaded and drawn: first load / median of 5 more | {:.0} ms / {:.0} ms |",
        ready[0],
        median(ready[1..].to_vec())
    );
    println!(
        "| host CPU over {} s, no dashboard / {TABS} open | {idle_cpu:.2} % / {open_cpu:.2} % of a core |",
        WINDOW.as_secs()
    );
    println!("| host RSS before any page / with {TABS} open | {idle_rss:.1} MiB / {open_rss:.1} MiB |");
    println!("| one dashboard's stream at a 1 s tick | {:.0} bytes/s |", stream_rate);
}

/// The whole page with a run under way and its tree open, for the README.
fn screenshot(sandbox: &Sandbox, browser: &Browser, path: &std::path::Path) {
    for args in [
        &["progress", "start", "nightly-build"][..],
        &["progress", "start", "nightly-build/fetch", "--total", "12"],
        &["progress", "finish", "nightly-build/fetch"],
        &["progress", "start", "nightly-build/compile", "--total", "340", "--message", "crate 204 of 340"],
        &["progress", "update", "nightly-build/compile", "--done", "204"],
        &["progress", "start", "nightly-build/test", "--total", "1200"],
        &["progress", "update", "nightly-build/test", "--done", "90"],
    ] {
        let out = sandbox.monitor(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    browser.wait("the run to show", "document.querySelector('[data-run=\"nightly-build\"]')");
    browser.eval("document.querySelector('[data-run=\"nightly-build\"]').click(); return true;");
    browser.wait("its tree to open", "document.querySelector('[data-node=\"nightly-build/compile\"]')");
    browser.runtime.block_on(browser.client().set_window_size(1280, 1900)).unwrap();
    browser.wait("the taller window", "window.innerHeight > 1700");
    browser.screenshot(path);
    browser.runtime.block_on(browser.client().set_window_size(1280, 800)).unwrap();
}
