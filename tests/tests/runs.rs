//! What runs cost: `monitor exec` and `--pid` with real processes (a tree that
//! burns known CPU, holds known memory, forks, and has a grandchild that leaves
//! with `setsid`), plans, reports, run metrics, with and without a host.

use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use monitor_tests::{Daemon, Reaped, Sandbox, monitor_bin, wait_for, wait_for_or};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// The work: 0.6 s of CPU in the command with 120 MiB touched, 0.4 s and 32 MiB
/// written to a file in a child, 0.4 s in a grandchild that calls `setsid` and
/// whose parent ends first; the command waits for the grandchild's mark before it
/// ends. Prints one line.
const WORK: &str = r#"
import os, sys, time

def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

mark = sys.argv[1]
memory = bytearray(120 * 1024 * 1024)
for i in range(0, len(memory), 4096):
    memory[i] = 1
child = os.fork()
if child == 0:
    burn(0.4)
    with open(mark + ".data", "wb") as f:
        f.write(b"x" * (32 * 1024 * 1024))
    os._exit(0)
middle = os.fork()
if middle == 0:
    os.setsid()
    if os.fork() == 0:
        burn(0.4)
        open(mark, "w").close()
        os._exit(0)
    os._exit(0)
burn(0.6)
os.waitpid(child, 0)
os.waitpid(middle, 0)
while not os.path.exists(mark):
    time.sleep(0.01)
print("work done")
"#;

/// What the work uses by construction, in CPU seconds; interpreters starting
/// and forking add a little, which the tolerance covers.
const WORK_CPU: f64 = 1.4;
const CPU_TOLERANCE: f64 = 0.5;

fn node<'a>(tree: &'a Value, path: &str) -> &'a Value {
    tree.as_array().unwrap().iter().find(|n| n["path"] == path).unwrap_or_else(|| panic!("no {path} in {tree}"))
}

