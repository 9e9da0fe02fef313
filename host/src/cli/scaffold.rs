//! `monitor plugins new NAME --role ROLE`: a plugin project ready to build,
//! with the role's skeleton, a configuration, and tests that run natively; and
//! `monitor plugins wit DIR`, the contract alone, for any other language.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::{CommandResult, UsageError};

/// The roles a plugin can take, by the name `--role` takes.
pub const ROLES: [&str; 4] = ["metric-provider", "progress-calculator", "alert-handler", "display-formatter"];

/// The languages a plugin project can be written in.
pub const LANGUAGES: [&str; 2] = ["rust", "python"];

/// Writes the project for plugin `name` in `lang` in `dir` (default `./NAME`);
/// the files written, and the commands that build it.
pub fn new(
    name: &str,
    role: &str,
    lang: &str,
    dir: Option<&Path>,
    sdk: Option<&Path>,
) -> CommandResult<(Vec<PathBuf>, String)> {
    check_name(name)?;
    if !ROLES.contains(&role) {
        return Err(UsageError(format!("role '{role}': use one of {}", ROLES.join(", "))).into());
    }
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(UsageError(format!("{} exists and is not empty; pick another name or --dir", dir.display())).into());
    }
    if let Some(sdk) = sdk.filter(|sdk| lang != "python" && !sdk.join("Cargo.toml").is_file()) {
        return Err(
            UsageError(format!("--sdk {}: no Cargo.toml there; give monitor's sdk/ directory", sdk.display())).into()
        );
    }
    let (files, next) = match lang {
        "python" => python(name, role, &dir, sdk)?,
        _ => rust(name, role, &dir, sdk),
    };
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        write(&path, &text)?;
        written.push(path);
    }
    Ok((written, next))
}

/// Writes `text` to `path` with its directories; the error names the path.
fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let parent = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A project's files: where in it, what they hold.
type Files = Vec<(String, String)>;

fn rust(name: &str, role: &str, dir: &Path, sdk: Option<&Path>) -> (Files, String) {
    let template = template(role).expect("a known role");
    let mut files: Files = Vec::new();
    let sdk = match sdk {
        Some(path) => path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
        None => {
            files.push(("monitor-sdk/Cargo.toml".into(), sdk_manifest()));
            let carried = SDK.iter().chain(&CONTRACT);
            files.extend(carried.map(|(file, text)| (format!("monitor-sdk/{file}"), text.to_string())));
            PathBuf::from("monitor-sdk")
        }
    };
    let ty = type_name(name);
    files.extend([
        ("Cargo.toml".into(), CARGO.replace("{name}", name).replace("{sdk}", &format!("{sdk:?}"))),
        ("src/lib.rs".into(), template.replace("{Type}", &ty).replace("{name}", name)),
        (".gitignore".into(), "/target\n".into()),
    ]);
    let next = format!(
        "cd {} && cargo test && cargo build --release --target wasm32-wasip2 && monitor plugins check target/wasm32-wasip2/release/{}.wasm",
        dir.display(),
        name.replace('-', "_")
    );
    (files, next)
}

/// The Rust SDK as this monitor was built with it. A Rust project carries it in
/// `monitor-sdk/`, with the contract, so that it builds with no checkout of
/// monitor and no registry, and keeps building as monitor moves on.
const SDK: [(&str, &str); 6] = [
    ("build.rs", include_str!("../../../sdk/build.rs")),
    ("src/lib.rs", include_str!("../../../sdk/src/lib.rs")),
    ("src/config.rs", include_str!("../../../sdk/src/config.rs")),
    ("src/export.rs", include_str!("../../../sdk/src/export.rs")),
    ("src/helpers.rs", include_str!("../../../sdk/src/helpers.rs")),
    ("src/http.rs", include_str!("../../../sdk/src/http.rs")),
];

