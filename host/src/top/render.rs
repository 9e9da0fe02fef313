//! Draws the [`Model`] into a frame: header, tabs, a machine summary, the focused
//! panel, a footer, and the help and details overlays. Pure: the same model draws
//! the same screen, which is what the `TestBackend` tests rely on.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Row, Table, Tabs, Wrap};

use super::format::{self, bar, rate, spark};
use super::keys::HELP;
use super::model::{Model, Origin, Panel};
use super::panels;
use super::panels::COLUMNS_HELP;
use super::theme::{Tone, level_tone, percent_tone};
use crate::alerts::AlertState;

/// Rows from which the summary of the machine shows above the non-system panels.
const SUMMARY_FROM_HEIGHT: u16 = 20;

pub fn render(model: &Model, frame: &mut Frame) {
    let area = frame.area();
    let summary = if model.focus != Panel::System && area.height >= SUMMARY_FROM_HEIGHT { 3 } else { 0 };
    let [header, tabs, summary_area, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(summary),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(model, frame, header);
    render_tabs(model, frame, tabs);
    if summary > 0 {
        render_summary(model, frame, summary_area);
    }
    panels::render(model, frame, body);
    render_footer(model, frame, footer);
    if model.details {
        panels::details(model, frame, centered(area, 70, 60, 60));
    }
    if model.help {
        render_help(model, frame, centered(area, 60, 80, 70));
    }
}

fn render_header(model: &Model, frame: &mut Frame, area: Rect) {
    let theme = &model.theme;
    let view = model.shown();
    let s = &view.data.snapshot;
    let left = if view.loaded {
        format!(
            " {}  up {}  load {:.2} {:.2} {:.2}  {} procs  sampled {}",
            s.hostname,
            format::duration(s.uptime_secs),
            s.load_one,
            s.load_five,
            s.load_fifteen,
            s.process_count,
            format::clock(s.timestamp_ms)
        )
    } else {
        " waiting for the first sample…".to_string()
    };
    let origin = match &model.origin {
        Some(Origin::Daemon) => "host".to_string(),
        Some(Origin::Local) => "local".to_string(),
        Some(Origin::Remote(url)) => url.clone(),
        None => String::new(),
    };
    let (state, tone) = if model.paused() { ("PAUSED", Tone::Warning) } else { ("LIVE", Tone::Fine) };
    let right = Line::from(vec![
        Span::raw(format!("{origin} ")),
        Span::styled(format!(" {state} "), theme.tone(tone).patch(theme.selected())),
    ]);
    let width = right.width() as u16;
    let [left_area, right_area] = Layout::horizontal([Constraint::Min(0), Constraint::Length(width)]).areas(area);
    frame.render_widget(Paragraph::new(left).style(theme.heading()), left_area);
    frame.render_widget(Paragraph::new(right).right_aligned(), right_area);
}

fn render_tabs(model: &Model, frame: &mut Frame, area: Rect) {
    let theme = &model.theme;
    let alerts = &model.shown().data.alerts;
    let firing: Vec<_> = alerts.iter().filter(|a| a.state == AlertState::Firing).collect();
    let titles: Vec<Line> = model
        .panels()
        .iter()
        .enumerate()
        .map(|(i, panel)| {
            let mut spans = vec![Span::raw(format!("{} {}", i + 1, panel.title()))];
            if *panel == Panel::Alerts && !firing.is_empty() {
                let worst = firing.iter().map(|a| a.level).max().expect("not empty");
                spans.push(Span::styled(format!(" {} firing", firing.len()), theme.tone(level_tone(worst))));
            }
            Line::from(spans)
        })
        .collect();
    // A space either side of each title and a divider between them, unless that
    // leaves the last tab cut off.
    let padded: usize = titles.iter().map(|t| t.width() + 3).sum::<usize>().saturating_sub(1);
    let padding = if padded <= area.width as usize { " " } else { "" };
    let tabs = Tabs::new(titles)
        .select(model.focus.index())
        .highlight_style(theme.selected())
        .divider("│")
        .padding(padding, padding);
    frame.render_widget(tabs, area);
}

/// Three lines: CPU and memory with bars and sparklines, then network and disk rates.
fn render_summary(model: &Model, frame: &mut Frame, area: Rect) {
    let theme = &model.theme;
    let view = model.shown();
    let s = &view.data.snapshot;
    let h = &view.history;
    let spark_width = (area.width as usize).saturating_sub(40).min(60);
    let memory =
        if s.memory_total_bytes == 0 { 0.0 } else { 100.0 * s.memory_used_bytes as f64 / s.memory_total_bytes as f64 };
    let cpu = f64::from(s.cpu_percent);
    let lines = vec![
        Line::from(vec![
            Span::styled(" CPU ", theme.heading()),
            Span::styled(bar(cpu / 100.0, 20), theme.tone(percent_tone(cpu))),
            Span::styled(format!(" {cpu:5.1}%  "), theme.tone(percent_tone(cpu))),
            Span::raw(spark(h.cpu.iter(), spark_width, Some(100.0))),
        ]),
        Line::from(vec![
            Span::styled(" MEM ", theme.heading()),
            Span::styled(bar(memory / 100.0, 20), theme.tone(percent_tone(memory))),
            Span::styled(format!(" {memory:5.1}%  "), theme.tone(percent_tone(memory))),
            Span::raw(spark(h.memory.iter(), spark_width, Some(100.0))),
        ]),
        Line::from(vec![
            Span::styled(" NET ", theme.heading()),
            Span::raw(format!("rx {:>9} tx {:>9}  ", rate(h.net_rx.back().copied()), rate(h.net_tx.back().copied()))),
            Span::styled("DISK ", theme.heading()),
            Span::raw(format!(
                "read {:>9} write {:>9}",
                rate(h.disk_read.back().copied()),
                rate(h.disk_write.back().copied())
            )),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

fn render_footer(model: &Model, frame: &mut Frame, area: Rect) {
    let theme = &model.theme;
    let line = if let Some(kill) = &model.confirm {
        Line::from(vec![
            Span::styled(
                format!(" send {} to {} ({})? ", kill.signal.name(), kill.pid, kill.command),
                theme.tone(Tone::Warning),
            ),
            Span::styled("y/Enter: SIGTERM · 9: SIGKILL · n/Esc: no", theme.heading()),
        ])
    } else if let Some(text) = &model.editing {
        Line::from(vec![
            Span::styled(" filter: ", theme.heading()),
            Span::raw(format!("{text}█")),
            Span::styled("   Enter applies · Esc cancels · 'active' = doing work", theme.tone(Tone::Quiet)),
        ])
    } else if let Some(notice) = &model.notice {
        let tone = if notice.error { Tone::Bad } else { Tone::Plain };
        Line::from(Span::styled(format!(" {}", notice.text), theme.tone(tone)))
    } else {
        let mut spans = vec![Span::styled(
            " q quit  ? help  tab panel  / filter  s/S sort  t tree  k signal  space pause  enter details",
            theme.tone(Tone::Quiet),
        )];
        if !model.filter.text().is_empty() {
            spans.push(Span::styled(format!("  filter: {}", model.filter.text()), theme.tone(Tone::Warning)));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn render_help(model: &Model, frame: &mut Frame, area: Rect) {
    let theme = &model.theme;
    frame.render_widget(Clear, area);
    let block = Block::bordered().title(Line::styled(" Keys (? or Esc closes) ", theme.heading()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let columns = COLUMNS_HELP.len() as u16 + 2;
    let [keys, processes, legend] =
        Layout::vertical([Constraint::Min(HELP.len() as u16), Constraint::Length(columns), Constraint::Length(3)])
            .areas(inner);
    let table = |rows: &[(&'static str, &'static str)]| {
        let rows = rows.iter().map(|(key, what)| Row::new([Span::styled(*key, theme.heading()), Span::raw(*what)]));
        Table::new(rows, [Constraint::Length(20), Constraint::Min(10)]).column_spacing(1)
    };
    frame.render_widget(table(HELP), keys);
    let heading = Row::new([Span::raw("process column"), Span::raw("")]).style(theme.heading()).top_margin(1);
    frame.render_widget(table(COLUMNS_HELP).header(heading), processes);
    let legend_lines = vec![
        Line::from(vec![
            Span::raw("colours: "),
            Span::styled("fine", theme.tone(Tone::Fine)),
            Span::raw("  "),
            Span::styled("warning", theme.tone(Tone::Warning)),
            Span::raw("  "),
            Span::styled("error/critical", theme.tone(Tone::Bad)),
        ]),
        Line::from(format!(
            "refresh every {}; NO_COLOR=1 turns colour off",
            humantime::format_duration(model.interval)
        )),
    ];
    frame.render_widget(Paragraph::new(legend_lines).wrap(Wrap { trim: true }), legend);
}

/// A rectangle `percent_x` by `percent_y` of `area`, in its middle, at least
/// `min_width`×12 where the area allows.
pub fn centered(area: Rect, percent_x: u16, percent_y: u16, min_width: u16) -> Rect {
    // In u32: a very wide terminal times a percentage overflows u16.
    let share = |length: u16, percent: u16| (u32::from(length) * u32::from(percent) / 100) as u16;
    let width = share(area.width, percent_x).max(min_width).min(area.width);
    let height = share(area.height, percent_y).max(12).min(area.height);
    Rect::new(area.x + (area.width - width) / 2, area.y + (area.height - height) / 2, width, height)
}
