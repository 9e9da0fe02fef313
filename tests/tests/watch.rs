//! File watching with real files, real commands and the real binary: `monitor
//! watch-files` in the foreground, and `[[watch]]` jobs in a running host driven
//! by `monitor jobs`. Commands write what they were given to a log outside the
//! watched tree; every wait polls that log (or the process) until a deadline.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use monitor_tests::{Daemon, Sandbox, monitor_bin, wait_for};

const LIMIT: Duration = Duration::from_secs(20);

/// A watched tree `p/` and, beside it, `out/` for what commands record.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("p")).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        Project { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("p").canonicalize().unwrap()
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join("out").join(name)
    }

    fn file(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.file(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// The lines commands appended to `out/runs.log` ("start REASON PATHS..." and "end ...").
    fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.out("runs.log")).unwrap_or_default().lines().map(str::to_string).collect()
    }

    fn starts(&self) -> Vec<String> {
        self.runs().into_iter().filter(|l| l.starts_with("start ")).collect()
    }

    /// Waits until some run started with exactly `reason` and these paths (relative to the root).
    fn wait_start(&self, reason: &str, relative: &[&str]) {
        let root = self.root();
        let mut expected = format!("start {reason}");
        for r in relative {
            let path = if r.is_empty() { root.clone() } else { root.join(r) };
            expected.push(' ');
            expected.push_str(&path.display().to_string());
        }
        wait_for(&format!("a run '{expected}'"), LIMIT, || self.starts().contains(&expected).then_some(()));
    }

    fn open_gate(&self) {
        std::fs::write(self.out("gate"), "").unwrap();
    }

    /// `monitor watch-files p FLAGS -- sh -c SCRIPT sh`, with `$OUT` the out
    /// directory; the paths as arguments unless FLAGS say how.
    fn watch_files(&self, flags: &[&str], script: &str) -> Daemon {
        let mut command = Command::new(monitor_bin());
        command.arg("watch-files").arg(self.root()).args(flags);
        if !flags.contains(&"--pass") {
            command.args(["--pass", "args"]);
        }
        command
            .args(["--", "sh", "-c", script, "sh"])
            .env("MONITOR_DATA_DIR", self.dir.path().join("data"))
            .env("OUT", self.dir.path().join("out"));
        let mut proc = Daemon::spawn(command);
        proc.wait_log("watch-files to start", "[monitor watch] watching");
        proc
    }
}

/// Records a run: "start REASON PATHS..." then "end".
const RECORD: &str = r#"echo "start $MONITOR_WATCH_REASON $*" >> "$OUT/runs.log"; echo end >> "$OUT/runs.log""#;
/// Records the start, then waits for `$OUT/gate` unless it is already there.
const GATED: &str = r#"echo "start $MONITOR_WATCH_REASON $*" >> "$OUT/runs.log"; while [ ! -e "$OUT/gate" ]; do sleep 0.02; done; echo end >> "$OUT/runs.log""#;

/// Whether a process runs (a zombie waiting for its reaper does not count).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> u32 {
    wait_for("the command to write its grandchild's PID", LIMIT, || {
        std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok())
    })
}

#[test]
fn creates_modifies_renames_and_deletes_reach_the_command() {
    let project = Project::new();
    let _w = project.watch_files(&["--debounce", "50ms"], RECORD);
    project.write("a.txt", "1");
    project.wait_start("changes", &["a.txt"]);
    project.write("a.txt", "2");
    wait_for("a second run", LIMIT, || (project.starts().len() == 2).then_some(()));
    std::fs::rename(project.file("a.txt"), project.file("b.txt")).unwrap();
    // The new name exists (changed), the old one does not (deleted): one run, both paths.
    project.wait_start("changes", &["b.txt", "a.txt"]);
    std::fs::remove_file(project.file("b.txt")).unwrap();
    project.wait_start("deletions", &["b.txt"]);
    std::fs::create_dir_all(project.file("sub/deeper")).unwrap();
    project.write("sub/deeper/c.txt", "x");
    project.wait_start("changes", &["sub/deeper/c.txt"]);
}

