//! Appends every alert transition to a file, one JSON object per line (JSON
//! Lines), for `tail -f`, `jq` or a log shipper.
//!
//! Each line holds the fields `id`, `rule`, `level` (`info`, `warning`, `error`,
//! `critical`), `state` (`firing`, `acknowledged`, `resolved`), `message`,
//! `labels` (an object; the last value wins when a key repeats), `value` (a
//! number, or `null` when there is none or it is not finite), `at_ms`
//! (milliseconds since the Unix epoch), `seq` (the transition's number in the
//! host's alert history), `from` (the state it came from: `firing` for a repeat)
//! and `ack` (`{"by":…,"note":…,"at_ms":…}` on acknowledgement, else `null`):
//!
//! ```json
//! {"id":"a1","rule":"disk_full","level":"critical","state":"firing","message":"/ is 97% full","labels":{"mount":"/"},"value":97.2,"at_ms":1700000000000,"seq":42,"from":"pending","ack":null}
//! ```
//!
//! The file is opened for appending (created when missing) for every alert and
//! closed again, so it may be rotated or deleted at any time; each line is written
//! with a single write.
//!
//! # Configuration (`jsonl-alerts.toml`)
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `path` | required | absolute path of the file to append to |
//!
//! ```toml
//! path = "/var/log/monitor/alerts.jsonl"
//! ```
//!
//! # Capabilities
//!
//! `fs-write`: appends alerts to the file you name, in the directory you grant:
//!
//! ```text
//! monitor plugins enable jsonl-alerts --grant fs-write:/var/log/monitor
//! ```

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;

use monitor_sdk::config::Deserialize;
use monitor_sdk::{AlertEvent, AlertHandler, CapabilityRequest, Plugin};

const PLUGIN: &str = env!("CARGO_PKG_NAME");

#[derive(Default)]
struct JsonlAlerts {
    path: String,
}

impl Plugin for JsonlAlerts {
    const SUMMARY: &'static str = "appends every alert to a file as one JSON object per line";

    fn capabilities() -> Vec<CapabilityRequest> {
        vec![CapabilityRequest::new("fs-write", "appends alerts to the file you name, in the directory you grant")]
    }

    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.path = parse_config(config)?;
        Ok(())
    }
}

impl AlertHandler for JsonlAlerts {
    fn handle(&mut self, event: &AlertEvent) -> Result<(), String> {
        append_line(&self.path, &alert_json(event))
    }
}

monitor_sdk::export_alert_handler!(JsonlAlerts);

#[derive(Deserialize)]
#[serde(crate = "monitor_sdk::config::serde", deny_unknown_fields)]
struct Config {
    path: Option<String>,
}

fn parse_config(text: &str) -> Result<String, String> {
    let config: Config = monitor_sdk::config::from_toml(text)?;
    let path = config.path.ok_or_else(|| {
        format!(
            "missing `path`: set it in {PLUGIN}.toml to the file to append to, \
             e.g. path = \"/var/log/monitor/alerts.jsonl\""
        )
    })?;
    if !path.starts_with('/') || path.ends_with('/') || parent_dir(&path).is_empty() {
        return Err(format!(
            "path = {path:?}: must be the absolute path of a file, e.g. \"/var/log/monitor/alerts.jsonl\""
        ));
    }
    Ok(path)
}

/// The directory to grant for `path` (`/` for a file at the root).
fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

/// Appends `line` and a newline to the file at `path` in one write.
fn append_line(path: &str, line: &str) -> Result<(), String> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    OpenOptions::new().append(true).create(true).open(path).and_then(|mut file| file.write_all(&bytes)).map_err(|e| {
        format!(
            "cannot append to '{path}': {e}; grant its directory with \
                 'monitor plugins enable {PLUGIN} --grant fs-write:{}'",
            parent_dir(path)
        )
    })
}

