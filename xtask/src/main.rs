//! `cargo xtask demo`: builds the example plugins for wasm32-wasip2 and the host,
//! sets up `target/demo` (plugin directory, plugin configs, a Prometheus text
//! file to collect, grants), then runs `monitor run` in the foreground.
//!
//! `cargo xtask plugins [DIR]`: builds the example plugins into DIR
//! (default `target/plugins`), ready for `monitor run --plugins DIR`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const EXAMPLES: [&str; 5] =
    ["derived-metrics", "textfile-collector", "weighted-phases", "jsonl-alerts", "compact-status"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("plugins") => {
            build_examples(&args.get(1).map(PathBuf::from).unwrap_or_else(|| target_dir().join("plugins")))
        }
        _ => Err("usage: cargo xtask demo | cargo xtask plugins [DIR]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{command:?} failed ({status})")) }
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Adds the wasm32-wasip2 target when rustup manages the toolchain and lacks it.
fn ensure_wasm_target() -> Result<(), String> {
    let Ok(out) = Command::new("rustup").args(["target", "list", "--installed"]).output() else {
        return Ok(());
    };
    if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))
}

/// Where cargo puts what it builds: `CARGO_TARGET_DIR`, else `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn build_examples(out: &Path) -> Result<(), String> {
    ensure_wasm_target()?;
    println!("xtask: building the example plugins for wasm32-wasip2");
    let target = target_dir().join("wasm");
    let mut build = cargo();
    build.env("CARGO_TARGET_DIR", &target).args(["build", "--profile", "plugin", "--target", "wasm32-wasip2"]);
    for p in EXAMPLES {
        build.args(["-p", p]);
    }
    run(&mut build)?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for p in EXAMPLES {
        let built = target.join("wasm32-wasip2/plugin").join(format!("{}.wasm", p.replace('-', "_")));
        let tmp = out.join(format!(".{p}.wasm.tmp"));
        std::fs::copy(&built, &tmp).map_err(|e| format!("cannot copy {}: {e}", built.display()))?;
        std::fs::rename(&tmp, out.join(format!("{p}.wasm"))).map_err(|e| e.to_string())?;
    }
    println!("example plugins in {}", out.display());
    Ok(())
}

fn demo() -> Result<(), String> {
    let demo = target_dir().join("demo");
    let plugins = demo.join("plugins");
    let textfiles = demo.join("textfile");
    let alerts = demo.join("alerts");
    let data = demo.join("data");
    build_examples(&plugins)?;
    for dir in [&textfiles, &alerts] {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let write =
        |path: PathBuf, text: String| std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()));
    write(
        textfiles.join("demo.prom"),
        "# HELP demo_backup_age_seconds Age of the last backup.\n# TYPE demo_backup_age_seconds gauge\ndemo_backup_age_seconds{host=\"db1\"} 5400\ndemo_queue_depth{queue=\"ingest\"} 42\n".into(),
    )?;
    write(plugins.join("textfile-collector.toml"), format!("directory = \"{}\"\n", textfiles.display()))?;
    // The README's examples: the `queue-deep` rule on the text file's queue, and a
    // watch job that says what changed in `watched/`.
    let watched = demo.join("watched");
    std::fs::create_dir_all(&watched).map_err(|e| e.to_string())?;
    let config = demo.join("host.toml");
    write(
        config.clone(),
        format!(
            r#"[[alerts.rule]]
name = "queue-deep"
level = "warning"
kind = "threshold"
metric = "demo_queue_depth"
matchers = {{ queue = "ingest" }}
op = ">"
value = 100
clear = 50
message = "queue {{labels.queue}} holds {{value}} items"

[[watch]]
name = "demo"
paths = ["{}"]
shell = true
command = 'echo "changed: $MONITOR_WATCH_PATHS"'
"#,
            watched.display()
        ),
    )?;
    write(plugins.join("jsonl-alerts.toml"), format!("path = \"{}\"\n", alerts.join("alerts.jsonl").display()))?;

    println!("xtask: building monitor (profile quick; about 7 minutes the first time on two cores)");
    run(cargo().args(["build", "--profile", "quick", "-p", "monitor-host", "--bin", "monitor"]))?;
    let monitor = target_dir().join("quick/monitor");
    let grant = |plugin: &str, capability: String| {
        run(Command::new(&monitor)
            .arg("--data-dir")
            .arg(&data)
            .args(["plugins", "enable", plugin, "--grant", &capability, "--plugins"])
            .arg(&plugins))
    };
    grant("textfile-collector", format!("fs-read:{}", textfiles.display()))?;
    grant("jsonl-alerts", format!("fs-write:{}", alerts.display()))?;

    println!();
    println!("Running the host with the example plugins; Ctrl-C stops it. In another terminal:");
    println!("  export MONITOR_DATA_DIR={}", data.display());
    println!("  {} plugins list", monitor.display());
    println!("  {} status --format compact-status", monitor.display());
    println!("  {} progress start demo --calculator weighted-phases", monitor.display());
    println!("  {} progress start demo/build --total 10", monitor.display());
    println!("  {} progress update demo/build --advance 4", monitor.display());
    println!("  {} status demo", monitor.display());
    println!("  {} resources --processes --limit 10", monitor.display());
    println!("  {} metrics query monitor_cpu_usage_percent --since 5m", monitor.display());
    println!("  sed -i 's/ 42$/ 150/' {}   # the queue-deep alert fires", textfiles.join("demo.prom").display());
    println!("  {} alerts list", monitor.display());
    println!("  touch {}/a.txt; {} jobs list", watched.display(), monitor.display());
    println!();
    let mut host = Command::new(&monitor);
    host.arg("--data-dir").arg(&data).arg("run").arg("--plugins").arg(&plugins).arg("--config").arg(&config);
    run(&mut host)
}
