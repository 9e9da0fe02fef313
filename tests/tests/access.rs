//! Scoped tokens and the audit log, on a real host: every route against every
//! scope, tokens refused the moment they are revoked or expire (saying which),
//! secrets never stored, and every change on record with who made it.

use std::collections::BTreeSet;
use std::time::Duration;

use monitor_tests::{Sandbox, wait_for, workspace};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(30);
const SCOPES: [&str; 4] = ["read", "report", "operate", "admin"];

/// Makes a token with `monitor tokens create`; its secret (stdout's one line).
fn create(sandbox: &Sandbox, name: &str, scope: &str, extra: &[&str]) -> String {
    let mut args = vec!["tokens", "create", name, "--scope", scope];
    args.extend_from_slice(extra);
    let out = sandbox.monitor(&args);
    assert!(out.status.success(), "tokens create: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "only the secret on stdout: {stdout:?}");
    stdout.trim().to_string()
}

fn error(body: &str) -> String {
    serde_json::from_str::<Value>(body).ok().and_then(|v| v["error"].as_str().map(String::from)).unwrap_or_default()
}

/// (method, route as the router names it, a concrete path, body, the lowest scope allowed).
const ROUTES: &[(&str, &str, &str, &str, &str)] = &[
    ("GET", "/v1/plugins", "/v1/plugins", "", "read"),
    ("GET", "/v1/plugins/{name}", "/v1/plugins/nope", "", "read"),
    ("POST", "/v1/plugins/{name}/enable", "/v1/plugins/nope/enable", "{}", "admin"),
    ("POST", "/v1/plugins/{name}/disable", "/v1/plugins/nope/disable", "{}", "admin"),
    ("POST", "/v1/plugins/{name}/revoke", "/v1/plugins/nope/revoke", r#"{"grant":"x"}"#, "admin"),
    ("GET", "/v1/plugins/{name}/kv", "/v1/plugins/nope/kv", "", "read"),
    ("GET", "/v1/metrics", "/v1/metrics", "", "read"),
    ("GET", "/v1/metrics/series", "/v1/metrics/series", "", "read"),
    ("GET", "/v1/metrics/history", "/v1/metrics/history?name=cpu", "", "read"),
    ("GET", "/metrics", "/metrics", "", "read"),
    ("GET", "/v1/status", "/v1/status", "", "read"),
    ("GET", "/v1/resources", "/v1/resources", "", "read"),
    ("GET", "/v1/processes", "/v1/processes", "", "read"),
    ("POST", "/v1/progress", "/v1/progress", r#"{"updates":[]}"#, "report"),
    ("POST", "/v1/progress/{*path}", "/v1/progress/r/a", r#"{"op":"start"}"#, "report"),
    ("GET", "/v1/runs", "/v1/runs", "", "read"),
    ("GET", "/v1/runs/{run}", "/v1/runs/r", "", "read"),
    ("GET", "/v1/runs/{run}/events", "/v1/runs/r/events", "", "read"),
    ("GET", "/v1/db/space", "/v1/db/space", "", "read"),
    ("POST", "/v1/db/compact", "/v1/db/compact", "{}", "admin"),
    ("GET", "/v1/fleet", "/v1/fleet", "", "read"),
    ("GET", "/v1/alerts", "/v1/alerts", "", "read"),
    ("GET", "/v1/alerts/history", "/v1/alerts/history", "", "read"),
    ("POST", "/v1/alerts/ack", "/v1/alerts/ack", r#"{"id":"nope"}"#, "operate"),
    ("POST", "/v1/alerts/resolve", "/v1/alerts/resolve", r#"{"id":"nope"}"#, "operate"),
    ("GET", "/v1/alerts/silences", "/v1/alerts/silences", "", "read"),
    ("POST", "/v1/alerts/silences", "/v1/alerts/silences", r#"{"matchers":{"rule":"x"},"for":"1m"}"#, "operate"),
    ("DELETE", "/v1/alerts/silences/{id}", "/v1/alerts/silences/999", "", "operate"),
    ("POST", "/v1/alerts/test", "/v1/alerts/test", r#"{"rule":"nope"}"#, "operate"),
    ("GET", "/v1/alerts/handlers", "/v1/alerts/handlers", "", "read"),
    ("GET", "/v1/jobs", "/v1/jobs", "", "read"),
    ("GET", "/v1/jobs/{name}", "/v1/jobs/nope", "", "read"),
    ("POST", "/v1/jobs/{name}/pause", "/v1/jobs/nope/pause", "{}", "operate"),
    ("POST", "/v1/jobs/{name}/resume", "/v1/jobs/nope/resume", "{}", "operate"),
    ("POST", "/v1/jobs/{name}/run", "/v1/jobs/nope/run", "{}", "operate"),
    ("GET", "/v1/dashboard/layouts", "/v1/dashboard/layouts", "", "read"),
    ("PUT", "/v1/dashboard/layouts/{name}", "/v1/dashboard/layouts/mine", r#"{"range":"1h"}"#, "operate"),
    ("DELETE", "/v1/dashboard/layouts/{name}", "/v1/dashboard/layouts/mine", "", "operate"),
    ("GET", "/v1/tokens", "/v1/tokens", "", "admin"),
    ("POST", "/v1/tokens", "/v1/tokens", r#"{"name":"made-by-admin","scope":"read"}"#, "admin"),
    ("POST", "/v1/tokens/{name}/revoke", "/v1/tokens/nope/revoke", "{}", "admin"),
    ("GET", "/v1/audit", "/v1/audit", "", "read"),
];

/// Routes anyone may reach: the health check and the dashboard's pages (the
/// page asks for a token before it reads anything). The stream is tested apart.
const OPEN: [&str; 5] = ["/v1/health", "/", "/dashboard", "/dashboard/", "/dashboard/{file}"];

#[test]
fn every_route_answers_each_scope_as_the_table_says() {
    // The table names every route the API has, so a new one cannot go untested.
    let mut routed = BTreeSet::new();
    let api = workspace().join("host/src/api");
    let files = std::fs::read_dir(&api).unwrap().map(|e| e.unwrap().path()).chain([api.with_extension("rs")]);
    for file in files {
        let code = std::fs::read_to_string(&file).unwrap();
        for (at, _) in code.match_indices(".route(") {
            let rest = code[at..].split('"').nth(1).unwrap();
            routed.insert(rest.to_string());
        }
    }
    let tabled: BTreeSet<String> = ROUTES.iter().map(|r| r.1.to_string()).chain(OPEN.map(String::from)).collect();
    let untested: Vec<_> = routed.difference(&tabled).filter(|r| *r != "/v1/stream").collect();
    assert!(untested.is_empty(), "routes missing from the scope table: {untested:?}");

    let sandbox = Sandbox::new();
    let _host = sandbox.start(&[]);
    let tokens: Vec<(&str, String)> =
        SCOPES.iter().map(|s| (*s, create(&sandbox, &format!("t-{s}"), s, &[]))).collect();
    let mut wrong = Vec::new();
    for (method, _, path, body, lowest) in ROUTES {
        let lowest_rank = SCOPES.iter().position(|s| s == lowest).unwrap();
        for (rank, (scope, secret)) in tokens.iter().enumerate() {
            let (status, answer) = sandbox.api(method, path, Some(secret), body);
            let code: u16 = status.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
            let allowed = rank >= lowest_rank;
            let right = if allowed {
                code != 401 && code != 403
            } else {
                code == 403 && error(&answer).contains(&format!("needs {lowest} or above"))
            };
            if !right {
                wrong.push(format!("{method} {path} with a {scope} token: {status} {answer}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    let (status, answer) = sandbox.api("POST", "/v1/alerts/ack", Some(&tokens[0].1), r#"{"id":"x"}"#);
    assert_eq!(
        (status.as_str(), error(&answer).as_str()),
        (
            "HTTP/1.1 403 Forbidden",
            "token 't-read' has scope read; POST /v1/alerts/ack needs operate or above: use a token made with --scope operate"
        )
    );
    // The stream reads with the lowest scope.
    let (addr, secret) = (sandbox.addr(), &tokens[0].1);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{BufRead, Write};
    write!(stream, "GET /v1/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {secret}\r\n\r\n").unwrap();
    let mut first = String::new();
    std::io::BufReader::new(stream).read_line(&mut first).unwrap();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
}

#[test]
fn tokens_are_refused_once_revoked_or_expired_and_secrets_are_never_stored() {
    let sandbox = Sandbox::new();
    let host = sandbox.start(&[]);
    let ci = create(&sandbox, "ci", "report", &[]);
    let brief = create(&sandbox, "brief", "read", &["--expires", "10s"]);
    let report = json!({"op": "start", "total": 10}).to_string();
    let (status, _) = sandbox.api("POST", "/v1/progress/build/a", Some(&ci), &report);
    assert!(status.contains(" 200 "), "{status}");
    assert!(sandbox.api_get("/v1/status", Some(&brief)).0.contains(" 200 "));

    // A name in use, a bad name, a bad scope or expiry: one line each, nothing made.
    for (args, needle) in [
        (vec!["ci", "--scope", "read"], "token 'ci' exists; revoke it first"),
        (vec!["a b", "--scope", "read"], "token name 'a b'"),
        (vec!["x", "--scope", "root"], "use read, report, operate or admin"),
        (vec!["x", "--scope", "read", "--expires", "soon"], "expires 'soon' is not a duration"),
        (vec!["api-token", "--scope", "read"], "is the local admin's"),
    ] {
        let out = sandbox.monitor(&[&["tokens", "create"][..], &args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.lines().next().unwrap_or_default().contains(needle), "{args:?}: {stderr}");
    }

    let out = sandbox.monitor(&["tokens", "revoke", "ci"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, body) = sandbox.api("POST", "/v1/progress/build/a", Some(&ci), &report);
    assert!(status.contains(" 401 ") && error(&body).starts_with("token 'ci' was revoked at "), "{status} {body}");
    let body = wait_for("the short token to expire", LIMIT, || {
        let (status, body) = sandbox.api_get("/v1/status", Some(&brief));
        status.contains(" 401 ").then_some(body)
    });
    assert!(error(&body).starts_with("token 'brief' expired at "), "{body}");

    let out = sandbox.monitor(&["tokens", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    let state = |name: &str| {
        let line = listing.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {listing}"));
        line.split_whitespace().nth(2).unwrap().to_string()
    };
    assert_eq!((state("ci").as_str(), state("brief").as_str()), ("revoked", "expired"), "{listing}");
    // A revoked name can be given again, to a new secret; the old one stays refused.
    let again = create(&sandbox, "ci", "report", &[]);
    assert!(sandbox.api("POST", "/v1/progress/build/a", Some(&again), &report).0.contains(" 200 "));
    assert!(sandbox.api("POST", "/v1/progress/build/a", Some(&ci), &report).0.contains(" 401 "));

    let listed = String::from_utf8(sandbox.monitor(&["tokens", "list", "--json"]).stdout).unwrap();
    drop(host);
    let database = std::fs::read(sandbox.data().join("monitor.redb")).unwrap();
    for secret in [&ci, &brief, &again] {
        assert!(!listed.contains(secret.as_str()), "a listing shows no secret");
        let hex = &secret[3..];
        assert!(!database.windows(hex.len()).any(|w| w == hex.as_bytes()), "the database holds no secret in clear");
    }
    // Tokens outlive the host: a new one, on the database alone, works once it starts.
    let offline = create(&sandbox, "offline", "read", &[]);
    let _host = sandbox.start(&[]);
    assert!(sandbox.api_get("/v1/status", Some(&offline)).0.contains(" 200 "));
    assert!(sandbox.api("POST", "/v1/progress/build/a", Some(&again), &report).0.contains(" 200 "));
    assert!(sandbox.api("POST", "/v1/progress/build/a", Some(&ci), &report).0.contains(" 401 "));
}

#[test]
fn every_change_is_on_record_with_who_made_it_and_how_it_ended() {
    let sandbox = Sandbox::new();
    let host = sandbox.start(&[]);
    let ops = create(&sandbox, "ops", "operate", &[]);
    let viewer = create(&sandbox, "viewer", "read", &[]);
    let silence = json!({"matchers": {"rule": "disk-full"}, "for": "2h"}).to_string();
    assert!(sandbox.api("POST", "/v1/alerts/silences", Some(&ops), &silence).0.contains(" 200 "));
    assert!(sandbox.api("POST", "/v1/alerts/ack", Some(&ops), r#"{"id":"nope"}"#).0.contains(" 404 "));
    assert!(sandbox.api("POST", "/v1/plugins/nope/disable", Some(&viewer), "{}").0.contains(" 403 "));
    let update = json!({"op": "start"}).to_string();
    assert!(sandbox.api("POST", "/v1/progress/r/a", Some(&sandbox.token()), &update).0.contains(" 200 "));

    let (status, body) = sandbox.api_get("/v1/audit", Some(&viewer));
    assert!(status.contains(" 200 "), "{status} {body}");
    let entries: Vec<Value> = serde_json::from_str(&body).unwrap();
    let paths: Vec<&str> = entries.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["/v1/tokens", "/v1/tokens", "/v1/alerts/silences", "/v1/alerts/ack", "/v1/plugins/nope/disable"],
        "every change but progress, the refused one too: {body}"
    );
    let (made, silenced, acked, tried) = (&entries[0], &entries[2], &entries[3], &entries[4]);
    assert_eq!((made["token"].as_str(), made["status"].as_u64()), (Some("api-token"), Some(200)));
    assert!(!body.contains(&ops) && !body.contains(&viewer), "no secret in the log: {body}");
    assert_eq!(silenced["token"], "ops");
    assert_eq!(silenced["address"], "127.0.0.1");
    assert!(silenced["detail"].as_str().unwrap().contains("disk-full"), "{silenced}");
    assert_eq!(
        (acked["status"].as_u64(), acked["outcome"].as_str().map(|o| o.contains("nope"))),
        (Some(404), Some(true))
    );
    assert_eq!((tried["token"].as_str(), tried["status"].as_u64()), (Some("viewer"), Some(403)));

    // With no host, the CLI's own changes are recorded too, as `local`.
    drop(host);
    let out = sandbox.monitor(&["tokens", "revoke", "viewer"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sandbox.monitor(&["audit", "--json"]);
    let entries: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let last = entries.last().unwrap();
    assert_eq!((last["token"].as_str(), last["path"].as_str()), (Some("local"), Some("/v1/tokens/viewer/revoke")));
    let out = sandbox.monitor(&["audit", "--since", "1h"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.contains("ops") && l.contains("POST /v1/alerts/silences")), "{text}");
    let out = sandbox.monitor(&["audit", "--since", "forever"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));

    // api.keep_audit: a host starting with a keep time of a second forgets what is
    // older; what ages past it while the host runs is no longer answered.
    let audit = |json: &[u8]| serde_json::from_slice::<Vec<Value>>(json).unwrap();
    let newest = audit(&sandbox.monitor(&["audit", "--json"]).stdout).last().unwrap()["at_ms"].as_u64().unwrap();
    wait_for("the newest entry to be over a second old", LIMIT, || {
        (monitor_host::sampler::now_ms() > newest + 1_000).then_some(())
    });
    let config = sandbox.root.path().join("keep.toml");
    std::fs::write(&config, "[api]\nkeep_audit = \"1s\"\n").unwrap();
    let host = sandbox.start(&["--config", config.to_str().unwrap()]);
    drop(host);
    let left = audit(&sandbox.monitor(&["audit", "--json"]).stdout);
    assert!(left.is_empty(), "trimmed as the host started: {left:?}");
    let host = sandbox.start(&["--config", config.to_str().unwrap()]);
    let silence = json!({"matchers": {"rule": "late"}, "for": "1h"}).to_string();
    assert!(sandbox.api("POST", "/v1/alerts/silences", Some(&sandbox.token()), &silence).0.contains(" 200 "));
    wait_for("the change to age past the keep time", LIMIT, || {
        let (_, body) = sandbox.api_get("/v1/audit", Some(&sandbox.token()));
        serde_json::from_str::<Vec<Value>>(&body).ok().filter(Vec::is_empty)
    });
    drop(host);
    // It was recorded, and is still in the file until the next start or change.
    let kept = audit(&sandbox.monitor(&["audit", "--json"]).stdout);
    assert!(kept.iter().any(|e| e["detail"].as_str().is_some_and(|d| d.contains("late"))), "{kept:?}");
}
