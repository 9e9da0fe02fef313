//! `monitor` commands that need no running host: checks, bad input, exit codes.

use monitor_tests::{Sandbox, install, wasm};

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn check_describes_a_valid_plugin() {
    let sandbox = Sandbox::new();
    let file = wasm("textfile-collector");
    let out = sandbox.monitor(&["plugins", "check", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("valid plugin"), "{report}");
    assert!(report.contains("roles         metric-provider"), "{report}");
    assert!(report.contains("contract      monitor:plugin@0.1.1"), "{report}");
    assert!(report.contains("fs-read — reads"), "{report}");

    let out = sandbox.monitor(&["plugins", "check", "--json", file.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["name"], "textfile-collector");
    assert_eq!(json["roles"][0], "metric-provider");
    assert_eq!(json["capabilities"][0]["kind"], "fs-read");
}

#[test]
fn check_refuses_what_is_not_a_plugin_with_the_reason() {
    let sandbox = Sandbox::new();
    let dir = sandbox.plugins();
    std::fs::write(dir.join("text.wasm"), "hello").unwrap();
    std::fs::write(dir.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    install("fx-v2", &dir, "v2.wasm");
    install("fx-not-a-plugin", &dir, "tool.wasm");
    install("fx-trap-describe", &dir, "trap.wasm");
    let cases = [
        ("text.wasm", "is not a WebAssembly file"),
        ("core.wasm", "is a core WebAssembly module, not a component"),
        ("v2.wasm", "was built against monitor:plugin@0.2.0; this host speaks monitor:plugin@0.1.0"),
        ("tool.wasm", "implements no monitor world"),
        ("trap.wasm", "describe trapped"),
        ("missing.wasm", "cannot read"),
    ];
    for (file, reason) in cases {
        let out = sandbox.monitor(&["plugins", "check", dir.join(file).to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{file}: {}", text(&out));
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(message.starts_with("monitor: ") && message.contains(reason), "{file}: {message}");
        assert_eq!(message.lines().count(), 1, "one line: {message}");
    }
}

#[test]
fn bad_usage_and_configuration_exit_2_with_the_fix() {
    let sandbox = Sandbox::new();
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "[plugins]\ncall_timeout_ms = 0\n").unwrap();
    let plugins = sandbox.plugins();
    let plugins = plugins.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["run", "--plugins", plugins, "--config", config.to_str().unwrap()],
            "plugins.call_timeout_ms = 0 is out of range; use 1 to 60000",
        ),
        (&["run", "--plugins", "/does/not/exist"], "plugin directory /does/not/exist does not exist"),
        (
            &["plugins", "enable", "x", "--grant", "net"],
            "--grant net: unknown capability 'net'; known capabilities are kv, fs-read:DIR, fs-write:DIR and http:https://HOST",
        ),
        (&["plugins", "frobnicate"], "unrecognized subcommand 'frobnicate'"),
    ];
    for (args, expected) in cases {
        let out = sandbox.monitor(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
}

#[test]
fn offline_commands_work_on_the_database_and_refuse_unknown_names() {
    let sandbox = Sandbox::new();
    let out = sandbox.monitor(&["plugins", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("no plugins known yet"));
    let out = sandbox.monitor(&["plugins", "disable", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no plugin named 'ghost'; known plugins: none"), "{}", text(&out));
    let out = sandbox.monitor(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(" cpu "), "{}", text(&out));
}