/// The SDK's manifest with what it takes from monitor's workspace written in:
/// the package keys it inherits, and no workspace lints.
fn sdk_manifest() -> String {
    let workspace: toml::Table = include_str!("../../../Cargo.toml").parse().expect("the workspace's manifest");
    let inherited = &workspace["workspace"]["package"];
    let mut manifest = String::new();
    let mut lines = include_str!("../../../sdk/Cargo.toml").lines();
    while let Some(line) = lines.next() {
        if line == "[lints]" {
            lines.next(); // `workspace = true`
        } else if let Some(key) = line.strip_suffix(".workspace = true") {
            manifest.push_str(&format!("{key} = {}\n", inherited[key]));
        } else {
            manifest.push_str(line);
            manifest.push('\n');
        }
    }
    manifest
}

/// The contract this monitor speaks, as it was built with it: what a plugin in
/// any language builds against, with no checkout of monitor.
const CONTRACT: [(&str, &str); 3] = [
    ("wit/types.wit", include_str!("../../../wit/types.wit")),
    ("wit/host.wit", include_str!("../../../wit/host.wit")),
    ("wit/roles.wit", include_str!("../../../wit/roles.wit")),
];

/// What a Python project carries besides the contract: the `monitor_plugin` helper.
const PY_HELPER: [(&str, &str); 2] = [
    ("monitor_plugin/__init__.py", include_str!("../../../sdk/python-plugin/monitor_plugin/__init__.py")),
    ("monitor_plugin/py.typed", ""),
];

/// `monitor plugins wit DIR`: writes the contract's files into `dir`, never
/// over a file that is there; the files written.
pub fn wit(dir: &Path) -> CommandResult<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = CONTRACT.iter().map(|(file, _)| dir.join(file.trim_start_matches("wit/"))).collect();
    if let Some(there) = paths.iter().find(|p| p.exists()) {
        return Err(UsageError(format!("{} exists; remove it or pick another directory", there.display())).into());
    }
    for (path, (_, text)) in paths.iter().zip(CONTRACT) {
        write(path, text)?;
    }
    Ok(paths)
}

fn python(name: &str, role: &str, dir: &Path, sdk: Option<&Path>) -> CommandResult<(Files, String)> {
    if sdk.is_some() {
        return Err(UsageError(
            "--sdk is for Rust projects: a Python project carries its own copy of the contract and helper".into(),
        )
        .into());
    }
    let (template, tests) = match role {
        "metric-provider" => (PY_METRIC_PROVIDER, PY_TEST_METRIC_PROVIDER),
        "progress-calculator" => (PY_PROGRESS_CALCULATOR, PY_TEST_PROGRESS_CALCULATOR),
        "alert-handler" => (PY_ALERT_HANDLER, PY_TEST_ALERT_HANDLER),
        _ => (PY_DISPLAY_FORMATTER, PY_TEST_DISPLAY_FORMATTER),
    };
    let mut files: Files = vec![
        ("app.py".into(), template.replace("{Type}", &type_name(name)).replace("{name}", name)),
        ("test_app.py".into(), tests.replace("{Type}", &type_name(name)).replace("{name}", name)),
        ("build.sh".into(), PY_BUILD.replace("{role}", role).replace("{name}", name)),
        (".gitignore".into(), "/.venv\n/.bindings\n__pycache__/\n*.wasm\n".into()),
    ];
    files.extend(CONTRACT.iter().chain(&PY_HELPER).map(|(file, text)| (file.to_string(), text.to_string())));
    let next = format!(
        "cd {} && python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1 && sh build.sh test && sh build.sh && monitor plugins check {name}.wasm",
        dir.display()
    );
    Ok((files, next))
}

