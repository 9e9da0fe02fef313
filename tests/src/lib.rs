//! Test harness: builds the example and fixture plugins for wasm32-wasip2, and
//! drives the real `monitor` binary. Nothing here waits a fixed time: every wait
//! polls for a condition until a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub mod browser;
pub mod https;
pub mod stream;

/// Every plugin crate the tests use: the examples and the hostile fixtures.
pub const PLUGINS: &[&str] = &[
    "derived-metrics",
    "textfile-collector",
    "weighted-phases",
    "jsonl-alerts",
    "compact-status",
    "webhook-alerts",
    "fx-http",
    "fx-host-api",
    "fx-loop",
    "fx-memory-bomb",
    "fx-trap-describe",
    "fx-flood",
    "fx-undeclared",
    "fx-kv-counter",
    "fx-stdout",
    "fx-fs-escape",
    "fx-caps-a",
    "fx-caps-b",
    "fx-flaky",
    "fx-v2",
    "fx-not-a-plugin",
    "fx-empty",
    "fx-ten",
    "fx-sleep",
    "fx-sleep-describe",
    "fx-calc",
    "fx-calc-kv",
    "fx-format",
    "fx-alert-sleep",
    "fx-thief",
    "fx-strings",
    "fx-fifo",
    "fx-two-roles",
    "fx-alerts-v1",
];

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the workspace").to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds every plugin once per test process (cargo makes later builds no-ops)
/// and returns the directory holding the `.wasm` files.
pub fn built_plugins() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        ensure_wasm_target();
        // A target directory of their own: the outer cargo holds the main one.
        let target = workspace().join("target/wasm");
        let mut build = cargo();
        build.current_dir(workspace()).env("CARGO_TARGET_DIR", &target).args([
            "build",
            "--profile",
            "plugin",
            "--target",
            "wasm32-wasip2",
        ]);
        for p in PLUGINS {
            build.args(["-p", p]);
        }
        let out = build.output().expect("running cargo to build the plugins");
        assert!(
            out.status.success(),
            "building the plugins failed (is the wasm32-wasip2 target installed? rustup target add wasm32-wasip2):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("wasm32-wasip2/plugin")
    })
}

/// Adds the wasm32-wasip2 target when rustup manages the toolchain and lacks it,
/// so `cargo test` works on a fresh machine.
fn ensure_wasm_target() {
    let Ok(out) = Command::new("rustup").args(["target", "list", "--installed"]).output() else { return };
    if !String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") {
        let status = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status();
        assert!(status.is_ok_and(|s| s.success()), "rustup target add wasm32-wasip2 failed");
    }
}

/// The built `.wasm` of a plugin crate.
pub fn wasm(crate_name: &str) -> PathBuf {
    let path = built_plugins().join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Copies a built plugin into `dir` as `NAME.wasm`, atomically (write, then rename),
/// the way a plugin should be installed into a watched directory.
pub fn install(crate_name: &str, dir: &Path, file_name: &str) -> PathBuf {
    let dest = dir.join(file_name);
    let tmp = dir.join(format!(".{file_name}.tmp"));
    std::fs::copy(wasm(crate_name), &tmp).expect("copying plugin");
    std::fs::rename(&tmp, &dest).expect("installing plugin");
    dest
}

/// The `monitor` binary of this test run's profile. `cargo test` builds it (the
/// host package has integration tests); it is rebuilt here only when missing or
/// older than the host's sources, as after `cargo test -p monitor-tests`.
pub fn monitor_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/<test> → target/<profile>/monitor
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
        let bin = profile_dir.join("monitor");
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        // The binary carries the contract and the Python helper (plugins new, plugins wit).
        let helper = workspace().join("sdk/python-plugin/monitor_plugin/__init__.py");
        let sources = newest_change(&workspace().join("host"))
            .max(newest_change(&workspace().join("wit")))
            .max(std::fs::metadata(helper).and_then(|m| m.modified()).ok());
        if built.is_none_or(|built| Some(built) < sources) {
            let mut build = cargo();
            build.current_dir(workspace()).args(["build", "-p", "monitor-host", "--bin", "monitor"]);
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let out = build.output().expect("running cargo to build monitor");
            assert!(out.status.success(), "building monitor failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        bin
    })
}

/// The latest modification time of any file under `dir`.
fn newest_change(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() { newest_change(&path) } else { entry.metadata().ok()?.modified().ok() };
        newest = newest.max(time);
    }
    newest
}

/// The middle of `values` (the upper one of an even count), for benches.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Polls `condition` until it holds or `limit` passes; panics naming `what`.
pub fn wait_for<T>(what: &str, limit: Duration, condition: impl FnMut() -> Option<T>) -> T {
    wait_for_or(what, limit, condition, String::new)
}

