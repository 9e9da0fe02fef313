//! `monitor report RUN`: what a run did, phase by phase, and what it cost; with
//! `--compare OTHER`, two runs of one pipeline side by side.
//!
//! A phase is a direct child of the run. Its resources are its own or its
//! children's ([`crate::progress::roll_up`]); its alerts are those that began
//! firing while it ran; its slowest steps are the longest of its descendants.

use std::fmt::Write as _;

use clap::Args;
use serde::Serialize;

use super::progress::{seconds, utc};
use super::resources::bytes;
use crate::alerts::AlertState;
use crate::client::Client;
use crate::error::CommandResult;
use crate::progress::{Node, Resources, Status};
use crate::store::alerts::HistoryEntry;

/// Steps listed per phase as its slowest.
const SLOWEST: usize = 3;

#[derive(Debug, Args)]
pub struct ReportArgs {
    run: String,
    /// Put another run of the same pipeline beside it: duration and resources per phase, and the change.
    #[arg(long, value_name = "OTHER_RUN")]
    compare: Option<String>,
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// A Markdown table, for a pull request or a wiki.
    #[arg(long)]
    markdown: bool,
}

/// One run's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run: Row,
    pub phases: Vec<Phase>,
}

/// A node's outcome and cost.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub path: String,
    pub status: Status,
    pub progress: f64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    /// From start to finish, or to now while it runs.
    pub duration_ms: Option<u64>,
    pub resources: Option<Resources>,
    /// CPU time over wall time, in percent of one core.
    pub mean_cpu_percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    #[serde(flatten)]
    pub row: Row,
    /// The alerts that began firing while the phase ran: `LEVEL rule: message`.
    pub alerts: Vec<String>,
    /// Its longest descendants, longest first.
    pub slowest: Vec<Row>,
}

impl Row {
    fn of(node: &Node, now_ms: u64) -> Row {
        let duration_ms = node.started_ms.map(|s| node.finished_ms.unwrap_or(now_ms).saturating_sub(s));
        Row {
            path: node.path.to_string(),
            status: node.status,
            progress: node.progress,
            started_ms: node.started_ms,
            finished_ms: node.finished_ms,
            duration_ms,
            resources: node.resources,
            mean_cpu_percent: node.resources.and_then(|r| r.mean_cpu_percent(duration_ms?)),
        }
    }

    fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// The report of one run's tree (as read, resources rolled up) and the alert history around it.
pub fn build(nodes: &[Node], alerts: &[HistoryEntry], now_ms: u64) -> Option<Report> {
    let root = nodes.first()?;
    let depth = root.path.depth();
    let phases = nodes
        .iter()
        .filter(|n| n.path.depth() == depth + 1)
        .map(|phase| {
            let row = Row::of(phase, now_ms);
            let (from, to) = (phase.started_ms.unwrap_or(u64::MAX), phase.finished_ms.unwrap_or(now_ms));
            let alerts = alerts
                .iter()
                .map(|e| &e.transition)
                .filter(|t| {
                    t.to == AlertState::Firing && t.from != AlertState::Firing && (from..=to).contains(&t.at_ms)
                })
                .map(|t| format!("{} {}: {}", t.level.as_str(), t.rule, crate::text::line(&t.message, 120)))
                .collect();
            let mut steps: Vec<Row> = nodes
                .iter()
                .filter(|n| phase.path.is_ancestor_of(&n.path) && n.started_ms.is_some())
                .map(|n| Row::of(n, now_ms))
                .collect();
            steps.sort_by(|a, b| b.duration_ms.cmp(&a.duration_ms).then_with(|| a.path.cmp(&b.path)));
            steps.truncate(SLOWEST);
            Phase { row, alerts, slowest: steps }
        })
        .collect();
    Some(Report { run: Row::of(root, now_ms), phases })
}

pub fn run(client: &dyn Client, args: &ReportArgs) -> CommandResult<()> {
    let now = crate::sampler::now_ms();
    let report = |run: &str| -> CommandResult<Report> {
        let nodes = client.tree(run)?;
        let since = nodes.first().and_then(|n| n.started_ms).unwrap_or(now);
        // Alert history needs the host's or the database's answer; without it the report goes on.
        let alerts = client.alert_history(since).unwrap_or_default();
        Ok(build(&nodes, &alerts, now).expect("a found run has a root"))
    };
    let first = report(&args.run)?;
    let Some(other) = &args.compare else {
        if args.json {
            return super::print_json(&first);
        }
        print!("{}", if args.markdown { markdown(&first) } else { text(&first) });
        return Ok(());
    };
    let second = report(other)?;
    if args.json {
        return super::print_json(&[&first, &second]);
    }
    print!("{}", compare(&first, &second, args.markdown));
    Ok(())
}

fn duration(row: &Row) -> String {
    row.duration_ms.map_or("-".into(), seconds)
}

fn cpu(row: &Row) -> String {
    match (row.resources, row.mean_cpu_percent) {
        (Some(r), Some(mean)) => format!("{:.1}s ({mean:.0}%)", r.cpu_secs),
        (Some(r), None) => format!("{:.1}s", r.cpu_secs),
        _ => "-".into(),
    }
}

fn memory(row: &Row) -> String {
    row.resources.map_or("-".into(), |r| bytes(r.rss_peak_bytes))
}

fn io(row: &Row) -> String {
    row.resources.map_or("-".into(), |r| format!("{}/{}", bytes(r.read_bytes), bytes(r.written_bytes)))
}

fn cells(row: &Row, name: &str) -> [String; 7] {
    [
        name.to_string(),
        row.status.as_str().to_string(),
        format!("{:.0}%", row.progress * 100.0),
        duration(row),
        cpu(row),
        memory(row),
        io(row),
    ]
}

const HEADINGS: [&str; 7] = ["PHASE", "STATUS", "PROGRESS", "DURATION", "CPU (MEAN)", "PEAK RSS", "READ/WRITTEN"];

/// Columns padded to their widest cell.
fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn text(report: &Report) -> String {
    let run = &report.run;
    let mut out = format!(
        "{}  {}  {:.0}%  started {}  took {}\n\n",
        run.path,
        run.status.as_str(),
        run.progress * 100.0,
        run.started_ms.map_or("-".into(), utc),
        duration(run)
    );
    let mut rows = vec![HEADINGS.map(String::from).to_vec()];
    rows.extend(report.phases.iter().map(|p| cells(&p.row, p.row.name()).to_vec()));
    rows.push(cells(run, "(run)").to_vec());
    out.push_str(&table(&rows));
    for phase in &report.phases {
        let slow: Vec<String> = phase
            .slowest
            .iter()
            .map(|s| {
                format!("{} {}", s.path.strip_prefix(&format!("{}/", phase.row.path)).unwrap_or(&s.path), duration(s))
            })
            .collect();
        if slow.is_empty() && phase.alerts.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}:", phase.row.name());
        if !slow.is_empty() {
            let _ = writeln!(out, "  slowest: {}", slow.join(", "));
        }
        for alert in &phase.alerts {
            let _ = writeln!(out, "  alert: {alert}");
        }
    }
    out
}

fn markdown(report: &Report) -> String {
    let run = &report.run;
    let mut headings: Vec<String> = HEADINGS.iter().map(|h| h.to_lowercase()).collect();
    headings.extend(["alerts".into(), "slowest steps".into()]);
    let mut rows = vec![headings];
    for phase in &report.phases {
        let slow: Vec<String> = phase.slowest.iter().map(|s| format!("{} {}", s.name(), duration(s))).collect();
        let mut row = cells(&phase.row, phase.row.name()).to_vec();
        row.extend([phase.alerts.join("; ").replace('|', "\\|"), slow.join(", ")]);
        rows.push(row);
    }
    let mut last = cells(run, "**run**").to_vec();
    last.extend([String::new(), String::new()]);
    rows.push(last);
    format!("## {} ({}, {})\n\n{}", run.path, run.status.as_str(), duration(run), markdown_table(&rows))
}

/// Rows as a Markdown table, the first the headings.
fn markdown_table(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let _ = writeln!(out, "| {} |", row.join(" | "));
        if i == 0 {
            let _ = writeln!(out, "|{}", "---|".repeat(row.len()));
        }
    }
    out
}

/// `+12%` from `before` to `after`; blank when either is missing or `before` is 0.
fn change(before: Option<f64>, after: Option<f64>) -> String {
    match (before, after) {
        (Some(b), Some(a)) if b > 0.0 => format!("{:+.0}%", (a - b) / b * 100.0),
        _ => String::new(),
    }
}