const PY_BUILD: &str = r#"#!/bin/sh
# sh build.sh: builds {name}.wasm, the plugin, the monitor_plugin helper and
# CPython in one component. sh build.sh test: runs test_app.py on this machine's
# Python (3.11 or later) against the contract's bindings. Both need
# componentize-py 0.25.1 in .venv (python3 -m venv .venv &&
# .venv/bin/pip install componentize-py==0.25.1). wit/ is the contract and
# monitor_plugin/ the helper, as the monitor that wrote this project has them.
set -eu
cd "$(dirname "$0")"
if [ "${1:-}" = test ]; then
    rm -rf .bindings
    .venv/bin/componentize-py -d wit -w {role} bindings .bindings
    PYTHONPATH=".bindings:." PYTHONDONTWRITEBYTECODE=1 python3 -m unittest -v test_app
    exit
fi
.venv/bin/componentize-py -d wit -w {role} componentize app -p . -o {name}.wasm
"#;

/// Each role's tests call the plugin's class directly, with the host's calls
/// replaced, as the Rust SDK's `testing` feature does.
const PY_TEST_METRIC_PROVIDER: &str = r#""""{name}'s tests, on this machine's Python: sh build.sh test"""

import unittest
from types import SimpleNamespace
from unittest import mock

from monitor_plugin import Error

import app


class Collect(unittest.TestCase):
    def test_memory_past_the_threshold_is_busy(self) -> None:
        plugin = app.{Type}()
        plugin.configure("busy_above = 0.5")
        machine = SimpleNamespace(memory_used_bytes=3, memory_total_bytes=4)
        with mock.patch.object(app, "snapshot", return_value=machine):
            metrics = {m.name: m.value for m in plugin.collect()}
        self.assertEqual(metrics, {"memory_used_ratio": 0.75, "memory_busy": 1.0})

    def test_a_bad_threshold_is_refused_naming_it(self) -> None:
        with self.assertRaisesRegex(Error, "busy_above"):
            app.{Type}().configure('busy_above = "high"')


if __name__ == "__main__":
    unittest.main()
"#;

const PY_TEST_PROGRESS_CALCULATOR: &str = r#""""{name}'s tests, on this machine's Python: sh build.sh test"""

import unittest
from types import SimpleNamespace

from monitor_plugin import NodeStatus

import app


def node(progress: float, status: NodeStatus = NodeStatus.RUNNING, weight: float | None = None) -> SimpleNamespace:
    return SimpleNamespace(progress=progress, status=status, weight=weight)


class Compute(unittest.TestCase):
    def test_children_count_by_their_weights(self) -> None:
        children = [node(0.2, NodeStatus.COMPLETED), node(0.5, weight=3.0)]
        estimate = app.{Type}().compute(node(0.0), children)
        self.assertAlmostEqual(estimate.progress, (1.0 + 3.0 * 0.5) / 4.0)

    def test_no_children_is_no_progress(self) -> None:
        self.assertEqual(app.{Type}().compute(node(0.0), []).progress, 0.0)


if __name__ == "__main__":
    unittest.main()
"#;

const PY_TEST_ALERT_HANDLER: &str = r#""""{name}'s tests, on this machine's Python: sh build.sh test"""

import unittest
from types import SimpleNamespace
from unittest import mock

from monitor_plugin import AlertState

import app


class Kv:
    """The host's key-value store, in a dict."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get_string(self, key: str) -> str | None:
        return self.data.get(key)

    def set_string(self, key: str, value: str) -> None:
        self.data[key] = value


def event(state: AlertState, came_from: AlertState) -> SimpleNamespace:
    return SimpleNamespace(alert=SimpleNamespace(rule="disk-full", state=state), from_=came_from)


class Handle(unittest.TestCase):
    def test_each_new_firing_is_counted_and_nothing_else(self) -> None:
        kv = Kv()
        plugin = app.{Type}()
        with mock.patch.object(app, "kv", kv):
            plugin.handle(event(AlertState.FIRING, AlertState.PENDING))
            plugin.handle(event(AlertState.FIRING, AlertState.FIRING))
            plugin.handle(event(AlertState.RESOLVED, AlertState.FIRING))
            plugin.handle(event(AlertState.FIRING, AlertState.PENDING))
        self.assertEqual(kv.data, {"firings/disk-full": "2"})


if __name__ == "__main__":
    unittest.main()
"#;

const PY_TEST_DISPLAY_FORMATTER: &str = r#""""{name}'s tests, on this machine's Python: sh build.sh test"""

