//! One module per panel; each draws the focused panel's body and the details of
//! its selected row.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::model::{Model, Panel};
use super::theme::Tone;

mod alerts;
mod custom;
mod jobs;
mod plugins;
mod processes;
mod progress;
mod system;

pub use processes::COLUMNS_HELP;

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    match model.focus {
        Panel::System => system::render(model, frame, area),
        Panel::Processes => processes::render(model, frame, area),
        Panel::Progress => progress::render(model, frame, area),
        Panel::Alerts => alerts::render(model, frame, area),
        Panel::Plugins => plugins::render(model, frame, area),
        Panel::Custom => custom::render(model, frame, area),
    }
}

/// The selected row of the focused panel, as `label: value` lines in a box.
pub fn details(model: &Model, frame: &mut Frame, area: Rect) {
    let lines: Vec<(String, String)> = match model.focus {
        Panel::System | Panel::Custom => Vec::new(),
        Panel::Processes => processes::details(model),
        Panel::Progress => progress::details(model),
        Panel::Alerts => alerts::details(model),
        Panel::Plugins => plugins::details(model),
    };
    let theme = &model.theme;
    frame.render_widget(Clear, area);
    let block = Block::bordered().title(Line::styled(" Details (Esc closes) ", theme.heading()));
    let text: Vec<Line> = lines
        .into_iter()
        .map(|(label, value)| {
            Line::from(vec![ratatui::text::Span::styled(format!("{label:>10}  "), theme.heading()), value.into()])
        })
        .collect();
    frame.render_widget(Paragraph::new(text).block(block).wrap(Wrap { trim: false }), area);
}

/// The panel's frame: its title, with how many rows it shows and the filter in force.
fn block<'a>(model: &Model, title: String) -> Block<'a> {
    let mut title = format!(" {title} ");
    if !model.filter.text().is_empty() {
        title.push_str(&format!("· filter '{}' ", model.filter.text()));
    }
    Block::bordered().title(Line::styled(title, model.theme.heading()))
}

/// The time of the data shown, so a paused screen computes ETAs and ages as of its data.
fn now(model: &Model) -> u64 {
    match model.shown().data.snapshot.timestamp_ms {
        0 => crate::sampler::now_ms(),
        at => at,
    }
}

/// The rows a bordered table with a header needs to show `rows` rows.
fn table_height(rows: usize) -> u16 {
    u16::try_from(rows).unwrap_or(u16::MAX).saturating_add(3)
}

/// What an empty panel says instead of rows.
fn empty(model: &Model, frame: &mut Frame, area: Rect, block: Block, text: &str) {
    let text = if model.shown().loaded { text } else { "waiting for data…" };
    let line = Line::styled(text.to_string(), model.theme.tone(Tone::Quiet));
    frame.render_widget(Paragraph::new(line).block(block).wrap(Wrap { trim: true }), area);
}
