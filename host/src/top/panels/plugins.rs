//! Plugins: state, calls, faults, latency and peak memory.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::super::format::bytes;
use super::super::model::{Model, Panel};
use super::super::theme::{Tone, plugin_tone};

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let rows = model.plugins();
    let running = rows.iter().filter(|p| p.state == crate::plugin::State::Running).count();
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
    let mut state = TableState::default().with_selected(Some(model.selected[Panel::Plugins.index()]));
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
    let Some(p) = model.plugins().get(model.selected[Panel::Plugins.index()]).copied().cloned() else {
        return Vec::new();
    };
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