import unittest
from types import SimpleNamespace

from monitor_plugin import Error
from wit_world.imports.types import View_Alerts, View_Status

import app


class Format(unittest.TestCase):
    def test_the_status_view_is_one_line(self) -> None:
        system = SimpleNamespace(cpu_percent=12.4, memory_used_bytes=1, memory_total_bytes=2)
        view = View_Status(SimpleNamespace(system=system, runs=["etl", "train"]))
        self.assertEqual(app.{Type}().format(view), "cpu 12% · mem 50% · 2 runs")

    def test_other_views_are_an_error_naming_the_ones_it_shows(self) -> None:
        with self.assertRaisesRegex(Error, "status and resources"):
            app.{Type}().format(View_Alerts([]))


if __name__ == "__main__":
    unittest.main()
"#;

const PY_METRIC_PROVIDER: &str = r#""""{name}: a metric provider for monitor, called on every sampling tick."""

from dataclasses import dataclass

from monitor_plugin import Metric, MetricProvider, export, metric, snapshot


@dataclass
class Config:
    """`{name}.toml` beside the `.wasm` (optional): `busy_above = 0.8`."""

    busy_above: float = 0.8


class {Type}(MetricProvider):
    NAME = "{name}"
    VERSION = "0.1.0"
    SUMMARY = "the share of memory in use, and whether it is past a threshold"
    CONFIG = Config

    def collect(self) -> list[Metric]:
        s = snapshot()
        used = s.memory_used_bytes / max(s.memory_total_bytes, 1)
        busy = 1.0 if used > self.config.busy_above else 0.0
        return [metric("memory_used_ratio", used, unit="ratio"), metric("memory_busy", busy)]


Plugin, Metrics = export({Type})
"#;

const PY_PROGRESS_CALCULATOR: &str = r#""""{name}: a progress calculator for monitor: a parent's progress from its children."""

from monitor_plugin import NodeStatus, ProgressCalculator, ProgressEstimate, ProgressNode, export


class {Type}(ProgressCalculator):
    NAME = "{name}"
    VERSION = "0.1.0"
    SUMMARY = "a parent is as far along as its children, weighted by their weights"

    def compute(self, parent: ProgressNode, children: list[ProgressNode]) -> ProgressEstimate:
        done = total = 0.0
        for child in children:
            weight = child.weight if child.weight is not None and child.weight >= 0 else 1.0
            progress = 1.0 if child.status == NodeStatus.COMPLETED else min(max(child.progress, 0.0), 1.0)
            done += weight * progress
            total += weight
        return ProgressEstimate(progress=done / total if total else 0.0, eta_secs=None)


Plugin, Progress = export({Type})
"#;

const PY_ALERT_HANDLER: &str = r#""""{name}: an alert handler for monitor: each alert transition, in order."""

from monitor_plugin import AlertEvent, AlertHandler, AlertState, capability, export, kv


class {Type}(AlertHandler):
    NAME = "{name}"
    VERSION = "0.1.0"
    SUMMARY = "counts each rule's firings"
    # Shown to whoever enables it: monitor plugins enable {name} --grant kv
    CAPABILITIES = [capability("kv", "keeps the counts across restarts")]

    def handle(self, event: AlertEvent) -> None:
        new_firing = event.alert.state == AlertState.FIRING and event.from_ != AlertState.FIRING
        if new_firing:
            key = f"firings/{event.alert.rule}"
            kv.set_string(key, str(int(kv.get_string(key) or 0) + 1))


Plugin, AlertEvents = export({Type})
"#;

