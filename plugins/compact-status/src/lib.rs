//! A one-line status for a tmux status bar or a shell prompt:
//!
//! ```text
//! cpu 12% mem 43% load 0.52 | train-42 63%, eval-7 10% +1 | 2 firing (critical)
//! ```
//!
//! The line has up to three sections, empty ones left out: the system (CPU and
//! memory in use, the one-minute load average), the running runs with their
//! progress (at most `max_runs`, then `+N` for the others; the top-level runs
//! when the view holds whole trees) and the firing alerts, counted, with the
//! highest level among them. Each view renders its part:
//!
//! | view | output |
//! | --- | --- |
//! | status | every section |
//! | resources | the system section |
//! | progress | the runs section, or `no runs` |
//! | alerts | the alerts section, or `no alerts` |
//!
//! The output is always a single line without a newline: control characters in
//! run names become spaces and names longer than 24 characters are shortened.
//!
//! # Configuration (`compact-status.toml`)
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `ascii` | `true` | plain ASCII; `false` adds a few Unicode symbols (`▶` runs, `▲` alerts, `│` between sections) |
//! | `max_runs` | `2` | runs shown by name before `+N`; `0` shows only how many are running |
//!
//! ```toml
//! ascii = false
//! max_runs = 3
//! ```
//!
//! # Capabilities
//!
//! None.

use monitor_sdk::config::Deserialize;
use monitor_sdk::{Alert, AlertState, DisplayFormatter, NodeStatus, Plugin, ProgressNode, SystemSnapshot, View};

const MAX_NAME_CHARS: usize = 24;

#[derive(Debug, Clone, PartialEq)]
struct Style {
    ascii: bool,
    max_runs: usize,
}

impl Default for Style {
    fn default() -> Self {
        Style { ascii: true, max_runs: 2 }
    }
}

#[derive(Default)]
struct CompactStatus {
    style: Style,
}

impl Plugin for CompactStatus {
    const SUMMARY: &'static str = "a one-line status for a tmux status bar or a shell prompt";

    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.style = Style::parse(config)?;
        Ok(())
    }
}

impl DisplayFormatter for CompactStatus {
    fn format(&mut self, view: &View) -> Result<String, String> {
        Ok(render(&self.style, view))
    }
}

monitor_sdk::export_display_formatter!(CompactStatus);

#[derive(Deserialize)]
#[serde(crate = "monitor_sdk::config::serde", deny_unknown_fields)]
struct Config {
    ascii: Option<bool>,
    max_runs: Option<usize>,
}

impl Style {
    fn parse(text: &str) -> Result<Style, String> {
        let config: Config = monitor_sdk::config::from_toml(text)?;
        let default = Style::default();
        Ok(Style {
            ascii: config.ascii.unwrap_or(default.ascii),
            max_runs: config.max_runs.unwrap_or(default.max_runs),
        })
    }

    fn separator(&self) -> &'static str {
        if self.ascii { " | " } else { " │ " }
    }
}

fn render(style: &Style, view: &View) -> String {
    match view {
        View::Resources(system) => system_part(system),
        View::Progress(nodes) => runs_part(style, nodes).unwrap_or_else(|| "no runs".into()),
        View::Alerts(alerts) => alerts_part(style, alerts).unwrap_or_else(|| "no alerts".into()),
        View::Status(status) => {
            let parts: Vec<String> =
                [Some(system_part(&status.system)), runs_part(style, &status.runs), alerts_part(style, &status.firing)]
                    .into_iter()
                    .flatten()
                    .collect();
            parts.join(style.separator())
        }
    }
}

fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn system_part(s: &SystemSnapshot) -> String {
    let cpu = finite_or_zero(f64::from(s.cpu_percent)).clamp(0.0, 100.0);
    let mut out = format!("cpu {cpu:.0}%");
    if s.memory_total_bytes > 0 {
        let mem = 100.0 * s.memory_used_bytes as f64 / s.memory_total_bytes as f64;
        out.push_str(&format!(" mem {:.0}%", mem.clamp(0.0, 100.0)));
    }
    out.push_str(&format!(" load {:.2}", finite_or_zero(s.load_one)));
    out
}

