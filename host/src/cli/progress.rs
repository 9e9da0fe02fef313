//! `monitor progress ...`, `monitor list` and `monitor status RUN`.

use std::fmt::Write as _;

use clap::{Args, Subcommand};

use super::UsageError;
use crate::client::Client;
use crate::error::CommandResult;
use crate::paths::DataDir;
use crate::progress::{FailurePolicy, Node, NodePath, Op, Pace, Resources, Status, Update};

#[derive(Debug, Subcommand)]
pub enum ProgressCommand {
    /// Start a node (a run, phase, step, ...); its parents are created as needed.
    Start {
        path: String,
        /// Units of work in all, when known.
        #[arg(long, allow_negative_numbers = true)]
        total: Option<f64>,
        /// The node's share of its parent when totals are not comparable.
        #[arg(long, allow_negative_numbers = true)]
        weight: Option<f64>,
        /// A progress-calculator plugin that computes this node and the parents below it.
        #[arg(long, value_name = "PLUGIN")]
        calculator: Option<String>,
        /// What a failed child does to this node and the parents below it.
        #[arg(long, value_enum, value_name = "POLICY")]
        on_failure: Option<FailurePolicy>,
        /// A running process (yours) whose tree's CPU, memory and I/O the node records
        /// from now on, like $$ for the shell that runs the step.
        #[arg(long)]
        pid: Option<u32>,
        #[command(flatten)]
        note: Note,
    },
    /// Declare a node's phases up front: they show as pending and count in its progress,
    /// and the node stays open until they are all done.
    Plan {
        path: String,
        /// The phases in order, like init setup build test cleanup.
        #[arg(required = true)]
        phases: Vec<String>,
        /// Each phase's share of the whole, in the same order, like 5,15,40,30,10.
        #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
        weights: Option<Vec<f64>>,
        #[command(flatten)]
        note: Note,
    },
    /// Report progress: units done, units advanced, or a percentage.
    Update {
        path: String,
        #[command(flatten)]
        amount: Amount,
        #[command(flatten)]
        note: Note,
    },
    /// Mark a node completed.
    Finish {
        path: String,
        #[command(flatten)]
        note: Note,
    },
    /// Mark a node failed.
    Fail {
        path: String,
        #[command(flatten)]
        note: Note,
    },
    /// Mark a node cancelled.
    Cancel {
        path: String,
        #[command(flatten)]
        note: Note,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Amount {
    /// Units done so far.
    #[arg(long, allow_negative_numbers = true)]
    done: Option<f64>,
    /// Units done since the last report.
    #[arg(long, allow_negative_numbers = true)]
    advance: Option<f64>,
    /// Percent done, 0 to 100.
    #[arg(long, allow_negative_numbers = true)]
    percent: Option<f64>,
}

#[derive(Debug, Args)]
pub struct Note {
    /// A message shown with the node.
    #[arg(long)]
    message: Option<String>,
    /// A JSON object whose keys merge into the node's metadata.
    #[arg(long, value_name = "JSON")]
    metadata: Option<String>,
}

fn path(text: &str) -> Result<NodePath, UsageError> {
    NodePath::parse(text).map_err(|e| UsageError(e.to_string()))
}

pub fn run(client: &dyn Client, command: ProgressCommand) -> CommandResult<()> {
    let mut setup = (None, None, None);
    let (target, op, note) = match command {
        ProgressCommand::Start { path, total, weight, calculator, on_failure, pid, note } => {
            setup = (calculator, on_failure, pid);
            (path, Op::Start { total, weight }, note)
        }
        ProgressCommand::Plan { path, phases, weights, note } => (path, Op::Plan { phases, weights }, note),
        ProgressCommand::Update { path, amount, note } => {
            let op = match (amount.done, amount.advance, amount.percent) {
                (Some(units), _, _) => Op::Done { units },
                (_, Some(units), _) => Op::Advance { units },
                (_, _, Some(percent)) => Op::Percent { percent },
                _ => unreachable!("clap requires one amount"),
            };
            (path, op, note)
        }
        ProgressCommand::Finish { path, note } => (path, Op::Finish, note),
        ProgressCommand::Fail { path, note } => (path, Op::Fail, note),
        ProgressCommand::Cancel { path, note } => (path, Op::Cancel, note),
    };
    let target = path(&target)?;
    let mut update = Update::new(op);
    (update.calculator, update.on_failure, update.pid) = setup;
    update.message = note.message;
    if let Some(json) = note.metadata {
        let value = serde_json::from_str(&json).map_err(|e| {
            UsageError(format!("--metadata '{json}' is not JSON ({e}); write an object like '{{\"k\":1}}'"))
        })?;
        update.metadata = Some(value);
    }
    let node = client.progress(&target, &update)?;
    println!("{} {} {:.0}%", node.path, node.status.as_str(), node.progress * 100.0);
    Ok(())
}

/// Which runs `monitor list` shows; with several flags, a run that matches any.
#[derive(Debug, Default, Args)]
pub struct RunFilter {
    /// Runs still going (running or paused).
    #[arg(long)]
    running: bool,
    /// Runs that failed.
    #[arg(long)]
    failed: bool,
    /// Runs that changed within this long, like 90m, 12h or 2d.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    since: Option<std::time::Duration>,
}

impl RunFilter {
    fn keeps(&self, run: &Node, now_ms: u64) -> bool {
        let by_status = (!self.running && !self.failed)
            || (self.running && matches!(run.status, Status::Running | Status::Paused))
            || (self.failed && run.status == Status::Failed);
        let recent = self.since.is_none_or(|d| run.updated_ms >= now_ms.saturating_sub(d.as_millis() as u64));
        by_status && recent
    }
}

/// `monitor list`: one line per run.
pub fn list(client: &dyn Client, json: bool, filter: &RunFilter) -> CommandResult<()> {
    let now = crate::sampler::now_ms();
    let runs: Vec<Node> = client.runs()?.into_iter().filter(|r| filter.keeps(r, now)).collect();
    if json {
        super::print_json(&runs)?;
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs");
        return Ok(());
    }
    println!("{}", run_header());
    for run in runs {
        println!("{}", run_row(&run, now).trim_end());
    }
    Ok(())
}

/// `monitor list --hosts`: every host's runs in one table.
pub fn list_hosts(hosts: &std::path::Path, json: bool, filter: &RunFilter) -> CommandResult<()> {
    let entries = crate::client::fleet::read(hosts)?;
    let now = crate::sampler::now_ms();
    let answers = crate::client::fleet::ask(&entries, |host| {
        Ok(host.runs()?.into_iter().filter(|r| filter.keeps(r, now)).collect::<Vec<_>>())
    });
    super::fleet::print(&answers, json, &run_header(), |run| run_row(run, now))
}

fn run_header() -> String {
    format!("{:<24} {:<10} {:>8}  {:<20} {:>10}  ETA", "RUN", "STATUS", "PROGRESS", "STARTED (UTC)", "DURATION")
}

fn run_row(run: &Node, now: u64) -> String {
    let started = run.started_ms.map_or("-".into(), utc);
    let duration = run.started_ms.map_or("-".into(), |s| seconds(run.finished_ms.unwrap_or(now).saturating_sub(s)));
    format!(
        "{:<24} {:<10} {:>7.0}%  {:<20} {:>10}  {}",
        run.path.to_string(),
        run.status.as_str(),
        run.progress * 100.0,
        started,
        duration,
        eta(run, now)
    )
}

/// `monitor status RUN`: the tree with bars, or rendered by a display formatter.
pub fn tree(client: &dyn Client, run: &str, json: bool, format: Option<&str>) -> CommandResult<()> {
    if let Some(plugin) = format {
        super::print_text(&client.format_run(run, plugin)?);
        return Ok(());
    }
    let nodes = client.tree(run)?;
    if json {
        super::print_json(&nodes)?;
    } else {
        print!("{}", render(&nodes, crate::sampler::now_ms()));
    }
    Ok(())
}

/// `monitor watch RUN`: redraws the tree when it changes; returns when the run ends.
/// It connects anew for every look, so without a host it holds the database only
/// while reading and reporters can write in between.
pub fn watch(data: &DataDir, run: &str, every: std::time::Duration) -> CommandResult<()> {
    use std::io::{IsTerminal, Write};
    let terminal = std::io::stdout().is_terminal();
    let mut shown = String::new();
    loop {
        let nodes = crate::client::connect(data, None)?.tree(run)?;
        let text = render(&nodes, crate::sampler::now_ms());
        if text != shown {
            let mut out = std::io::stdout().lock();
            if terminal {
                // Home and clear: redraw in place.
                write!(out, "\x1b[H\x1b[2J")?;
            } else if !shown.is_empty() {
                writeln!(out)?;
            }
            write!(out, "{text}")?;
            out.flush()?;
            shown = text;
        }
        if nodes.first().is_some_and(|root| root.status.is_terminal()) {
            return Ok(());
        }
        std::thread::sleep(every);
    }
}

/// `monitor history RUN`: the updates in order, then each node's duration.
pub fn history(client: &dyn Client, run: &str, json: bool) -> CommandResult<()> {
    let events = client.history(run, 0)?;
    if json {
        super::print_json(&events)?;
        return Ok(());
    }
    for event in &events {
        let op = serde_json::to_value(&event.update.op)?;
        let name = op["op"].as_str().unwrap_or_default().to_string();
        let args: Vec<String> = op
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| *k != "op" && !v.is_null())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let outcome = serde_json::to_value(event.applied)?;
        let mut line = format!("{}  {:<28} {:<8} {}", utc(event.at_ms), event.path.to_string(), name, args.join(" "));
        if outcome != "applied" {
            let _ = write!(line, " ({})", outcome.as_str().unwrap_or_default());
        }
        if let Some(message) = &event.update.message {
            let _ = write!(line, "  {message:?}");
        }
        println!("{}", line.trim_end());
    }
    println!();
    let now = crate::sampler::now_ms();
    for node in client.tree(run)? {
        let Some(started) = node.started_ms else { continue };
        let took = node.finished_ms.unwrap_or(now).saturating_sub(started);
        let so_far = if node.finished_ms.is_none() { " so far" } else { "" };
        println!("{:<32} {:<9} {}{so_far}", node.path.to_string(), node.status.as_str(), seconds(took));
    }
    Ok(())
}

fn render(nodes: &[Node], now_ms: u64) -> String {
    let mut out = String::new();
    let base = nodes.first().map_or(1, |n| n.path.depth());
    for node in nodes {
        let indent = "  ".repeat(node.path.depth() - base);
        let label = if node.path.depth() == base { node.path.to_string() } else { node.path.name().to_string() };
        let filled = (node.progress.clamp(0.0, 1.0) * 20.0).round() as usize;
        let mut units = match node.total {
            Some(total) => format!("{}/{}", node.done, total),
            None if node.done > 0.0 => format!("{}", node.done),
            None => String::new(),
        };
        if !node.status.is_terminal()
            && let Some(per_sec) = node.rate.units_per_sec().filter(|r| *r > 0.0 && node.done > 0.0)
        {
            let _ = write!(units, " {}/s", significant(per_sec));
        }
        let _ = write!(
            out,
            "{:<32} {:<9} [{}{}] {:>4.0}% {:>8}  {}",
            format!("{indent}{label}"),
            node.status.as_str(),
            "#".repeat(filled),
            "-".repeat(20 - filled),
            node.progress * 100.0,
            eta(node, now_ms),
            units.trim_start()
        );
        if let Some(used) = &node.resources {
            let _ = write!(out, "  {}", resources_brief(node, used, now_ms));
        }
        if let Some(message) = &node.message {
            let _ = write!(out, "  {message}");
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}

/// `eta 1m05s` while a node is moving, `stalled 3m` when it stopped, blank otherwise.
pub(crate) fn eta(node: &Node, now_ms: u64) -> String {
    if node.status.is_terminal() {
        return String::new();
    }
    match node.pace_at(now_ms) {
        Pace { eta_secs: Some(secs), .. } => format!("eta {}", seconds((secs * 1000.0) as u64)),
        Pace { stalled_since_ms: Some(since), .. } => format!("stalled {}", seconds(now_ms.saturating_sub(since))),
        _ => String::new(),
    }
}

/// `cpu 12.5s 80% · 1.2GiB · io 10.0MiB/2.0MiB`: CPU time and mean share, peak memory, bytes read and written.
pub(crate) fn resources_brief(node: &Node, used: &Resources, now_ms: u64) -> String {
    let wall = node.started_ms.map_or(0, |s| node.finished_ms.unwrap_or(now_ms).saturating_sub(s));
    let mean = used.mean_cpu_percent(wall).map_or(String::new(), |p| format!(" {p:.0}%"));
    format!(
        "cpu {:.1}s{mean} · {} · io {}/{}",
        used.cpu_secs,
        super::resources::bytes(used.rss_peak_bytes),
        super::resources::bytes(used.read_bytes),
        super::resources::bytes(used.written_bytes)
    )
}

/// A rate with three significant digits at most: 1234, 12.3, 0.123.
fn significant(value: f64) -> String {
    match value {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v if v >= 1.0 => format!("{v:.2}"),
        v => format!("{v:.3}"),
    }
}

pub(crate) fn seconds(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, from milliseconds since the epoch.
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// `--on-failure`'s choices are the progress model's policies.
impl clap::ValueEnum for FailurePolicy {
    fn value_variants<'a>() -> &'a [Self] {
        &FailurePolicy::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn durations() {
        assert_eq!(seconds(59_999), "59s");
        assert_eq!(seconds(61_000), "1m01s");
        assert_eq!(seconds(3_700_000), "1h01m");
    }
}
