//! Plugins: state, calls, faults, latency and peak memory; the host's watch jobs
//! below them ([`super::jobs`]). One selection runs down both: past the last plugin
//! it moves into the jobs.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::super::format::bytes;
use super::super::model::{Model, Panel, PluginsRow};
use super::super::theme::{Tone, plugin_tone};
use super::jobs;
use crate::plugin::PluginRecord;

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let rows = model.plugins();
    let selected = model.selected[Panel::Plugins.index()];
    // With no rows, the line saying so takes the header's place.
    let [top, bottom] = split(area, super::table_height(rows.len()), jobs::height(model));
    render_plugins(model, frame, top, &rows, (selected < rows.len()).then_some(selected));
    if bottom.height > 0 {
        jobs::render(model, frame, bottom, selected.checked_sub(rows.len()));
    }
}

/// The plugins get the rows they need and the jobs the rest; when both need more than
/// there is, the jobs still get half.
fn split(area: Rect, plugins: u16, jobs: u16) -> [Rect; 2] {
    let height = area.height;
    let jobs = match jobs {
        0 => 0,
        _ if plugins.saturating_add(jobs) <= height => height - plugins,
        jobs => jobs.min(height.saturating_sub(plugins).max(height / 2)),
    };
    Layout::vertical([Constraint::Min(0), Constraint::Length(jobs)]).areas(area)
}

fn render_plugins(model: &Model, frame: &mut Frame, area: Rect, rows: &[&PluginRecord], selected: Option<usize>) {
    let running = rows.iter().filter(|p| p.state == crate::plugin::PluginState::Running).count();
    let block = super::block(model, format!("Plugins · {running} running of {}", rows.len()));
    if rows.is_empty() {
        return super::empty(model, frame, area, block, "no plugins; put .wasm files in the plugin directory");
    }
    let theme = model.theme;
    let table_rows = rows.iter().map(|p| {
        let faults = if p.stats.faults > 0 { Tone::Bad } else { Tone::Plain };
        Row::new(vec![
            Cell::from(p.name.clone()),
            Cell::from(Span::styled(p.state.word(), theme.tone(plugin_tone(&p.state)))),
            Cell::from(format!("{:>8}", p.stats.calls)),
            Cell::from(Span::styled(format!("{:>6}", p.stats.faults), theme.tone(faults))),
            Cell::from(format!("{:>9}", micros(p.stats.p50_us))),
            Cell::from(format!("{:>9}", micros(p.stats.p99_us))),
            Cell::from(format!("{:>7}", bytes(p.stats.memory_peak_bytes as f64))),
        ])
    });
    let widths = [
        Constraint::Min(14),
        Constraint::Length(14),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(7),
    ];
    let header =
        Row::new(["NAME", "STATE", "   CALLS", "FAULTS", "      P50", "      P99", "    MEM"]).style(theme.heading());
    let table = Table::new(table_rows, widths).header(header).block(block).row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

/// `85µs`, `1.2ms`, `-` before any call.
fn micros(us: f64) -> String {
    match us {
        0.0 => "-".into(),
        us if us < 1000.0 => format!("{us:.0}µs"),
        us => format!("{:.1}ms", us / 1000.0),
    }
}

pub fn details(model: &Model) -> Vec<(String, String)> {
    match model.selected_plugins_row() {
        Some(PluginsRow::Plugin(p)) => plugin_details(p),
        Some(PluginsRow::Job(job)) => jobs::details(model, job),
        None => Vec::new(),
    }
}

fn plugin_details(p: &PluginRecord) -> Vec<(String, String)> {
    let roles: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
    let grants: Vec<String> = p.grants.iter().map(|g| g.to_string()).collect();
    vec![
        ("name".into(), format!("{} {}", p.name, p.version)),
        ("summary".into(), p.summary.clone()),
        ("roles".into(), roles.join(", ")),
        ("state".into(), p.state.to_string()),
        ("calls".into(), p.stats.calls.to_string()),
        ("faults".into(), format!("{} ({} in a row)", p.stats.faults, p.stats.consecutive_faults)),
        ("latency".into(), format!("p50 {}  p99 {}", micros(p.stats.p50_us), micros(p.stats.p99_us))),
        ("memory".into(), format!("{} peak", bytes(p.stats.memory_peak_bytes as f64))),
        ("grants".into(), if grants.is_empty() { "none".into() } else { grants.join(", ") }),
        ("last error".into(), p.stats.last_error.clone().unwrap_or_else(|| "-".into())),
        ("file".into(), p.file.as_ref().map_or("-".into(), |f| f.display().to_string())),
    ]
}
