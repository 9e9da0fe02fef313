//! What a new user meets first, with the real binary: output closed early,
//! output to a file, the host stopped, grants that cannot work, and the
//! commands the README gives.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use monitor_tests::{Reaped, Sandbox, install, monitor_bin, wait_for};

const LIMIT: Duration = Duration::from_secs(30);

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_command_whose_output_is_closed_early_ends_quietly() {
    let sandbox = Sandbox::new();
    let mut child = Command::new(monitor_bin())
        .args(["resources", "--processes"])
        .env("MONITOR_DATA_DIR", sandbox.data())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -1`: read a line, then close the pipe.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    use std::os::unix::process::ExitStatusExt;
    const SIGPIPE: i32 = 13;
    assert!(out.status.success() || out.status.signal() == Some(SIGPIPE), "{:?}", out.status);
}

#[test]
fn the_log_has_no_colour_codes_when_it_is_not_a_terminal() {
    let sandbox = Sandbox::new();
    let log = sandbox.root.path().join("host.log");
    let mut host = Command::new(monitor_bin())
        .arg("run")
        .arg("--plugins")
        .arg(sandbox.plugins())
        .env("MONITOR_DATA_DIR", sandbox.data())
        .env("MONITOR_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let text = wait_for("the ready line", LIMIT, || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.contains("monitor ready").then_some(text)
    });
    let _ = host.kill();
    let _ = host.wait();
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.contains("loaded=0") && text.contains("running=0"), "loaded and running apart: {text}");
}

#[test]
fn without_a_host_plugins_list_says_each_state_is_as_it_last_was() {
    let sandbox = Sandbox::new();
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    install("compact-status", &sandbox.plugins(), "compact-status.wasm");
    let host = sandbox.start(&[]);
    // Through the host, the formatter's line ends with a newline.
    let out = sandbox.monitor(&["status", "--format", "compact-status"]);
    assert!(out.status.success() && stdout(&out).ends_with('\n'), "{out:?}");
    drop(host);
    let out = sandbox.monitor(&["plugins", "list"]);
    let text = stdout(&out);
    let header = text.lines().next().unwrap();
    assert!(header.contains("LAST STATE"), "{text}");
    assert!(text.contains("no host is running: each state is as it last was"), "{text}");
    // Columns line up whatever the widths: every row's state starts where the header's does.
    let at = header.find("LAST STATE").unwrap();
    for row in text.lines().skip(1).filter(|l| l.starts_with("derived") || l.starts_with("compact")) {
        assert_eq!(row.get(at..at + 1).map(|c| c != " "), Some(true), "{text}");
    }
}

#[test]
fn checking_a_plugin_installs_nothing() {
    let sandbox = Sandbox::new();
    let file = install("derived-metrics", sandbox.root.path(), "candidate.wasm");
    let out = sandbox.monitor(&["plugins", "check", file.to_str().unwrap()]);
    assert!(out.status.success() && stdout(&out).contains("valid plugin"), "{}", stderr(&out));
    assert!(!sandbox.data().join("cache").exists(), "nothing compiled into the data directory");
}

#[test]
fn a_grant_that_cannot_work_is_refused_and_a_plugin_that_does_not_run_is_a_failure() {
    let sandbox = Sandbox::new();
    install("textfile-collector", &sandbox.plugins(), "textfile-collector.wasm");
    let plugins = sandbox.plugins();
    let missing = sandbox.root.path().join("no-such-dir");
    let grant = format!("fs-read:{}", missing.display());
    let out = sandbox.monitor(&[
        "plugins",
        "enable",
        "textfile-collector",
        "--grant",
        &grant,
        "--plugins",
        plugins.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a directory (does it exist?)"), "{}", stderr(&out));
    let info = stdout(&sandbox.monitor(&["plugins", "info", "textfile-collector"]));
    assert!(
        info.contains("NOT GRANTED; run 'monitor plugins enable textfile-collector --grant fs-read:DIR'"),
        "{info}"
    );

    // Granted a real directory but configured wrong: it does not run, and enable says so.
    let dir = sandbox.root.path().join("prom");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(plugins.join("textfile-collector.toml"), "directory = 3\n").unwrap();
    let _host = sandbox.start(&[]);
    let grant = format!("fs-read:{}", dir.display());
    let out = sandbox.monitor(&["plugins", "enable", "textfile-collector", "--grant", &grant]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("textfile-collector is not running: failed: invalid configuration"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn api_env_prints_the_running_host_s_address_and_token() {
    let sandbox = Sandbox::new();
    let out = sandbox.monitor(&["api-env"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no monitor host is running on"), "{}", stderr(&out));
    let _host = sandbox.start(&[]);
    let out = sandbox.monitor(&["api-env"]);
    let text = stdout(&out);
    assert_eq!(
        text,
        format!("export MONITOR_URL=http://{}\nexport MONITOR_TOKEN={}\n", sandbox.addr(), sandbox.token())
    );
}

#[test]
fn plugins_kv_shows_what_a_plugin_stored() {
    let sandbox = Sandbox::new();
    install("fx-kv-counter", &sandbox.plugins(), "fx-kv-counter.wasm");
    let host = sandbox.start(&[]);
    let out = sandbox.monitor(&["plugins", "enable", "fx-kv-counter", "--grant", "kv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("a count", LIMIT, || sandbox.metric("fx-kv-counter", "kv_counter_calls"));
    let text = stdout(&sandbox.monitor(&["plugins", "kv", "fx-kv-counter"]));
    assert!(text.starts_with("count  ("), "{text}");
    drop(host);
    let out = sandbox.monitor(&["plugins", "kv", "fx-kv-counter", "count", "--json"]);
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(entries[0]["text"].as_str().unwrap().parse::<u64>().unwrap() >= 1, "{entries}");
    let out = sandbox.monitor(&["plugins", "kv", "fx-kv-counter", "nope"]);
    assert!(stderr(&out).contains("has no key 'nope'"), "{}", stderr(&out));
}

#[test]
fn disk_use_is_counted_as_df_counts_it() {
    let out = Command::new("df").args(["--output=pcent", "/"]).output().unwrap();
    let df: f64 = stdout(&out).lines().nth(1).unwrap().trim().trim_end_matches('%').parse().unwrap();
    let sandbox = Sandbox::new();
    let out = sandbox.monitor(&["resources", "--json"]);
    let snapshot: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = snapshot["disks"].as_array().unwrap().iter().find(|d| d["mount_point"] == "/").unwrap().clone();
    let (used, available) = (root["used_bytes"].as_f64().unwrap(), root["available_bytes"].as_f64().unwrap());
    let ours = 100.0 * used / (used + available);
    // df rounds up; a second apart the disk may have moved a little.
    assert!((ours - df).abs() <= 2.0, "ours {ours:.1}%, df {df}%");
}

/// CPU shares are differences between two process samples; the second comes a
/// second after start, not a whole interval (here an hour) later.
#[test]
fn the_process_list_has_cpu_figures_soon_after_the_host_starts() {
    let sandbox = Sandbox::new();
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "processes_interval_ms = 3600000\n").unwrap();
    let busy = Reaped::spawn(Command::new("sh").args(["-c", "while :; do :; done"]));
    let _host = sandbox.start(&["--config", config.to_str().unwrap()]);
    let pid = busy.0.id();
    let token = sandbox.token();
    wait_for("a CPU figure for the busy process", LIMIT, || {
        let (_, body) = sandbox.api_get("/v1/processes", Some(&token));
        let list: serde_json::Value = serde_json::from_str(&body).ok()?;
        let me = list.as_array()?.iter().find(|p| p["pid"] == pid)?;
        let cpu = me["cpu_percent"].as_f64()?;
        (cpu > 0.0).then_some(cpu)
    });
    drop(busy);
}

/// One component in two roles, registered with one `export_plugin!`: the host calls
/// it in both, and the list keeps its columns.
#[test]
fn a_plugin_with_two_roles_works_in_both_and_lists_in_line() {
    let sandbox = Sandbox::new();
    install("fx-two-roles", &sandbox.plugins(), "fx-two-roles.wasm");
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    let _host = sandbox.start(&[]);
    let collects = wait_for("the plugin's metric", LIMIT, || sandbox.metric("fx-two-roles", "collects"));
    assert!(collects >= 1.0);
    let out = sandbox.monitor(&["status", "--format", "fx-two-roles"]);
    assert!(out.status.success() && stdout(&out).ends_with(" collects\n"), "{out:?}");

    let text = stdout(&sandbox.monitor(&["plugins", "list"]));
    let header = text.lines().next().unwrap();
    let row = text.lines().find(|l| l.starts_with("fx-two-roles")).expect("its row");
    assert!(row.contains("metric-provider,display-formatter"), "{text}");
    let at = header.find("STATE").unwrap();
    assert_eq!(row.get(at..at + "running".len()), Some("running"), "{text}");
    let other = text.lines().find(|l| l.starts_with("derived-metrics")).unwrap();
    assert_eq!(other.get(at..at + "running".len()), Some("running"), "{text}");
}

/// The first code block of `language` after `marker` in the README.
fn readme_block(marker: &str, language: &str) -> String {
    let readme = std::fs::read_to_string(monitor_tests::workspace().join("README.md")).unwrap();
    let after = readme.split(marker).nth(1).expect("the README section");
    let start = after.find(&format!("```{language}\n")).expect("the block") + language.len() + 4;
    after[start..].split("```").next().unwrap().to_string()
}

