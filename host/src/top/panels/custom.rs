//! The host status as the display-formatter plugin of `--format` renders it, as the
//! plugin wrote it, or in one line why there is none (the plugin failed, is no
//! formatter, or no host runs to call it). The filter does not apply: the text is
//! the plugin's.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Text};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::super::format::printable;
use super::super::model::Model;
use super::super::theme::Tone;

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let theme = model.theme;
    let plugin = model.custom.as_deref().unwrap_or_default();
    let title = format!(" Custom · the status as {plugin} renders it ");
    let block = Block::bordered().title(Line::styled(title, theme.heading()));
    let view = model.shown();
    let text = match &view.data.custom {
        Some(Ok(text)) if !text.trim().is_empty() => Text::raw(printable(text.trim_end())),
        Some(Ok(_)) => Text::styled(format!("{plugin} rendered nothing"), theme.tone(Tone::Quiet)),
        Some(Err(error)) => Text::styled(printable(error).replace('\n', " "), theme.tone(Tone::Bad)),
        None => Text::styled("waiting for data…", theme.tone(Tone::Quiet)),
    };
    frame.render_widget(Paragraph::new(text).block(block).wrap(Wrap { trim: false }), area);
}