#[test]
fn by_default_the_command_runs_as_written_and_the_paths_are_in_the_environment() {
    let project = Project::new();
    let script = r#"echo "args:$#" >> "$OUT/runs.log"; printf '%s' "$MONITOR_WATCH_PATHS" >> "$OUT/runs.log"; echo "start $MONITOR_WATCH_REASON" >> "$OUT/runs.log""#;
    let mut command = Command::new(monitor_bin());
    command
        .arg("watch-files")
        .arg(project.root())
        .args(["--debounce", "50ms", "--", "sh", "-c", script, "sh"])
        .env("MONITOR_DATA_DIR", project.dir.path().join("data"))
        .env("OUT", project.dir.path().join("out"));
    let mut watcher = Daemon::spawn(command);
    watcher.wait_log("watch-files to start", "[monitor watch] watching");
    project.write("a.txt", "");
    let log = wait_for("the run", LIMIT, || {
        let log = std::fs::read_to_string(project.out("runs.log")).ok()?;
        log.contains("start changes").then_some(log)
    });
    let expected = format!("args:0\n{}\nstart changes\n", project.file("a.txt").display());
    assert_eq!(log, expected, "no path appended to the command; the path in MONITOR_WATCH_PATHS");
}

#[test]
fn an_editors_atomic_save_is_one_change_of_the_file() {
    let project = Project::new();
    project.write("doc.md", "old");
    let _w = project.watch_files(&["--debounce", "100ms"], RECORD);
    for round in 0..3 {
        // What editors do: write a temporary file beside the target, rename it over.
        project.write(".doc.md.swp", &format!("new {round}"));
        std::fs::rename(project.file(".doc.md.swp"), project.file("doc.md")).unwrap();
        wait_for("the save's run", LIMIT, || (project.starts().len() == round + 1).then_some(()));
    }
    let expected = format!("start changes {}", project.file("doc.md").display());
    assert!(project.starts().iter().all(|l| *l == expected), "{:?}", project.runs());
}

#[test]
fn a_burst_of_thousands_of_files_is_batched_and_nothing_is_lost() {
    let project = Project::new();
    let script = r#"for p in "$@"; do echo "$p"; done >> "$OUT/paths.log"; echo "start $MONITOR_WATCH_REASON" >> "$OUT/runs.log""#;
    let _w = project.watch_files(&["--debounce", "200ms"], script);
    let n = 3000;
    std::fs::create_dir(project.file("burst")).unwrap();
    for i in 0..n {
        std::fs::write(project.file(&format!("burst/f{i:04}")), "x").unwrap();
    }
    let seen = wait_for("every file in the command's paths", LIMIT, || {
        let text = std::fs::read_to_string(project.out("paths.log")).unwrap_or_default();
        let seen: std::collections::BTreeSet<String> = text.lines().map(str::to_string).collect();
        (seen.len() >= n).then_some(seen)
    });
    assert_eq!(seen.len(), n, "only the files, each once");
    let runs = project.starts().len();
    assert!(runs <= 5, "{n} files in {runs} runs; expected a few batches");
}

#[test]
fn ignore_files_and_exclude_globs_leave_paths_out() {
    let project = Project::new();
    project.write(".gitignore", "*.log\nout-dir/\n");
    let _w = project
        .watch_files(&["--exclude", "build", "--exclude", "*.tmp", "--include", "*.txt", "--include", "*.log"], RECORD);
    project.write("a.log", "ignored by .gitignore");
    project.write("out-dir/x.txt", "ignored directory");
    project.write("build/y.txt", "excluded directory");
    project.write("z.tmp", "excluded name");
    project.write("notes.md", "not included");
    project.write("keep.txt", "counts");
    project.wait_start("changes", &["keep.txt"]);
    assert_eq!(project.starts().len(), 1, "{:?}", project.runs());
    // A changed .gitignore applies at once: re-include *.log below.
    project.write(".gitignore", "out-dir/\n");
    project.write("later.log", "now counts");
    project.wait_start("changes", &["later.log"]);
    assert!(!project.runs().iter().any(|l| l.contains("/a.log") || l.contains("/build/") || l.contains("/z.tmp")));
}