const PY_DISPLAY_FORMATTER: &str = r#""""{name}: a display formatter for monitor: a view as text (monitor status --format {name})."""

from typing import Any

from monitor_plugin import DisplayFormatter, Error, export
from wit_world.imports.types import View_Resources, View_Status


class {Type}(DisplayFormatter):
    NAME = "{name}"
    VERSION = "0.1.0"
    SUMMARY = "CPU, memory and runs on one line"

    def format(self, view: Any) -> str:
        if isinstance(view, View_Status):
            s = view.value.system
            memory = s.memory_used_bytes / max(s.memory_total_bytes, 1)
            return f"cpu {s.cpu_percent:.0f}% · mem {memory * 100:.0f}% · {len(view.value.runs)} runs"
        if isinstance(view, View_Resources):
            return f"cpu {view.value.cpu_percent:.0f}% · load {view.value.load_one:.2f}"
        raise Error("{name} shows the status and resources views")


Plugin, Formatter = export({Type})
"#;

/// Plugin names are crate names the host shows: lower case, digits and `-`.
fn check_name(name: &str) -> Result<(), UsageError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(UsageError(format!(
            "plugin name '{}': use lower-case letters, digits and '-', starting with a letter (like disk-watch)",
            crate::text::line(name, 80)
        )))
    }
}

/// `disk-watch` → `DiskWatch`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |c| c.to_ascii_uppercase().to_string() + chars.as_str())
        })
        .collect()
}

fn template(role: &str) -> Option<&'static str> {
    Some(match role {
        "metric-provider" => METRIC_PROVIDER,
        "progress-calculator" => PROGRESS_CALCULATOR,
        "alert-handler" => ALERT_HANDLER,
        "display-formatter" => DISPLAY_FORMATTER,
        _ => return None,
    })
}

const CARGO: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

# Build:  cargo build --release --target wasm32-wasip2
# Check:  monitor plugins check target/wasm32-wasip2/release/*.wasm
# Test:   cargo test   (natively: the logic is kept apart from the host's calls)

[lib]
crate-type = ["cdylib"]

[dependencies]
# The SDK: `monitor plugins new` put a copy in monitor-sdk/ (unless told --sdk).
# `testing`: builders for the tests below; what they do not use is left out of the build.
monitor-sdk = { path = {sdk}, features = ["testing"] }

# A workspace of its own, wherever the project is put.
[workspace]

[profile.release]
opt-level = "s"
lto = true
strip = true
panic = "abort"
"#;

const METRIC_PROVIDER: &str = r#"//! {name}: a metric provider for monitor, called on every sampling tick.

use monitor_sdk::config::Deserialize;
use monitor_sdk::{Metric, MetricProvider, Plugin, SystemSnapshot};

/// `{name}.toml` beside the `.wasm` (optional): `busy_above = 0.8`.
#[derive(Deserialize)]
#[serde(crate = "monitor_sdk::config::serde", default, deny_unknown_fields)]
struct Config {
    /// The share of memory in use above which the machine counts as busy.
    busy_above: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config { busy_above: 0.8 }
    }
}

#[derive(Default)]
struct {Type} {
    config: Config,
}

impl Plugin for {Type} {
    const SUMMARY: &'static str = "the share of memory in use, and whether it is past a threshold";

    fn configure(&mut self, config: &str) -> Result<(), String> {
        // An error names the line, the field and the value.
        self.config = monitor_sdk::config::from_toml(config)?;
        Ok(())
    }
}

impl MetricProvider for {Type} {
    fn collect(&mut self) -> Result<Vec<Metric>, String> {
        Ok(measure(&self.config, &monitor_sdk::system_snapshot()))
    }
}

/// The metrics of one snapshot, apart from the host's call so that tests run it.
fn measure(config: &Config, snapshot: &SystemSnapshot) -> Vec<Metric> {
    let used = snapshot.memory_used_bytes as f64 / snapshot.memory_total_bytes.max(1) as f64;
    vec![
        Metric::new("memory_used_ratio", used).unit("ratio"),
        Metric::new("memory_busy", if used > config.busy_above { 1.0 } else { 0.0 }),
    ]
}

