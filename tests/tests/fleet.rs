//! The host among the tools a fleet runs, with the real Debian binaries:
//! Prometheus' Alertmanager as an alert handler (`kind = "alertmanager"`),
//! Prometheus scraping `/metrics` with a read token, promtool linting the
//! exposition, and the Grafana dashboard (`grafana/monitor.json`) checked
//! against the series a real host serves.
//!
//! The binaries come from the Debian packages `prometheus` (prometheus,
//! promtool) and `prometheus-alertmanager`; `.ci/run` installs them. Without
//! them these tests fail, saying so: they never skip.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use monitor_tests::{Sandbox, wait_for, workspace};
use serde_json::Value;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

/// The Debian binary at `path`; the test fails, naming the package, without it.
fn binary(path: &'static str, package: &str) -> &'static str {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: install the Debian package {package} \
         (apt-get install prometheus prometheus-alertmanager; .ci/run installs them)"
    );
    path
}

/// A loopback port nothing listens on (bound, then let go).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET url`: the body of a 2xx answer, or why there is none.
fn get(url: &str) -> Result<String, String> {
    let mut response = ureq::get(url).call().map_err(|e| format!("GET {url}: {e}"))?;
    response.body_mut().read_to_string().map_err(|e| format!("GET {url}: {e}"))
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Alertmanager or Prometheus, run in a temporary directory of its own on a
/// free loopback port, its output in a log file there; killed when dropped.
struct Service {
    name: &'static str,
    child: Child,
    /// `http://127.0.0.1:PORT`
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts `bin` with `args(dir, port)` and waits until `/-/ready` answers.
    fn start(name: &'static str, bin: &str, args: impl FnOnce(&Path, u16) -> Vec<String>) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args(args(dir.path(), port))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let mut service = Service { name, child, url: format!("http://127.0.0.1:{port}"), log, _dir: dir };
        let ready = format!("{}/-/ready", service.url);
        wait_for(&format!("{name} to be ready"), Duration::from_secs(60), || {
            if let Some(status) = service.child.try_wait().unwrap() {
                panic!("{name} exited ({status}) before it was ready:\n{}", service.log());
            }
            get(&ready).ok().map(|_| ())
        });
        service
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log());
        }
    }
}

/// An Alertmanager that routes everything to a receiver that sends nothing.
fn alertmanager() -> Service {
    let bin = binary(ALERTMANAGER, "prometheus-alertmanager");
    Service::start("alertmanager", bin, |dir, port| {
        let config = dir.join("alertmanager.yml");
        std::fs::write(&config, "route:\n  receiver: quiet\n  group_wait: 1s\nreceivers:\n  - name: quiet\n").unwrap();
        vec![
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            // Empty: no cluster, no gossip port.
            "--cluster.listen-address=".to_string(),
        ]
    })
}