/// The README's "from a pipeline" snippets, pasted as written against a running
/// host: `eval "$(monitor api-env)"` and curl, then the Python reporter.
#[test]
fn the_readme_pipeline_snippets_work_as_written() {
    let sandbox = Sandbox::new();
    let _host = sandbox.start(&[]);
    let started = sandbox.monitor(&["progress", "start", "train-42/build", "--total", "10"]);
    assert!(started.status.success(), "{}", stderr(&started));
    let bin = monitor_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let shell = |script: &str, stdin: &str| {
        let mut child = Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .env("PATH", &path)
            .env("MONITOR_DATA_DIR", sandbox.data())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{script}\n{}{}", stdout(&out), stderr(&out));
        stdout(&out)
    };
    let marker = "**From a pipeline, without a process per update**";
    let answered = shell(&readme_block(marker, "sh"), "");
    let node: serde_json::Value = serde_json::from_str(&answered).unwrap_or_else(|_| panic!("{answered}"));
    assert_eq!((node["done"].as_f64(), &node["message"]), (Some(4.0), &"compiling".into()), "{answered}");

    let python = readme_block(marker, "python");
    shell("eval \"$(monitor api-env)\"; python3 -", &python);
    let tree: serde_json::Value =
        serde_json::from_slice(&sandbox.monitor(&["status", "etl", "--json"]).stdout).unwrap();
    let load = tree.as_array().unwrap().iter().find(|n| n["path"] == "etl/load").expect("the node");
    assert_eq!(
        (&load["status"], load["done"].as_f64(), &load["message"]),
        (&"completed".into(), Some(1000.0), &"loaded".into())
    );
}
