//! Outbound HTTP for plugins, against a real HTTPS server with a private CA:
//! the webhook-alerts example delivers an alert where it is granted; a plugin
//! asking elsewhere gets a refusal and no connection is made; a redirect is
//! the plugin's answer, never followed; a certificate that does not verify
//! sends nothing; the caps on requests per call, request bodies and answers hold.

use std::time::Duration;

use monitor_tests::https::{https_server, pki};
use monitor_tests::{Sandbox, install, wait_for, wait_for_or};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(180);

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A host config trusting `ca` for plugins' requests, with calls long enough for
/// sixteen handshakes by a debug build on a busy machine.
fn config(sandbox: &Sandbox, ca: &str, extra: &str) -> String {
    config_with(sandbox, ca, 60_000, extra)
}

fn config_with(sandbox: &Sandbox, ca: &str, call_ms: u64, extra: &str) -> String {
    let ca_file = sandbox.root.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let file = sandbox.root.path().join("host.toml");
    let text = format!("[plugins]\ncall_timeout_ms = {call_ms}\nhttp_ca_file = \"{}\"\n{extra}", ca_file.display());
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

#[test]
fn the_webhook_example_delivers_alerts_where_it_is_granted() {
    let pki = pki();
    let (base, asked) = https_server(&pki);
    let sandbox = Sandbox::new();
    let rule = "[[alerts.rule]]\nname = \"step-failed\"\nlevel = \"error\"\nkind = \"progress_failed\"\n";
    let file = config(&sandbox, &pki.ca, rule);
    install("webhook-alerts", &sandbox.plugins(), "webhook-alerts.wasm");
    std::fs::write(sandbox.plugins().join("webhook-alerts.toml"), format!("url = \"{base}/hooks/ops\"\n")).unwrap();
    let _host = sandbox.start(&["--config", &file]);
    wait_for("the plugin to wait for its grant", LIMIT, || {
        (sandbox.state("webhook-alerts").as_deref() == Some("awaiting-grant")).then_some(())
    });
    // A grant that does not reach the URL is refused by the host at request time;
    // one that does lets it through.
    ok(sandbox.monitor(&["plugins", "enable", "webhook-alerts", "--grant", &format!("http:{base}/elsewhere")]));
    ok(sandbox.monitor(&["progress", "start", "etl/load"]));
    ok(sandbox.monitor(&["progress", "fail", "etl/load", "--message", "disk gone"]));
    let handler = || -> Option<Value> {
        let (_, body) = sandbox.api_get("/v1/alerts/handlers", Some(&sandbox.token()));
        let handlers: Vec<Value> = serde_json::from_str(&body).ok()?;
        handlers.into_iter().find(|h| h["name"] == "plugin:webhook-alerts")
    };
    let refused = wait_for("the refused delivery", LIMIT, || handler().filter(|h| h["failed"].as_u64() >= Some(1)));
    let error = refused["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("the host refused the request"), "{refused}");
    assert!(asked.lock().unwrap().is_empty(), "no request reached the server");

    ok(sandbox.monitor(&["plugins", "revoke", "webhook-alerts", "http"]));
    ok(sandbox.monitor(&["plugins", "enable", "webhook-alerts", "--grant", &format!("http:{base}/hooks")]));
    ok(sandbox.monitor(&["progress", "start", "etl/again"]));
    ok(sandbox.monitor(&["progress", "fail", "etl/again", "--message", "disk gone again"]));
    let delivered = wait_for("the alert at the webhook", LIMIT, || {
        let asked = asked.lock().unwrap();
        asked.iter().find(|r| r.path == "/hooks/ops").map(|r| String::from_utf8_lossy(&r.body).into_owned())
    });
    let json: Value = serde_json::from_str(&delivered).unwrap();
    // The alert standing when the plugin started (sent as still firing), or the new one.
    let text = json["text"].as_str().unwrap();
    assert!(text.starts_with("[ERROR] step-failed ") && text.contains("etl/"), "{json}");
}

/// Two metrics a plugin must report, by name.
type Expected = [(&'static str, f64); 2];

#[test]
fn requests_beyond_the_grant_or_the_caps_are_refused_and_the_host_goes_on() {
    let pki = pki();
    let (granted, asked) = https_server(&pki);
    let (elsewhere, asked_elsewhere) = https_server(&pki);
    // A server whose certificate no authority the host trusts signed.
    let (untrusted, asked_untrusted) = https_server(&monitor_tests::https::pki());
    let sandbox = Sandbox::new();
    let file = config(&sandbox, &pki.ca, "");
    install("fx-http", &sandbox.plugins(), "fx-http.wasm");
    let metric = |name: &str| sandbox.metric("fx-http", name);
    // Each case: the plugin's configuration, the origin granted, and the
    // metrics it must report.
    let cases: [(String, &str, Expected); 6] = [
        (format!("url = \"{granted}/ok\"\nrequests = 20\n"), &granted, [("http_ok", 16.0), ("http_denied", 4.0)]),
        (format!("url = \"{elsewhere}/ok\"\nrequests = 2\n"), &granted, [("http_ok", 0.0), ("http_denied", 2.0)]),
        (format!("url = \"{granted}/big\"\nrequests = 1\n"), &granted, [("http_ok", 0.0), ("http_failed", 1.0)]),
        (
            format!("url = \"{granted}/ok\"\nrequests = 1\nbody_bytes = {}\n", 2 << 20),
            &granted,
            [("http_ok", 0.0), ("http_failed", 1.0)],
        ),
        // A redirect to a server not granted reaches the plugin as the answer
        // it is, never followed by the host.
        (
            format!("url = \"{granted}/redirect?to={elsewhere}/moved\"\nrequests = 1\n"),
            &granted,
            [("http_ok", 1.0), ("http_status", 302.0)],
        ),
        // Granted, but its certificate does not verify: no request is sent.
        (format!("url = \"{untrusted}/ok\"\nrequests = 1\n"), &untrusted, [("http_ok", 0.0), ("http_failed", 1.0)]),
    ];
    for (text, origin, expected) in &cases {
        std::fs::write(sandbox.plugins().join("fx-http.toml"), text).unwrap();
        let host = sandbox.start(&["--config", &file]);
        ok(sandbox.monitor(&["plugins", "enable", "fx-http", "--grant", &format!("http:{origin}")]));
        // On failure, what the plugin reported and what the host logged.
        let seen = std::cell::RefCell::new(Vec::new());
        wait_for_or(
            &format!("{expected:?} for {text}"),
            LIMIT,
            || {
                *seen.borrow_mut() = expected.iter().map(|(name, _)| metric(name)).collect::<Vec<_>>();
                expected.iter().zip(seen.borrow().iter()).all(|((_, want), got)| *got == Some(*want)).then_some(())
            },
            || {
                format!(
                    "saw {:?}, http_failed {:?}; the host's log:\n{}",
                    seen.borrow(),
                    metric("http_failed"),
                    host.log()
                )
            },
        );
        if *origin == untrusted.as_str() {
            let log = host.log();
            assert!(log.to_lowercase().contains("certificate"), "refused for its certificate: {log}");
        }
        // The host's tick went on meanwhile.
        assert!(sandbox.metric_host("monitor_ticks_total").is_some_and(|t| t > 0.0));
    }
    assert!(asked_elsewhere.lock().unwrap().is_empty(), "nothing reached the server no grant names");
    assert!(asked_untrusted.lock().unwrap().is_empty(), "nothing was sent to a server that did not verify");
    assert!(asked.lock().unwrap().iter().any(|r| r.path.starts_with("/redirect?to=")), "the redirect was asked for");
    let asked = asked.lock().unwrap();
    assert!(asked.iter().any(|r| r.path == "/big"), "the big answer was asked for, and cut");
    assert!(
        asked.iter().all(|r| r.body.len() < 2 << 20),
        "a body over the cap never arrived whole: {:?}",
        asked.iter().map(|r| r.body.len()).max()
    );
}

#[test]
fn a_server_that_stalls_an_answer_holds_the_call_no_longer_than_its_deadline() {
    let pki = pki();
    let (granted, _asked) = https_server(&pki);
    let sandbox = Sandbox::new();
    let file = config_with(&sandbox, &pki.ca, 2_000, "");
    install("fx-http", &sandbox.plugins(), "fx-http.wasm");
    std::fs::write(sandbox.plugins().join("fx-http.toml"), format!("url = \"{granted}/stall\"\nrequests = 1\n"))
        .unwrap();
    let _host = sandbox.start(&["--config", &file]);
    ok(sandbox.monitor(&["plugins", "enable", "fx-http", "--grant", &format!("http:{granted}")]));
    // The answer's body fails at the call's deadline: the plugin hears of it, the
    // call ends, and the next tick calls it again; nothing waits on the server.
    let ticks = sandbox.metric_host("monitor_ticks_total").unwrap();
    wait_for("the stalled request to fail at the deadline", LIMIT, || {
        (sandbox.metric("fx-http", "http_failed") == Some(1.0)).then_some(())
    });
    let listing = wait_for("calls to go on", LIMIT, || {
        let listing = sandbox.listing();
        let entry = listing["plugins"].as_array()?.iter().find(|p| p["name"] == "fx-http")?.clone();
        (entry["stats"]["calls"].as_u64() >= Some(3)).then_some(entry)
    });
    assert_eq!(listing["state"]["state"], "running", "{listing}");
    wait_for("the host's tick to go on", LIMIT, || {
        sandbox.metric_host("monitor_ticks_total").filter(|t| *t >= ticks + 3.0)
    });
}
