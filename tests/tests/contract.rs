//! The contract grows without breaking: plugins built against
//! `monitor:plugin@0.1.0` (kept as built, in `tests/contract/0.1.0`) load and
//! work unchanged on this host, which speaks 0.1.1; a plugin built for 0.1.1
//! gets the newer calls; one built for a version the host does not know is
//! refused, naming the versions it speaks.

use std::time::Duration;

use monitor_tests::{Sandbox, install, monitor_bin, wait_for, workspace};

const LIMIT: Duration = Duration::from_secs(30);

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn plugins_built_for_0_1_0_run_unchanged_beside_ones_built_for_0_1_1() {
    let old = workspace().join("tests/contract/0.1.0");
    let checked = ok(std::process::Command::new(monitor_bin())
        .args(["plugins", "check"])
        .arg(old.join("derived-metrics.wasm"))
        .output()
        .unwrap());
    assert!(checked.contains("contract      monitor:plugin@0.1.0 (an earlier version: it runs as it is)"), "{checked}");

    let sandbox = Sandbox::new();
    for name in ["derived-metrics", "compact-status"] {
        std::fs::copy(old.join(format!("{name}.wasm")), sandbox.plugins().join(format!("{name}.wasm"))).unwrap();
    }
    let new = install("fx-host-api", &sandbox.plugins(), "fx-host-api.wasm");
    let checked = ok(std::process::Command::new(monitor_bin()).args(["plugins", "check"]).arg(&new).output().unwrap());
    assert!(checked.contains("contract      monitor:plugin@0.1.1\n"), "{checked}");
    let _host = sandbox.start(&[]);
    ok(sandbox.monitor(&["progress", "start", "train-7/epoch-1", "--total", "10"]));

    // The 0.1.0 metric provider and display formatter, as they were built.
    let ratio = wait_for("the 0.1.0 plugin's metric", LIMIT, || sandbox.metric("derived-metrics", "memory_used_ratio"));
    assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
    let status = ok(sandbox.monitor(&["status", "--format", "compact-status"]));
    assert!(status.starts_with("cpu ") && status.contains("mem "), "{status}");

    // The 0.1.1 plugin, with the newer calls.
    let got = |name: &str| sandbox.metric("fx-host-api", name);
    wait_for("the runs going, seen by the plugin", LIMIT, || (got("runs")? == 1.0).then_some(()));
    assert_eq!(got("processes"), Some(3.0), "as many processes as asked");
    let all = got("processes_capped").unwrap();
    assert!((3.0..=100.0).contains(&all), "at most 100 whatever was asked: {all}");
    assert!(got("mounts").is_some_and(|n| n >= 1.0), "{:?}", got("mounts"));
    assert!(got("interfaces").is_some_and(|n| n >= 1.0), "{:?}", got("interfaces"));
    // The host's own series, named as /metrics names them, one tick behind.
    let ticks =
        wait_for("the host's tick count, seen by the plugin", LIMIT, || got("host_ticks").filter(|t| *t >= 1.0));
    wait_for("a later tick count", LIMIT, || got("host_ticks").filter(|t| *t > ticks));
    let counted = got("plugins_with_fault_counts").unwrap();
    assert!(counted >= 3.0, "each of the three plugins' faults are counted: {counted}");
}

#[test]
fn a_plugin_for_a_contract_the_host_does_not_know_is_refused_naming_those_it_speaks() {
    let dir = tempfile::tempdir().unwrap();
    let file = install("fx-v2", dir.path(), "future.wasm");
    let out = std::process::Command::new(monitor_bin()).args(["plugins", "check"]).arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("was built against monitor:plugin@0.2.0; this host speaks monitor:plugin@0.1.0, @0.1.1"),
        "{stderr}"
    );
}
