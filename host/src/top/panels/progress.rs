//! Runs as trees: runs still going first with every node, then finished runs, each
//! with a bar, its status in colour, and an ETA while it moves.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::super::format::{bar, bytes, cut, duration};
use super::super::model::{Model, Panel};
use super::super::theme::{Tone, status_tone};
use crate::progress::Node;

/// Cells of a progress bar.
const BAR: usize = 12;

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let rows = model.progress();
    let runs = model.shown().data.runs.len();
    let going = model.shown().data.runs.iter().filter(|r| r.first().is_some_and(|n| !n.status.is_terminal())).count();
    let block = super::block(model, format!("Progress · {going} running of {runs} runs"));
    if rows.is_empty() {
        let text = if model.filter.text().is_empty() {
            "no runs yet; report one with 'monitor progress start RUN/STEP --total N'"
        } else {
            "no runs match the filter; Esc clears it"
        };
        return super::empty(model, frame, area, block, text);
    }
    let theme = model.theme;
    let now = super::now(model);
    let name_width = rows.iter().map(|n| label(n).chars().count()).max().unwrap_or(4).clamp(8, 32) as u16;
    let table_rows = rows.iter().map(|n| {
        let tone = theme.tone(status_tone(n.status));
        Row::new(vec![
            Cell::from(label(n)),
            Cell::from(Span::styled(n.status.as_str(), tone)),
            Cell::from(Line::from(vec![
                Span::styled(bar(n.progress, BAR), tone),
                Span::raw(format!(" {:>3.0}%", n.progress * 100.0)),
            ])),
            Cell::from(Span::styled(eta(n, now), theme.tone(Tone::Quiet))),
            Cell::from(units(n)),
            Cell::from(n.resources.map_or(String::new(), |r| cost(&r))),
            Cell::from(n.message.clone().unwrap_or_default()),
        ])
    });
    let widths = [
        Constraint::Length(name_width),
        Constraint::Length(9),
        Constraint::Length(BAR as u16 + 5),
        Constraint::Length(8),
        Constraint::Length(11),
        Constraint::Length(11),
        Constraint::Min(8),
    ];
    let header = Row::new(["NAME", "STATUS", "PROGRESS", "ETA", "DONE", "CPU·MEM", "MESSAGE"]).style(theme.heading());
    let table = Table::new(table_rows, widths).header(header).block(block).row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(Some(model.selected[Panel::Progress.index()]));
    frame.render_stateful_widget(table, area, &mut state);
}

/// The run's name for a root, the indented last segment for a node below it.
fn label(n: &Node) -> String {
    if n.path.depth() <= 1 {
        cut(n.path.as_str(), 32)
    } else {
        format!("{}{}", "  ".repeat(n.path.depth() - 1), cut(n.path.name(), 28))
    }
}

fn eta(n: &Node, now: u64) -> String {
    if n.status.is_terminal() {
        return String::new();
    }
    match n.pace_at(now) {
        crate::progress::Pace { eta_secs: Some(secs), .. } if secs > 0.0 => duration(secs as u64),
        crate::progress::Pace { stalled_since_ms: Some(since), .. } => {
            format!("stalled {}", duration(now.saturating_sub(since) / 1000))
        }
        _ => String::new(),
    }
}

fn units(n: &Node) -> String {
    match n.total {
        Some(total) => cut(&format!("{}/{}", short(n.done), short(total)), 11),
        None if n.done > 0.0 => short(n.done),
        None => String::new(),
    }
}

/// `12s 1.2G`: CPU seconds and peak memory, in the eleven cells of the column.
fn cost(r: &crate::progress::Resources) -> String {
    let cpu = if r.cpu_secs < 100.0 { format!("{:.1}s", r.cpu_secs) } else { duration(r.cpu_secs as u64) };
    cut(&format!("{cpu} {}", bytes(r.rss_peak_bytes as f64)), 11)
}

/// `3`, `2.5`, `1234567`: whole numbers without a fraction.
fn short(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

pub fn details(model: &Model) -> Vec<(String, String)> {
    let Some(n) = model.progress().get(model.selected[Panel::Progress.index()]).copied().cloned() else {
        return Vec::new();
    };
    let now = super::now(model);
    let at = |ms: Option<u64>| ms.map_or("-".to_string(), crate::cli::progress::utc);
    let mut lines = vec![
        ("path".into(), n.path.to_string()),
        ("status".into(), n.status.to_string()),
        ("progress".into(), format!("{:.1}%", n.progress * 100.0)),
        ("done".into(), units(&n)),
        ("rate".into(), n.rate.units_per_sec().map_or("-".into(), |r| format!("{r:.3}/s"))),
        ("eta".into(), eta(&n, now)),
        ("started".into(), at(n.started_ms)),
        ("finished".into(), at(n.finished_ms)),
        (
            "took".into(),
            n.started_ms.map_or("-".into(), |s| duration(n.finished_ms.unwrap_or(now).saturating_sub(s) / 1000)),
        ),
        ("message".into(), n.message.clone().unwrap_or_default()),
    ];
    if let Some(r) = &n.resources {
        lines.push(("resources".into(), crate::cli::progress::resources_brief(&n, r, now)));
        lines.push(("cpu peak".into(), format!("{:.0}%", r.cpu_peak_percent)));
        lines.push(("processes".into(), r.processes.to_string()));
    }
    if let Some(pid) = n.pid {
        lines.push(("pid".into(), pid.to_string()));
    }
    for (key, value) in &n.metadata {
        lines.push((key.clone(), value.to_string()));
    }
    lines
}
