//! `monitor alerts check` and alert rules in the host's config, with the real binary.

use monitor_tests::Sandbox;

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
    assert_eq!(names, ["disk-almost-full", "step-stalled", "plugin-quarantined", "cpu-hot", "4"], "{text}");
    assert!(text.contains("cpu-hot                      error     threshold for 1m"), "{text}");
}