/// As [`wait_for`]; a timeout also says what `explain` tells (what was seen, a log).
pub fn wait_for_or<T>(
    what: &str,
    limit: Duration,
    mut condition: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}\n{}", explain());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A data directory and a plugin directory in a fresh temporary directory.
/// The example plugins in `plugins/`.
pub const EXAMPLES: [&str; 5] =
    ["derived-metrics", "textfile-collector", "weighted-phases", "jsonl-alerts", "compact-status"];

pub struct Sandbox {
    pub root: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join("plugins")).unwrap();
        Sandbox { root }
    }

    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn plugins(&self) -> PathBuf {
        self.root.path().join("plugins")
    }

    /// Runs a `monitor` command against this data directory and waits for it.
    pub fn monitor(&self, args: &[&str]) -> Output {
        Command::new(monitor_bin())
            .args(args)
            .env("MONITOR_DATA_DIR", self.data())
            .env_remove("MONITOR_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("running monitor")
    }

    /// `monitor plugins list --json`, parsed.
    pub fn listing(&self) -> serde_json::Value {
        let out = self.monitor(&["plugins", "list", "--json"]);
        assert!(out.status.success(), "plugins list failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("plugins list --json is JSON")
    }

    /// `GET path` on the running host's API with its token: the status line and body.
    pub fn api_get(&self, path: &str, token: Option<&str>) -> (String, String) {
        self.api("GET", path, token, "")
    }

    /// `POST path` with a JSON `body` and the host's token: the status line and body.
    pub fn api_post(&self, path: &str, body: &str) -> (String, String) {
        self.api("POST", path, Some(&self.token()), body)
    }

    /// Any request on the running host's API: the status line and body.
    pub fn api(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (String, String) {
        use std::io::{Read, Write};
        let addr = self.addr();
        let mut stream = std::net::TcpStream::connect(&addr).expect("connecting to the API");
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let length = body.len();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{body}"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        (head.lines().next().unwrap_or_default().to_string(), body.to_string())
    }

    /// The running host's API address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> String {
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.data().join("daemon.json")).expect("daemon.json")).unwrap();
        info["addr"].as_str().unwrap().to_string()
    }

    /// The host's API token.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data().join("api-token")).expect("api-token").trim().to_string()
    }

    /// The latest value of metric `name` from plugin `plugin`, if the host has one.
    pub fn metric(&self, plugin: &str, name: &str) -> Option<f64> {
        let (_, body) = self.api_get("/v1/metrics", Some(&self.token()));
        let samples: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
        samples.iter().find(|s| s["name"] == name && s["labels"]["plugin"] == plugin)?["value"].as_f64()
    }

    /// The latest value of the host's own series `name` (no labels), if it has one.
    pub fn metric_host(&self, name: &str) -> Option<f64> {
        let (_, body) = self.api_get("/v1/metrics", Some(&self.token()));
        let samples: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
        samples.iter().find(|s| s["name"] == name)?["value"].as_f64()
    }

    /// The state word of plugin `name` (`running`, `quarantined`, ...), if listed.
    pub fn state(&self, name: &str) -> Option<String> {
        let listing = self.listing();
        listing["plugins"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["state"]["state"].as_str().unwrap_or_default().to_string())
    }

    /// Installs the five example plugins, configured and granted what they need
    /// (a textfile directory with one series, a directory for alert lines).
    pub fn install_examples(&self) {
        let dir = self.plugins();
        for p in EXAMPLES {
            install(p, &dir, &format!("{p}.wasm"));
        }
        let prom = self.root.path().join("prom");
        let alerts = self.root.path().join("alerts");
        std::fs::create_dir_all(&prom).unwrap();
        std::fs::create_dir_all(&alerts).unwrap();
        self.queue_depth(42);
        std::fs::write(dir.join("textfile-collector.toml"), format!("directory = \"{}\"\n", prom.display())).unwrap();
        std::fs::write(dir.join("jsonl-alerts.toml"), format!("path = \"{}/a.jsonl\"\n", alerts.display())).unwrap();
        let dir_arg = dir.to_str().unwrap();
        for (plugin, grant) in [
            ("textfile-collector", format!("fs-read:{}", prom.display())),
            ("jsonl-alerts", format!("fs-write:{}", alerts.display())),
        ] {
            let out = self.monitor(&["plugins", "enable", plugin, "--grant", &grant, "--plugins", dir_arg]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    }

    /// Sets the textfile collector's one series, `queue_depth{queue="ingest"}`
    /// (see [`Sandbox::install_examples`]), replacing its file at once.
    pub fn queue_depth(&self, value: u32) {
        let prom = self.root.path().join("prom");
        std::fs::write(prom.join("a.tmp"), format!("queue_depth{{queue=\"ingest\"}} {value}\n")).unwrap();
        std::fs::rename(prom.join("a.tmp"), prom.join("a.prom")).unwrap();
    }

    /// Starts `monitor run` on this sandbox and waits until its API answers.
    pub fn start(&self, extra: &[&str]) -> Daemon {
        let mut command = Command::new(monitor_bin());
        command
            .arg("run")
            .arg("--plugins")
            .arg(self.plugins())
            .args(extra)
            .env("MONITOR_DATA_DIR", self.data())
            .env("MONITOR_LOG", "info")
            .env("NO_COLOR", "1");
        let mut daemon = Daemon::spawn(command);
        daemon.wait_log("the host to be ready", "monitor ready in");
        daemon
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A running `monitor` process (the host, or `watch-files`) whose stderr is
/// collected; killed when dropped.
pub struct Daemon {
    pub child: Child,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `command` with stdin and stdout closed, collecting its stderr.
    pub fn spawn(mut command: Command) -> Daemon {
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting monitor");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&strip_ansi(&line));
                log.push('\n');
            }
        });
        Daemon { child, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; fails at once if the host exits.
    pub fn wait_log(&mut self, what: &str, needle: &str) {
        wait_for(what, Duration::from_secs(60), || {
            let log = self.log();
            if log.contains(needle) {
                return Some(());
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("monitor exited ({status}) while waiting for {what}:\n{log}");
            }
            None
        })
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit and returns its status and how long it took.
    pub fn wait_exit(&mut self, limit: Duration) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        let status = wait_for("monitor to exit", limit, || self.child.try_wait().unwrap());
        (status, started.elapsed())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when the test ends, however it ends: a failed
/// assertion leaves nothing running behind it.
pub struct Reaped(pub std::process::Child);

impl Reaped {
    /// Starts `command` with no terminal input or output of the test's.
    pub fn spawn(command: &mut Command) -> Reaped {
        let child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        Reaped(child.unwrap_or_else(|e| panic!("starting {command:?}: {e}")))
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub mod host {
    //! The plugin manager in this process, on a real database and real plugins.

    use std::sync::{Arc, RwLock};

    use monitor_host::metrics::Metric;
    use monitor_host::plugin::{Grant, Manager, PluginRecord, Runtime, Settings};
    use monitor_host::sampler::Sampler;
    use monitor_host::store::Store;

    use super::Sandbox;

    pub struct Host {
        pub sandbox: Sandbox,
        pub manager: Manager,
        rt: tokio::runtime::Runtime,
    }

    impl Host {
        /// A manager over `sandbox` with the default limits, changed by `tune`.
        pub fn new(sandbox: Sandbox, tune: impl FnOnce(&mut Settings)) -> Host {
            std::fs::create_dir_all(sandbox.data()).unwrap();
            let store = Store::open(&sandbox.data().join("monitor.redb")).expect("opening the store");
            let runtime = Arc::new(Runtime::new(Some(sandbox.data().join("cache"))).expect("engine"));
            let mut settings =
                monitor_host::config::HostConfig::default().plugin_settings(sandbox.plugins(), &sandbox.data());
            tune(&mut settings);
            let snapshot = Arc::new(RwLock::new(Arc::new(Sampler::new().sample())));
            let manager = Manager::new(runtime, store, snapshot, settings);
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            Host { sandbox, manager, rt }
        }

        /// Installs plugin crates as `<crate>.wasm` and scans the directory.
        pub fn with(sandbox: Sandbox, crates: &[&str]) -> Host {
            for c in crates {
                super::install(c, &sandbox.plugins(), &format!("{c}.wasm"));
            }
            let host = Host::new(sandbox, |_| {});
            host.scan();
            host
        }

        pub fn scan(&self) {
            self.manager.scan().expect("scan");
        }

        pub fn record(&self, name: &str) -> PluginRecord {
            self.manager.view(name).unwrap_or_else(|e| panic!("{e}"))
        }

        pub fn state(&self, name: &str) -> String {
            self.record(name).state.to_string()
        }

        pub fn enable(&self, name: &str, grants: &[&str]) -> PluginRecord {
            let grants: Vec<Grant> = grants.iter().map(|g| Grant::parse(g).unwrap()).collect();
            self.manager.enable(name, &grants).unwrap_or_else(|e| panic!("{e}"))
        }

        /// One sampling tick: every running metric provider's metrics by plugin.
        pub fn collect(&self) -> Vec<(String, Vec<Metric>)> {
            self.rt.block_on(self.manager.collect())
        }

        pub fn metrics_of(&self, plugin: &str) -> Option<Vec<Metric>> {
            self.collect().into_iter().find(|(p, _)| p == plugin).map(|(_, m)| m)
        }

        pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
            self.rt.block_on(f)
        }

        /// Closes the database and engine, keeping the directories.
        pub fn into_sandbox(self) -> Sandbox {
            self.manager.shutdown().unwrap();
            self.sandbox
        }
    }
}

/// A webhook receiver that answers 500 to the first `failures` requests, then
/// 200; it keeps every body it was sent, with the status it answered.
pub struct Webhook {
    pub url: String,
    pub received: Arc<Mutex<Vec<(u16, serde_json::Value)>>>,
}

/// One HTTP/1.1 request from `reader`: its path and body (as far as it came);
/// none when the connection ended before a request line.
pub fn read_request(reader: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let mut request = String::new();
    if reader.read_line(&mut request).unwrap_or(0) == 0 {
        return None;
    }
    let path = request.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = Vec::new();
    let _ = reader.take(length as u64).read_to_end(&mut body);
    Some((path, body))
}

/// The code blocks of the README section `title`, in order: (language, text),
/// with the three spaces of a list item's indentation taken off.
pub fn readme_blocks(readme: &str, title: &str) -> Vec<(String, String)> {
    let section = readme.split(&format!("## {title}\n")).nth(1).expect("the section");
    let section = section.split("\n## ").next().unwrap();
    let mut out = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let Some(language) = line.trim_start().strip_prefix("```").filter(|l| !l.is_empty()) else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let mut text = String::new();
        for line in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                break;
            }
            text.push_str(line.get(indent..).unwrap_or(line.trim_start()));
            text.push('\n');
        }
        out.push((language.to_string(), text));
    }
    out
}

/// A README walk-through as run by [`walk_through`]: its home directory (the
/// plugin directory `~/plugins` in it), the source it wrote and what its last
/// step printed.
pub struct WalkThrough {
    pub home: tempfile::TempDir,
    pub plugins: PathBuf,
    pub source: String,
    pub last: String,
}

/// Runs the README section `title` as a reader would, in an empty directory
/// with `monitor` on the path: each `sh` block with bash (at most `limit`; the
/// first one makes `project` and goes into it), and the one block in
/// `source.0`'s language written to the file `source.1` in the project.
/// `~/plugins` is a directory of the walk-through's own.
pub fn walk_through(title: &str, source: (&str, &str), project: &str, limit: Duration) -> WalkThrough {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let blocks = readme_blocks(&readme, title);
    let languages: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(languages, ["sh", source.0, "sh"], "{title}: its steps");
    let home = tempfile::tempdir().unwrap();
    let plugins = home.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let bin = monitor_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut dir = home.path().to_path_buf();
    let (mut last, mut written) = (String::new(), String::new());
    for (i, (language, text)) in blocks.iter().enumerate() {
        if language == source.0 {
            std::fs::write(dir.join(source.1), text).unwrap();
            written.clone_from(text);
            continue;
        }
        assert!(!text.contains("/path/to/"), "{title}: step {} needs a path the reader must fill in:\n{text}", i + 1);
        let script = text.replace("~/plugins", plugins.to_str().unwrap());
        // A registry that stalls fails the step rather than the whole run.
        let out = Command::new("timeout")
            .arg(limit.as_secs().to_string())
            .args(["bash", "-euo", "pipefail", "-c", &script])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("MONITOR_DATA_DIR", home.path().join("data"))
            .env_remove("MONITOR_URL")
            .env_remove("MONITOR_TOKEN")
            .env_remove("VIRTUAL_ENV")
            .env_remove("PYTHONPATH")
            .output()
            .unwrap();
        last = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{title}: step {} failed ({}):\n{script}\n{last}", i + 1, out.status);
        if i == 0 {
            dir = dir.join(project);
        }
    }
    WalkThrough { home, plugins, source: written, last }
}

impl Webhook {
    pub fn start(failures: usize) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let Some((_, body)) = read_request(&mut reader) else { continue };
                let status = if n < failures { 500 } else { 200 };
                sink.lock().unwrap().push((status, serde_json::from_slice(&body).unwrap()));
                let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Webhook { url, received }
    }

    /// The bodies answered with 200.
    pub fn delivered(&self) -> Vec<serde_json::Value> {
        self.received.lock().unwrap().iter().filter(|(s, _)| *s == 200).map(|(_, b)| b.clone()).collect()
    }
}
