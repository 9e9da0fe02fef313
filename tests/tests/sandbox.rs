//! Hostile and broken plugins: each is refused or contained with a clear
//! message, and the host and the other plugins carry on.

use std::time::Duration;

use monitor_tests::host::Host;
use monitor_tests::{Sandbox, install, wasm};

/// A well-behaved plugin beside each hostile one, to show it is unaffected.
const BYSTANDER: &str = "derived-metrics";

fn last_error(host: &Host, name: &str) -> String {
    host.record(name).stats.last_error.unwrap_or_default()
}

fn assert_bystander_fine(host: &Host) {
    assert_eq!(host.state(BYSTANDER), "running");
    assert!(host.metrics_of(BYSTANDER).is_some_and(|m| !m.is_empty()));
}

#[test]
fn an_endless_loop_hits_its_deadline_and_three_in_a_row_quarantine_it() {
    let host = Host::new(Sandbox::new(), |s| s.limits.call_timeout = Duration::from_millis(50));
    install("fx-loop", &host.sandbox.plugins(), "fx-loop.wasm");
    install(BYSTANDER, &host.sandbox.plugins(), "bystander.wasm");
    host.scan();
    for round in 1..=3 {
        assert_eq!(host.state("fx-loop"), "running", "round {round}");
        host.collect();
        assert_eq!(last_error(&host, "fx-loop"), "collect ran past its deadline of 50 ms");
    }
    let state = host.state("fx-loop");
    assert_eq!(state, "quarantined: 3 faults in a row; last: collect ran past its deadline of 50 ms");
    let calls = host.record("fx-loop").stats.calls;
    host.collect();
    assert_eq!(host.record("fx-loop").stats.calls, calls, "a quarantined plugin is not called");
    assert_bystander_fine(&host);

    host.enable("fx-loop", &[]);
    assert_eq!(host.state("fx-loop"), "running", "enabling clears the quarantine");
    assert_eq!(host.record("fx-loop").stats.consecutive_faults, 0);
}

#[test]
fn a_memory_bomb_hits_the_memory_cap() {
    let host = Host::new(Sandbox::new(), |s| {
        s.memory_bytes = 16 << 20;
        s.limits.call_timeout = Duration::from_secs(60);
    });
    install("fx-memory-bomb", &host.sandbox.plugins(), "bomb.wasm");
    install(BYSTANDER, &host.sandbox.plugins(), "bystander.wasm");
    host.scan();
    host.collect();
    assert_eq!(last_error(&host, "fx-memory-bomb"), "collect grew memory past the cap of 16 MiB");
    let peak = host.record("fx-memory-bomb").stats.memory_peak_bytes;
    assert!(peak <= 16 << 20 && peak > 8 << 20, "peak {peak}");
    assert_bystander_fine(&host);
}

#[test]
fn a_million_metrics_is_contained() {
    // With the default memory cap, building the answer alone breaks the cap.
    let host = Host::new(Sandbox::new(), |s| s.limits.call_timeout = Duration::from_secs(60));
    install("fx-flood", &host.sandbox.plugins(), "flood.wasm");
    install(BYSTANDER, &host.sandbox.plugins(), "bystander.wasm");
    host.scan();
    assert!(host.metrics_of("fx-flood").is_none());
    assert_eq!(last_error(&host, "fx-flood"), "collect grew memory past the cap of 64 MiB");
    assert_bystander_fine(&host);

    // With room to build it, the answer is refused at the boundary before the
    // host copies it: the host never holds a million metrics.
    // (A generous deadline: building a million metrics is slow on a busy machine.)
    let host = Host::new(Sandbox::new(), |s| {
        s.memory_bytes = 1 << 30;
        s.limits.call_timeout = Duration::from_secs(60);
    });
    install("fx-flood", &host.sandbox.plugins(), "flood.wasm");
    host.scan();
    assert!(host.metrics_of("fx-flood").is_none());
    let error = last_error(&host, "fx-flood");
    assert_eq!(error, "collect returned too much: more than 1024 KiB of results");
}

#[test]
fn more_metrics_than_the_cap_are_refused() {
    let host = Host::new(Sandbox::new(), |s| s.limits.max_metrics = 2);
    install(BYSTANDER, &host.sandbox.plugins(), "bystander.wasm");
    host.scan();
    assert!(host.metrics_of(BYSTANDER).is_none());
    assert_eq!(last_error(&host, BYSTANDER), "collect returned too much: 5 metrics, the cap is 2");
}

#[test]
fn a_host_call_without_its_capability_is_refused() {
    let host = Host::with(Sandbox::new(), &["fx-undeclared", BYSTANDER]);
    assert_eq!(host.state("fx-undeclared"), "running", "it declared nothing, so nothing was withheld");
    assert!(host.metrics_of("fx-undeclared").is_none());
    let error = last_error(&host, "fx-undeclared");
    assert!(
        error.starts_with("collect was refused: called kv.set without the 'kv' capability")
            && error.contains("monitor plugins enable fx-undeclared --grant kv"),
        "{error}"
    );
    assert_bystander_fine(&host);
}