/// `GET /api/v2/alerts` on an Alertmanager (`?active=true` and the like in `query`).
fn alertmanager_alerts(am: &Service, query: &str) -> Vec<Value> {
    let body = get(&format!("{}/api/v2/alerts{query}", am.url)).unwrap_or_else(|e| panic!("{e}\n{}", am.log()));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The host's handler counters (`GET /v1/alerts/handlers`), by name.
fn handler(sandbox: &Sandbox, name: &str) -> Option<Value> {
    let (_, body) = sandbox.api_get("/v1/alerts/handlers", Some(&sandbox.token()));
    let handlers: Vec<Value> = serde_json::from_str(&body).ok()?;
    handlers.into_iter().find(|h| h["name"] == name)
}

/// A rule that fires at the first evaluation on any machine.
fn memory_rule(level: &str) -> String {
    format!(
        "[[alerts.rule]]\nname = \"memory-used\"\nlevel = \"{level}\"\nkind = \"threshold\"\n\
         metric = \"monitor_memory_used_bytes\"\nop = \">\"\nvalue = 0\nlabels = {{ team = \"ops\" }}\n\
         message = \"memory in use: {{value}} bytes\"\n\n"
    )
}

/// Starts the host of `sandbox` with `config` as its configuration file.
fn start(sandbox: &Sandbox, config: &str) -> monitor_tests::Daemon {
    let path = sandbox.root.path().join("host.toml");
    std::fs::write(&path, config).unwrap();
    sandbox.start(&["--config", path.to_str().unwrap()])
}

#[test]
fn a_firing_alert_is_active_in_alertmanager_sent_again_and_resolved_there() {
    let am = alertmanager();
    let sandbox = Sandbox::new();
    let config = format!(
        "sample_interval_ms = 100\n\n{}[[alerts.handler]]\nname = \"fleet\"\nkind = \"alertmanager\"\nurl = \"{}\"\nresend = \"1s\"\n",
        memory_rule("error"),
        am.url
    );
    let _host = start(&sandbox, &config);

    let ours = |alerts: Vec<Value>| alerts.into_iter().find(|a| a["labels"]["alertname"] == "memory-used");
    let alert = wait_for("the alert active in Alertmanager", Duration::from_secs(30), || {
        ours(alertmanager_alerts(&am, "?active=true")).filter(|a| a["status"]["state"] == "active")
    });
    assert_eq!((&alert["labels"]["severity"], &alert["labels"]["team"]), (&"error".into(), &"ops".into()), "{alert}");
    let instance = alert["labels"]["instance"].as_str().unwrap_or_default();
    assert!(
        !instance.is_empty() && alert["labels"]["host"] == instance,
        "the host's name as instance and host: {alert}"
    );
    let summary = alert["annotations"]["summary"].as_str().unwrap_or_default();
    assert!(summary.starts_with("memory in use: ") && summary.ends_with(" bytes"), "{alert}");
    assert!(alert["annotations"]["value"].as_str().is_some_and(|v| v.parse::<f64>().is_ok_and(|v| v > 0.0)), "{alert}");

    // Sent again every second, each time ending later: Alertmanager would end it by itself otherwise.
    let first_end = alert["endsAt"].as_str().unwrap().to_string();
    wait_for("a resend that moves endsAt on", Duration::from_secs(20), || {
        let alert = ours(alertmanager_alerts(&am, "?active=true"))?;
        (alert["endsAt"].as_str()? > first_end.as_str()).then_some(())
    });

    // Resolved in monitor: resolved in Alertmanager, and not sent again.
    let list: Vec<Value> = serde_json::from_str(&ok(&sandbox.monitor(&["alerts", "list", "--json"]))).unwrap();
    let id = list.iter().find(|a| a["rule"] == "memory-used").unwrap()["id"].as_str().unwrap().to_string();
    let resolved = ok(&sandbox.monitor(&["alerts", "resolve", &id]));
    assert!(resolved.contains("firing → resolved"), "{resolved}");
    wait_for("the alert resolved in Alertmanager", Duration::from_secs(30), || {
        ours(alertmanager_alerts(&am, "?active=true")).is_none().then_some(())
    });
    assert!(ours(alertmanager_alerts(&am, "")).is_none(), "a resolved alert is not listed");

    // The firing, a resend and the resolve, at least; none failed.
    let fleet = wait_for("the handler's deliveries counted", Duration::from_secs(10), || {
        handler(&sandbox, "fleet").filter(|h| h["delivered"].as_u64() >= Some(3))
    });
    assert_eq!(fleet["failed"], 0, "{fleet}");
}

#[test]
fn an_unreachable_alertmanager_holds_up_no_other_handler_and_its_failures_are_counted() {
    let closed = free_port();
    let sandbox = Sandbox::new();
    let command_out = sandbox.root.path().join("command.jsonl");
    // Retries 2 s, 4 s and 8 s apart: the Alertmanager's delivery takes 14 s to give up.
    let config = format!(
        "sample_interval_ms = 100\n\n{}\
         [[alerts.handler]]\nname = \"fleet\"\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{closed}\"\nretries = 3\nbackoff = \"2s\"\n\n\
         [[alerts.handler]]\nname = \"cmd\"\nkind = \"command\"\ncommand = [\"tee\", \"-a\", {:?}]\n",
        memory_rule("warning"),
        command_out.to_str().unwrap()
    );
    let _host = start(&sandbox, &config);

    let line = wait_for("the command handler's delivery", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&command_out).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["rule"] == "memory-used" && l["to"] == "firing")
    });
    assert_eq!(line["level"], "warning", "{line}");
    // The command had its alert while the Alertmanager's delivery was still being tried.
    let fleet_now = handler(&sandbox, "fleet");
    assert!(fleet_now.as_ref().is_none_or(|h| h["failed"] == 0), "{fleet_now:?}");

    let fleet = wait_for("the Alertmanager's failure counted", Duration::from_secs(60), || {
        handler(&sandbox, "fleet").filter(|h| h["failed"].as_u64() >= Some(1))
    });
    assert_eq!(fleet["delivered"], 0, "{fleet}");
    assert!(fleet["retries"].as_u64() >= Some(3), "every retry was made: {fleet}");
    let error = fleet["last_error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!("127.0.0.1:{closed}")), "the last error names the address: {fleet}");
    let cmd = handler(&sandbox, "cmd").expect("the command's counters");
    assert!(cmd["delivered"].as_u64() >= Some(1) && cmd["failed"] == 0, "{cmd}");
}

