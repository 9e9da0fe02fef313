//! The machine: CPU per core, memory and swap, disk I/O, network, each with its recent
//! history, then space per mount. The most telling lines come first, so a short
//! terminal cuts the details, not the totals.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::format::{bar, bytes, rate, spark};
use super::super::model::Model;
use super::super::theme::{Tone, percent_tone};

/// Cells of a usage bar.
const BAR: usize = 16;

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let block = super::block(model, "System".into());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if !model.shown().loaded {
        frame.render_widget(Paragraph::new("waiting for data…"), inner);
        return;
    }
    frame.render_widget(Paragraph::new(lines(model, inner.width as usize)), inner);
}

fn lines(model: &Model, width: usize) -> Vec<Line<'static>> {
    let theme = model.theme;
    let view = model.shown();
    let s = &view.data.snapshot;
    let h = &view.history;
    // label 6, bar, " 100.0% ", then the sparkline takes the rest.
    let spark_width = width.saturating_sub(6 + BAR + 9);
    let label = |text: &str| Span::styled(format!("{text:<6}"), theme.heading());
    let usage = |percent: f64, history: &std::collections::VecDeque<f64>, name: &str| {
        let tone = theme.tone(percent_tone(percent));
        Line::from(vec![
            label(name),
            Span::styled(bar(percent / 100.0, BAR), tone),
            Span::styled(format!(" {percent:5.1}% "), tone),
            Span::styled(spark(history.iter(), spark_width, Some(100.0)), tone),
        ])
    };

    let mut out = vec![usage(f64::from(s.cpu_percent), &h.cpu, "CPU")];
    for (i, core) in s.per_core_percent.iter().enumerate() {
        let empty = Default::default();
        out.push(usage(f64::from(*core), h.cores.get(i).unwrap_or(&empty), &format!(" {i}")));
    }
    let memory =
        if s.memory_total_bytes == 0 { 0.0 } else { 100.0 * s.memory_used_bytes as f64 / s.memory_total_bytes as f64 };
    out.push(usage(memory, &h.memory, "MEM"));
    out.push(Line::from(vec![
        label(""),
        Span::raw(format!(
            "{} of {} used  swap {} of {}  load {:.2} {:.2} {:.2}",
            bytes(s.memory_used_bytes as f64),
            bytes(s.memory_total_bytes as f64),
            bytes(s.swap_used_bytes as f64),
            bytes(s.swap_total_bytes as f64),
            s.load_one,
            s.load_five,
            s.load_fifteen
        )),
    ]));
    // Rates have no natural maximum: each sparkline scales to its own peak.
    let io_spark = width.saturating_sub(6 + 34) / 2;
    let pair =
        |name: &str, a: (&str, &std::collections::VecDeque<f64>), b: (&str, &std::collections::VecDeque<f64>)| {
            Line::from(vec![
                label(name),
                Span::raw(format!("{} {:>9} {}  ", a.0, rate(a.1.back().copied()), spark(a.1.iter(), io_spark, None))),
                Span::raw(format!("{} {:>9} {}", b.0, rate(b.1.back().copied()), spark(b.1.iter(), io_spark, None))),
            ])
        };
    out.push(pair("DISK", ("read ", &h.disk_read), ("write", &h.disk_write)));
    out.push(pair("NET", ("rx   ", &h.net_rx), ("tx   ", &h.net_tx)));
    for d in &s.block_devices {
        out.push(Line::from(vec![
            label(""),
            Span::styled(format!("{:<12}", d.device), theme.tone(Tone::Quiet)),
            Span::raw(format!(
                " read {:>9}  write {:>9}",
                rate(d.read_bytes_per_second),
                rate(d.write_bytes_per_second)
            )),
        ]));
    }
    for n in s.networks.iter().filter(|n| n.interface != "lo") {
        out.push(Line::from(vec![
            label(""),
            Span::styled(format!("{:<12}", n.interface), theme.tone(Tone::Quiet)),
            Span::raw(format!(
                " rx   {:>9}  tx    {:>9}",
                rate(n.receive_bytes_per_second),
                rate(n.transmit_bytes_per_second)
            )),
        ]));
    }
    for (i, d) in s.disks.iter().enumerate() {
        let percent = d.used_percent();
        out.push(Line::from(vec![
            label(if i == 0 { "SPACE" } else { "" }),
            Span::styled(bar(percent / 100.0, 10), theme.tone(percent_tone(percent))),
            Span::styled(format!(" {percent:3.0}% "), theme.tone(percent_tone(percent))),
            Span::raw(format!("{} free  {}", bytes(d.available_bytes as f64), d.mount_point)),
        ]));
    }
    out
}
