//! The web dashboard: served from the binary with its guards, over raw HTTP;
//! then used as a person would, in Debian's chromium driven through
//! chromedriver: charts drawn from real samples, a progress update appearing
//! without a reload, an alert acknowledged from the page, a host restart
//! survived, and a wrong token refused.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use monitor_tests::browser::Browser;
use monitor_tests::{Daemon, Sandbox, wait_for};

const LIMIT: Duration = Duration::from_secs(30);

/// A rule that fires at once and stays firing: CPU use is never below 0.
const ALWAYS: &str = r#"
[[alerts.rule]]
name = "always"
level = "warning"
kind = "threshold"
metric = "monitor_cpu_usage_percent"
op = ">="
value = 0
message = "CPU at {value}%"
"#;

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request, its head written as given (request line and headers, each
/// ending in CRLF), then `body`.
fn raw(addr: &str, head: &str, body: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    let length = if body.is_empty() { String::new() } else { format!("Content-Length: {}\r\n", body.len()) };
    write!(stream, "{head}{length}Connection: close\r\n\r\n{body}").unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    Answer { status, headers, body: bytes[split + 4..].to_vec() }
}

#[test]
fn the_page_is_served_from_the_binary_with_its_guards() {
    let sandbox = Sandbox::new();
    let _host = sandbox.start(&[]);
    let (addr, token) = (sandbox.addr(), sandbox.token());
    let get = |path: &str, extra: &str| raw(&addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}"), "");

    let root = get("/", "");
    assert_eq!((root.status, root.header("location")), (303, Some("/dashboard/")));
    let page = get("/dashboard/", "");
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let policy = page.header("content-security-policy").expect("a CSP");
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.headers.iter().all(|(n, _)| !n.to_ascii_lowercase().starts_with("access-control")), "no CORS");
    let html = page.text();
    assert!(html.contains("src=\"app.js\"") && html.contains("src=\"uplot.min.js\""), "{html}");
    assert_eq!(html.matches("<script").count(), html.matches("<script src=").count(), "no inline script");

    let etag = page.header("etag").expect("an ETag").to_string();
    let again = get("/dashboard/", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((again.status, again.body.len()), (304, 0));
    let plain = get("/dashboard/uplot.min.js", "");
    let gzipped = get("/dashboard/uplot.min.js", "Accept-Encoding: gzip, br\r\n");
    assert_eq!((gzipped.status, gzipped.header("content-encoding")), (200, Some("gzip")));
    assert_eq!(&gzipped.body[..2], [0x1f, 0x8b], "gzip's magic");
    assert!(gzipped.body.len() * 2 < plain.body.len(), "{} of {}", gzipped.body.len(), plain.body.len());
    let missing = get("/dashboard/nope.js", "");
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("the dashboard has no file 'nope.js'"), "{}", missing.text());

    // DNS rebinding: a name that is not this host's is refused, whatever the route.
    let port = addr.rsplit(':').next().unwrap();
    for path in ["/dashboard/", "/v1/health", "/v1/runs"] {
        let foreign = raw(
            &addr,
            &format!("GET {path} HTTP/1.1\r\nHost: evil.example:{port}\r\nAuthorization: Bearer {token}\r\n"),
            "",
        );
        assert_eq!(foreign.status, 421, "{path}");
        assert!(foreign.text().contains("api.hosts"), "{}", foreign.text());
    }
    assert_eq!(raw(&addr, &format!("GET /v1/health HTTP/1.1\r\nHost: localhost:{port}\r\n"), "").status, 200);
    assert_eq!(
        raw(&addr, "GET /v1/health HTTP/1.1\r\nHost: h\u{e9}.example\r\n", "").status,
        421,
        "a Host that is not text"
    );

    // A change from a page of another origin is refused, even with the token.
    let post = |origin: &str| {
        raw(
            &addr,
            &format!(
                "POST /v1/progress/from-a-page HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nOrigin: {origin}\r\n"
            ),
            r#"{"op":"start"}"#,
        )
    };
    let refused = post("http://evil.example");
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(sandbox.api_get("/v1/runs", Some(&token)).1 == "[]", "nothing was stored");
    assert_eq!(post(&format!("http://{addr}")).status, 200);
    let socket = raw(
        &addr,
        &format!(
            "GET /v1/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nOrigin: http://evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        ),
        "",
    );
    assert_eq!(socket.status, 403);

    // Layouts are kept in the host, within bounds.
    let put = |name: &str, body: &str| sandbox.api("PUT", &format!("/v1/dashboard/layouts/{name}"), Some(&token), body);
    assert!(put("ops", r#"{"range":"6h","series":["queue_depth"]}"#).0.contains("200"));
    let (_, listed) = sandbox.api_get("/v1/dashboard/layouts", Some(&token));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!((listed[0]["name"].as_str(), listed[0]["layout"]["range"].as_str()), (Some("ops"), Some("6h")));
    let (status, body) = put("bad*name", "{}");
    assert!(status.contains("400") && body.contains("layout name 'bad*name'"), "{status} {body}");
    let (status, body) = put("list", "[1,2]");
    assert!(status.contains("400") && body.contains("JSON object"), "{status} {body}");
    let (status, body) = put("big", &format!(r#"{{"x":"{}"}}"#, "y".repeat(70_000)));
    assert!(status.contains("400") || status.contains("413"), "{status} {body}");
    assert!(sandbox.api("DELETE", "/v1/dashboard/layouts/ops", Some(&token), "").0.contains("200"));
    assert!(sandbox.api("DELETE", "/v1/dashboard/layouts/ops", Some(&token), "").0.contains("404"));

    // `monitor dashboard` prints the link with the token, and the tunnel to it.
    let out = sandbox.monitor(&["dashboard"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.lines().next().unwrap() == format!("http://{addr}/dashboard/#token={token}"), "{text}");
    assert!(text.contains(&format!("ssh -N -L {port}:{addr} ")), "{text}");
    assert!(text.contains(&format!("http://localhost:{port}/dashboard/#token={token}")), "{text}");
}

#[test]
fn monitor_dashboard_without_a_host_says_how_to_start_one() {
    let sandbox = Sandbox::new();
    let out = sandbox.monitor(&["dashboard"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("start one with 'monitor run'"));
}

fn start(sandbox: &Sandbox, config: &std::path::Path) -> Daemon {
    sandbox.start(&["--config", config.to_str().unwrap()])
}

#[test]
fn the_dashboard_works_in_a_real_browser_through_a_restart() {
    let sandbox = Sandbox::new();
    sandbox.install_examples();
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, format!("[metrics]\ncommit_every = \"1s\"\n{ALWAYS}")).unwrap();
    let mut host = start(&sandbox, &config);
    let link = String::from_utf8_lossy(&sandbox.monitor(&["dashboard"]).stdout).lines().next().unwrap().to_string();
    let browser = Browser::start();
    browser.goto(&link);

    // The token left the address bar; the page is live and draws real samples.
    browser.wait("the page to be ready", "document.body.dataset.ready === 'true'");
    assert_eq!(browser.eval("return location.hash;"), "");
    browser.wait("the stream to be live", "document.querySelector('#health').textContent.includes('live')");
    browser.wait("the CPU chart to be drawn", "document.querySelectorAll('[data-chart=\"machine-0\"] canvas').length");
    browser.wait(
        "the disk chart to have a line per mount",
        "document.querySelectorAll('[data-chart=\"machine-3\"] .u-series').length > 1",
    );
    browser.wait("the plugins to be listed", "document.querySelector('[data-plugin=\"derived-metrics\"]')");

    // A progress update appears without a reload.
    let out = sandbox.monitor(&["progress", "start", "train-1", "--total", "10"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    browser.wait("the run to appear", "document.querySelector('[data-run=\"train-1\"]')");
    assert!(sandbox.monitor(&["progress", "update", "train-1", "--advance", "4"]).status.success());
    browser
        .wait("the run to show 40%", "document.querySelector('[data-run=\"train-1\"]').textContent.includes('40.0%')");

    // An alert acknowledged from the page changes the host's state.
    browser.wait("the alert to show", "document.querySelector('[data-alert] button[data-action=\"ack\"]')");
    browser.eval("window.prompt = () => 'looking at it'; document.querySelector('[data-alert] button[data-action=\"ack\"]').click(); return true;");
    wait_for("the host to hold the alert acknowledged", LIMIT, || {
        let (_, body) = sandbox.api_get("/v1/alerts", Some(&sandbox.token()));
        let alerts: serde_json::Value = serde_json::from_str(&body).ok()?;
        alerts
            .as_array()?
            .iter()
            .any(|a| a["state"] == "acknowledged" && a["ack"]["note"] == "looking at it")
            .then_some(())
    });
    browser.wait(
        "the page to show the acknowledgement",
        "document.querySelector('#panel-alerts').textContent.includes('looking at it')",
    );

    // A layout saved from the page is kept by the host, for every browser.
    browser.eval("document.querySelector('[data-panel=\"jobs\"] button.hide').click(); window.prompt = () => 'on call'; document.querySelector('#save-layout-as').click(); return true;");
    let saved = wait_for("the host to keep the layout", LIMIT, || {
        let (_, body) = sandbox.api_get("/v1/dashboard/layouts", Some(&sandbox.token()));
        let layouts: serde_json::Value = serde_json::from_str(&body).ok()?;
        layouts.as_array()?.iter().find(|l| l["name"] == "on call").cloned()
    });
    let jobs = saved["layout"]["panels"].as_array().unwrap().iter().find(|p| p["id"] == "jobs").unwrap().clone();
    assert_eq!(jobs["hidden"], true, "{saved}");

    // A phone's width: panels stack, and the page never scrolls sideways.
    browser.runtime.block_on(browser.client().set_window_size(390, 844)).unwrap();
    browser.wait(
        "the page to fit a phone",
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth",
    );
    browser.runtime.block_on(browser.client().set_window_size(1280, 800)).unwrap();

    // The host restarts: the page says so, then resumes and sees what came after.
    let addr = sandbox.addr();
    host.signal("TERM");
    host.wait_exit(LIMIT);
    browser.wait(
        "the page to say it is reconnecting",
        "document.querySelector('#health').textContent.includes('reconnecting')",
    );
    let _host = start(&sandbox, &config);
    assert_eq!(sandbox.addr(), addr, "the host keeps its port across a restart");
    browser.wait("the stream to be live again", "document.querySelector('#health').textContent.includes('live')");
    assert!(sandbox.monitor(&["progress", "start", "train-2"]).status.success());
    browser.wait("a run started after the restart to appear", "document.querySelector('[data-run=\"train-2\"]')");

    // A wrong token is refused: the page asks for the right one.
    browser.goto("about:blank");
    browser.goto(&link.replace("#token=", "#token=wrong"));
    browser.wait("the page to ask for the token", "!document.querySelector('#login').hidden");
    assert!(
        browser
            .eval("return document.querySelector('#login-error').textContent;")
            .as_str()
            .unwrap()
            .contains("refused")
    );
}
