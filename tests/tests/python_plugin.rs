//! Python plugins, first class: the example `log-patterns`
//! (`plugins-python/log-patterns/`, with the helper `sdk/python-plugin/`) built
//! with componentize-py, loaded by the real host and checked end to end, with a
//! grant missing and a wrong one; the helper's and the example's own unit tests;
//! and the README's "Write your first plugin in Python" run as written.
//!
//! componentize-py is `$MONITOR_COMPONENTIZE_PY` (CI points it at the venv
//! `.ci/run` makes) or `componentize-py` on PATH, and must be the version below.
//! The built plugin and the generated bindings are cached under
//! `target/python-plugins/`, named by a hash of everything that goes into them,
//! so a rerun with nothing changed builds nothing (the build takes 10–20 s).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use monitor_tests::{Sandbox, monitor_bin, wait_for, walk_through, workspace};

/// The componentize-py the tests, CI and the README use.
const COMPONENTIZE_PY: &str = "0.25.1";
/// The example, relative to the workspace.
const EXAMPLE: &str = "plugins-python/log-patterns";
/// The helper, relative to the workspace.
const HELPER: &str = "sdk/python-plugin";
/// A cold compile of a Python plugin takes 15–20 s on two cores; on a machine busy
/// with other tests, more.
const COMPILE: Duration = Duration::from_secs(240);

fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// componentize-py, checked to be the version the tests are written for:
/// `MONITOR_COMPONENTIZE_PY`, else one installed from PyPI into a venv under
/// `target/` on first use (about 10 s), as cargo fetches crates.
fn componentize_py() -> &'static Path {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(|| {
        let program = std::env::var_os("MONITOR_COMPONENTIZE_PY").map_or_else(venv, PathBuf::from);
        let install = format!(
            "point MONITOR_COMPONENTIZE_PY at componentize-py {COMPONENTIZE_PY}, or unset it to have the tests install it"
        );
        let out = Command::new(&program)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("componentize-py is missing ({}: {e}): {install}", program.display()));
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(
            version,
            format!("componentize-py {COMPONENTIZE_PY}"),
            "{} is not the componentize-py the tests need: {install}",
            program.display()
        );
        program
    })
}

/// componentize-py in a venv of the target directory, made when missing.
fn venv() -> PathBuf {
    let venv = workspace().join(format!("target/componentize-py-{COMPONENTIZE_PY}"));
    let program = venv.join("bin/componentize-py");
    if !program.exists() {
        let _ = std::fs::remove_dir_all(&venv);
        let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).output();
        assert!(
            made.as_ref().is_ok_and(|o| o.status.success()),
            "cannot make a venv for componentize-py (python3 -m venv; on Debian, apt install python3-venv): {made:?}"
        );
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", &format!("componentize-py=={COMPONENTIZE_PY}")])
            .output()
            .expect("running pip");
        assert!(pip.status.success(), "pip install componentize-py=={COMPONENTIZE_PY} failed: {}", said(&pip));
    }
    program
}

