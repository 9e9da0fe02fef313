//! The host's watch jobs, below the plugins in the plugins panel: state, runs,
//! failures, the last run's outcome and when, and the command. The section is
//! absent while no job shows (no host, none configured, none matching the filter);
//! when the jobs cannot be read it says why in one line and the plugins go on.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::super::format::{cut, duration, printable};
use super::super::model::Model;
use super::super::theme::{Tone, job_tone, run_tone};
use crate::watch::{Execution, JobView};

/// Characters of the last-run column: `exit 0, 3s ago`, `killed by sig…, 1h02m ago`.
const LAST: usize = 22;

/// Lines of each output stream the details show, the last ones.
const TAIL_LINES: usize = 4;

/// The rows the section needs: borders and header around its jobs, or one line for
/// an error; 0 when it is absent.
pub fn height(model: &Model) -> u16 {
    match (&model.shown().data.jobs_error, model.jobs().len()) {
        (Some(_), _) => 3,
        (None, 0) => 0,
        (None, jobs) => super::table_height(jobs),
    }
}

/// Draws the jobs; `selected` is the highlighted job's row, if the selection is down here.
pub fn render(model: &Model, frame: &mut Frame, area: Rect, selected: Option<usize>) {
    let theme = model.theme;
    if let Some(error) = &model.shown().data.jobs_error {
        let block = super::block(model, "Watch jobs".into());
        let line = Line::styled(printable(error).replace('\n', " "), theme.tone(Tone::Bad));
        frame.render_widget(Paragraph::new(line).block(block), area);
        return;
    }
    let rows = model.jobs();
    let running = rows.iter().filter(|j| j.state == "running").count();
    let mut title = format!("Watch jobs · {running} running of {}", rows.len());
    let failed = rows.iter().filter(|j| run_tone(j.last.as_ref()) == Tone::Bad).count();
    if failed > 0 {
        title.push_str(&format!(" · {failed} failed last"));
    }
    let now = super::now(model);
    let name_width = rows.iter().map(|j| j.name.chars().count()).max().unwrap_or(4).clamp(8, 20);
    let command_width = (area.width as usize).saturating_sub(name_width + 8 + 5 + 5 + LAST + 5 + 2).max(8);
    let table_rows = rows.iter().map(|j| {
        let failures = if j.failures > 0 { Tone::Bad } else { Tone::Plain };
        Row::new(vec![
            Cell::from(cut(&j.name, name_width)),
            Cell::from(Span::styled(j.state.clone(), theme.tone(job_tone(j, model.job_running_secs(j))))),
            Cell::from(format!("{:>5}", j.runs)),
            Cell::from(Span::styled(format!("{:>5}", j.failures), theme.tone(failures))),
            Cell::from(Span::styled(last(j.last.as_ref(), now), theme.tone(run_tone(j.last.as_ref())))),
            Cell::from(cut(&printable(&j.command.join(" ")), command_width)),
        ])
    });
    let widths = [
        Constraint::Length(name_width as u16),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(LAST as u16),
        Constraint::Min(8),
    ];
    let header = Row::new(["NAME", "STATE", " RUNS", "FAILS", "LAST RUN", "COMMAND"]).style(theme.heading());
    let table = Table::new(table_rows, widths)
        .header(header)
        .block(super::block(model, title))
        .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

/// `exit 0, 3s ago`, the outcome cut to fit; `never` before the first run.
fn last(run: Option<&Execution>, now: u64) -> String {
    let Some(run) = run else {
        return "never".into();
    };
    let ago = format!(", {} ago", duration(now.saturating_sub(run.finished_ms) / 1000));
    let outcome = cut(&run.outcome.to_string(), LAST.saturating_sub(ago.chars().count()));
    format!("{outcome}{ago}")
}

pub fn details(model: &Model, job: &JobView) -> Vec<(String, String)> {
    let mut state = job.state.clone();
    if let Some(pid) = job.pid {
        let running = model.job_running_secs(job).map_or(String::new(), |secs| format!(" for {}", duration(secs)));
        state.push_str(&format!("{running} (pid {pid})"));
    }
    if job.paused && job.state != "paused" {
        state.push_str(", paused");
    }
    if job.queued > 0 {
        state.push_str(&format!(", {} queued", job.queued));
    }
    let roots: Vec<String> = job.roots.iter().map(|r| r.display().to_string()).collect();
    let mut lines = vec![
        ("job".into(), job.name.clone()),
        ("state".into(), state),
        ("roots".into(), roots.join(", ")),
        ("command".into(), printable(&job.command.join(" "))),
        (
            "runs".into(),
            format!("{} ({} failed, {} rescans, {} skipped)", job.runs, job.failures, job.rescans, job.skipped),
        ),
    ];
    let Some(run) = &job.last else {
        lines.push(("last run".into(), "never".into()));
        return lines;
    };
    let took = humantime::format_duration(std::time::Duration::from_millis(run.duration_ms()));
    let at = crate::cli::progress::utc(run.finished_ms);
    lines.push((
        "last run".into(),
        format!("#{} for {}: {} at {at}, took {took}", run.seq, run.reason.as_str(), run.outcome),
    ));
    let paths: Vec<String> = run.paths.iter().map(|p| p.display().to_string()).collect();
    lines.push(("paths".into(), cut(&format!("{}: {}", paths.len(), paths.join(" ")), 200)));
    for (label, tail) in [("stdout", &run.stdout_tail), ("stderr", &run.stderr_tail)] {
        let tail: Vec<&str> = tail.lines().filter(|l| !l.trim().is_empty()).collect();
        let shown = &tail[tail.len().saturating_sub(TAIL_LINES)..];
        for (i, line) in shown.iter().enumerate() {
            lines.push((if i == 0 { label } else { "" }.into(), printable(line)));
        }
    }
    lines
}
