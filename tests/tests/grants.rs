//! Grants follow what the user granted, not what a plugin says it is, and no
//! grant reaches the host's own files.

use std::time::Duration;

use monitor_tests::{Sandbox, install, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

fn record(sandbox: &Sandbox, name: &str) -> Value {
    let listing = sandbox.listing();
    listing["plugins"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap_or(Value::Null)
}

fn wait_state(sandbox: &Sandbox, name: &str, state: &str) -> Value {
    wait_for(&format!("{name} to be {state}"), LIMIT, || {
        let r = record(sandbox, name);
        (r["state"]["state"] == state).then_some(r)
    })
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_new_file_claiming_a_granted_name_waits_for_confirmation_and_gets_nothing() {
    let sandbox = Sandbox::new();
    let counter = install("fx-kv-counter", &sandbox.plugins(), "counter.wasm");
    let daemon = sandbox.start(&[]);
    ok(&sandbox.monitor(&["plugins", "enable", "fx-kv-counter", "--grant", "kv"]));
    wait_state(&sandbox, "fx-kv-counter", "running");
    wait_for("the counter's kv data", LIMIT, || sandbox.metric("fx-kv-counter", "kv_counter_calls"));

    // The granted file goes; another one says it is fx-kv-counter.
    std::fs::remove_file(&counter).unwrap();
    let thief = install("fx-thief", &sandbox.plugins(), "thief.wasm");
    let r = wait_state(&sandbox, "fx-kv-counter", "awaiting-confirmation");
    assert_eq!(r["file"], thief.to_str().unwrap());
    assert_eq!(r["state"]["granted_file"], counter.to_str().unwrap());
    let list = ok(&sandbox.monitor(&["plugins", "list"]));
    let expected =
        format!("if {} is the plugin you granted, run 'monitor plugins enable fx-kv-counter'", thief.display());
    assert!(list.contains(&expected), "{list}");
    let info = ok(&sandbox.monitor(&["plugins", "info", "fx-kv-counter"]));
    assert!(info.contains(&format!("granted to    {}", counter.display())), "{info}");
    // It does not run: a few ticks later, still not one more call.
    let calls = r["stats"]["calls"].as_u64().unwrap();
    let ticks = wait_for("the tick count", LIMIT, || sandbox.metric_host("monitor_ticks_total"));
    wait_for("three more ticks", LIMIT, || (sandbox.metric_host("monitor_ticks_total")? >= ticks + 3.0).then_some(()));
    assert_eq!(record(&sandbox, "fx-kv-counter")["stats"]["calls"].as_u64(), Some(calls));

    // Putting the granted file back: it runs again with its grants, as before.
    std::fs::remove_file(&thief).unwrap();
    install("fx-kv-counter", &sandbox.plugins(), "counter.wasm");
    wait_state(&sandbox, "fx-kv-counter", "running");
    drop(daemon);
}

#[test]
fn grants_of_kinds_a_plugin_did_not_ask_for_never_reach_it() {
    let sandbox = Sandbox::new();
    install("fx-thief", &sandbox.plugins(), "thief.wasm");
    let _daemon = sandbox.start(&[]);
    wait_state(&sandbox, "fx-kv-counter", "running");
    // Granted kv all the same (it asked for nothing): its kv call is still refused.
    ok(&sandbox.monitor(&["plugins", "enable", "fx-kv-counter", "--grant", "kv"]));
    let error = wait_for("the refused kv call", LIMIT, || {
        let e = record(&sandbox, "fx-kv-counter")["stats"]["last_error"].as_str()?.to_string();
        e.contains("kv.get").then_some(e)
    });
    assert!(error.contains("called kv.get without the 'kv' capability"), "{error}");
}

#[test]
fn no_grant_reaches_the_host_s_own_directories_with_or_without_a_host() {
    let sandbox = Sandbox::new();
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    let plugins = sandbox.plugins();
    let (data, home) = (sandbox.data(), sandbox.root.path().to_path_buf());
    let cases = [
        ("fs-write:/".to_string(), "would give the whole file system".to_string()),
        (format!("fs-read:{}", data.display()), "would reach the host's data directory".into()),
        (format!("fs-write:{}", home.display()), "would reach the host's data directory".into()),
        (format!("fs-read:{}", data.join("cache").display()), "would reach the host's data directory".into()),
        (format!("fs-write:{}", plugins.display()), "would reach the host's plugin directory".into()),
        ("fs-read:/proc".into(), "would reach the host's process table".into()),
    ];
    let plugins_arg = plugins.to_str().unwrap();
    let try_all = |live: bool| {
        for (grant, expected) in &cases {
            let mut args = vec!["plugins", "enable", "derived-metrics", "--grant", grant.as_str()];
            if !live {
                args.extend(["--plugins", plugins_arg]);
            }
            let out = sandbox.monitor(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{grant} (live: {live}): {err}");
            assert!(err.contains(expected.as_str()) && err.trim().lines().count() == 1, "{grant}: {err}");
        }
    };
    try_all(false);
    let _daemon = sandbox.start(&[]);
    try_all(true);
    assert_eq!(record(&sandbox, "derived-metrics")["grants"], serde_json::json!([]), "nothing was granted");
}
