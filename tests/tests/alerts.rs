//! `monitor alerts check` and alert rules in the host's config, with the real binary.

use std::path::Path;
use std::time::Duration;

use monitor_tests::{Sandbox, Webhook, install, wait_for};

const BAD: &str = r#"
[[alerts.rule]]
name = "hot"
level = "warnin"
kind = "threshold"
metric = "monitor_cpu_usage_percent"
op = "=>"
value = 90
"#;

const GOOD: &str = r#"
[alerts]
disable = ["memory-pressure"]

[[alerts.rule]]
name = "cpu-hot"
level = "error"
kind = "threshold"
metric = "monitor_cpu_usage_percent"
op = ">"
value = 90
clear = 80
for = "1m"
message = "CPU at {value}% for {for}"
"#;

#[test]
fn check_names_every_bad_field_and_lists_good_rules() {
    let sandbox = Sandbox::new();
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, BAD).unwrap();
    let out = sandbox.monitor(&["alerts", "check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rule 'hot': level 'warnin'; use one of info, warning, error, critical"), "{err}");
    assert!(err.contains("rule 'hot': op '=>' is not one of >, >=, <, <="), "{err}");
    assert!(err.trim_end().ends_with("2 problems in the alert rules"), "{err}");

    // The host refuses to start on them, naming the same problems.
    let out = sandbox.monitor(&["run", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rule 'hot': op '=>'"));

    std::fs::write(&config, GOOD).unwrap();
    let out = sandbox.monitor(&["alerts", "check", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(
        names,
        [
            "disk-almost-full",
            "step-stalled",
            "plugin-quarantined",
            "database-unwritable",
            "watch-job-failed",
            "cpu-hot",
            "6",
            "0"
        ],
        "{text}"
    );
    assert!(text.contains("cpu-hot                      error     threshold for 1m"), "{text}");
}

/// Lines of a JSON-lines file, parsed; none while it does not exist.
fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Waits until the JSON-lines file has a line with `key` = `value` (`state` for
/// the plugin's lines, `to` for the command's).
fn wait_line(path: &Path, key: &str, value: &str) -> Vec<serde_json::Value> {
    wait_for(&format!("{key}={value} in {}", path.display()), Duration::from_secs(20), || {
        let lines = json_lines(path);
        lines.iter().any(|l| l[key] == value).then_some(lines)
    })
}

/// A sandbox with the example plugins and a config: a threshold rule on the
/// textfile collector's `queue_depth`, a rule on failed steps, and a command
/// and a webhook handler next to the default routes.
fn alerting_sandbox(hook: &Webhook, command: &[&str]) -> (Sandbox, std::path::PathBuf) {
    let sandbox = Sandbox::new();
    sandbox.install_examples();
    let config = sandbox.root.path().join("host.toml");
    let command: Vec<String> = command.iter().map(|a| format!("{a:?}")).collect();
    std::fs::write(
        &config,
        format!(
            r#"
sample_interval_ms = 100

[[alerts.rule]]
name = "queue-deep"
level = "error"
kind = "threshold"
metric = "queue_depth"
matchers = {{ queue = "ingest" }}
op = ">"
value = 100
clear = 50
message = "queue {{labels.queue}} holds {{value}} items"

[[alerts.rule]]
name = "step-failed"
level = "critical"
kind = "progress_failed"

[[alerts.handler]]
name = "cmd"
kind = "command"
command = [{}]
timeout = "5s"

[[alerts.handler]]
name = "hook"
kind = "webhook"
url = "{}"
backoff = "50ms"
"#,
            command.join(", "),
            hook.url
        ),
    )
    .unwrap();
    (sandbox, config)
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_threshold_crossing_reaches_every_handler_and_ack_and_resolve_are_kept() {
    let hook = Webhook::start(2);
    let sandbox_dir = tempfile::tempdir().unwrap();
    let command_out = sandbox_dir.path().join("command.jsonl");
    let (sandbox, config) = alerting_sandbox(&hook, &["tee", "-a", command_out.to_str().unwrap()]);
    let jsonl = sandbox.root.path().join("alerts/a.jsonl");
    let mut daemon = sandbox.start(&["--config", config.to_str().unwrap()]);

    sandbox.queue_depth(150);
    let lines = wait_line(&jsonl, "state", "firing");
    assert_eq!(lines[0]["rule"], "queue-deep");
    assert_eq!(lines[0]["level"], "error");
    assert_eq!(lines[0]["value"], 150.0);
    assert_eq!(lines[0]["message"], "queue ingest holds 150 items");
    let id = lines[0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("queue-deep{"), "{id}");
    let commanded = wait_line(&command_out, "to", "firing");
    assert_eq!(
        (&commanded[0]["id"], &commanded[0]["from"], commanded[0]["seq"].as_u64()),
        (&lines[0]["id"], &"inactive".into(), Some(1))
    );
    // The plugin hears what the command hears: the same number, where it came from.
    assert_eq!(
        (lines[0]["seq"].as_u64(), &lines[0]["from"], &lines[0]["ack"]),
        (Some(1), &"pending".into(), &serde_json::Value::Null)
    );
    // The webhook failed twice, then took the alert.
    let delivered = wait_for("the webhook delivery", Duration::from_secs(20), || {
        let d = hook.delivered();
        (!d.is_empty()).then_some(d)
    });
    assert_eq!(delivered[0]["to"], "firing");
    assert_eq!(hook.received.lock().unwrap().iter().filter(|(s, _)| *s == 500).count(), 2);
    daemon.wait_log("the log handler", "inactive → firing: queue ingest holds 150 items");

    let list = ok(&sandbox.monitor(&["alerts", "list", "--state", "firing"]));
    assert!(list.contains(&id) && list.contains("queue ingest holds 150 items"), "{list}");
    assert!(ok(&sandbox.monitor(&["status"])).contains("plugins running, 1 alert firing"));
    let line = ok(&sandbox.monitor(&["status", "--format", "compact-status"]));
    assert!(line.trim_end().ends_with("| 1 firing (error)"), "{line}");
    wait_for("monitor_alerts{state=firing,level=error} 1", Duration::from_secs(20), || {
        let (_, body) = sandbox.api_get("/v1/metrics", Some(&sandbox.token()));
        let samples: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
        samples
            .iter()
            .any(|s| {
                s["name"] == "monitor_alerts"
                    && s["labels"]["state"] == "firing"
                    && s["labels"]["level"] == "error"
                    && s["value"] == 1.0
            })
            .then_some(())
    });

    // Acknowledge by a prefix of the id: every handler hears of it.
    let acked = ok(&sandbox.monitor(&["alerts", "ack", "queue-deep", "--note", "draining it", "--by", "ann"]));
    assert!(acked.contains("firing → acknowledged") && acked.contains("(by ann: draining it)"), "{acked}");
    let lines = wait_line(&jsonl, "state", "acknowledged");
    let acknowledged = lines.iter().find(|l| l["state"] == "acknowledged").unwrap();
    assert_eq!((&acknowledged["from"], &acknowledged["ack"]["by"]), (&"firing".into(), &"ann".into()));
    assert_eq!(acknowledged["ack"]["note"], "draining it");
    wait_line(&command_out, "to", "acknowledged");
    let list = ok(&sandbox.monitor(&["alerts", "list"]));
    assert!(list.contains("acknowledged by ann") && list.contains("draining it"), "{list}");

    // Below the clear value it resolves by itself.
    sandbox.queue_depth(10);
    wait_line(&jsonl, "state", "resolved");
    wait_line(&command_out, "to", "resolved");

    // Again over the threshold; resolved by hand this time.
    sandbox.queue_depth(170);
    wait_for("a second firing", Duration::from_secs(20), || {
        (json_lines(&jsonl).iter().filter(|l| l["state"] == "firing").count() == 2).then_some(())
    });
    let resolved = ok(&sandbox.monitor(&["alerts", "resolve", &id]));
    assert!(resolved.contains("firing → resolved"), "{resolved}");

    let history: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&sandbox.monitor(&["alerts", "history", "--json"]))).unwrap();
    let changes: Vec<(u64, &str, &str)> = history
        .iter()
        .filter(|e| e["id"] == id.as_str())
        .map(|e| (e["seq"].as_u64().unwrap(), e["from"].as_str().unwrap(), e["to"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changes.iter().map(|(_, f, t)| (*f, *t)).collect::<Vec<_>>(),
        [
            ("inactive", "firing"),
            ("firing", "acknowledged"),
            ("acknowledged", "resolved"),
            ("inactive", "firing"),
            ("firing", "resolved")
        ]
    );
    assert!(changes.windows(2).all(|w| w[0].0 < w[1].0), "numbered in order: {changes:?}");
    assert_eq!(history.iter().find(|e| e["to"] == "acknowledged").unwrap()["ack"]["note"], "draining it");
    let text = ok(&sandbox.monitor(&["alerts", "history"]));
    assert_eq!(text.lines().count(), 5, "{text}");

    let (_, body) = sandbox.api_get("/v1/alerts/handlers", Some(&sandbox.token()));
    let handlers: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let hook_stats = handlers.iter().find(|h| h["name"] == "hook").unwrap();
    assert_eq!((hook_stats["retries"].as_u64(), hook_stats["failed"].as_u64()), (Some(2), Some(0)), "{body}");
    wait_for("every delivery to the webhook", Duration::from_secs(20), || (hook.delivered().len() == 5).then_some(()));
    for name in ["cmd", "plugin:jsonl-alerts", "log"] {
        let h = handlers.iter().find(|h| h["name"] == name).unwrap_or_else(|| panic!("{name} in {body}"));
        assert_eq!(h["failed"], 0, "{body}");
    }
}

#[test]
fn alerts_survive_a_restart_and_silences_keep_them_quiet() {
    let hook = Webhook::start(0);
    let (sandbox, config) = alerting_sandbox(&hook, &["true"]);
    let jsonl = sandbox.root.path().join("alerts/a.jsonl");
    let config = config.to_str().unwrap();
    let mut daemon = sandbox.start(&["--config", config]);
    sandbox.queue_depth(150);
    wait_line(&jsonl, "state", "firing");
    ok(&sandbox.monitor(&["alerts", "ack", "queue-deep", "--note", "known"]));
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(10)).0.success());

    // With the host stopped, the list shows what was stored.
    let list = ok(&sandbox.monitor(&["alerts", "list"]));
    assert!(list.contains("acknowledged") && list.contains("as last stored"), "{list}");
    let refused = sandbox.monitor(&["alerts", "resolve", "queue-deep"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs the running host"));

    let _daemon = sandbox.start(&["--config", config]);
    let list = ok(&sandbox.monitor(&["alerts", "list", "--json"]));
    let alerts: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    // Only ours: a built-in rule may be pending on this machine's disks.
    let ours: Vec<&serde_json::Value> = alerts.iter().filter(|a| a["rule"] == "queue-deep").collect();
    assert_eq!((ours.len(), &ours[0]["state"], &ours[0]["ack"]["note"]), (1, &"acknowledged".into(), &"known".into()));

    let silenced = ok(&sandbox.monitor(&["alerts", "silence", "rule=queue-deep", "--for", "1h"]));
    assert!(silenced.starts_with("silence 1 until"), "{silenced}");
    assert!(ok(&sandbox.monitor(&["alerts", "silences"])).contains("rule=queue-deep"));
    sandbox.queue_depth(10);
    let history = wait_for("the silenced resolve", Duration::from_secs(20), || {
        let text = ok(&sandbox.monitor(&["alerts", "history"]));
        text.contains("acknowledged → resolved").then_some(text)
    });
    assert!(history.contains("[silenced]"), "{history}");
    // Stored, not sent: the plugin's file has the firing and the ack only.
    let states: Vec<String> = json_lines(&jsonl).iter().map(|l| l["state"].as_str().unwrap().to_string()).collect();
    assert_eq!(states, ["firing", "acknowledged"]);

    ok(&sandbox.monitor(&["alerts", "unsilence", "1"]));
    assert!(ok(&sandbox.monitor(&["alerts", "silences"])).contains("no active silences"));
    let missing = sandbox.monitor(&["alerts", "unsilence", "1"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no silence 1"), "{missing:?}");
}

#[test]
fn a_failed_step_alerts_and_alerts_test_checks_the_wiring() {
    let hook = Webhook::start(0);
    let (sandbox, config) = alerting_sandbox(&hook, &["sh", "-c", "echo no pager here >&2; exit 3"]);
    let jsonl = sandbox.root.path().join("alerts/a.jsonl");
    let _daemon = sandbox.start(&["--config", config.to_str().unwrap()]);

    ok(&sandbox.monitor(&["progress", "start", "build/compile", "--total", "3"]));
    ok(&sandbox.monitor(&["progress", "fail", "build/compile", "--message", "cc exited 1"]));
    let lines = wait_line(&jsonl, "state", "firing");
    assert_eq!(
        (&lines[0]["id"], &lines[0]["level"]),
        (&r#"step-failed{path="build/compile"}"#.into(), &"critical".into())
    );
    // Run again, the step is no longer failed: resolved.
    ok(&sandbox.monitor(&["progress", "start", "build/compile"]));
    wait_line(&jsonl, "state", "resolved");

    let out = sandbox.monitor(&["alerts", "test", "queue-deep"]);
    assert_eq!(out.status.code(), Some(1), "the command handler fails");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hook                     delivered"), "{text}");
    assert!(text.contains("plugin:jsonl-alerts      delivered"), "{text}");
    assert!(text.contains("cmd                      FAILED: sh exit status: 3: no pager here"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 4 handlers failed"));
    let test_line = wait_line(&jsonl, "id", r#"queue-deep{test="true"}"#);
    assert!(test_line.iter().any(|l| l["labels"]["test"] == "true"));
    assert_eq!(hook.delivered().last().unwrap()["seq"], 0, "a test alert is not stored");

    let unknown = sandbox.monitor(&["alerts", "test", "nope"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no rule 'nope'; the rules are"), "{unknown:?}");
}

#[test]
fn check_names_bad_routes_and_handlers() {
    let sandbox = Sandbox::new();
    let config = sandbox.root.path().join("host.toml");
    let text = "[[alerts.handler]]\nname = \"hook\"\nkind = \"webhook\"\n\n[[alerts.route]]\nhandlers = [\"pager\"]\n";
    std::fs::write(&config, text).unwrap();
    let out = sandbox.monitor(&["alerts", "check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("handler 'hook': url is missing"), "{err}");
    assert!(err.contains("route 1: handler 'pager' is not defined"), "{err}");
}

#[test]
fn a_failing_watch_job_raises_a_critical_alert_that_pauses_it_until_acknowledged() {
    let sandbox = Sandbox::new();
    sandbox.install_examples();
    let project = sandbox.root.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let project = project.canonicalize().unwrap();
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(
        &config,
        format!(
            r#"
sample_interval_ms = 100

[[watch]]
name = "build"
paths = ["{}"]
command = ["sh", "-c", "echo broken >&2; exit 3"]

[[alerts.rule]]
name = "job-failed"
level = "critical"
kind = "watch_failed"
"#,
            project.display()
        ),
    )
    .unwrap();
    let jsonl = sandbox.root.path().join("alerts/a.jsonl");
    let _daemon = sandbox.start(&["--config", config.to_str().unwrap()]);

    std::fs::write(project.join("main.c"), "int main;").unwrap();
    let expected_id = format!(r#"job-failed{{job="build",project="{}"}}"#, project.display());
    let lines = wait_line(&jsonl, "id", &expected_id);
    let ours = lines.iter().find(|l| l["id"] == expected_id.as_str()).unwrap();
    assert_eq!((&ours["state"], &ours["message"]), (&"firing".into(), &"watch job build failed: exit 3".into()));
    // The built-in rule fires too, at its own level.
    let builtin = wait_line(&jsonl, "rule", "watch-job-failed");
    let builtin = builtin.iter().find(|l| l["rule"] == "watch-job-failed").unwrap();
    assert_eq!(
        (&builtin["level"], &builtin["message"]),
        (&"error".into(), &"watch job build failed: exit 3; see 'monitor jobs list'".into())
    );

    // Critical: the job is paused until someone acknowledges.
    let jobs = |sandbox: &Sandbox| -> serde_json::Value {
        serde_json::from_str(&ok(&sandbox.monitor(&["jobs", "list", "--json"]))).unwrap()
    };
    wait_for("the job to be paused", Duration::from_secs(10), || (jobs(&sandbox)[0]["paused"] == true).then_some(()));
    let refused = sandbox.monitor(&["jobs", "run", "build"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is paused"), "{refused:?}");
    ok(&sandbox.monitor(&["alerts", "ack", "job-failed", "--note", "fixing the build"]));
    wait_for("the job to run again", Duration::from_secs(10), || (jobs(&sandbox)[0]["paused"] == false).then_some(()));
}

/// An alert that fired while its handler plugin waited for a grant reaches the
/// handler once it runs; one that runs at start does not hear it again.
#[test]
fn a_handler_that_starts_late_hears_of_the_alerts_still_firing() {
    let sandbox = Sandbox::new();
    let plugins = sandbox.plugins();
    install("jsonl-alerts", &plugins, "jsonl-alerts.wasm");
    let alerts = sandbox.root.path().join("alerts");
    std::fs::create_dir_all(&alerts).unwrap();
    let jsonl = alerts.join("a.jsonl");
    std::fs::write(plugins.join("jsonl-alerts.toml"), format!("path = \"{}\"\n", jsonl.display())).unwrap();
    let config = sandbox.root.path().join("host.toml");
    let rule = "[[alerts.rule]]\nname = \"memory-used\"\nlevel = \"warning\"\nkind = \"threshold\"\n\
                metric = \"monitor_memory_used_bytes\"\nop = \">\"\nvalue = 0\n";
    std::fs::write(&config, format!("sample_interval_ms = 100\n{rule}")).unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mut host = sandbox.start(&args);
    wait_for("the rule to fire", Duration::from_secs(20), || {
        let out = sandbox.monitor(&["alerts", "list", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        list.as_array()?.iter().any(|a| a["rule"] == "memory-used" && a["state"] == "firing").then_some(())
    });
    assert!(!jsonl.exists(), "the handler waits for its grant");

    let grant = format!("fs-write:{}", alerts.display());
    ok(&sandbox.monitor(&["plugins", "enable", "jsonl-alerts", "--grant", &grant]));
    let lines = wait_line(&jsonl, "state", "firing");
    assert_eq!(lines[0]["rule"], "memory-used");

    // Restarted, it runs from the start: the alert is not handed over again.
    host.signal("TERM");
    host.wait_exit(Duration::from_secs(20));
    let mut host = sandbox.start(&args);
    wait_for("the plugin running again", Duration::from_secs(20), || {
        (sandbox.state("jsonl-alerts").as_deref() == Some("running")).then_some(())
    });
    // A later transition of the same alert shows the file is still being written.
    ok(&sandbox.monitor(&["alerts", "ack", lines[0]["id"].as_str().unwrap(), "--by", "me"]));
    let after = wait_line(&jsonl, "state", "acknowledged");
    let firing = after.iter().filter(|l| l["state"] == "firing").count();
    assert_eq!(firing, 1, "{after:?}");
    host.signal("TERM");
    host.wait_exit(Duration::from_secs(20));
}