/// Whole percent, rounded down so a run shows 100% only when it is done.
fn percent(progress: f64) -> u32 {
    (finite_or_zero(progress).clamp(0.0, 1.0) * 100.0).floor() as u32
}

/// A name fit for one line: control characters become spaces, long names are cut.
fn short_name(style: &Style, node: &ProgressNode) -> String {
    let name = if node.name.trim().is_empty() { &node.id } else { &node.name };
    let clean: String = name.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.chars().count() <= MAX_NAME_CHARS {
        return clean;
    }
    let ellipsis = if style.ascii { "..." } else { "…" };
    let keep = MAX_NAME_CHARS - ellipsis.chars().count();
    clean.chars().take(keep).collect::<String>() + ellipsis
}

fn runs_part(style: &Style, nodes: &[ProgressNode]) -> Option<String> {
    // A view may hold whole trees; then only the top-level nodes are runs.
    let has_roots = nodes.iter().any(|n| !n.id.contains('/'));
    let running: Vec<&ProgressNode> =
        nodes.iter().filter(|n| n.status == NodeStatus::Running && (!has_roots || !n.id.contains('/'))).collect();
    if running.is_empty() {
        return None;
    }
    let prefix = if style.ascii { "" } else { "▶ " };
    if style.max_runs == 0 {
        return Some(format!("{prefix}{} running", running.len()));
    }
    let shown: Vec<String> = running
        .iter()
        .take(style.max_runs)
        .map(|n| format!("{} {}%", short_name(style, n), percent(n.progress)))
        .collect();
    let mut out = format!("{prefix}{}", shown.join(", "));
    if running.len() > style.max_runs {
        out.push_str(&format!(" +{}", running.len() - style.max_runs));
    }
    Some(out)
}