/// The alert transition as one line of JSON, without the newline.
fn alert_json(event: &AlertEvent) -> String {
    let alert = &event.alert;
    let mut out = String::with_capacity(256);
    out.push_str("{\"id\":");
    push_json_string(&mut out, &alert.id);
    out.push_str(",\"rule\":");
    push_json_string(&mut out, &alert.rule);
    out.push_str(",\"level\":");
    push_json_string(&mut out, alert.level.as_str());
    out.push_str(",\"state\":");
    push_json_string(&mut out, alert.state.as_str());
    out.push_str(",\"message\":");
    push_json_string(&mut out, &alert.message);
    out.push_str(",\"labels\":{");
    // One member per key, the last value winning, in order of first appearance.
    let mut first = true;
    for (i, label) in alert.labels.iter().enumerate() {
        if alert.labels[..i].iter().any(|l| l.key == label.key) {
            continue;
        }
        let value = alert.labels.iter().rev().find(|l| l.key == label.key).map_or(&label.value, |l| &l.value);
        if !first {
            out.push(',');
        }
        first = false;
        push_json_string(&mut out, &label.key);
        out.push(':');
        push_json_string(&mut out, value);
    }
    out.push_str("},\"value\":");
    match alert.value {
        Some(v) => push_json_number(&mut out, v),
        None => out.push_str("null"),
    }
    let _ = write!(out, ",\"at_ms\":{},\"seq\":{},\"from\":", alert.at_ms, event.seq);
    push_json_string(&mut out, event.from.as_str());
    out.push_str(",\"ack\":");
    match &event.ack {
        Some(ack) => {
            out.push_str("{\"by\":");
            push_json_string(&mut out, &ack.by);
            out.push_str(",\"note\":");
            push_json_string(&mut out, &ack.note);
            let _ = write!(out, ",\"at_ms\":{}}}", ack.at_ms);
        }
        None => out.push_str("null"),
    }
    out.push('}');
    out
}