/// The files under `dir` that go into a build, in a stable order: no
/// `__pycache__`, and not the `tests` directory (the component holds only what
/// the plugin imports).
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "__pycache__" || name == "tests" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            files.extend(sources(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A hash of the componentize-py version and every source file under `dirs`
/// (names and contents): the name of a cached build.
fn fingerprint(dirs: &[&Path]) -> String {
    let mut hasher = DefaultHasher::new();
    COMPONENTIZE_PY.hash(&mut hasher);
    for dir in dirs {
        for file in sources(dir) {
            file.strip_prefix(workspace()).unwrap_or(&file).hash(&mut hasher);
            std::fs::read(&file).unwrap().hash(&mut hasher);
        }
    }
    format!("{:016x}", hasher.finish())
}

fn copy_tree(from: &Path, to: &Path) {
    for file in sources(from) {
        let dest = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, &dest).unwrap();
    }
}

/// `target/python-plugins/`, where builds and bindings are cached.
fn cache() -> PathBuf {
    let dir = workspace().join("target/python-plugins");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The example built into a component, once per change of its sources, the
/// helper's, the contract's or componentize-py's version. It is built from a copy
/// of the sources, so that componentize-py writes no `__pycache__` into the tree.
fn log_patterns_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let tool = componentize_py();
        let (example, helper, wit) = (workspace().join(EXAMPLE), workspace().join(HELPER), workspace().join("wit"));
        let key = fingerprint(&[example.as_path(), helper.as_path(), wit.as_path()]);
        let wasm = cache().join(format!("log-patterns-{key}.wasm"));
        if wasm.exists() {
            return wasm;
        }
        let stage = tempfile::tempdir_in(cache()).unwrap();
        copy_tree(&example, &stage.path().join("app"));
        copy_tree(&helper, &stage.path().join("sdk"));
        let built = stage.path().join("log-patterns.wasm");
        let out = Command::new(tool)
            .arg("-q")
            .arg("-d")
            .arg(&wit)
            .args(["-w", "metric-provider", "componentize", "log_patterns", "-p"])
            .arg(stage.path().join("app"))
            .arg("-p")
            .arg(stage.path().join("sdk"))
            .arg("-o")
            .arg(&built)
            .output()
            .expect("running componentize-py");
        assert!(out.status.success(), "building {EXAMPLE} failed:\n{}", said(&out));
        // Earlier builds go: each is about 19 MB.
        for entry in std::fs::read_dir(cache()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("log-patterns-") && name.ends_with(".wasm") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        std::fs::rename(&built, &wasm).unwrap();
        wasm
    })
}

/// The Python bindings of the `metric-provider` world (`wit_world`, the module
/// the helper imports), for running the Python tests on this machine's Python.
fn bindings() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let wit = workspace().join("wit");
        let key = fingerprint(&[wit.as_path()]);
        let dir = cache().join(format!("bindings-{key}"));
        if dir.exists() {
            return dir;
        }
        let stage = cache().join(format!("bindings-{key}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&stage);
        let out = Command::new(componentize_py())
            .arg("-d")
            .arg(&wit)
            .args(["-w", "metric-provider", "bindings"])
            .arg(&stage)
            .output()
            .expect("running componentize-py");
        assert!(out.status.success(), "generating the bindings failed:\n{}", said(&out));
        // Another test process may have made it meanwhile; either copy will do.
        if std::fs::rename(&stage, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&stage);
        }
        dir
    })
}