/// Runs promtool's linter on an exposition: its exit status and what it said.
fn promtool_check_metrics(text: &str) -> (Option<i32>, String) {
    let mut child = Command::new(binary(PROMTOOL, "prometheus"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting promtool");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), said)
}

/// The latest value of a PromQL expression on a Prometheus, if it has one.
fn query(prometheus: &Service, expr: &str) -> Option<f64> {
    let url = format!("{}/api/v1/query", prometheus.url);
    let mut response = ureq::get(url).query("query", expr).call().ok()?;
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()?;
    body["data"]["result"].as_array()?.first()?["value"][1].as_str()?.parse().ok()
}

/// Whether Prometheus evaluates `expr` ("success" or "error"), and its whole answer.
fn evaluate(prometheus: &Service, expr: &str) -> (String, String) {
    let url = format!("{}/api/v1/query", prometheus.url);
    let body = match ureq::get(url).query("query", expr).config().http_status_as_error(false).build().call() {
        Ok(mut response) => response.body_mut().read_to_string().unwrap_or_default(),
        Err(e) => return ("unreachable".into(), e.to_string()),
    };
    let status = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["status"].as_str().map(String::from));
    (status.unwrap_or_default(), body)
}

/// The README's scrape configuration, as written but for the host's address,
/// the token's file and a scrape every second.
fn readme_scrape_config(addr: &str, token_file: &Path) -> String {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let after = readme.split("**Prometheus.**").nth(1).expect("the README's Prometheus paragraph");
    let start = after.find("```yaml\n").expect("its scrape configuration") + "```yaml\n".len();
    let block = after[start..].split("```").next().unwrap();
    let mut replaced = [0; 3];
    let lines: Vec<String> = block
        .lines()
        .map(|line| {
            let key = line.trim_start();
            let indent = &line[..line.len() - key.len()];
            if key.starts_with("scrape_interval:") {
                replaced[0] += 1;
                format!("{indent}scrape_interval: 1s")
            } else if key.starts_with("credentials_file:") {
                replaced[1] += 1;
                format!("{indent}credentials_file: {}", token_file.display())
            } else if key.starts_with("- targets:") {
                replaced[2] += 1;
                format!("{indent}- targets: [\"{addr}\"]")
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_eq!(
        replaced,
        [1, 1, 1],
        "one scrape_interval, credentials_file and targets in the README's block:\n{block}"
    );
    lines.join("\n") + "\n"
}

#[test]
fn prometheus_scrapes_the_host_with_a_read_token_and_promtool_finds_nothing_wrong() {
    let prometheus_bin = binary(PROMETHEUS, "prometheus");
    binary(PROMTOOL, "prometheus");
    let sandbox = Sandbox::new();
    sandbox.install_examples();
    let _host = start(&sandbox, "sample_interval_ms = 200\n");

    // A token that can only read; its secret alone on stdout.
    let out = sandbox.monitor(&["tokens", "create", "prom", "--scope", "read"]);
    let secret = ok(&out);
    assert!(
        secret.ends_with('\n') && secret.lines().count() == 1 && !secret.trim().is_empty(),
        "stdout is the secret and a newline: {secret:?}"
    );
    let secret = secret.trim_end_matches('\n').to_string();
    assert!(!secret.contains(char::is_whitespace) && secret != sandbox.token(), "{secret:?}");
    let token_file = sandbox.root.path().join("monitor-token");
    std::fs::write(&token_file, format!("{secret}\n")).unwrap();

    let text = readme_scrape_config(&sandbox.addr(), &token_file);
    let prometheus = Service::start("prometheus", prometheus_bin, |dir, port| {
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, text.as_bytes()).unwrap();
        vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ]
    });
    let deadline = Duration::from_secs(60);
    wait_for("the scrape to be up", deadline, || (query(&prometheus, "up")? == 1.0).then_some(()));
    let cpu = wait_for("the host's CPU in Prometheus", deadline, || query(&prometheus, "monitor_cpu_usage_percent"));
    assert!((0.0..=100.0).contains(&cpu), "{cpu}");
    let memory = wait_for("the derived-metrics plugin's series in Prometheus", deadline, || {
        query(&prometheus, "memory_used_ratio{plugin=\"derived-metrics\"}")
    });
    assert!(memory > 0.0 && memory <= 1.0, "{memory}");
    // Every query of the Grafana dashboard is PromQL this Prometheus evaluates,
    // with Grafana's variables as Grafana fills them in.
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace().join("grafana/monitor.json")).unwrap()).unwrap();
    let instance = sandbox.addr();
    for expr in expressions(&dashboard).iter().filter(|e| !e.starts_with("label_values(")) {
        let filled = expr.replace("$instance", &instance).replace("$__rate_interval", "1m");
        let (status, said) = evaluate(&prometheus, &filled);
        assert_eq!(status, "success", "grafana/monitor.json: {expr}\n{said}");
    }

    // promtool lints the Prometheus text format, which the host serves to a
    // client asking for it alone; Prometheus itself is served OpenMetrics.
    let (status, body) = sandbox.api_get("/metrics", Some(&secret));
    assert!(status.contains(" 200 ") && body.ends_with("# EOF\n"), "{status}: {body}");
    let mut response = ureq::get(format!("http://{}/metrics", sandbox.addr()))
        .header("Authorization", format!("Bearer {secret}"))
        .header("Accept", "text/plain")
        .call()
        .unwrap();
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let classic = response.body_mut().read_to_string().unwrap();
    let (code, said) = promtool_check_metrics(&classic);
    assert_eq!(code, Some(0), "promtool check metrics:\n{said}\nthe exposition:\n{classic}");
}