#[test]
fn files_environment_and_network_are_out_of_reach_without_a_grant() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let sandbox = Sandbox::new();
    let config = format!("connect = \"{}\"\n", listener.local_addr().unwrap());
    std::fs::write(sandbox.plugins().join("fx-fs-escape.toml"), config).unwrap();
    // SAFETY: set before the host starts any thread that reads the environment.
    unsafe { std::env::set_var("MONITOR_TEST_SECRET", "leak") };
    let host = Host::with(sandbox, &["fx-fs-escape"]);
    let metrics = host.metrics_of("fx-fs-escape").expect("fx-fs-escape reports its attempts");
    let value = |name: &str| metrics.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("{name}")).value;
    assert_eq!(value("escape_succeeded"), 0.0, "reading /etc/passwd or listing / must fail in the sandbox");
    assert_eq!(value("environment_variables"), 0.0, "the host's environment is not passed in");
    assert_eq!(value("connect_succeeded"), 0.0, "no network");
    assert!(listener.accept().is_err(), "nothing connected to the listener");
}

#[test]
fn a_returned_error_is_counted_apart_from_faults_and_never_quarantines() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.plugins().join("fx-flaky.toml"), "fail = true\n").unwrap();
    let host = Host::with(sandbox, &["fx-flaky"]);
    for _ in 0..10 {
        host.collect();
    }
    let record = host.record("fx-flaky");
    assert_eq!((record.stats.faults, record.stats.consecutive_faults, record.stats.errors), (0, 0, 10));
    assert_eq!(record.stats.last_error.as_deref(), Some("collect returned an error: configured to fail"));
    assert_eq!(host.state("fx-flaky"), "running", "an error the contract allows is not a fault");
}

#[test]
fn broken_files_are_reported_and_do_not_stop_the_rest() {
    let sandbox = Sandbox::new();
    let dir = sandbox.plugins();
    std::fs::write(dir.join("notes.wasm"), "this is not wasm\n").unwrap();
    // The smallest valid core module: magic and version 1.
    std::fs::write(dir.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    install("fx-not-a-plugin", &dir, "cli-tool.wasm");
    install("fx-v2", &dir, "future.wasm");
    install("fx-trap-describe", &dir, "trap.wasm");
    install(BYSTANDER, &dir, "a.wasm");
    install(BYSTANDER, &dir, "b.wasm");
    let host = Host::new(sandbox, |_| {});
    host.scan();

    let listing = host.manager.listing().unwrap();
    let problem = |file: &str| {
        listing
            .problems
            .iter()
            .find(|p| p.file.ends_with(file))
            .unwrap_or_else(|| panic!("no problem reported for {file}: {:?}", listing.problems))
            .error
            .clone()
    };
    assert!(problem("notes.wasm").ends_with("notes.wasm is not a WebAssembly file (it does not start with \\0asm); plugins are .wasm components built for wasm32-wasip2"));
    assert!(
        problem("core.wasm")
            .contains("core.wasm is a core WebAssembly module, not a component; build the plugin for wasm32-wasip2")
    );
    let no_world = problem("cli-tool.wasm");
    assert!(no_world.contains("implements no monitor world (it exports: wasi:cli/run@"), "{no_world}");
    let v2 = problem("future.wasm");
    assert!(v2.contains("was built against monitor:plugin@0.2.0; this host speaks monitor:plugin@0.1.0"), "{v2}");
    let trap = problem("trap.wasm");
    assert!(trap.contains("trap.wasm: describe trapped"), "{trap}");
    let twice = problem("b.wasm");
    assert!(twice.contains("two plugins are named 'derived-metrics'") && twice.contains("a.wasm"), "{twice}");
    assert_eq!(listing.problems.len(), 6, "{:?}", listing.problems);
    assert_bystander_fine(&host);
}

#[test]
fn the_compile_cache_is_used_on_the_second_load() {
    let sandbox = Sandbox::new();
    let runtime = monitor_host::plugin::Runtime::new(Some(sandbox.data().join("cache"))).unwrap();
    let bytes = std::fs::read(wasm(BYSTANDER)).unwrap();
    let first = monitor_host::plugin::load::load_bytes(&runtime, &bytes, "p.wasm").unwrap();
    let second = monitor_host::plugin::load::load_bytes(&runtime, &bytes, "p.wasm").unwrap();
    assert!(!first.from_cache && second.from_cache);
    // A damaged artifact is recompiled, not trusted. (Replaced, not rewritten in
    // place: loaded components map the file.)
    for entry in std::fs::read_dir(sandbox.data().join("cache")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"garbage").unwrap();
    }
    let third = monitor_host::plugin::load::load_bytes(&runtime, &bytes, "p.wasm").unwrap();
    assert!(!third.from_cache);
}