fn compare(first: &Report, second: &Report, markdown: bool) -> String {
    let mut names: Vec<&str> = first.phases.iter().map(|p| p.row.name()).collect();
    for p in &second.phases {
        if !names.contains(&p.row.name()) {
            names.push(p.row.name());
        }
    }
    let find = |r: &Report, name: &str| r.phases.iter().find(|p| p.row.name() == name).map(|p| p.row.clone());
    let mut rows = vec![
        [
            "PHASE",
            "DURATION A",
            "DURATION B",
            "CHANGE",
            "CPU A",
            "CPU B",
            "CHANGE",
            "PEAK RSS A",
            "PEAK RSS B",
            "CHANGE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut line = |name: &str, a: Option<Row>, b: Option<Row>| {
        let secs = |r: &Option<Row>| r.as_ref().and_then(|r| r.duration_ms).map(|d| d as f64);
        let cpu_secs = |r: &Option<Row>| r.as_ref().and_then(|r| r.resources).map(|x| x.cpu_secs);
        let rss = |r: &Option<Row>| r.as_ref().and_then(|r| r.resources).map(|x| x.rss_peak_bytes as f64);
        let show = |r: &Option<Row>, f: fn(&Row) -> String| r.as_ref().map_or("-".into(), f);
        rows.push(vec![
            name.to_string(),
            show(&a, duration),
            show(&b, duration),
            change(secs(&a), secs(&b)),
            cpu_secs(&a).map_or("-".into(), |c| format!("{c:.1}s")),
            cpu_secs(&b).map_or("-".into(), |c| format!("{c:.1}s")),
            change(cpu_secs(&a), cpu_secs(&b)),
            show(&a, memory),
            show(&b, memory),
            change(rss(&a), rss(&b)),
        ]);
    };
    for name in names {
        line(name, find(first, name), find(second, name));
    }
    line("(run)", Some(first.run.clone()), Some(second.run.clone()));
    let heading = format!("A = {}, B = {}\n", first.run.path, second.run.path);
    format!("{heading}\n{}", if markdown { markdown_table(&rows) } else { table(&rows) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NodePath;

    fn node(path: &str, status: Status, started: u64, finished: Option<u64>, cpu: Option<f64>) -> Node {
        let mut n = Node::new(NodePath::parse(path).unwrap(), 0);
        n.status = status;
        n.started_ms = Some(started);
        n.finished_ms = finished;
        n.resources = cpu.map(|cpu_secs| Resources { cpu_secs, rss_peak_bytes: 1 << 20, ..Default::default() });
        n
    }

    fn tree() -> Vec<Node> {
        use Status::*;
        let mut nodes = vec![
            node("r", Running, 0, None, None),
            node("r/build", Completed, 0, Some(10_000), None),
            node("r/build/a", Completed, 0, Some(2_000), Some(1.0)),
            node("r/build/b", Completed, 2_000, Some(10_000), Some(6.0)),
            node("r/test", Running, 10_000, None, Some(3.0)),
        ];
        crate::progress::roll_up(&mut nodes);
        nodes
    }

    #[test]
    fn phases_have_their_durations_resources_and_slowest_steps() {
        let report = build(&tree(), &[], 20_000).unwrap();
        assert_eq!(report.phases.len(), 2);
        let build = &report.phases[0];
        assert_eq!(build.row.duration_ms, Some(10_000));
        assert_eq!(build.row.resources.unwrap().cpu_secs, 7.0, "its steps' CPU summed");
        assert_eq!(build.row.mean_cpu_percent, Some(70.0));
        assert_eq!(build.slowest[0].path, "r/build/b");
        assert_eq!(report.phases[1].row.duration_ms, Some(10_000), "a running phase counts to now");
        assert_eq!(report.run.resources.unwrap().cpu_secs, 10.0);
        let text = text(&report);
        assert!(text.contains("build") && text.contains("7.0s (70%)") && text.contains("slowest: b 8s"), "{text}");
        assert!(
            markdown(&report).contains("| build | completed | 100% |")
                || markdown(&report).contains("| build | completed |")
        );
    }

    #[test]
    fn a_comparison_gives_the_change_per_phase() {
        let a = build(&tree(), &[], 20_000).unwrap();
        let mut slower = tree();
        slower[1].finished_ms = Some(15_000);
        let b = build(&slower, &[], 20_000).unwrap();
        let out = compare(&a, &b, false);
        let line = out.lines().find(|l| l.starts_with("build")).unwrap();
        assert!(line.contains("10s") && line.contains("15s") && line.contains("+50%"), "{out}");
        assert_eq!(change(Some(0.0), Some(5.0)), "");
    }
}