monitor_sdk::export_metric_provider!({Type});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_the_memory_in_use_is_not_busy() {
        let mut snapshot = monitor_sdk::testing::snapshot("test");
        snapshot.memory_used_bytes = snapshot.memory_total_bytes / 2;
        let metrics = measure(&Config::default(), &snapshot);
        assert_eq!((metrics[0].value, metrics[1].value), (0.5, 0.0));
    }

    #[test]
    fn a_bad_configuration_names_the_field() {
        let error = {Type}::default().configure("busy_above = \"high\"").unwrap_err();
        assert!(error.contains("busy_above"), "{error}");
    }
}
"#;

const PROGRESS_CALCULATOR: &str = r#"//! {name}: a progress calculator for monitor: a parent's progress from its children.

use monitor_sdk::{NodeStatus, Plugin, ProgressCalculator, ProgressEstimate, ProgressNode};

#[derive(Default)]
struct {Type};

impl Plugin for {Type} {
    const SUMMARY: &'static str = "a parent is as far along as its children, weighted by their weights";
}

impl ProgressCalculator for {Type} {
    fn compute(&mut self, _parent: &ProgressNode, children: &[ProgressNode]) -> Result<ProgressEstimate, String> {
        Ok(estimate(children))
    }
}

/// The weighted mean of the children's progress; a finished child counts fully.
fn estimate(children: &[ProgressNode]) -> ProgressEstimate {
    let (mut done, mut total) = (0.0, 0.0);
    for child in children {
        let weight = child.weight.filter(|w| *w >= 0.0).unwrap_or(1.0);
        let progress = if child.status == NodeStatus::Completed { 1.0 } else { child.progress.clamp(0.0, 1.0) };
        done += weight * progress;
        total += weight;
    }
    let progress = if total > 0.0 { done / total } else { 0.0 };
    ProgressEstimate { progress, eta_secs: None }
}

monitor_sdk::export_progress_calculator!({Type});

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_sdk::testing::node;

    #[test]
    fn weights_count_and_a_finished_child_counts_fully() {
        let mut heavy = node("run/build", NodeStatus::Running, 0.5);
        heavy.weight = Some(3.0);
        let done = node("run/test", NodeStatus::Completed, 0.2);
        assert_eq!(estimate(&[heavy, done]).progress, (1.5 + 1.0) / 4.0);
        assert_eq!(estimate(&[]).progress, 0.0);
    }
}
"#;

const ALERT_HANDLER: &str = r#"//! {name}: an alert handler for monitor: each alert transition, in order.

use monitor_sdk::{AlertEvent, AlertHandler, AlertState, CapabilityRequest, Plugin};

#[derive(Default)]
struct {Type};

impl Plugin for {Type} {
    const SUMMARY: &'static str = "counts each rule's firings";

    fn capabilities() -> Vec<CapabilityRequest> {
        // Shown to whoever enables the plugin: `monitor plugins enable {name} --grant kv`.
        vec![CapabilityRequest::new("kv", "keeps the counts across restarts")]
    }
}

impl AlertHandler for {Type} {
    fn handle(&mut self, event: &AlertEvent) -> Result<(), String> {
        let Some(key) = counted(event) else { return Ok(()) };
        let n = monitor_sdk::kv::get_string(&key).and_then(|s| s.parse().ok()).unwrap_or(0u64);
        monitor_sdk::kv::set_string(&key, &(n + 1).to_string())
    }
}

/// The key a transition is counted under: a new firing, not its repeats.
fn counted(event: &AlertEvent) -> Option<String> {
    let new_firing = event.alert.state == AlertState::Firing && event.from != AlertState::Firing;
    new_firing.then(|| format!("firings/{}", event.alert.rule))
}