fn status_json(sandbox: &Sandbox, run: &str) -> Value {
    let out = sandbox.monitor(&["status", run, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn exec(sandbox: &Sandbox, node: &str, command: &[&str]) -> std::process::Output {
    let mut args = vec!["exec", node, "--every", "200ms", "--"];
    args.extend(command);
    sandbox.monitor(&args)
}

fn work(sandbox: &Sandbox) -> Vec<String> {
    let script = sandbox.root.path().join("work.py");
    std::fs::write(&script, WORK).unwrap();
    let mark = sandbox.root.path().join("mark");
    ["python3".into(), script.display().to_string(), mark.display().to_string()].to_vec()
}

fn check_work_figures(node: &Value) {
    let r = &node["resources"];
    let cpu = r["cpu_secs"].as_f64().unwrap();
    assert!(
        (WORK_CPU..WORK_CPU + CPU_TOLERANCE).contains(&cpu),
        "cpu {cpu} s, expected {WORK_CPU} s + up to {CPU_TOLERANCE}: {node}"
    );
    let rss = r["rss_peak_bytes"].as_u64().unwrap();
    assert!(rss >= 120 << 20, "peak RSS {rss} holds the 120 MiB the command touched: {node}");
    assert!(rss < 1 << 30, "and not a stranger's memory: {node}");
    // The child's writes reach its parent's counters when it is reaped: counted once.
    let written = r["written_bytes"].as_u64().unwrap();
    assert!((32 << 20..48 << 20).contains(&written), "written {written} bytes, 32 MiB once: {node}");
    assert_eq!(r["processes"], 0, "all ended: {node}");
}

#[test]
fn exec_records_the_whole_tree_without_a_host() {
    let sandbox = Sandbox::new();
    let command = work(&sandbox);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let out = exec(&sandbox, "nightly/train", &command);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "work done\n", "the command's output, nothing on top");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let tree = status_json(&sandbox, "nightly");
    let train = node(&tree, "nightly/train");
    assert_eq!(train["status"], "completed");
    assert_eq!(train["metadata"]["exit_code"], 0);
    check_work_figures(train);
    assert_eq!(
        node(&tree, "nightly")["resources"]["cpu_secs"],
        train["resources"]["cpu_secs"],
        "the run sums its phase"
    );
}

#[test]
fn exec_ends_with_the_commands_status_and_says_how_it_ended() {
    let sandbox = Sandbox::new();
    let out = exec(&sandbox, "ci/lint", &["sh", "-c", "echo checking; exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "checking\n");
    let tree = status_json(&sandbox, "ci");
    let lint = node(&tree, "ci/lint");
    assert_eq!((lint["status"].as_str(), lint["message"].as_str()), (Some("failed"), Some("exit status 7")));

    // A bad node runs nothing; a command that is not there fails the node and says so.
    let mark = sandbox.root.path().join("ran");
    let out = exec(&sandbox, "ci/no good", &["touch", mark.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no good"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!mark.exists(), "the command did not run");
    let out = exec(&sandbox, "ci/missing", &["no-such-command-here"]);
    assert_eq!(out.status.code(), Some(127), "as a shell says a command is not found");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot run 'no-such-command-here'") && stderr.contains("PATH"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(node(&status_json(&sandbox, "ci"), "ci/missing")["status"], "failed");
}

/// Whether any process's command line holds `text`.
fn running(text: &str) -> bool {
    let out = Command::new("pgrep").arg("-f").arg(text).output().unwrap();
    out.status.success()
}

#[test]
fn exec_passes_sigterm_to_the_whole_command_and_ends_cancelled() {
    let sandbox = Sandbox::new();
    // A shell whose child would outlive it if only the shell heard the signal.
    let marker = format!("sleep 3{}", std::process::id() % 1000 + 1000);
    let mut child = Command::new(monitor_bin())
        .args(["exec", "jobs/wait", "--", "sh", "-c", &format!("{marker}; echo never")])
        .env("MONITOR_DATA_DIR", sandbox.data())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the command to start", LIMIT, || running(&format!("^{marker}")).then_some(()));
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = wait_for("exec to end", LIMIT, || child.try_wait().unwrap());
    assert_eq!(status.signal(), Some(15), "it dies of the signal that ended the command, as a shell expects");
    wait_for("the shell's child to stop too", LIMIT, || (!running(&format!("^{marker}"))).then_some(()));
    let tree = status_json(&sandbox, "jobs");
    let wait = node(&tree, "jobs/wait");
    assert_eq!((wait["status"].as_str(), wait["message"].as_str()), (Some("cancelled"), Some("stopped by SIGTERM")));
}

fn start_host(sandbox: &Sandbox) -> Daemon {
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "processes_interval_ms = 500\n").unwrap();
    sandbox.start(&["--config", config.to_str().unwrap()])
}

fn api_tree(sandbox: &Sandbox, run: &str) -> Value {
    let (status, body) = sandbox.api_get(&format!("/v1/runs/{run}"), Some(&sandbox.token()));
    assert!(status.contains("200"), "{status}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_signal_sent_to_exec_reaches_the_command_once() {
    let sandbox = Sandbox::new();
    let count = sandbox.root.path().join("count");
    let script = format!(
        "import os, signal, time\nseen = []\nsignal.signal(signal.SIGTERM, lambda *_: seen.append(1))\n\
         open('{ready}', 'w').close()\nwhile not seen: time.sleep(0.01)\ntime.sleep(0.5)\n\
         open('{count}', 'w').write(str(len(seen)))",
        ready = count.with_extension("ready").display(),
        count = count.display()
    );
    let mut child = Command::new(monitor_bin())
        .args(["exec", "jobs/once", "--", "python3", "-c", &script])
        .env("MONITOR_DATA_DIR", sandbox.data())
        .spawn()
        .unwrap();
    wait_for("the command to be ready", LIMIT, || count.with_extension("ready").exists().then_some(()));
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = wait_for("exec to end", LIMIT, || child.try_wait().unwrap());
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "1", "one SIGTERM, not one per way it could go");
    assert!(status.success(), "the command handled it and ended well: {status}");
}

#[test]
fn with_a_host_exec_reports_through_it_and_runs_become_metrics() {
    let sandbox = Sandbox::new();
    let _host = start_host(&sandbox);
    let command = work(&sandbox);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let out = exec(&sandbox, "build-7/compile", &command);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check_work_figures(node(&api_tree(&sandbox, "build-7"), "build-7/compile"));
    // The run and its phase, with their resources, on /metrics for Prometheus (at the
    // first tick after the last report).
    let finished = r#"monitor_run_progress_ratio{node="build-7",run="build-7"} 1"#;
    let exposition = wait_for("the finished run on /metrics", LIMIT, || {
        let (_, body) = sandbox.api_get("/metrics", Some(&sandbox.token()));
        body.contains(finished).then_some(body)
    });
    let line = exposition
        .lines()
        .find(|l| l.starts_with("monitor_run_cpu_seconds{") && l.contains(r#"node="build-7/compile""#))
        .unwrap_or_else(|| panic!("{exposition}"));
    assert!(line.contains(r#"run="build-7""#), "{line}");
    assert!(!exposition.contains("monitor_run_cpu_percent{"), "what it uses now is for running nodes only");
}

/// The host dies (`kill -9`) while the command runs: the command goes on, and its end
/// is recorded in the database directly, where the next host finds it.
#[test]
fn exec_outlives_a_host_killed_while_the_command_runs() {
    let sandbox = Sandbox::new();
    let mut host = start_host(&sandbox);
    let go = sandbox.root.path().join("go");
    let wait = format!("while [ ! -e {} ]; do sleep 0.05; done; echo finished", go.display());
    let mut child = Command::new(monitor_bin())
        .args(["exec", "night/load", "--every", "200ms", "--", "sh", "-c", &wait])
        .env("MONITOR_DATA_DIR", sandbox.data())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the node through the host", LIMIT, || {
        let (status, body) = sandbox.api_get("/v1/runs/night", Some(&sandbox.token()));
        (status.contains("200") && body.contains("night/load")).then_some(())
    });
    host.signal("KILL");
    host.wait_exit(LIMIT);
    std::fs::write(&go, b"").unwrap();
    wait_for("exec to end", LIMIT, || child.try_wait().unwrap());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "finished\n");
    let tree = status_json(&sandbox, "night");
    assert_eq!(node(&tree, "night/load")["status"], "completed", "{tree}");
}

/// A process that burns CPU until it is killed.
fn burner() -> Reaped {
    Reaped::spawn(Command::new("python3").args(["-c", "while True: pass"]))
}

#[test]
fn a_node_follows_an_attached_pid_and_refuses_ones_it_must_not() {
    let sandbox = Sandbox::new();
    let host = start_host(&sandbox);
    let busy = burner();
    let pid = busy.id().to_string();
    let out = sandbox.monitor(&["progress", "start", "etl/load", "--pid", &pid]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen = std::cell::RefCell::new(Value::Null);
    let cpu = wait_for_or(
        "a second of CPU on the node",
        LIMIT,
        || {
            *seen.borrow_mut() = node(&api_tree(&sandbox, "etl"), "etl/load").clone();
            let resources = seen.borrow()["resources"].clone();
            resources["cpu_secs"].as_f64().filter(|c| *c >= 1.0).map(|c| (c, resources))
        },
        || format!("the node read {}\nthe host logged:\n{}", seen.borrow(), host.log()),
    );
    assert!(cpu.1["processes"] == 1 && cpu.1["cpu_percent"].as_f64().unwrap() > 0.0, "{}", cpu.1);
    drop(busy);
    let ended = wait_for("the end of attribution", LIMIT, || {
        let tree = api_tree(&sandbox, "etl");
        let r = node(&tree, "etl/load")["resources"].clone();
        (r["processes"] == 0).then_some(r)
    });
    assert!(ended["cpu_secs"].as_f64().unwrap() >= cpu.0, "figures kept after the process ends");
    assert_eq!(node(&api_tree(&sandbox, "etl"), "etl/load")["status"], "running", "the reporter ends the node");

    // Refused, clearly, and nothing changes: a PID that is not running, init, and another user's.
    let refused = |pid: &str, says: &str| {
        let out = sandbox.monitor(&["progress", "start", "etl/other", "--pid", pid]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "--pid {pid}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    };
    refused("4194304", "pid 4194304 is not a running process");
    refused("1", "the system's first process");
    // Only root can start a process as another user (the unit tests check the rule for everyone).
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0 {
        let stranger = Reaped::spawn(Command::new("setpriv").args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sleep",
            "30",
        ]));
        wait_for("the stranger's process", LIMIT, || {
            std::fs::metadata(format!("/proc/{}", stranger.id())).ok().filter(|m| {
                use std::os::unix::fs::MetadataExt;
                m.uid() == 65534
            })
        });
        refused(&stranger.id().to_string(), "belongs to user id 65534");
        drop(stranger);
    }
    let tree = api_tree(&sandbox, "etl");
    assert!(tree.as_array().unwrap().iter().all(|n| n["path"] != "etl/other"), "a refused start created nothing");
}

#[test]
fn a_plan_keeps_the_run_open_between_phases_and_counts_the_phases_to_come() {
    let sandbox = Sandbox::new();
    let ok = |args: &[&str]| {
        let out = sandbox.monitor(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ok(&["progress", "plan", "deploy", "init", "build", "test", "--weights", "1,3,1"]);
    let tree = status_json(&sandbox, "deploy");
    assert_eq!(node(&tree, "deploy/build")["status"], "pending");
    assert_eq!(node(&tree, "deploy/build")["weight"], 3.0);
    ok(&["progress", "start", "deploy/init"]);
    ok(&["progress", "finish", "deploy/init"]);
    let tree = status_json(&sandbox, "deploy");
    let run = node(&tree, "deploy");
    assert_eq!(run["status"], "running", "between two phases the run goes on: {run}");
    assert!((run["progress"].as_f64().unwrap() - 0.2).abs() < 1e-9, "one fifth by weight: {run}");
    let text = String::from_utf8_lossy(&sandbox.monitor(&["status", "deploy"]).stdout).into_owned();
    assert!(text.lines().any(|l| l.trim_start().starts_with("test") && l.contains("pending")), "{text}");

    // Bad plans are refused by name and change nothing.
    for (args, says) in [
        (vec!["progress", "plan", "deploy", "a", "a"], "planned twice"),
        (vec!["progress", "plan", "deploy", "a", "b", "--weights", "1"], "1 weights for 2 phases"),
        (vec!["progress", "plan", "deploy", "a/b"], "holds a '/'"),
    ] {
        let out = sandbox.monitor(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(status_json(&sandbox, "deploy").as_array().unwrap().len(), 4);
}

#[test]
fn a_report_gives_each_phase_its_cost_and_compares_two_runs() {
    let sandbox = Sandbox::new();
    for (run, seconds) in [("night-1", "0.3"), ("night-2", "0.6")] {
        let burn = format!("import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass");
        for phase in ["build", "test"] {
            let out = exec(&sandbox, &format!("{run}/{phase}"), &["python3", "-c", &burn]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let out = sandbox.monitor(&["report", "night-1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let phases = report["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2);
    for phase in phases {
        let cpu = phase["resources"]["cpu_secs"].as_f64().unwrap();
        assert!((0.3..0.8).contains(&cpu), "{phase}");
        assert_eq!(phase["status"], "completed");
    }
    let text = String::from_utf8_lossy(&sandbox.monitor(&["report", "night-1"]).stdout).into_owned();
    assert!(text.contains("PHASE") && text.lines().any(|l| l.starts_with("build ")), "{text}");
    let markdown = String::from_utf8_lossy(&sandbox.monitor(&["report", "night-1", "--markdown"]).stdout).into_owned();
    assert!(markdown.contains("| build | completed |"), "{markdown}");
    let out = sandbox.monitor(&["report", "night-1", "--compare", "night-2"]);
    let compared = String::from_utf8_lossy(&out.stdout).into_owned();
    let build = compared.lines().find(|l| l.starts_with("build")).unwrap_or_else(|| panic!("{compared}"));
    assert!(build.contains('+') && build.contains('%'), "twice the CPU shows as a rise: {compared}");
    let out = sandbox.monitor(&["report", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run named 'nope'"));
}

/// The Python reporter's own tests, against the real host binary.
#[test]
fn the_python_reporter_passes_its_tests() {
    let sdk = monitor_tests::workspace().join("sdk/python");
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "tests", "-t", "."])
        .current_dir(&sdk)
        .env("MONITOR_BIN", monitor_bin())
        .env_remove("MONITOR_URL")
        .env_remove("MONITOR_TOKEN")
        .env_remove("MONITOR_DATA_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("OK"), "{stderr}");
}