#[test]
fn paths_can_come_on_stdin_or_one_run_per_file() {
    let project = Project::new();
    let w = project.watch_files(&["--pass", "stdin"], r#"cat >> "$OUT/stdin.json"; echo >> "$OUT/stdin.json""#);
    project.write("a.txt", "1");
    let json: serde_json::Value = wait_for("the JSON on stdin", LIMIT, || {
        serde_json::from_str(std::fs::read_to_string(project.out("stdin.json")).ok()?.trim()).ok()
    });
    assert_eq!(json["paths"], serde_json::json!([project.file("a.txt")]), "{json}");
    assert_eq!((json["job"].as_str(), json["reason"].as_str()), (Some("watch-files"), Some("changes")));
    assert_eq!(json["root"], serde_json::json!(project.root()));
    drop(w);

    let project = Project::new();
    let _w = project.watch_files(&["--pass", "each", "--debounce", "200ms"], RECORD);
    std::fs::write(project.file("x"), "").unwrap();
    std::fs::write(project.file("y"), "").unwrap();
    project.wait_start("changes", &["x"]);
    project.wait_start("changes", &["y"]);
}

#[test]
fn busy_queue_coalesces_what_arrives_during_a_run() {
    let project = Project::new();
    let mut w = project.watch_files(&["--debounce", "50ms", "--busy", "queue"], GATED);
    project.write("first", "");
    project.wait_start("changes", &["first"]);
    project.write("second", "");
    w.wait_log("the first batch to queue", "queued for the next run");
    project.write("third", "");
    wait_for("the second batch to queue", LIMIT, || (w.log().matches("queued").count() == 2).then_some(()));
    project.open_gate();
    project.wait_start("changes", &["second", "third"]);
    wait_for("both runs to end", LIMIT, || (project.runs().iter().filter(|l| *l == "end").count() == 2).then_some(()));
    assert_eq!(project.starts().len(), 2, "{:?}", project.runs());
}

#[test]
fn busy_skip_drops_what_arrives_during_a_run() {
    let project = Project::new();
    let mut w = project.watch_files(&["--debounce", "50ms", "--busy", "skip"], GATED);
    project.write("first", "");
    project.wait_start("changes", &["first"]);
    project.write("dropped", "");
    w.wait_log("the batch to be skipped", "skipped");
    project.open_gate();
    wait_for("the first run to end", LIMIT, || project.runs().iter().any(|l| l == "end").then_some(()));
    project.write("next", "");
    project.wait_start("changes", &["next"]);
    assert_eq!(project.starts().len(), 2, "{:?}", project.runs());
}

#[test]
fn busy_restart_stops_the_group_and_runs_again_with_every_path() {
    let project = Project::new();
    let script = r#"echo "start $MONITOR_WATCH_REASON $*" >> "$OUT/runs.log"; [ -e "$OUT/started" ] && exit 0; touch "$OUT/started"; trap 'echo term >> "$OUT/runs.log"; exit 143' TERM; sleep 300 & echo $! > "$OUT/grandchild"; wait"#;
    let _w = project.watch_files(&["--debounce", "50ms", "--busy", "restart", "--grace", "5s"], script);
    project.write("first", "");
    project.wait_start("changes", &["first"]);
    let grandchild = read_pid(&project.out("grandchild"));
    project.write("second", "");
    // The interrupted run's path comes back with the new one.
    project.wait_start("changes", &["first", "second"]);
    assert!(project.runs().contains(&"term".to_string()), "SIGTERM first: {:?}", project.runs());
    wait_for("the grandchild to be gone", LIMIT, || (!alive(grandchild)).then_some(()));
}

#[test]
fn a_timeout_kills_the_command_and_failures_are_recorded_while_watching_goes_on() {
    let project = Project::new();
    let script = r#"echo "start $MONITOR_WATCH_REASON $*" >> "$OUT/runs.log"; case "$1" in *slow) sleep 300;; *fail) echo broken >&2; exit 3;; *crash) kill -KILL $$;; esac"#;
    let mut w = project.watch_files(&["--debounce", "50ms", "--timeout", "300ms", "--grace", "200ms"], script);
    project.write("slow", "");
    w.wait_log("the timeout", "#1 timed out after 300ms");
    project.write("fail", "");
    w.wait_log("the failure", "#2 exit 3 in");
    assert!(w.log().contains(": broken"), "the last line of stderr is shown:\n{}", w.log());
    project.write("crash", "");
    w.wait_log("the crash", "#3 killed by signal 9");
    project.write("fine", "");
    w.wait_log("a good run after all that", "#4 exit 0");
}

#[test]
fn stopping_watch_files_kills_the_commands_grandchildren() {
    for signal in ["INT", "TERM"] {
        let project = Project::new();
        let script = r#"sleep 300 & echo $! > "$OUT/grandchild"; wait"#;
        let mut w = project.watch_files(&["--debounce", "50ms", "--grace", "1s"], script);
        project.write("go", "");
        let grandchild = read_pid(&project.out("grandchild"));
        assert!(alive(grandchild));
        w.signal(signal);
        assert!(w.wait_exit(LIMIT).0.success(), "a clean stop on SIG{signal}");
        wait_for("the grandchild to be gone", LIMIT, || (!alive(grandchild)).then_some(()));
    }
}

#[test]
fn a_second_watcher_of_a_project_is_refused_naming_the_first() {
    let project = Project::new();
    let first = project.watch_files(&[], RECORD);
    let out = Command::new(monitor_bin())
        .args(["watch-files", project.root().to_str().unwrap(), "--", "true"])
        .env("MONITOR_DATA_DIR", project.dir.path().join("other-data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "monitor: {} is already watched by monitor PID {} (data dir {}); stop that one first",
        project.root().display(),
        first.child.id(),
        project.dir.path().join("data").display()
    );
    assert!(message.starts_with(&expected) && message.lines().count() == 1, "{message}");
}

#[test]
fn bad_flags_are_refused_with_the_fix() {
    let project = Project::new();
    let root = project.root();
    let cases: [(&[&str], &str); 3] = [
        (&["--debounce", "soon", "--", "true"], "--debounce 'soon' is not a duration up to 60s; write one like 100ms"),
        (&["--include", "a[", "--", "true"], "--include 'a[' is not valid"),
        (&["--", "true"], "cannot be watched"),
    ];
    for (i, (flags, expected)) in cases.into_iter().enumerate() {
        let target = if i == 2 { root.join("missing") } else { root.clone() };
        let out = Command::new(monitor_bin()).arg("watch-files").arg(&target).args(flags).output().unwrap();
        let message = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {message}");
        assert!(message.contains(expected) && message.lines().count() == 1, "{flags:?}: {message}");
    }
}

#[test]
fn directories_that_vanish_and_come_back_are_watched_again() {
    let project = Project::new();
    let mut w = project.watch_files(&["--debounce", "50ms"], RECORD);
    project.write("sub/a", "");
    project.wait_start("changes", &["sub/a"]);
    std::fs::remove_dir_all(project.file("sub")).unwrap();
    project.wait_start("deletions", &["sub/a"]);
    project.write("sub/b", "");
    project.wait_start("changes", &["sub/b"]);
    // The root itself goes and comes back: a rescan of the whole tree, then changes as before.
    std::fs::remove_dir_all(project.root()).unwrap();
    std::fs::create_dir(project.dir.path().join("p")).unwrap();
    w.wait_log("the rescan", "rescan (a watched path came back)");
    project.wait_start("rescan", &[""]);
    project.write("c", "");
    // (Late events of the removed tree may name its old files as deletions in the same run.)
    let c = project.file("c").display().to_string();
    wait_for("a run with c", LIMIT, || {
        project.starts().iter().any(|l| l.starts_with("start changes") && l.split(' ').any(|p| p == c)).then_some(())
    });
}

mod daemon {
    use super::*;

    fn config(sandbox: &Sandbox, project: &Project, extra: &str) -> PathBuf {
        let path = sandbox.root.path().join("host.toml");
        let text = format!(
            "[[watch]]\nname = \"build\"\npaths = [\"{}\"]\ndebounce = \"50ms\"\nshell = true\npass = \"args\"\ncommand = '''OUT='{}'; {}'''\n{extra}",
            project.root().display(),
            project.dir.path().join("out").display(),
            r#"echo "start $MONITOR_WATCH_REASON $*" >> "$OUT/runs.log"; sleep 300 & echo $! > "$OUT/grandchild"; case "$*" in *bad*) exit 4;; *hang*) wait;; esac"#
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn ok(sandbox: &Sandbox, args: &[&str]) -> String {
        let out = sandbox.monitor(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn job_view(sandbox: &Sandbox) -> serde_json::Value {
        let jobs: serde_json::Value = serde_json::from_str(&ok(sandbox, &["jobs", "list", "--json"])).unwrap();
        jobs[0].clone()
    }

    fn start(sandbox: &Sandbox, config: &Path) -> monitor_tests::Daemon {
        sandbox.start(&["--config", config.to_str().unwrap()])
    }

    #[test]
    fn jobs_run_in_the_host_and_are_listed_paused_resumed_and_triggered() {
        let (sandbox, project) = (Sandbox::new(), Project::new());
        let config = config(&sandbox, &project, "");
        let out = sandbox.monitor(&["jobs", "list"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no monitor host is running"));
        let _host = start(&sandbox, &config);

        project.write("a.txt", "");
        project.wait_start("changes", &["a.txt"]);
        let job = wait_for("the run to be recorded", LIMIT, || {
            let job = job_view(&sandbox);
            (job["runs"] == 1).then_some(job)
        });
        assert_eq!(job["last"]["outcome"], serde_json::json!({"kind": "exited", "code": 0}), "{job}");
        assert_eq!(job["state"], "idle");
        let table = ok(&sandbox, &["jobs", "list"]);
        assert!(table.lines().any(|l| l.starts_with("build") && l.contains("#1 exit 0")), "{table}");

        // Each run is a node in the progress tree.
        let tree = ok(&sandbox, &["status", "watch-build", "--json"]);
        let tree: serde_json::Value = serde_json::from_str(&tree).unwrap();
        assert_eq!(tree[1]["path"], "watch-build/exec-00", "{tree}");
        assert_eq!(tree[1]["status"], "completed", "{tree}");
        assert!(tree[1]["message"].as_str().unwrap().starts_with("#1 exit 0 in"), "{tree}");
        assert!(ok(&sandbox, &["list"]).lines().any(|l| l.starts_with("watch-build")));

        // A failure is recorded and the watcher goes on.
        project.write("bad.txt", "");
        let job = wait_for("the failure", LIMIT, || {
            let job = job_view(&sandbox);
            (job["runs"] == 2).then_some(job)
        });
        assert_eq!((job["failures"].as_u64(), job["last"]["outcome"]["code"].as_i64()), (Some(1), Some(4)));
        let tree: serde_json::Value =
            serde_json::from_str(&ok(&sandbox, &["status", "watch-build", "--json"])).unwrap();
        assert_eq!(tree[2]["status"], "failed", "{tree}");
        assert!(ok(&sandbox, &["history", "watch-build"]).contains("#2 exit 4"));

        // Paused: changes wait; resumed: they run.
        assert_eq!(ok(&sandbox, &["jobs", "pause", "build"]).trim(), "build paused");
        project.write("while-paused.txt", "");
        wait_for("the change to be queued", LIMIT, || (job_view(&sandbox)["queued"] == 1).then_some(()));
        assert_eq!(
            (job_view(&sandbox)["state"].as_str(), job_view(&sandbox)["runs"].as_u64()),
            (Some("paused"), Some(2))
        );
        let out = sandbox.monitor(&["jobs", "run", "build"]);
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("watch job 'build' is paused; run 'monitor jobs resume build' first")
        );
        ok(&sandbox, &["jobs", "resume", "build"]);
        project.wait_start("changes", &["while-paused.txt"]);

        // Run now: the whole tree.
        assert_eq!(ok(&sandbox, &["jobs", "run", "build"]).trim(), "build triggered");
        project.wait_start("manual", &[""]);
        let out = sandbox.monitor(&["jobs", "pause", "nope"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no watch job named 'nope'; jobs: build"));
    }

    #[test]
    fn a_failed_job_stays_failed_and_alerting_across_a_host_restart() {
        let (sandbox, project) = (Sandbox::new(), Project::new());
        let config = config(&sandbox, &project, "");
        let mut host = start(&sandbox, &config);
        project.write("bad.txt", "");
        wait_for("the failure", LIMIT, || (job_view(&sandbox)["failures"] == 1).then_some(()));
        let firing = || {
            let alerts: serde_json::Value = serde_json::from_str(&ok(&sandbox, &["alerts", "list", "--json"])).ok()?;
            let found = alerts.as_array()?.iter().any(|a| a["rule"] == "watch-job-failed" && a["state"] == "firing");
            found.then_some(())
        };
        wait_for("the watch-job-failed alert", LIMIT, firing);
        host.signal("TERM");
        host.wait_exit(LIMIT);

        let _host = start(&sandbox, &config);
        let job = job_view(&sandbox);
        assert_eq!((job["runs"].as_u64(), job["failures"].as_u64()), (Some(1), Some(1)), "{job}");
        assert_eq!(job["last"]["outcome"]["code"], 4, "{job}");
        // A few ticks on, the alert is still firing: the job's last run failed.
        let ticks = wait_for("a tick", LIMIT, || sandbox.metric_host("monitor_ticks_total"));
        wait_for("three ticks", LIMIT, || (sandbox.metric_host("monitor_ticks_total")? >= ticks + 3.0).then_some(()));
        firing().expect("the alert still fires after the restart");
        // The next run is numbered on.
        project.write("ok.txt", "");
        let job = wait_for("the next run", LIMIT, || {
            let job = job_view(&sandbox);
            (job["runs"] == 2).then_some(job)
        });
        assert_eq!(job["last"]["seq"], 2, "{job}");
    }

    #[test]
    fn stopping_the_host_kills_every_commands_group_and_the_project_is_locked_while_it_runs() {
        let (sandbox, project) = (Sandbox::new(), Project::new());
        let config = config(&sandbox, &project, "busy = \"queue\"\n");
        let mut host = start(&sandbox, &config);
        project.write("hang.txt", "");
        let grandchild = read_pid(&project.out("grandchild"));
        wait_for("the job to be running", LIMIT, || (job_view(&sandbox)["state"] == "running").then_some(()));

        // A second host on the same project, with another data directory, is refused.
        let other = Sandbox::new();
        let out = other.monitor(&[
            "run",
            "--plugins",
            other.plugins().to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        let message = String::from_utf8_lossy(&out.stderr);
        let expected =
            format!("is already watched by monitor PID {} (data dir {})", host.child.id(), sandbox.data().display());
        assert!(message.lines().last().unwrap_or_default().contains(&expected), "{message}");
        let out = Command::new(monitor_bin())
            .args(["watch-files", project.root().to_str().unwrap(), "--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));

        host.signal("TERM");
        let (status, _) = host.wait_exit(LIMIT);
        assert!(status.success(), "{}", host.log());
        wait_for("the grandchild to be gone", LIMIT, || (!alive(grandchild)).then_some(()));
        let tree: serde_json::Value =
            serde_json::from_str(&ok(&sandbox, &["status", "watch-build", "--json"])).unwrap();
        assert_eq!(tree[1]["status"], "cancelled", "{tree}");
    }
}

mod library {
    //! The jobs service as the daemon and the alert engine use it, in this process.

    use monitor_host::watch::config::CommandLine;
    use monitor_host::watch::jobs::Options;
    use monitor_host::watch::{Busy, Ending, JobConfig, JobEvent, Jobs, Pass, Reason};
    use tokio::sync::broadcast;

    use super::*;

    async fn next(events: &mut broadcast::Receiver<JobEvent>) -> JobEvent {
        tokio::time::timeout(LIMIT, events.recv()).await.expect("an event in time").expect("the jobs run")
    }

    fn sh(script: String) -> CommandLine {
        CommandLine::Argv(vec!["sh".into(), "-c".into(), script, "sh".into()])
    }

    #[test]
    fn subscribers_see_every_run_and_jobs_pause_by_project() {
        let project = Project::new();
        let log = project.out("runs.log").display().to_string();
        let config = JobConfig {
            name: "lib".into(),
            paths: vec![project.root()],
            recursive: true,
            include: vec![],
            exclude: vec![],
            ignore_files: true,
            debounce: "50ms".into(),
            command: sh(format!(r#"echo "start $MONITOR_WATCH_REASON $*" >> {log}; echo out; echo err >&2"#)),
            on_delete: Some(sh(format!(r#"echo "deleted $*" >> {log}; exit 2"#))),
            shell: false,
            pass: Pass::Args,
            busy: Busy::Queue,
            timeout: None,
            grace: "1s".into(),
            workdir: None,
        };
        let spec = config.validate().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let jobs = Jobs::start(vec![spec], Options::default()).unwrap();
            let mut events = jobs.subscribe();
            let a = project.file("a");
            std::fs::write(&a, "").unwrap();
            let JobEvent::Started { job, seq, reason, paths, .. } = next(&mut events).await else { panic!() };
            assert_eq!((job.as_str(), seq, reason, paths), ("lib", 1, Reason::Changes, vec![a.clone()]));
            let JobEvent::Finished(run) = next(&mut events).await else { panic!() };
            assert_eq!((run.root.clone(), run.outcome.clone()), (project.root(), Ending::Exited { code: 0 }));
            assert_eq!((run.stdout_tail.as_str(), run.stderr_tail.as_str()), ("out\n", "err\n"));
            assert!(run.finished_ms >= run.started_ms);

            // Deletions go to the delete command; its failure is an execution like any other.
            std::fs::remove_file(&a).unwrap();
            let JobEvent::Started { reason, .. } = next(&mut events).await else { panic!() };
            assert_eq!(reason, Reason::Deletions);
            let JobEvent::Finished(run) = next(&mut events).await else { panic!() };
            assert_eq!((run.outcome.clone(), run.succeeded()), (Ending::Exited { code: 2 }, false));
            assert!(project.runs().contains(&format!("deleted {}", a.display())), "{:?}", project.runs());

            // What the alert engine does on a critical alert for the project.
            assert_eq!(jobs.pause_project(&project.root()), ["lib"]);
            assert!(jobs.pause_project(&project.dir.path().join("out")).is_empty());
            std::fs::write(project.file("b"), "").unwrap();
            let deadline = std::time::Instant::now() + LIMIT;
            while jobs.view("lib").unwrap().queued == 0 {
                assert!(std::time::Instant::now() < deadline, "the change was not queued");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let view = jobs.view("lib").unwrap();
            assert_eq!((view.state.as_str(), view.runs, view.failures), ("paused", 2, 1));
            assert!(jobs.run_now("lib").unwrap_err().to_string().contains("is paused"));
            assert_eq!(jobs.resume_project(&project.root()), ["lib"]);
            let JobEvent::Started { paths, .. } = next(&mut events).await else { panic!() };
            assert_eq!(paths, [project.file("b")]);
            jobs.stop().await;
            assert!(jobs.pause("nope").unwrap_err().to_string().starts_with("no watch job named 'nope'; jobs: lib"));
        });
    }
}