/// A JSON string literal, escaped like serde_json does: `\"`, `\\`, the short
/// escapes for backspace, form feed, newline, carriage return and tab, and
/// `\u00XX` for the other control characters.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON number; NaN and the infinities have none, so they become `null`.
fn push_json_number(out: &mut String, v: f64) {
    if !v.is_finite() {
        out.push_str("null");
    } else if v == 0.0 || (1e-5..1e16).contains(&v.abs()) {
        // Display never uses an exponent and prints integers without `.0`.
        let _ = write!(out, "{v}");
    } else {
        // Very large or small: `1e300`, `1.5e-7`, both valid JSON.
        let _ = write!(out, "{v:e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_sdk::{Alert, AlertAck, AlertState, Label, Level};

    fn alert() -> AlertEvent {
        AlertEvent { alert: bare(), seq: 42, from: AlertState::Pending, ack: None }
    }

    fn bare() -> Alert {
        Alert {
            id: "a1".into(),
            rule: "disk_full".into(),
            level: Level::Critical,
            state: AlertState::Firing,
            message: "/ is 97% full".into(),
            labels: vec![Label { key: "mount".into(), value: "/".into() }],
            value: Some(97.2),
            at_ms: 1_700_000_000_000,
        }
    }

    fn json_string(s: &str) -> String {
        let mut out = String::new();
        push_json_string(&mut out, s);
        out
    }

    fn json_number(v: f64) -> String {
        let mut out = String::new();
        push_json_number(&mut out, v);
        out
    }

    #[test]
    fn line_has_every_field_in_order() {
        assert_eq!(
            alert_json(&alert()),
            r#"{"id":"a1","rule":"disk_full","level":"critical","state":"firing","message":"/ is 97% full","labels":{"mount":"/"},"value":97.2,"at_ms":1700000000000,"seq":42,"from":"pending","ack":null}"#
        );
    }

    #[test]
    fn levels_states_and_missing_value() {
        let mut a = alert();
        a.alert.level = Level::Warning;
        a.alert.state = AlertState::Acknowledged;
        a.alert.value = None;
        a.alert.labels.clear();
        a.from = AlertState::Firing;
        a.ack = Some(AlertAck { by: "ann".into(), note: "on \"it\"".into(), at_ms: 5 });
        let line = alert_json(&a);
        assert!(line.contains(r#""level":"warning","state":"acknowledged""#), "{line}");
        assert!(line.contains(r#""labels":{},"value":null,"#), "{line}");
        assert!(line.ends_with(r#""from":"firing","ack":{"by":"ann","note":"on \"it\"","at_ms":5}}"#), "{line}");
        for (level, name) in [(Level::Info, "info"), (Level::Error, "error"), (Level::Critical, "critical")] {
            assert_eq!(level.as_str(), name);
        }
        for (state, name) in
            [(AlertState::Pending, "pending"), (AlertState::Resolved, "resolved"), (AlertState::Silenced, "silenced")]
        {
            assert_eq!(state.to_string(), name);
        }
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(json_string("plain"), r#""plain""#);
        assert_eq!(json_string(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(json_string(r"C:\tmp"), r#""C:\\tmp""#);
        assert_eq!(json_string("a\nb\r\tc"), r#""a\nb\r\tc""#);
        assert_eq!(json_string("\u{0}\u{1f}\u{8}\u{c}"), r#""\u0000\u001f\b\f""#);
        assert_eq!(json_string("é ☃ \u{7f}"), "\"é ☃ \u{7f}\"");
        // The line never contains a raw newline.
        let mut a = alert();
        a.alert.message = "line one\nline two".into();
        assert!(!alert_json(&a).contains('\n'));
    }

    #[test]
    fn numbers() {
        assert_eq!(json_number(97.2), "97.2");
        assert_eq!(json_number(3.0), "3");
        assert_eq!(json_number(-0.5), "-0.5");
        assert_eq!(json_number(0.0), "0");
        assert_eq!(json_number(1e300), "1e300");
        assert_eq!(json_number(-1.5e-7), "-1.5e-7");
        assert_eq!(json_number(f64::NAN), "null");
        assert_eq!(json_number(f64::INFINITY), "null");
    }

    #[test]
    fn repeated_label_keys_keep_the_last_value() {
        let mut a = alert();
        a.alert.labels = [("a", "1"), ("b", "2"), ("a", "3")]
            .iter()
            .map(|(k, v)| Label { key: k.to_string(), value: v.to_string() })
            .collect();
        assert!(alert_json(&a).contains(r#""labels":{"a":"3","b":"2"}"#));
    }

    #[test]
    fn config() {
        assert_eq!(parse_config("path = \"/var/log/a.jsonl\""), Ok("/var/log/a.jsonl".into()));
        let e = parse_config("").unwrap_err();
        assert!(e.contains("missing `path`"), "{e}");
        assert!(parse_config("path = \"a.jsonl\"").unwrap_err().contains("absolute"));
        assert!(parse_config("path = \"/var/log/\"").is_err());
        assert!(parse_config("path = \"/a.jsonl\"\nextra = 1").is_err());
        assert_eq!(parent_dir("/a.jsonl"), "/");
        assert_eq!(parent_dir("/var/log/a.jsonl"), "/var/log");
    }

    #[test]
    fn appends_lines_and_names_the_fix() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("jsonl-alerts-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("alerts.jsonl");
        let path = path.to_str().unwrap();
        append_line(path, "{\"n\":1}").unwrap();
        append_line(path, "{\"n\":2}").unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "{\"n\":1}\n{\"n\":2}\n");

        let missing = format!("{}/no/such/dir/alerts.jsonl", dir.display());
        let e = append_line(&missing, "{}").unwrap_err();
        assert!(e.starts_with(&format!("cannot append to '{missing}': ")), "{e}");
        assert!(
            e.ends_with(&format!(
                "'monitor plugins enable jsonl-alerts --grant fs-write:{}/no/such/dir'",
                dir.display()
            )),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