fn alerts_part(style: &Style, alerts: &[Alert]) -> Option<String> {
    let firing: Vec<&Alert> = alerts.iter().filter(|a| a.state == AlertState::Firing).collect();
    let highest = firing.iter().map(|a| a.level).max_by_key(|l| l.severity())?;
    let prefix = if style.ascii { "" } else { "▲ " };
    Some(format!("{prefix}{} firing ({})", firing.len(), highest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_sdk::{Level, StatusView};

    fn snapshot() -> SystemSnapshot {
        SystemSnapshot {
            cpu_percent: 12.4,
            per_core_percent: vec![12.4],
            memory_total_bytes: 1000,
            memory_used_bytes: 430,
            load_one: 0.523,
            ..monitor_sdk::testing::snapshot("box")
        }
    }

    fn run(id: &str, status: NodeStatus, progress: f64) -> ProgressNode {
        monitor_sdk::testing::node(id, status, progress)
    }

    fn alert(level: Level, state: AlertState) -> Alert {
        Alert {
            id: "a".into(),
            rule: "r".into(),
            level,
            state,
            message: "m".into(),
            labels: vec![],
            value: None,
            at_ms: 0,
        }
    }

    fn status(runs: Vec<ProgressNode>, firing: Vec<Alert>) -> View {
        View::Status(StatusView { system: snapshot(), runs, firing })
    }

    #[test]
    fn full_status_line() {
        let view = status(
            vec![run("train-42", NodeStatus::Running, 0.637), run("old", NodeStatus::Completed, 1.0)],
            vec![alert(Level::Warning, AlertState::Firing), alert(Level::Critical, AlertState::Firing)],
        );
        assert_eq!(render(&Style::default(), &view), "cpu 12% mem 43% load 0.52 | train-42 63% | 2 firing (critical)");
    }

    #[test]
    fn empty_sections_are_left_out() {
        let view = status(vec![run("done", NodeStatus::Completed, 1.0)], vec![]);
        assert_eq!(render(&Style::default(), &view), "cpu 12% mem 43% load 0.52");
        let view = status(vec![], vec![alert(Level::Info, AlertState::Firing)]);
        assert_eq!(render(&Style::default(), &view), "cpu 12% mem 43% load 0.52 | 1 firing (info)");
    }

    #[test]
    fn at_most_max_runs_then_count() {
        let runs = vec![
            run("a", NodeStatus::Running, 0.1),
            run("b", NodeStatus::Paused, 0.2),
            run("c", NodeStatus::Running, 0.999),
            run("d", NodeStatus::Running, 0.5),
            run("e", NodeStatus::Running, 0.5),
        ];
        let style = Style::default();
        assert_eq!(runs_part(&style, &runs).unwrap(), "a 10%, c 99% +2");
        let style = Style { max_runs: 5, ..Style::default() };
        assert_eq!(runs_part(&style, &runs).unwrap(), "a 10%, c 99%, d 50%, e 50%");
        let style = Style { max_runs: 0, ..Style::default() };
        assert_eq!(runs_part(&style, &runs).unwrap(), "4 running");
    }

    #[test]
    fn only_top_level_runs_when_trees_are_given() {
        let nodes = vec![run("train-42", NodeStatus::Running, 0.5), run("train-42/build", NodeStatus::Running, 0.9)];
        assert_eq!(runs_part(&Style::default(), &nodes).unwrap(), "train-42 50%");
        let nodes = vec![run("train-42/build", NodeStatus::Running, 0.9)];
        assert_eq!(runs_part(&Style::default(), &nodes).unwrap(), "build 90%");
    }

    #[test]
    fn each_view_renders_its_part() {
        let style = Style::default();
        assert_eq!(render(&style, &View::Resources(snapshot())), "cpu 12% mem 43% load 0.52");
        assert_eq!(render(&style, &View::Progress(vec![])), "no runs");
        assert_eq!(render(&style, &View::Progress(vec![run("x", NodeStatus::Running, 0.25)])), "x 25%");
        assert_eq!(render(&style, &View::Alerts(vec![])), "no alerts");
        assert_eq!(render(&style, &View::Alerts(vec![alert(Level::Critical, AlertState::Resolved)])), "no alerts");
        assert_eq!(
            render(
                &style,
                &View::Alerts(vec![
                    alert(Level::Error, AlertState::Firing),
                    alert(Level::Critical, AlertState::Acknowledged),
                ])
            ),
            "1 firing (error)"
        );
    }

    #[test]
    fn unicode_style() {
        let style = Style { ascii: false, max_runs: 1 };
        let view = status(
            vec![run("a", NodeStatus::Running, 0.5), run("b", NodeStatus::Running, 0.5)],
            vec![alert(Level::Warning, AlertState::Firing)],
        );
        assert_eq!(render(&style, &view), "cpu 12% mem 43% load 0.52 │ ▶ a 50% +1 │ ▲ 1 firing (warning)");
    }

    #[test]
    fn always_one_line() {
        let mut bad = run("x", NodeStatus::Running, f64::NAN);
        bad.name = "evil\nname\r\twith a very long tail indeed".into();
        let mut snap = snapshot();
        snap.memory_total_bytes = 0;
        snap.cpu_percent = f32::NAN;
        let view = View::Status(StatusView { system: snap, runs: vec![bad], firing: vec![] });
        let line = render(&Style::default(), &view);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(line, "cpu 0% load 0.52 | evil name  with a ver... 0%");
        let unicode = Style { ascii: false, max_runs: 2 };
        assert!(render(&unicode, &view).contains("evil name  with a very …"));
    }

    #[test]
    fn config() {
        assert_eq!(Style::parse("").unwrap(), Style::default());
        assert_eq!(Style::parse("ascii = false\nmax_runs = 4").unwrap(), Style { ascii: false, max_runs: 4 });
        assert!(Style::parse("ascii = \"no\"").is_err());
        assert!(Style::parse("max_runs = -1").is_err());
        assert!(Style::parse("colour = true").is_err());
    }
}