monitor_sdk::export_alert_handler!({Type});

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_sdk::{Alert, Level};

    fn event(from: AlertState, to: AlertState) -> AlertEvent {
        let alert = Alert {
            id: "disk-full".into(),
            rule: "disk-full".into(),
            level: Level::Warning,
            state: to,
            message: String::new(),
            labels: Vec::new(),
            value: None,
            at_ms: 0,
        };
        AlertEvent { alert, seq: 1, from, ack: None }
    }

    #[test]
    fn a_firing_counts_once_and_its_repeats_do_not() {
        assert_eq!(counted(&event(AlertState::Pending, AlertState::Firing)).as_deref(), Some("firings/disk-full"));
        assert_eq!(counted(&event(AlertState::Firing, AlertState::Firing)), None);
        assert_eq!(counted(&event(AlertState::Firing, AlertState::Resolved)), None);
    }
}
"#;

const DISPLAY_FORMATTER: &str = r#"//! {name}: a display formatter for monitor: a view as text (`monitor status --format {name}`).

use monitor_sdk::{DisplayFormatter, Plugin, View};

#[derive(Default)]
struct {Type};

impl Plugin for {Type} {
    const SUMMARY: &'static str = "CPU, memory and runs on one line";
}

impl DisplayFormatter for {Type} {
    fn format(&mut self, view: &View) -> Result<String, String> {
        match view {
            View::Status(status) => {
                let s = &status.system;
                let memory = s.memory_used_bytes as f64 / s.memory_total_bytes.max(1) as f64;
                Ok(format!(
                    "cpu {:.0}% · mem {:.0}% · {} runs · {} firing",
                    s.cpu_percent,
                    memory * 100.0,
                    status.runs.len(),
                    status.firing.len()
                ))
            }
            View::Resources(s) => Ok(format!("cpu {:.0}% · load {:.2}", s.cpu_percent, s.load_one)),
            _ => Err("{name} shows the status and resources views".into()),
        }
    }
}

