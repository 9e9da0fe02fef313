//! `monitor top` in a real terminal: tmux runs it in a detached session of a fixed
//! size, the tests type with `send-keys` and read the screen with `capture-pane`,
//! polling until the expected text appears.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use monitor_tests::{Reaped, Sandbox, install, monitor_bin, wait_for};

/// How long any one screen may take to appear (a debug build on a busy machine).
const SCREEN_WAIT: Duration = Duration::from_secs(30);

/// A host configuration: a process table every half second, the history committed
/// every second, and an alert rule that fires at the first tick (some memory is
/// always in use).
const CONFIG: &str = r#"
sample_interval_ms = 500
processes_interval_ms = 500

[metrics]
commit_every = "1s"

[[alerts.rule]]
name = "top-test-memory"
level = "warning"
kind = "threshold"
metric = "monitor_memory_used_bytes"
op = ">"
value = 0
message = "memory in use"
"#;

/// A detached tmux session on a server of its own (`tmux -L`), killed when dropped,
/// also when the test fails.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `monitor top ARGS` in a `width`×`height` window; when top ends, the shell
    /// prints `TOP-EXITED <status>` and waits, so the screen can still be read.
    fn start(name: &str, data: &Path, args: &str, width: u16, height: u16) -> Tmux {
        Tmux::start_with(name, data, args, width, height, &[])
    }

    fn start_with(name: &str, data: &Path, args: &str, width: u16, height: u16, env: &[String]) -> Tmux {
        let socket = format!("monitor-top-{name}-{}", std::process::id());
        let script = format!("'{}' top {args}; echo TOP-EXITED $?; sleep 600", monitor_bin().display());
        let data = format!("MONITOR_DATA_DIR={}", data.display());
        let tmux = Tmux { socket };
        let args = [
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-e",
            &data,
            "-e",
            "MONITOR_LOG=error",
        ];
        let mut args: Vec<&str> = args.to_vec();
        for var in env {
            args.extend(["-e", var]);
        }
        args.extend(["sh", "-c", &script]);
        let out = tmux.run(&args);
        assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux").arg("-L").arg(&self.socket).args(args).stdin(Stdio::null()).output().expect("running tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    /// Sends tmux key names (`Tab`, `Enter`, `Space`, `q`) or, with `-l`, literal text.
    fn keys(&self, keys: &[&str]) {
        let out = self.run(&[&["send-keys", "-t", "top"], keys].concat());
        assert!(out.status.success(), "tmux send-keys {keys:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn resize(&self, width: u16, height: u16) {
        let out = self.run(&["resize-window", "-t", "top", "-x", &width.to_string(), "-y", &height.to_string()]);
        assert!(out.status.success(), "tmux resize-window: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Polls the screen until `condition` holds; the last screen is in the failure message.
    fn wait(&self, what: &str, condition: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_WAIT;
        loop {
            let screen = self.screen();
            if condition(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {SCREEN_WAIT:?} waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_text(&self, text: &str) -> String {
        self.wait(&format!("'{text}' on the screen"), |s| s.contains(text))
    }

    /// Quits with `q` and waits for top to exit successfully.
    fn quit(&self) {
        self.keys(&["q"]);
        self.wait_text("TOP-EXITED 0");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The time in the header's `sampled HH:MM:SS`.
fn sampled(screen: &str) -> Option<String> {
    let at = screen.find("sampled ")? + "sampled ".len();
    screen.get(at..at + 8).map(str::to_string)
}

fn started(sandbox: &Sandbox) -> monitor_tests::Daemon {
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, CONFIG).unwrap();
    sandbox.start(&["--config", config.to_str().unwrap()])
}

fn ok(out: &Output) {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn top_shows_every_panel_resizes_and_restores_the_terminal_on_quit() {
    let sandbox = Sandbox::new();
    let _daemon = started(&sandbox);
    let tmux = Tmux::start("panels", &sandbox.data(), "--focus system", 120, 40);
    // The running host is the source.
    tmux.wait("the host's data", |s| s.contains("┌ System") && s.contains("host  LIVE") && s.contains("MEM"));
    for title in ["┌ Processes", "┌ Progress", "┌ Alerts", "┌ Plugins", "┌ System"] {
        tmux.keys(&["Tab"]);
        let screen = tmux.wait_text(title);
        assert!(!screen.contains("Watch jobs"), "a host without jobs has no jobs section: {screen}");
    }
    tmux.keys(&["?"]);
    tmux.wait_text("Keys (? or Esc closes)");
    tmux.keys(&["Escape"]);
    tmux.wait("the help to close", |s| !s.contains("Keys (? or Esc closes)"));

    tmux.resize(80, 24);
    let screen = tmux.wait("a full 80×24 screen", |s| {
        let lines: Vec<&str> = s.lines().collect();
        lines.len() == 24
            && lines.iter().all(|l| l.chars().count() <= 80)
            && lines[0].contains("LIVE")
            && lines[2].starts_with("┌ System")
            && lines[2].trim_end().ends_with('┐')
            && lines[23].contains("q quit")
    });
    assert!(screen.contains("CPU") && screen.contains("MEM"), "{screen}");

    tmux.keys(&["q"]);
    let screen = tmux.wait_text("TOP-EXITED 0");
    assert!(!screen.contains("┌ System") && !screen.contains("q quit"), "the normal screen is back: {screen}");
}

#[test]
fn top_focus_option_opens_a_panel_and_shows_a_running_run() {
    let sandbox = Sandbox::new();
    let _daemon = started(&sandbox);
    ok(&sandbox.monitor(&["progress", "start", "train-7/fit", "--total", "10"]));
    ok(&sandbox.monitor(&["progress", "update", "train-7/fit", "--done", "4", "--message", "epoch 4"]));
    ok(&sandbox.monitor(&["progress", "start", "train-7/eval", "--total", "2"]));
    let tmux = Tmux::start("progress", &sandbox.data(), "--focus progress", 100, 30);
    let screen = tmux.wait("the run's tree", |s| s.contains("train-7") && s.contains("  fit") && s.contains("epoch 4"));
    assert!(screen.contains("Progress · 1 running of 1 runs") && screen.contains("4/10"), "{screen}");
    assert!(screen.contains(" 40%"), "{screen}");

    // Updates show up while it runs.
    ok(&sandbox.monitor(&["progress", "update", "train-7/fit", "--done", "9"]));
    tmux.wait_text("9/10");
    ok(&sandbox.monitor(&["progress", "fail", "train-7/eval"]));
    tmux.wait_text("failed");
    tmux.quit();
}

#[test]
fn top_pause_freezes_the_screen_and_resume_catches_up() {
    let sandbox = Sandbox::new();
    let _daemon = started(&sandbox);
    let tmux = Tmux::start("pause", &sandbox.data(), "--focus system --interval 200ms", 100, 30);
    // Two different sample times: the screen is moving.
    let first = sampled(&tmux.wait_text("sampled ")).unwrap();
    tmux.wait("the sample time to move", |s| sampled(s).is_some_and(|t| t != first));

    tmux.keys(&["Space"]);
    let paused = tmux.wait_text("PAUSED");
    let frozen = sampled(&paused).unwrap();
    // The host samples every 500 ms: once its own clock is two seconds on, the view
    // has fetched newer samples several times; the screen must still show the old one.
    let host_time = || {
        let (_, body) = sandbox.api_get("/v1/resources", Some(&sandbox.token()));
        serde_json::from_str::<serde_json::Value>(&body).ok()?["timestamp_ms"].as_u64()
    };
    let start = host_time().unwrap();
    wait_for("the host to sample two seconds further", SCREEN_WAIT, || host_time().filter(|t| *t >= start + 2000));
    let still = tmux.screen();
    assert_eq!(sampled(&still).as_deref(), Some(frozen.as_str()), "paused screen changed:\n{still}");
    assert!(still.contains("PAUSED"), "{still}");

    tmux.keys(&["p"]);
    tmux.wait("the screen to catch up", |s| s.contains("LIVE") && sampled(s).is_some_and(|t| t != frozen));
}

/// A `sleep` with an argument no other process has, killed when dropped.
fn sleeper(seconds: &str) -> Reaped {
    Reaped::spawn(Command::new("sleep").arg(seconds))
}

#[test]
fn top_filters_and_sorts_processes() {
    let sandbox = Sandbox::new();
    let _daemon = started(&sandbox);
    let tag = format!("{}", 7000 + std::process::id() % 1000);
    let first = sleeper(&format!("{tag}.1"));
    let second = sleeper(&format!("{tag}.2"));
    let tmux = Tmux::start("processes", &sandbox.data(), "--focus processes", 120, 30);
    tmux.wait_text("┌ Processes");

    tmux.keys(&["/"]);
    tmux.keys(&["-l", &format!("sleep {tag}")]);
    tmux.wait_text(&format!("filter: sleep {tag}█"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("both sleeps and nothing else", |s| {
        s.contains("Processes 2 ") && s.contains(&format!("sleep {tag}.1")) && s.contains(&format!("sleep {tag}.2"))
    });
    assert!(screen.contains(&format!("filter 'sleep {tag}'")), "{screen}");

    // cpu → mem → io → pid: ascending PIDs, then descending with S.
    let row = |s: &str, pid: u32| s.find(&format!(" {pid} ")).unwrap_or(usize::MAX);
    tmux.keys(&["s", "s", "s"]);
    let screen = tmux.wait("sorted by PID, ascending", |s| s.contains("PID▲"));
    let (low, high) = (first.id().min(second.id()), first.id().max(second.id()));
    assert!(row(&screen, low) < row(&screen, high), "{screen}");
    tmux.keys(&["S"]);
    let screen = tmux.wait("sorted by PID, descending", |s| s.contains("PID▼"));
    assert!(row(&screen, high) < row(&screen, low), "{screen}");

    // Esc clears the filter: every process is back.
    tmux.keys(&["Escape"]);
    tmux.wait("the whole table", |s| !s.contains("filter '") && !s.contains("Processes 2 "));
    tmux.keys(&["C-c"]);
    tmux.wait_text("TOP-EXITED 0");
}

#[test]
fn top_draws_the_process_tree_and_signals_a_process_after_asking() {
    let sandbox = Sandbox::new();
    let _daemon = started(&sandbox);
    // Two minutes at most, with a mark no other process has.
    let tag = format!("120.{}", 8000 + std::process::id() % 1000);
    // A shell and its sleep: the sleep is drawn under the shell in the tree.
    let mut shell = Command::new("sh")
        .args(["-c", &format!("sleep {tag}; echo {tag}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let tmux = Tmux::start("signal", &sandbox.data(), "--focus processes", 120, 30);
    tmux.wait_text("┌ Processes");
    // Typed, so that the mark is in no command line of the terminal's.
    tmux.keys(&["/"]);
    tmux.keys(&["-l", &tag]);
    tmux.keys(&["Enter"]);
    tmux.wait("the shell and its sleep", |s| s.contains("Processes 2 ") && s.contains(&format!("sleep {tag}")));
    tmux.keys(&["t"]);
    let screen = tmux.wait("the sleep under the shell", |s| s.contains(&format!("└─ sleep {tag}")));
    assert!(screen.contains("· tree"), "{screen}");

    // The shell is the tree's root: the first row.
    tmux.keys(&["g", "k"]);
    tmux.wait_text(&format!("send SIGTERM to {} (sh -c sleep {tag}", shell.id()));
    tmux.keys(&["n"]);
    tmux.wait_text(&format!("no signal sent to {}", shell.id()));
    assert!(shell.try_wait().unwrap().is_none(), "n sends nothing");
    tmux.keys(&["k"]);
    tmux.wait_text("y/Enter: SIGTERM");
    tmux.keys(&["y"]);
    tmux.wait_text(&format!("sent SIGTERM to {}", shell.id()));
    let status = wait_for("the shell to end", SCREEN_WAIT, || shell.try_wait().unwrap());
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(15));
    // Its sleep lives on, orphaned: a root once the host samples again.
    tmux.wait("the orphan as a root", |s| s.contains("Processes 1 ") && !s.contains("└─ sleep"));
    let _ = Command::new("pkill").args(["-f", &format!("sleep {tag}")]).status();
    tmux.quit();
}

#[test]
fn top_acknowledges_the_selected_firing_alert() {
    let sandbox = Sandbox::new();
    let _daemon = started(&sandbox);
    let tmux = Tmux::start("alerts", &sandbox.data(), "--focus alerts", 120, 30);
    tmux.wait("the rule firing", |s| s.lines().any(|l| l.contains("firing") && l.contains("top-test-memory")));
    let screen = tmux.wait("the tab counting it", |s| {
        s.lines().nth(1).is_some_and(|l| l.contains("Alerts") && l.contains("firing"))
    });
    assert!(screen.contains("warning"), "{screen}");
    // Built-in rules may fire on this machine too: the filter leaves only the test's.
    tmux.keys(&["/"]);
    tmux.keys(&["-l", "top-test-memory"]);
    tmux.keys(&["Enter"]);
    tmux.wait_text("filter 'top-test-memory'");
    tmux.keys(&["a"]);
    tmux.wait_text("acknowledged top-test-memory");
    tmux.wait("the row acknowledged", |s| {
        s.lines().any(|l| l.contains("acknowledged") && l.contains("top-test-memory"))
    });
    let out = sandbox.monitor(&["alerts", "list", "--json"]);
    ok(&out);
    let alerts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let alert = alerts.as_array().unwrap().iter().find(|a| a["rule"] == "top-test-memory").unwrap();
    assert_eq!(alert["state"], "acknowledged", "{alert}");
    assert_eq!(alert["ack"]["note"], "from monitor top", "{alert}");

    // Another `a` on the same alert says why not, and top carries on.
    tmux.keys(&["a"]);
    tmux.wait_text("only a firing alert can be acknowledged");
    tmux.quit();
}

#[test]
fn top_without_a_host_samples_the_machine_here() {
    let sandbox = Sandbox::new();
    let tmux = Tmux::start("local", &sandbox.data(), "--focus system", 100, 30);
    let screen = tmux.wait("a local sample", |s| s.contains("local  LIVE") && s.contains("sampled "));
    assert!(screen.contains("┌ System") && screen.contains("CPU"), "{screen}");
    // The database is not held open: other commands work while top runs.
    ok(&sandbox.monitor(&["progress", "start", "offline-run/step", "--total", "5"]));
    tmux.keys(&["3"]);
    tmux.wait_text("offline-run");
    tmux.quit();
}

#[test]
fn top_views_a_remote_host_by_url_with_its_token() {
    let sandbox = Sandbox::new();
    let _daemon = started(&sandbox);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sandbox.data().join("daemon.json")).unwrap()).unwrap();
    let url = format!("http://{}", info["addr"].as_str().unwrap());
    // Another data directory: no host of its own to find.
    let elsewhere = Sandbox::new();
    let token = format!("MONITOR_TOKEN={}", sandbox.token());
    let tmux = Tmux::start_with("remote", &elsewhere.data(), &format!("--url {url} --focus alerts"), 120, 30, &[token]);
    let screen =
        tmux.wait("the remote host's alerts", |s| s.contains(&format!("{url}  LIVE")) && s.contains("top-test-memory"));
    assert!(screen.contains("┌ Alerts"), "{screen}");
    tmux.quit();
}

/// Waits until the host runs plugin `name`.
fn wait_running(sandbox: &Sandbox, name: &str) {
    wait_for(&format!("{name} to run"), SCREEN_WAIT, || (sandbox.state(name)? == "running").then_some(()));
}

#[test]
fn top_shows_the_status_as_the_display_formatter_renders_it_in_the_custom_panel() {
    let sandbox = Sandbox::new();
    install("compact-status", &sandbox.plugins(), "compact-status.wasm");
    let _daemon = started(&sandbox);
    wait_running(&sandbox, "compact-status");
    ok(&sandbox.monitor(&["progress", "start", "train-9/fit", "--total", "10"]));
    let tmux = Tmux::start("custom", &sandbox.data(), "--format compact-status --focus plugins", 80, 24);
    tmux.wait_text("┌ Plugins");
    tmux.keys(&["Tab"]);
    // compact-status's line: the system, the runs going, the alert the test rule fires.
    let screen = tmux.wait("the plugin's line", |s| {
        s.contains("┌ Custom · the status as compact-status renders it")
            && s.contains("│cpu ")
            && s.contains("train-9 0%")
    });
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines.len() == 24 && lines.iter().all(|l| l.chars().count() <= 80), "{screen}");
    assert!(lines[1].contains("6 Custom") && lines[23].contains("q quit"), "{screen}");

    // Refreshed at the interval: the run's progress moves in the plugin's line.
    ok(&sandbox.monitor(&["progress", "update", "train-9/fit", "--done", "4"]));
    tmux.wait_text("train-9 40%");
    tmux.keys(&["Tab"]);
    tmux.wait_text("┌ System");
    tmux.keys(&["6"]);
    tmux.wait_text("┌ Custom");
    tmux.quit();
}

#[test]
fn the_custom_panel_says_why_a_plugin_renders_nothing() {
    let sandbox = Sandbox::new();
    install("derived-metrics", &sandbox.plugins(), "derived-metrics.wasm");
    let daemon = started(&sandbox);
    wait_running(&sandbox, "derived-metrics");
    for (plugin, why) in
        [("derived-metrics", "plugin 'derived-metrics' is not a display-formatter"), ("nope", "no plugin named 'nope'")]
    {
        let tmux = Tmux::start(plugin, &sandbox.data(), &format!("--format {plugin} --focus custom"), 80, 24);
        let screen = tmux.wait(why, |s| s.contains(why));
        assert!(screen.contains("host  LIVE") && screen.contains("┌ Custom"), "the rest goes on: {screen}");
        tmux.quit();
    }
    drop(daemon);

    // No host: top samples the machine itself, and the panel says what it needs.
    let tmux = Tmux::start("custom-local", &sandbox.data(), "--format compact-status --focus custom", 80, 24);
    let screen = tmux.wait("the panel asking for a host", |s| {
        s.contains("local  LIVE") && s.contains("formatting with plugin 'compact-status' needs the running host")
    });
    assert!(screen.contains("CPU") && screen.contains("MEM"), "{screen}");
    tmux.quit();
}

/// The sparkline at the end of the system panel's MEM line, if it shows.
fn memory_sparkline(screen: &str) -> Option<String> {
    let line = screen.lines().find(|l| l.starts_with("│MEM"))?;
    let after = &line[line.rfind('%')? + 1..];
    Some(after.chars().filter(|c| ('▁'..='█').contains(c)).collect())
}

#[test]
fn top_starts_its_sparklines_from_the_stored_history() {
    let sandbox = Sandbox::new();
    let mut daemon = Some(started(&sandbox));
    wait_for("the host to store some memory history", SCREEN_WAIT, || {
        let path = "/v1/metrics/history?name=monitor_memory_used_bytes&since_ms=0&labels=";
        let (_, body) = sandbox.api_get(path, Some(&sandbox.token()));
        let series: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
        (series.first()?["points"].as_array()?.len() >= 2).then_some(())
    });
    // At an interval of an hour top fetches once: a sparkline of two points is the
    // stored minutes (one point per hour) and that one fetch.
    for (origin, name) in [("host", "history-host"), ("local", "history-local")] {
        if origin == "local" {
            // Without a host, the same history comes from the database; a stop writes it all.
            let mut host = daemon.take().unwrap();
            host.signal("TERM");
            host.wait_exit(Duration::from_secs(10));
        }
        let tmux = Tmux::start(name, &sandbox.data(), "--focus system --interval 1h", 100, 30);
        let screen = tmux.wait("the memory sparkline", |s| {
            s.contains(&format!("{origin}  LIVE")) && memory_sparkline(s).is_some_and(|spark| !spark.is_empty())
        });
        assert_eq!(memory_sparkline(&screen).unwrap().chars().count(), 2, "{screen}");
        tmux.quit();
    }
}

/// A watch job that prints the paths it gets and fails for any named `bad`.
const JOB: &str = r#"
[[watch]]
name = "top-job"
paths = ["PROJECT"]
debounce = "50ms"
shell = true
pass = "args"
command = 'echo "built $*"; case "$*" in *bad*) echo "broken: $*" >&2; exit 3;; esac'
"#;

/// The job's row in the plugins panel.
struct JobRow {
    state: String,
    runs: u64,
    failures: u64,
    /// The last run and the command.
    rest: String,
}

fn job_row(screen: &str) -> Option<JobRow> {
    let line = screen.lines().find(|l| l.trim_start_matches('│').starts_with("top-job "))?;
    let mut cells = line.trim_matches('│').split_whitespace().skip(1);
    Some(JobRow {
        state: cells.next()?.to_string(),
        runs: cells.next()?.parse().ok()?,
        failures: cells.next()?.parse().ok()?,
        rest: cells.collect::<Vec<_>>().join(" "),
    })
}

#[test]
fn top_shows_the_hosts_watch_jobs_below_the_plugins_as_they_run() {
    let sandbox = Sandbox::new();
    let project = sandbox.root.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let config = sandbox.root.path().join("host.toml");
    let job = JOB.replace("PROJECT", project.canonicalize().unwrap().to_str().unwrap());
    std::fs::write(&config, format!("{CONFIG}{job}")).unwrap();
    let _daemon = sandbox.start(&["--config", config.to_str().unwrap()]);
    let tmux = Tmux::start("jobs", &sandbox.data(), "--focus plugins", 80, 24);
    let screen = tmux.wait("the job, not run yet", |s| {
        job_row(s).is_some_and(|row| row.state == "idle" && row.runs == 0 && row.rest.starts_with("never"))
    });
    assert!(screen.contains("┌ Plugins") && screen.contains("Watch jobs · 0 running of 1"), "{screen}");
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines.len() == 24 && lines.iter().all(|l| l.chars().count() <= 80), "{screen}");

    std::fs::write(project.join("a.txt"), "1").unwrap();
    let screen = tmux.wait("a good run", |s| {
        job_row(s).is_some_and(|row| row.runs >= 1 && row.failures == 0 && row.rest.starts_with("exit 0,"))
    });
    let before = job_row(&screen).unwrap().runs;
    std::fs::write(project.join("bad.txt"), "1").unwrap();
    let screen = tmux.wait("a failed run", |s| {
        job_row(s).is_some_and(|row| row.runs > before && row.failures == 1 && row.rest.starts_with("exit 3,"))
    });
    assert!(screen.contains("Watch jobs · 0 running of 1 · 1 failed last"), "{screen}");

    // No plugins: the selection is on the job; enter shows what it ran and said.
    tmux.resize(120, 40);
    tmux.keys(&["G", "Enter"]);
    let screen = tmux.wait("the job's details", |s| s.contains("Details") && s.contains("stderr  broken: "));
    assert!(screen.contains("job  top-job") && screen.contains("exit 3 at"), "{screen}");
    assert!(screen.contains(&format!("roots  {}", project.canonicalize().unwrap().display())), "{screen}");
    tmux.keys(&["Escape"]);
    tmux.wait("the details to close", |s| !s.contains("Details"));
    tmux.quit();
}

#[test]
fn top_refuses_bad_options_with_exit_status_2() {
    let sandbox = Sandbox::new();
    let out = sandbox.monitor(&["top", "--interval", "fast"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'fast' is not a duration"));
    let out = Command::new(monitor_bin())
        .args(["top", "--url", "http://127.0.0.1:9"])
        .env_remove("MONITOR_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the host's API token"), "{out:?}");
    // The custom panel without a plugin for it: the message names the fix.
    let out = sandbox.monitor(&["top", "--focus", "custom"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("name one with --format PLUGIN"), "{out:?}");
    // Not a terminal: top says what to use instead.
    let out = sandbox.monitor(&["top"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("monitor top needs a terminal"), "{out:?}");
}
