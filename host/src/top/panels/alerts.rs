//! Alerts, firing first and the most severe first; `a` acknowledges the selected one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::super::format::duration;
use super::super::model::{Model, Panel};
use super::super::theme::{alert_tone, level_tone};
use crate::alerts::AlertState;

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let rows = model.alerts();
    let firing = rows.iter().filter(|a| a.state == AlertState::Firing).count();
    let block = super::block(model, format!("Alerts · {firing} firing of {} · a acknowledges", rows.len()));
    if rows.is_empty() {
        return super::empty(model, frame, area, block, "no alerts");
    }
    let theme = model.theme;
    let now = model.shown().data.snapshot.timestamp_ms;
    let table_rows =
        rows.iter().map(|a| {
            let tone = theme.tone(alert_tone(a.state, a.level));
            let state = match (&a.ack, a.silenced) {
                (_, true) => format!("{} (silenced)", a.state),
                _ => a.state.to_string(),
            };
            let since = a.fired_ms.unwrap_or(a.since_ms);
            Row::new(vec![
                Cell::from(Span::styled(state, tone)),
                Cell::from(Span::styled(a.level.as_str(), theme.tone(level_tone(a.level)))),
                Cell::from(a.id.clone()),
                Cell::from(a.value.map_or(String::new(), |v| {
                    format!("{v:.4}").trim_end_matches('0').trim_end_matches('.').to_string()
                })),
                Cell::from(if now > since { duration((now - since) / 1000) } else { String::new() }),
                Cell::from(a.message.clone()),
            ])
        });
    let widths = [
        Constraint::Length(12),
        Constraint::Length(8),
        Constraint::Min(16),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Min(10),
    ];
    let header = Row::new(["STATE", "LEVEL", "ALERT", "VALUE", "FOR", "MESSAGE"]).style(theme.heading());
    let table = Table::new(table_rows, widths).header(header).block(block).row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(Some(model.selected[Panel::Alerts.index()]));
    frame.render_stateful_widget(table, area, &mut state);
}

pub fn details(model: &Model) -> Vec<(String, String)> {
    let Some(a) = model.selected_alert().cloned() else {
        return Vec::new();
    };
    let at = |ms: Option<u64>| ms.map_or("-".to_string(), crate::cli::progress::utc);
    let mut lines = vec![
        ("id".into(), a.id.clone()),
        ("rule".into(), a.rule.clone()),
        ("level".into(), a.level.as_str().into()),
        ("state".into(), a.state.to_string()),
        ("since".into(), at(Some(a.since_ms))),
        ("fired".into(), at(a.fired_ms)),
        ("value".into(), a.value.map_or("-".into(), |v| v.to_string())),
        ("message".into(), a.message.clone()),
        ("silenced".into(), if a.silenced { "yes" } else { "no" }.into()),
    ];
    if let Some(ack) = &a.ack {
        lines.push(("acked".into(), format!("by {} at {}: {}", ack.by, at(Some(ack.at_ms)), ack.note)));
    }
    for (key, value) in &a.labels {
        lines.push((key.clone(), value.clone()));
    }
    lines
}