monitor_sdk::export_display_formatter!({Type});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resources_view_is_one_line() {
        let mut snapshot = monitor_sdk::testing::snapshot("test");
        snapshot.cpu_percent = 42.0;
        let line = {Type}.format(&View::Resources(snapshot)).unwrap();
        assert_eq!(line, "cpu 42% · load 0.00");
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_types_and_bad_names_and_roles_are_refused() {
        assert_eq!(type_name("disk-watch-2"), "DiskWatch2");
        for bad in ["", "Disk", "2disk", "disk_watch", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let error = new("x", "metric", "rust", Some(dir.path()), None).unwrap_err();
        assert!(error.to_string().contains("use one of metric-provider"), "{error}");
        std::fs::write(dir.path().join("keep"), "").unwrap();
        let error = new("x", "metric-provider", "rust", Some(dir.path()), None).unwrap_err();
        assert!(error.to_string().contains("is not empty"), "{error}");
    }

    #[test]
    fn a_python_project_carries_the_contract_and_helper_and_needs_no_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        let (written, next) = new("py-count", "metric-provider", "python", Some(&project), None).unwrap();
        for file in ["wit/roles.wit", "wit/host.wit", "wit/types.wit", "monitor_plugin/__init__.py", "build.sh"] {
            assert!(written.contains(&project.join(file)), "{file} in {written:?}");
        }
        let roles = std::fs::read_to_string(project.join("wit/roles.wit")).unwrap();
        assert!(roles.contains("world metric-provider"), "{roles}");
        let build = std::fs::read_to_string(project.join("build.sh")).unwrap();
        assert!(build.contains("-d wit -w metric-provider componentize app -p . -o py-count.wasm"), "{build}");
        assert!(!build.contains("{role}") && !build.contains("{name}") && !build.contains("/sdk"), "{build}");
        assert!(next.contains("sh build.sh test && sh build.sh"), "{next}");
        let elsewhere = dir.path().join("q");
        let error = new("q", "metric-provider", "python", Some(&elsewhere), Some(dir.path())).unwrap_err();
        assert!(error.to_string().contains("--sdk is for Rust projects"), "{error}");
    }

    #[test]
    fn a_rust_project_carries_the_sdk_and_needs_no_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        let (written, _) = new("count", "metric-provider", "rust", Some(&project), None).unwrap();
        for file in
            ["monitor-sdk/Cargo.toml", "monitor-sdk/build.rs", "monitor-sdk/src/lib.rs", "monitor-sdk/wit/host.wit"]
        {
            assert!(written.contains(&project.join(file)), "{file} in {written:?}");
        }
        let read = |file: &str| std::fs::read_to_string(project.join(file)).unwrap();
        assert!(read("Cargo.toml").contains(r#"monitor-sdk = { path = "monitor-sdk", features = ["testing"] }"#));
        let sdk: toml::Table = read("monitor-sdk/Cargo.toml").parse().unwrap();
        assert_eq!(sdk["package"]["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(sdk["package"]["rust-version"].as_str(), Some(env!("CARGO_PKG_RUST_VERSION")));
        assert_eq!(sdk["package"]["edition"].as_str(), Some("2024"));
        assert!(sdk["dependencies"].get("wit-bindgen").is_some(), "{sdk}");
        assert!(!read("monitor-sdk/Cargo.toml").contains("workspace"), "{sdk}");

        // Another SDK when told: depended on where it is, nothing copied.
        let elsewhere = dir.path().join("q");
        let error = new("count", "metric-provider", "rust", Some(&elsewhere), Some(dir.path())).unwrap_err();
        assert!(error.to_string().contains("no Cargo.toml there; give monitor's sdk/"), "{error}");
        assert!(!elsewhere.exists(), "nothing written");
        let sdk = project.join("monitor-sdk");
        new("count", "metric-provider", "rust", Some(&elsewhere), Some(&sdk)).unwrap();
        let manifest = std::fs::read_to_string(elsewhere.join("Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("path = {:?}", sdk.canonicalize().unwrap())), "{manifest}");
        assert!(!elsewhere.join("monitor-sdk").exists());
    }

    /// The sorted names of the files in `dir` of this checkout, as `PREFIX/NAME`.
    fn files_in(dir: &str, prefix: &str) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| format!("{prefix}/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        names.sort();
        names
    }

    fn sorted(files: &[(&str, &str)]) -> Vec<String> {
        let mut names: Vec<String> = files.iter().map(|(file, _)| file.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn every_file_of_the_sdk_is_carried() {
        // The crate's files at its root: the manifest (rewritten), the contract
        // (carried as `wit/`) and the Python packages beside it are not its own.
        let root = files_in("sdk", ".").into_iter().map(|f| f[2..].to_string());
        let root = root.filter(|f| !["Cargo.toml", "wit", "python", "python-plugin", "src"].contains(&f.as_str()));
        let mut on_disk: Vec<String> = root.chain(files_in("sdk/src", "src")).collect();
        on_disk.sort();
        assert_eq!(sorted(&SDK), on_disk, "SDK lists every file of sdk/ the crate is built from");
    }

    #[test]
    fn the_contract_is_written_where_asked_and_never_over_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let wit_dir = dir.path().join("contract");
        let written = wit(&wit_dir).unwrap();
        assert_eq!(written.len(), 3);
        let on_disk = std::fs::read_to_string(wit_dir.join("host.wit")).unwrap();
        let here = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/host.wit")).unwrap();
        assert_eq!(on_disk, here, "the contract the binary was built with");
        let error = wit(&wit_dir).unwrap_err();
        assert!(error.to_string().contains("types.wit exists"), "{error}");
    }

    #[test]
    fn every_file_of_the_contract_is_carried() {
        assert_eq!(sorted(&CONTRACT), files_in("wit", "wit"), "CONTRACT lists every file in wit/");
    }
}
