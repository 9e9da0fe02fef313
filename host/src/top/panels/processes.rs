//! The process table, sorted by the chosen column (marked ▼ or ▲ in its header).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table, TableState};

use super::super::format::{bytes, duration, rate};
use super::super::keys::sort_name;
use super::super::model::{Model, Panel, SortKey};
use super::super::theme::{Tone, percent_tone};

/// What each column is, for the help.
pub const COLUMNS_HELP: &[(&str, &str)] = &[
    ("PID USER", "process id; the real user's name"),
    ("CPU%", "CPU since the last sample, % of one core (up to 100 × cores)"),
    ("MEM", "resident memory"),
    ("READ/s WRITE/s", "bytes from and to disk per second; - until a second sample"),
    ("STATE", "running, sleeping, disk-sleep (waiting on I/O), stopped, zombie, idle"),
    ("COMMAND", "the command line; [name] for a kernel thread"),
];

/// Columns: header, sort key, width.
const COLUMNS: [(&str, Option<SortKey>, u16); 7] = [
    ("PID", Some(SortKey::Pid), 7),
    ("USER", None, 9),
    ("CPU%", Some(SortKey::Cpu), 6),
    ("MEM", Some(SortKey::Mem), 7),
    ("READ/s", Some(SortKey::Io), 9),
    ("WRITE/s", None, 9),
    ("STATE", None, 8),
];

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let rows = model.process_rows();
    let mut title = format!("Processes {} · sort {}", rows.len(), sort_name(model.sort));
    if model.tree {
        title.push_str(" · tree");
    }
    if model.kernel_threads {
        title.push_str(" · kernel threads");
    }
    let block = super::block(model, title);
    if rows.is_empty() {
        let hint = match model.kernel_threads {
            true => "no processes match the filter; Esc clears it",
            false => "no processes match the filter; Esc clears it, K shows kernel threads",
        };
        return super::empty(model, frame, area, block, hint);
    }
    let theme = model.theme;
    let mark = |key: SortKey| match (key == model.sort.key, model.sort.descending) {
        (false, _) => "",
        (true, true) => "▼",
        (true, false) => "▲",
    };
    let mut header: Vec<Cell> = COLUMNS
        .iter()
        .map(|(name, key, width)| {
            let name = format!("{name}{}", key.map_or("", mark));
            // Numbers are right-aligned, and so are their headers.
            Cell::from(if key.is_some() || name.ends_with("/s") { right(&name, *width) } else { name })
        })
        .collect();
    header.push(Cell::from(format!("COMMAND{}", mark(SortKey::Name))));
    let command_width =
        (area.width as usize).saturating_sub(COLUMNS.iter().map(|c| c.2 as usize + 1).sum::<usize>() + 2);
    let width = |i: usize| COLUMNS[i].2;
    let table_rows = rows.iter().map(|(branch, p)| {
        let cpu = f64::from(p.cpu_percent);
        Row::new(vec![
            Cell::from(right(&p.pid.to_string(), width(0))),
            Cell::from(p.user.clone()),
            Cell::from(Span::styled(right(&format!("{cpu:.1}"), width(2)), theme.tone(percent_tone(cpu)))),
            Cell::from(right(&bytes(p.memory_bytes as f64), width(3))),
            Cell::from(right(&rate(p.disk_read_bytes_per_second), width(4))),
            Cell::from(right(&rate(p.disk_write_bytes_per_second), width(5))),
            Cell::from(Span::styled(p.status.clone(), theme.tone(state_tone(&p.status)))),
            Cell::from(format!(
                "{branch}{}",
                p.display_command(command_width.saturating_sub(branch.chars().count()).max(8))
            )),
        ])
    });
    let mut widths: Vec<Constraint> = COLUMNS.iter().map(|c| Constraint::Length(c.2)).collect();
    widths.push(Constraint::Min(8));
    let table = Table::new(table_rows, widths)
        .header(Row::new(header).style(theme.heading()))
        .block(block)
        .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(Some(model.selected[Panel::Processes.index()]));
    frame.render_stateful_widget(table, area, &mut state);
}

fn right(text: &str, width: u16) -> String {
    format!("{text:>width$}", width = width as usize)
}

/// Zombies are a fault; processes stopped or stuck in disk sleep are worth a look.
fn state_tone(state: &str) -> Tone {
    match state {
        "zombie" | "dead" => Tone::Bad,
        "stopped" | "disk-sleep" | "tracing" => Tone::Warning,
        "running" => Tone::Fine,
        _ => Tone::Plain,
    }
}

pub fn details(model: &Model) -> Vec<(String, String)> {
    let Some(p) = model.selected_process().cloned() else {
        return Vec::new();
    };
    let now_secs = model.shown().data.snapshot.timestamp_ms / 1000;
    vec![
        ("pid".into(), p.pid.to_string()),
        ("name".into(), p.name.clone()),
        ("user".into(), p.user.clone()),
        ("state".into(), p.status.clone()),
        ("cpu".into(), format!("{:.1}% of one core", p.cpu_percent)),
        ("memory".into(), bytes(p.memory_bytes as f64)),
        ("read".into(), rate(p.disk_read_bytes_per_second)),
        ("write".into(), rate(p.disk_write_bytes_per_second)),
        ("threads".into(), p.threads.map_or("-".into(), |t| t.to_string())),
        ("age".into(), duration(now_secs.saturating_sub(p.start_time_secs))),
        ("command".into(), p.display_command(crate::sampler::COMMAND_CHARS)),
    ]
}
