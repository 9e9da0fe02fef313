//! Short text for narrow columns: sizes, rates, durations, bars and sparklines.

/// `512B`, `1.5K`, `20.0G`: a size in at most six characters.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut value = n.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{value:.0}B") } else { format!("{value:.1}{}", UNITS[unit]) }
}

/// Bytes per second, or `-` while unknown.
pub fn rate(per_second: Option<f64>) -> String {
    per_second.map_or("-".into(), |r| format!("{}/s", bytes(r)))
}

/// `42s`, `5m03s`, `3h12m`, `4d02h`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// `HH:MM:SS` in UTC.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

/// A bar `width` cells wide, filled to `fraction` (0..=1) in eighths.
pub fn bar(fraction: f64, width: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (fraction.clamp(0.0, 1.0) * (width * 8) as f64).round() as usize;
    let mut out = "█".repeat(eighths / 8);
    if eighths / 8 < width {
        out.push(PARTS[eighths % 8]);
        out.push_str(&" ".repeat(width - eighths / 8 - 1));
    }
    out
}

/// The last `width` values as a sparkline, scaled to `max` (or to the largest value
/// when `max` is `None`); right-aligned so the newest is always at the right edge.
pub fn spark<'a>(values: impl DoubleEndedIterator<Item = &'a f64> + Clone, width: usize, max: Option<f64>) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let recent: Vec<f64> = values.rev().take(width).copied().collect();
    let top = max.unwrap_or_else(|| recent.iter().copied().fold(0.0, f64::max));
    let mut out = " ".repeat(width - recent.len());
    for v in recent.iter().rev() {
        let level = if top > 0.0 { ((v / top).clamp(0.0, 1.0) * 7.0).round() as usize } else { 0 };
        out.push(LEVELS[level]);
    }
    out
}

/// Cuts `text` to `max` characters, marking the cut with `…`.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The text without control characters (output of plugins and commands is not
/// trusted with the terminal), tabs as spaces, lines kept.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if c == '\n' || !c.is_control() { c } else { ' ' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_rates_durations() {
        assert_eq!(bytes(0.0), "0B");
        assert_eq!(bytes(1536.0), "1.5K");
        assert_eq!(bytes(20.0 * 1024.0 * 1024.0 * 1024.0), "20.0G");
        assert_eq!(rate(None), "-");
        assert_eq!(rate(Some(2048.0)), "2.0K/s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(65), "1m05s");
        assert_eq!(duration(3 * 3600 + 720), "3h12m");
        assert_eq!(duration(4 * 86_400 + 7200), "4d02h");
        assert_eq!(clock(1_700_000_000_000), "22:13:20");
    }

    #[test]
    fn bars_and_sparklines_fill_their_width() {
        assert_eq!(bar(0.0, 4), "    ");
        assert_eq!(bar(0.5, 4), "██  ");
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(2.0, 4), "████", "clamped");
        assert_eq!(bar(0.0625, 2).chars().count(), 2);
        let values = [0.0, 50.0, 100.0];
        assert_eq!(spark(values.iter(), 5, Some(100.0)), "  ▁▅█");
        assert_eq!(spark(values.iter(), 2, None), "▅█", "the newest values");
        assert_eq!(spark([0.0f64; 0].iter(), 3, None), "   ");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
