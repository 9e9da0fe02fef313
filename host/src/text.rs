//! Text the host did not write (from plugins, commands, clients) made safe to
//! log, store and print: cut to a length and with control characters escaped,
//! so no terminal escape sequence, carriage return or reordering mark passes.

/// `text` cut to at most `max` bytes (on a character boundary, the cut marked
/// with `…`, 3 bytes more) with every control character, and every mark that
/// reorders or hides text (bidi controls, zero-width characters, line and
/// paragraph separators), escaped as `\u{..}`: one line.
pub fn line(text: &str, max: usize) -> String {
    clean(text, max, false)
}

/// Like [`line`], but newlines and tabs stay: for multi-line output such as a
/// display formatter's.
pub fn lines(text: &str, max: usize) -> String {
    clean(text, max, true)
}

/// Whether `text` holds a control character other than newline and tab.
#[cfg(test)]
pub fn has_controls(text: &str) -> bool {
    text.chars().any(|c| is_escaped(c, true))
}

fn is_escaped(c: char, keep_lines: bool) -> bool {
    let invisible =
        matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
    (c.is_control() || invisible) && !(keep_lines && (c == '\n' || c == '\t'))
}

fn clean(text: &str, max: usize, keep_lines: bool) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let before = out.len();
        if is_escaped(c, keep_lines) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
        if out.len() > max {
            out.truncate(before);
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_cuts_on_a_boundary() {
        assert_eq!(line("a\x1b[2Jb\r\n\tc\u{9b}", 100), "a\\u{1b}[2Jb\\u{d}\\u{a}\\u{9}c\\u{9b}");
        assert_eq!(lines("a\x1b]0;t\x07\nb\tc", 100), "a\\u{1b}]0;t\\u{7}\nb\tc");
        assert_eq!(line("héllo", 2), "h…");
        assert_eq!(line("abc", 3), "abc");
        assert!(has_controls("x\x1b") && !has_controls("x\ny\tz"));
        assert_eq!(line("a\u{202e}b\u{200b}", 100), "a\\u{202e}b\\u{200b}", "reordering and hidden marks");
    }

    proptest::proptest! {
        /// Whatever comes in, what goes out is bounded and holds no control
        /// character (bar newlines and tabs when lines are kept).
        #[test]
        fn output_is_bounded_and_clean(text in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}a-z]*", max in 0usize..64) {
            let one = line(&text, max);
            proptest::prop_assert!(one.len() <= max + '…'.len_utf8());
            proptest::prop_assert!(!one.chars().any(char::is_control));
            let many = lines(&text, max);
            proptest::prop_assert!(!has_controls(&many));
        }
    }
}
