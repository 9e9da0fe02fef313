//! `monitor plugins new NAME --role ROLE`: a plugin project ready to build,
//! with the role's skeleton, a configuration, and tests that run natively.

use std::path::{Path, PathBuf};

use crate::error::{CommandResult, UsageError};

/// The roles a plugin can take, by the name `--role` takes.
pub const ROLES: [&str; 4] = ["metric-provider", "progress-calculator", "alert-handler", "display-formatter"];

/// Where this checkout's SDK was when the binary was built: a project made by
/// a binary built from a checkout depends on it there.
const SDK_AT_BUILD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk");

/// Writes the project for plugin `name` in `dir` (default `./NAME`); the files written.
pub fn new_rust(name: &str, role: &str, dir: Option<&Path>, sdk: Option<&Path>) -> CommandResult<Vec<PathBuf>> {
    check_name(name)?;
    let Some(template) = template(role) else {
        return Err(UsageError(format!("role '{role}': use one of {}", ROLES.join(", "))).into());
    };
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(UsageError(format!("{} exists and is not empty; pick another name or --dir", dir.display())).into());
    }
    let sdk = match sdk {
        Some(path) => format!(
            "{{ path = {:?}, features = [\"testing\"] }}",
            path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
        ),
        None => match Path::new(SDK_AT_BUILD).canonicalize() {
            Ok(path) if path.join("Cargo.toml").is_file() => {
                format!("{{ path = {path:?}, features = [\"testing\"] }}")
            }
            _ => "{ version = \"0.1\", features = [\"testing\"] }".to_string(),
        },
    };
    let ty = type_name(name);
    let files = [
        ("Cargo.toml", CARGO.replace("{name}", name).replace("{sdk}", &sdk)),
        ("src/lib.rs", template.replace("{Type}", &ty).replace("{name}", name)),
        (".gitignore", "/target\n".to_string()),
    ];
    let mut written = Vec::new();
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("a file in the project"))?;
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

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
# `testing`: builders for the tests below; what they do not use is left out of the build.
monitor-sdk = {sdk}

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
        let error = new_rust("x", "metric", Some(dir.path()), None).unwrap_err();
        assert!(error.to_string().contains("use one of metric-provider"), "{error}");
        std::fs::write(dir.path().join("keep"), "").unwrap();
        let error = new_rust("x", "metric-provider", Some(dir.path()), None).unwrap_err();
        assert!(error.to_string().contains("is not empty"), "{error}");
    }
}
