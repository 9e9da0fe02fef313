//! The fleet from one terminal: `monitor list --hosts` and `monitor alerts
//! list --hosts` over real hosts, with a host that is down, one that accepts
//! connections but never answers, and a bad line in the hosts file; and the
//! same file as a host's dashboard shows it, in Debian's chromium.

use std::process::Command;

use monitor_tests::browser::Browser;
use monitor_tests::{Sandbox, monitor_bin};
use serde_json::Value;

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A host with a read token written to `token`, and one run.
fn host(sandbox: &Sandbox, config: &str, token: &std::path::Path, run: &str) -> monitor_tests::Daemon {
    let file = sandbox.root.path().join("host.toml");
    std::fs::write(&file, config).unwrap();
    let daemon = sandbox.start(&["--config", file.to_str().unwrap()]);
    let secret = ok(&sandbox.monitor(&["tokens", "create", "fleet", "--scope", "read"]));
    std::fs::write(token, secret).unwrap();
    ok(&sandbox.monitor(&["progress", "start", run, "--total", "10"]));
    daemon
}

#[test]
fn every_hosts_runs_and_alerts_in_one_table_and_a_dead_host_is_one_line() {
    let files = tempfile::tempdir().unwrap();
    let (a, b) = (Sandbox::new(), Sandbox::new());
    let failing = "[[alerts.rule]]\nname = \"step-failed\"\nlevel = \"error\"\nkind = \"progress_failed\"\n";
    let _a = host(&a, failing, &files.path().join("a.token"), "train-a");
    let _b = host(&b, "", &files.path().join("b.token"), "etl-b");
    ok(&a.monitor(&["progress", "start", "train-a/load"]));
    ok(&a.monitor(&["progress", "fail", "train-a/load", "--message", "disk gone"]));
    monitor_tests::wait_for("the alert on host a", std::time::Duration::from_secs(30), || {
        ok(&a.monitor(&["alerts", "list", "--state", "firing"])).contains("step-failed").then_some(())
    });
    // A port nothing listens on, and a listener that never answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hosts = files.path().join("hosts");
    let t = |name: &str| files.path().join(name).display().to_string();
    std::fs::write(
        &hosts,
        format!(
            "# the fleet\ngpu-a http://{} {}\nbuild-b {} {}\ndown http://{closed} {}\nhung http://{} {}\nbroken http://x /t\nlonely http://x\n",
            a.addr(),
            t("a.token"),
            b.addr(),
            t("b.token"),
            t("a.token"),
            silent.local_addr().unwrap(),
            t("a.token"),
        ),
    )
    .unwrap();

    let out = Command::new(monitor_bin()).args(["list", "--hosts", hosts.to_str().unwrap()]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("4 of 6 hosts did not answer"), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("HOST") && lines[0].contains("RUN"), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("gpu-a") && l.contains("train-a")), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("build-b") && l.contains("etl-b") && l.contains("running")), "{stdout}");
    let said = |host: &str| lines.iter().find(|l| l.starts_with(host)).copied().unwrap_or_default();
    assert!(said("down").contains("did not answer") && said("down").contains(&closed.to_string()), "{stdout}");
    assert!(said("hung").contains("did not answer"), "{stdout}");
    assert!(said("broken").contains("line 6: 'http://x' is not a host's address"), "{stdout}");
    assert!(said("line 7").contains("line 7: write NAME URL TOKEN-FILE"), "{stdout}");

    let out = Command::new(monitor_bin())
        .args(["alerts", "list", "--json", "--hosts", hosts.to_str().unwrap()])
        .env("MONITOR_HOSTS", "/nonexistent")
        .output()
        .unwrap();
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answers.len(), 6);
    let alerts = answers[0]["items"].as_array().unwrap();
    assert!(alerts.iter().any(|a| a["rule"] == "step-failed" && a["state"] == "firing"), "{answers:?}");
    let b = answers[1]["items"].as_array().unwrap();
    assert!(!b.iter().any(|a| a["rule"] == "step-failed"), "host b's alerts are its own: {answers:?}");
    assert!(answers[2]["error"].as_str().is_some() && answers[2].get("items").is_none());
    // As a table: each alert's row names its host, each host that did not answer is one line.
    let out = Command::new(monitor_bin())
        .args(["alerts", "list", "--hosts", hosts.to_str().unwrap()])
        .env("MONITOR_HOSTS", "/nonexistent")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("HOST") && lines[0].contains("STATE") && lines[0].contains("MESSAGE"), "{stdout}");
    let rows = |host: &str| lines.iter().filter(|l| l.starts_with(host)).copied().collect::<Vec<_>>();
    assert!(rows("gpu-a").iter().any(|l| l.contains("firing") && l.contains("step-failed")), "{stdout}");
    assert!(!rows("build-b").iter().any(|l| l.contains("step-failed")), "{stdout}");
    for host in ["down", "hung"] {
        assert_eq!(rows(host).len(), 1, "{stdout}");
        assert!(rows(host)[0].contains("did not answer"), "{stdout}");
    }
    assert!(rows("broken").iter().any(|l| l.contains("line 6: 'http://x' is not a host's address")), "{stdout}");

    // The default file comes from MONITOR_HOSTS; one that cannot be read is the command's one-line error.
    let out = Command::new(monitor_bin()).args(["list", "--hosts"]).env("MONITOR_HOSTS", &hosts).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("train-a"));
    let out =
        Command::new(monitor_bin()).args(["list", "--hosts"]).env("MONITOR_HOSTS", "/nonexistent").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot read hosts file /nonexistent") && stderr.trim().lines().count() == 1, "{stderr}");

    // The dashboard's fleet view, on a third host that reads the same file.
    let c = Sandbox::new();
    let config = c.root.path().join("host.toml");
    std::fs::write(&config, format!("[api]\nfleet_hosts = {:?}\n", hosts.display().to_string())).unwrap();
    let _c = c.start(&["--config", config.to_str().unwrap()]);
    let (status, body) = c.api_get("/v1/fleet", Some(&c.token()));
    assert!(status.contains("200"), "{status} {body}");
    let look: Value = serde_json::from_str(&body).unwrap();
    let rows = look["rows"].as_array().unwrap();
    let has = |host: &str, kind: &str, name: &str| {
        rows.iter().any(|r| r["host"] == host && r["kind"] == kind && r["name"] == name)
    };
    assert!(has("gpu-a", "run", "train-a") && has("gpu-a", "alert", "step-failed"), "{look}");
    assert!(has("build-b", "run", "etl-b") && !has("build-b", "alert", "step-failed"), "{look}");
    let unanswered: Vec<&str> =
        look["unanswered"].as_array().unwrap().iter().map(|u| u["host"].as_str().unwrap()).collect();
    assert_eq!(unanswered, ["down", "hung", "broken", "line 7"], "{look}");
    // A host without the setting says how to set it.
    let (status, body) = a.api_get("/v1/fleet", Some(&a.token()));
    assert!(status.contains("404") && body.contains("set api.fleet_hosts"), "{status} {body}");

    // In a browser: a row per run and alert naming its host, a line for a host
    // that did not answer, and the picker showing one host.
    let browser = Browser::start();
    browser.goto(&format!("http://{}/dashboard/#token={}", c.addr(), c.token()));
    let row = |host: &str, kind: &str| {
        format!("document.querySelector('#fleet-body tr[data-fleet-host=\"{host}\"][data-kind=\"{kind}\"]')")
    };
    browser.wait("gpu-a's alert in the fleet panel", &row("gpu-a", "alert"));
    browser.wait("build-b's run", &format!("{}?.textContent.includes('etl-b')", row("build-b", "run")));
    browser.wait(
        "the host that never answered",
        &format!("{}?.textContent.includes('did not answer')", row("hung", "unanswered")),
    );
    browser.eval("const s = document.querySelector('#fleet-host'); s.value = 'build-b'; s.dispatchEvent(new Event('change')); return true;");
    browser.wait(
        "build-b's rows alone",
        "(() => { const r = [...document.querySelectorAll('#fleet-body tbody tr')]; return r.length > 0 && r.every((x) => x.dataset.fleetHost === 'build-b'); })()",
    );
}