/// The metric names a PromQL expression selects: each name written before a
/// `{…}` selector (the dashboard gives every selector one, for `$instance`)
/// and any `monitor_` name wherever it stands. Strings, label matchers,
/// `$variables` and numbers (`5m`) are skipped; functions, keywords and label
/// names (`by (mount)`) are not followed by `{`.
fn selected(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    // The index just past the string opening at `i`.
    let past_string = |mut i: usize| {
        let quote = chars[i];
        i += 1;
        while i < chars.len() && chars[i] != quote {
            i += if chars[i] == '\\' { 2 } else { 1 };
        }
        i + 1
    };
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            i = past_string(i);
        } else if c == '{' {
            i += 1;
            while i < chars.len() && chars[i] != '}' {
                i = if matches!(chars[i], '"' | '\'' | '`') { past_string(i) } else { i + 1 };
            }
            i += 1;
        } else if c == '$' || c.is_ascii_digit() {
            i += 1;
            while i < chars.len() && word(chars[i]) {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && word(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if next == Some(&'{') || name.starts_with("monitor_") {
                names.insert(name);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn promql_selectors_are_found() {
    let names = |expr: &str| selected(expr).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum by (handler, result) (increase(monitor_alert_deliveries_total{instance=~"$instance"}[$__rate_interval]))"#
        ),
        ["monitor_alert_deliveries_total"]
    );
    assert_eq!(
        names(r#"100 * (1 - a_b{mount="/x{y}", i=~"$instance"} / monitor_disk_total_bytes) > 5m"#),
        ["a_b", "monitor_disk_total_bytes"]
    );
    assert_eq!(names("label_values(monitor_uptime_seconds, instance)"), ["monitor_uptime_seconds"]);
}

/// Every PromQL expression of a Grafana dashboard: panels' targets (rows'
/// panels too) and template variables' queries.
fn expressions(dashboard: &Value) -> Vec<String> {
    fn panels(list: &Value, out: &mut Vec<String>) {
        for panel in list.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.extend(target["expr"].as_str().map(String::from));
            }
            panels(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        out.extend(variable["definition"].as_str().map(String::from));
        out.extend(variable["query"]["query"].as_str().or(variable["query"].as_str()).map(String::from));
    }
    out
}

/// The sample names of an exposition.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(String::from)
        .collect()
}

#[test]
fn the_grafana_dashboard_imports_as_is_and_uses_only_series_a_host_serves() {
    let path = workspace().join("grafana/monitor.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    assert_eq!(dashboard["schemaVersion"], 39);
    let inputs = dashboard["__inputs"].as_array().expect("__inputs");
    assert!(inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"), "{inputs:?}");
    let variables = dashboard["templating"]["list"].as_array().expect("templating");
    assert!(variables.iter().any(|v| v["name"] == "instance"), "an instance variable: {variables:?}");
    // Every panel and query goes to the imported data source.
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(ids.insert(panel["id"].as_u64().expect("a panel id")), "panel ids are unique: {}", panel["id"]);
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", panel["title"]);
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", panel["title"]);
            let expr = target["expr"].as_str().unwrap();
            assert!(expr.contains("$instance"), "{}: {expr} follows the instance variable", panel["title"]);
        }
    }
    let used: BTreeSet<String> = expressions(&dashboard).iter().flat_map(|e| selected(e)).collect();
    assert!(used.len() >= 30, "the dashboard's series: {used:?}");

    // A host with the example plugins, an alert delivered, and a run that moves
    // (an ETA needs a second of progress).
    let sandbox = Sandbox::new();
    sandbox.install_examples();
    let _host = start(&sandbox, &format!("sample_interval_ms = 200\n\n{}", memory_rule("warning")));
    ok(&sandbox.monitor(&["progress", "start", "dash/build", "--total", "1000000"]));
    let token = sandbox.token();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = 0;
    let missing = loop {
        done += 1;
        ok(&sandbox.monitor(&["progress", "update", "dash/build", "--done", &done.to_string()]));
        let (_, body) = sandbox.api_get("/metrics", Some(&token));
        let exposed = exposed(&body);
        let missing: Vec<&String> = used.iter().filter(|n| !exposed.contains(*n)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(missing.is_empty(), "grafana/monitor.json uses series no host serves: {missing:?}");
}