/// Copies `wasm` into `dir` as `name`, atomically, as the README installs a plugin.
fn install(wasm: &Path, dir: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::copy(wasm, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// The host's latest value of `name` from log-patterns with exactly `labels` (besides `plugin`).
fn sample(sandbox: &Sandbox, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let (_, body) = sandbox.api_get("/v1/metrics", Some(&sandbox.token()));
    let samples: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
    samples.iter().find(|s| {
        let have = s["labels"].as_object().map_or(0, |l| l.len());
        s["name"] == name
            && s["labels"]["plugin"] == "log-patterns"
            && have == labels.len() + 1
            && labels.iter().all(|(k, v)| s["labels"][*k] == *v)
    })?["value"]
        .as_f64()
}

/// log-patterns' entry in `monitor plugins list --json`.
fn entry(sandbox: &Sandbox) -> Option<serde_json::Value> {
    sandbox.listing()["plugins"].as_array()?.iter().find(|p| p["name"] == "log-patterns").cloned()
}

fn enable(sandbox: &Sandbox, grant: &str) {
    let out = sandbox.monitor(&["plugins", "enable", "log-patterns", "--grant", grant]);
    assert!(out.status.success(), "granting {grant}: {}", said(&out));
}

#[test]
fn the_python_example_runs_in_the_real_host_and_a_missing_grant_is_an_error_not_a_fault() {
    let wasm = log_patterns_wasm();
    let sandbox = Sandbox::new();
    let logs = sandbox.root.path().join("logs");
    let elsewhere = sandbox.root.path().join("elsewhere");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let log = logs.join("train.log");
    std::fs::write(
        &log,
        "step 1 loss 2.31\nTraceback (most recent call last):\n  File \"train.py\", line 9\n\
         RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\nstep 1 loss 2.29\n\
         Traceback (most recent call last):\n",
    )
    .unwrap();
    std::fs::write(sandbox.plugins().join("log-patterns.toml"), format!("directory = \"{}\"\n", logs.display()))
        .unwrap();
    // The host first, then the plugin: its first compile (CPython, seconds) runs
    // while the host serves, and the deadline below is the compile's.
    // CPython's first calls on an instance (configure parses TOML with
    // dataclasses) take tens of milliseconds, more on a machine busy building
    // other plugins: a deadline that fits them, as a user of Python plugins would set.
    let config = sandbox.root.path().join("host.toml");
    std::fs::write(&config, "[plugins]\ncall_timeout_ms = 2000\n").unwrap();
    let _host = sandbox.start(&["--config", config.to_str().unwrap()]);
    install(wasm, &sandbox.plugins(), "log-patterns.wasm");

    // Nothing granted: it is loaded and waits, naming the command that grants.
    let waiting = wait_for("log-patterns to be compiled and wait for its grant", COMPILE, || {
        entry(&sandbox).filter(|p| p["state"]["state"] == "awaiting-grant")
    });
    assert_eq!(waiting["requests"][0]["kind"], "fs-read", "{waiting}");
    assert_eq!(waiting["stats"]["calls"], 0, "{waiting}");

    // Granted another directory: it runs, cannot see the one it is configured
    // for, and says so as an error on every tick, naming the grant; never a fault,
    // so never a quarantine, and the host's tick goes on.
    let ticks = sandbox.metric_host("monitor_ticks_total").expect("the host counts its ticks");
    enable(&sandbox, &format!("fs-read:{}", elsewhere.display()));
    let failing = wait_for("log-patterns to fail more ticks than a quarantine allows", Duration::from_secs(30), || {
        entry(&sandbox).filter(|p| p["stats"]["errors"].as_u64() >= Some(4))
    });
    assert_eq!(failing["state"]["state"], "running", "{failing}");
    assert_eq!(failing["stats"]["faults"], 0, "an error is not a fault: {failing}");
    let last = failing["stats"]["last_error"].as_str().unwrap_or_default();
    let fix = format!("monitor plugins enable log-patterns --grant fs-read:{}", logs.display());
    assert!(last.contains("is not visible") && last.contains(&fix), "the error names the fix: {last}");
    assert_eq!(sample(&sandbox, "log_pattern_lines_total", &[("file", "train.log"), ("pattern", "traceback")]), None);
    wait_for("the host's tick to go on", Duration::from_secs(10), || {
        sandbox.metric_host("monitor_ticks_total").filter(|t| *t >= ticks + 4.0)
    });

    // Granted its directory: it counts what is there ...
    enable(&sandbox, &format!("fs-read:{}", logs.display()));
    let traceback = [("file", "train.log"), ("pattern", "traceback")];
    let oom = [("file", "train.log"), ("pattern", "oom")];
    wait_for("log-patterns to count the tracebacks and the OOM", Duration::from_secs(30), || {
        (sample(&sandbox, "log_pattern_lines_total", &traceback) == Some(2.0)
            && sample(&sandbox, "log_pattern_lines_total", &oom) == Some(1.0))
        .then_some(())
    });
    assert_eq!(sample(&sandbox, "log_files", &[]), Some(1.0));
    assert_eq!(sample(&sandbox, "log_unread_bytes", &[("file", "train.log")]), Some(0.0));
    assert!(sample(&sandbox, "log_last_write_age_seconds", &[("file", "train.log")]).is_some());
    // Lines there before it started are counted, but they are not news.
    assert_eq!(sample(&sandbox, "log_pattern_last_match_age_seconds", &oom), None);

    // ... and what is appended, as news.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"torch.OutOfMemoryError: CUDA out of memory.\n").unwrap();
    drop(file);
    wait_for("the appended OOM to be counted as news", Duration::from_secs(30), || {
        (sample(&sandbox, "log_pattern_lines_total", &oom) == Some(2.0)
            && sample(&sandbox, "log_pattern_last_match_age_seconds", &oom).is_some_and(|age| age < 30.0))
        .then_some(())
    });
    let running = entry(&sandbox).unwrap();
    assert_eq!(running["state"]["state"], "running", "{running}");
    assert_eq!(running["stats"]["faults"], 0, "{running}");
}

/// The helper's unit tests and the example's, on this machine's `python3`, with
/// the generated bindings on the path.
#[test]
fn the_python_helper_and_the_example_pass_their_own_tests() {
    let bindings = bindings();
    let helper = workspace().join(HELPER);
    for (dir, path) in [
        (helper.clone(), vec![bindings.to_path_buf()]),
        (workspace().join(EXAMPLE), vec![bindings.to_path_buf(), helper]),
    ] {
        let out = Command::new("python3")
            .args(["-m", "unittest", "discover", "-s", "tests", "-t", "."])
            .current_dir(&dir)
            .env("PYTHONPATH", std::env::join_paths(&path).unwrap())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("running python3");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: the Python tests failed:\n{stderr}", dir.display());
        assert!(stderr.contains("OK"), "{stderr}");
    }
}

/// The README's "Write your first plugin in Python", run as written in an empty
/// directory outside the workspace with `monitor` on the path. It installs
/// componentize-py from PyPI into the walk-through's own venv, as a reader does
/// (pip's cache makes that quick).
#[test]
fn the_first_python_plugin_walk_through_works_as_written() {
    let steps = Duration::from_secs(600);
    let run = walk_through("Write your first plugin in Python", ("python", "app.py"), "process-count", steps);
    assert!(run.last.contains("process-count 0.1.0") && run.last.contains("how many processes run"), "{}", run.last);
    let size = std::fs::metadata(run.plugins.join("process-count.wasm")).unwrap().len();
    assert!(size < 32 << 20, "the README says about 19 MB; the host refuses files over max_file_mib: {size} bytes");
}

/// `monitor plugins new NAME --role ROLE --lang python`: each role's project
/// passes its own tests, builds with its own build script and passes `plugins check`.
#[test]
fn each_roles_python_project_builds_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    for role in ["metric-provider", "progress-calculator", "alert-handler", "display-formatter"] {
        let name = format!("py-{role}");
        let dir = tmp.path().join(&name);
        let out = Command::new(monitor_bin())
            .args(["plugins", "new", &name, "--role", role, "--lang", "python", "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "plugins new: {}", said(&out));
        assert!(said(&out).contains("sh build.sh test && sh build.sh"), "{}", said(&out));
        // The project's venv, as its next steps make it: here, the tests' componentize-py.
        std::fs::create_dir_all(dir.join(".venv/bin")).unwrap();
        std::os::unix::fs::symlink(componentize_py(), dir.join(".venv/bin/componentize-py")).unwrap();
        let tested = Command::new("sh").arg(dir.join("build.sh")).arg("test").output().unwrap();
        let report = said(&tested);
        assert!(tested.status.success() && report.contains("\nOK"), "{role}: its tests failed:\n{report}");
        assert!(!report.contains("Ran 0 tests"), "{role}: {report}");
        let built = Command::new("sh").arg(dir.join("build.sh")).output().unwrap();
        assert!(built.status.success(), "{role}: build.sh failed:\n{}", said(&built));
        let checked = Command::new(monitor_bin())
            .args(["plugins", "check"])
            .arg(dir.join(format!("{name}.wasm")))
            .output()
            .unwrap();
        assert!(checked.status.success(), "{role}: {}", said(&checked));
        assert!(said(&checked).contains(&format!("roles         {role}")), "{}", said(&checked));
    }
}
