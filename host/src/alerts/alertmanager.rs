//! `kind = "alertmanager"`: alerts to a Prometheus Alertmanager, the way
//! Prometheus itself sends them.
//!
//! ```toml
//! [[alerts.handler]]
//! name = "fleet"
//! kind = "alertmanager"
//! url = "http://alertmanager:9093"     # or urls = ["http://am-1:9093", "http://am-2:9093"]: each gets every post
//! resend = "1m"                         # default 1m, at least 1s
//! ca_file = "/etc/ssl/internal-ca.pem"  # optional, for https:// as with webhooks
//! ```
//!
//! Each post is `POST {url}/api/v2/alerts` with a JSON array of alerts:
//! `{"labels":{...},"annotations":{...},"startsAt":"…","endsAt":"…"}`. The
//! labels are the alert's own (names made valid Prometheus label names), then
//! `alertname` (the rule), `severity` (the level) and, unless the alert has
//! them, `instance` and `host` (the host's name). The annotations are
//! `summary` (the message), `description`, `id` (the monitor alert id),
//! `value` when there is one and `acknowledged` once someone did.
//!
//! A transition to firing (or acknowledged, or a repeat) is sent at once with
//! `endsAt` [`ENDS_AFTER_RESENDS`] resend intervals ahead; every `resend` the
//! alerts still firing or acknowledged (not pending, resolved or silenced) are
//! sent again with a fresh `endsAt`, so an Alertmanager resolves them by
//! itself if this host goes away, and hears of them again after a restart of
//! either side. A resolved alert is sent once with `endsAt` its resolution
//! time. This module checks the handler and builds the posts;
//! [`super::dispatch`] sends them, on the handler's own task, with its retries.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::lifecycle::{Alert, AlertState, Transition};
use super::route::{HandlerConfig, read_certificates};
use super::rule::{Labels, Level};

/// How often alerts still firing are sent again unless the handler says.
pub const DEFAULT_RESEND: Duration = Duration::from_secs(60);
/// The shortest `resend` taken.
pub const MIN_RESEND: Duration = Duration::from_secs(1);
/// A firing alert ends this many resend intervals after it was last sent,
/// unless it is sent again (Prometheus uses the same factor).
pub const ENDS_AFTER_RESENDS: u32 = 4;
/// Where an Alertmanager takes alerts, below its address.
pub const PATH: &str = "/api/v2/alerts";
/// The last instant RFC 3339 (and the formatter) can write: 9999-12-31T23:59:59.999Z.
const MAX_MS: u64 = 253_402_300_799_999;
const EXAMPLE: &str = "http://alertmanager:9093";

/// A validated `kind = "alertmanager"` handler's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alertmanager {
    /// Every Alertmanager's alerts endpoint, `{url}/api/v2/alerts`, in the order given.
    pub endpoints: Vec<String>,
    pub resend: Duration,
    pub ca_file: Option<PathBuf>,
}

impl Alertmanager {
    /// Checks the handler's alertmanager fields; one message per problem,
    /// naming the value and the fix (the caller adds the handler's name).
    pub fn build(h: &HandlerConfig) -> Result<Alertmanager, Vec<String>> {
        let mut errors: Vec<String> = Vec::new();
        if !h.command.is_empty() {
            errors.push("command does not apply to kind 'alertmanager'; remove it".into());
        }
        let (field, urls): (&str, Vec<&str>) = match (&h.url, h.urls.is_empty()) {
            (Some(_), false) => {
                errors
                    .push("url and urls are both set; keep url for one Alertmanager, or list every one in urls".into());
                ("url", Vec::new())
            }
            (Some(url), true) => ("url", vec![url.as_str()]),
            (None, false) => ("urls", h.urls.iter().map(String::as_str).collect()),
            (None, true) => {
                errors.push(format!(
                    "url is missing; write url = \"{EXAMPLE}\", or urls = [\"http://am-1:9093\", \"http://am-2:9093\"] for several"
                ));
                ("url", Vec::new())
            }
        };
        let mut endpoints: Vec<String> = Vec::new();
        for url in &urls {
            match check_url(url) {
                Ok(()) => {
                    let endpoint = endpoint(url);
                    if endpoints.contains(&endpoint) {
                        errors.push(format!("urls lists '{}' twice; list each Alertmanager once", url.escape_debug()));
                    } else {
                        endpoints.push(endpoint);
                    }
                }
                Err(why) => errors.push(format!("{field} '{}' {why}", url.escape_debug())),
            }
        }
        if let Some(ca_file) = &h.ca_file {
            if !urls.is_empty() && urls.iter().all(|u| !u.starts_with("https://")) {
                let which = match urls.as_slice() {
                    [one] => format!("url '{}' is", one.escape_debug()),
                    _ => "every one of urls is".to_string(),
                };
                errors.push(format!("ca_file applies to https:// URLs only; {which} plain HTTP"));
            } else if let Err(e) = read_certificates(ca_file) {
                errors.push(e);
            }
        }
        let resend = match &h.resend {
            None => Some(DEFAULT_RESEND),
            Some(text) => match humantime::parse_duration(text) {
                Ok(d) if d >= MIN_RESEND => Some(d),
                _ => {
                    errors.push(format!(
                        "resend '{}' is not a duration of 1s or more; write one like 30s or 1m (the default)",
                        text.escape_debug()
                    ));
                    None
                }
            },
        };
        match resend {
            Some(resend) if errors.is_empty() => Ok(Alertmanager { endpoints, resend, ca_file: h.ca_file.clone() }),
            _ => Err(errors),
        }
    }

    /// How long past now a firing alert is said to end.
    pub fn ends_after_ms(&self) -> u64 {
        u64::try_from(self.resend.saturating_mul(ENDS_AFTER_RESENDS).as_millis()).unwrap_or(u64::MAX)
    }
}

/// Why `url` is no Alertmanager address, as the end of a sentence starting with it.
fn check_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) else {
        return Err(format!("is not an http:// or https:// URL; write the Alertmanager's address, like {EXAMPLE}"));
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("is not a URL one can post to; write the Alertmanager's address, like {EXAMPLE}"));
    }
    if host.contains('@') {
        return Err(format!(
            "has a user and password in it, which would show wherever the address does; give the Alertmanager's address alone, like {EXAMPLE}"
        ));
    }
    if url.contains(['?', '#']) {
        return Err(format!("has a query or a fragment; write the Alertmanager's address alone, like {EXAMPLE}"));
    }
    if url.trim_end_matches('/').ends_with(PATH) {
        return Err(format!(
            "ends in {PATH}; write the Alertmanager's address alone, like {EXAMPLE} ({PATH} is added)"
        ));
    }
    Ok(())
}

/// The alerts endpoint below an Alertmanager's address.
pub fn endpoint(url: &str) -> String {
    format!("{}{PATH}", url.trim_end_matches('/'))
}

/// One alert as Alertmanager's API v2 takes it (`postableAlert`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    /// Where the alert can be seen; left out when the host does not know its own address.
    #[serde(rename = "generatorURL", default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

/// What an alert says, whether it comes from a transition or the current state.
struct Parts<'a> {
    id: &'a str,
    rule: &'a str,
    level: Level,
    labels: &'a Labels,
    value: Option<f64>,
    message: &'a str,
    ack: Option<&'a super::lifecycle::Ack>,
    starts_ms: u64,
    ends_ms: u64,
}

/// A routed transition, as sent at once: a resolve ends at its own time,
/// anything else `ends_after_ms` past `now_ms`.
pub fn from_transition(t: &Transition, host: &str, now_ms: u64, ends_after_ms: u64) -> PostableAlert {
    let ends_ms = match t.to {
        AlertState::Resolved | AlertState::Inactive => t.at_ms,
        AlertState::Pending | AlertState::Firing | AlertState::Acknowledged => now_ms.saturating_add(ends_after_ms),
    };
    build(
        Parts {
            id: &t.id,
            rule: &t.rule,
            level: t.level,
            labels: &t.labels,
            value: t.value,
            message: &t.message,
            ack: t.ack.as_ref(),
            starts_ms: t.at_ms.min(ends_ms),
            ends_ms,
        },
        host,
    )
}

/// Whether a resend carries `alert`: firing or acknowledged, and not silenced here.
pub fn resent(alert: &Alert) -> bool {
    matches!(alert.state, AlertState::Firing | AlertState::Acknowledged) && !alert.silenced
}

/// An alert as it stands, as a resend sends it: from when it fired, ending
/// `ends_after_ms` past `now_ms`.
pub fn from_alert(alert: &Alert, host: &str, now_ms: u64, ends_after_ms: u64) -> PostableAlert {
    let ends_ms = now_ms.saturating_add(ends_after_ms);
    build(
        Parts {
            id: &alert.id,
            rule: &alert.rule,
            level: alert.level,
            labels: &alert.labels,
            value: alert.value,
            message: &alert.message,
            ack: alert.ack.as_ref(),
            starts_ms: alert.fired_ms.unwrap_or(alert.since_ms).min(ends_ms),
            ends_ms,
        },
        host,
    )
}

/// An alert as it stands, in the shape routing looks at (a repeat of its
/// firing), to ask whether a handler's routes take it.
pub fn as_repeat(alert: &Alert) -> Transition {
    Transition {
        id: alert.id.clone(),
        rule: alert.rule.clone(),
        level: alert.level,
        labels: alert.labels.clone(),
        from: AlertState::Firing,
        to: AlertState::Firing,
        value: alert.value,
        message: alert.message.clone(),
        at_ms: alert.fired_ms.unwrap_or(alert.since_ms),
        silenced: alert.silenced,
        ack: alert.ack.clone(),
    }
}

fn build(p: Parts, host: &str) -> PostableAlert {
    let mut labels = BTreeMap::new();
    for (name, value) in p.labels {
        // Prometheus reads an empty value as no label at all.
        if !value.is_empty() {
            labels.insert(label_name(name), value.clone());
        }
    }
    labels.insert("alertname".to_string(), p.rule.to_string());
    labels.insert("severity".to_string(), p.level.as_str().to_string());
    if !host.is_empty() {
        labels.entry("instance".to_string()).or_insert_with(|| host.to_string());
        labels.entry("host".to_string()).or_insert_with(|| host.to_string());
    }
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), p.message.to_string());
    let on = if host.is_empty() { String::new() } else { format!(" on {host}") };
    let mut description = format!("{}; rule {} at level {}{on}", p.message, p.rule, p.level);
    if let Some(ack) = p.ack {
        let seen = if ack.note.is_empty() { ack.by.clone() } else { format!("{}: {}", ack.by, ack.note) };
        description.push_str(&format!("; acknowledged by {seen}"));
        annotations.insert("acknowledged".to_string(), seen);
    }
    annotations.insert("description".to_string(), description);
    annotations.insert("id".to_string(), p.id.to_string());
    if let Some(value) = p.value.filter(|v| v.is_finite()) {
        annotations.insert("value".to_string(), value.to_string());
    }
    PostableAlert {
        labels,
        annotations,
        starts_at: rfc3339(p.starts_ms),
        ends_at: rfc3339(p.ends_ms),
        generator_url: None,
    }
}

/// `name` as a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`): every
/// other character becomes `_`, and a leading digit gets a `_` before it.
pub fn label_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }));
    out
}

/// Milliseconds since the epoch as RFC 3339 in UTC, like `2023-11-14T22:13:20.123Z`.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.min(MAX_MS))).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Ack;
    use crate::alerts::route::Routing;

    const AT: u64 = 1_700_000_000_123;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn transition(to: AlertState) -> Transition {
        Transition {
            id: r#"queue-deep{queue="ingest"}"#.into(),
            rule: "queue-deep".into(),
            level: Level::Error,
            labels: labels(&[("queue", "ingest"), ("team", "ops")]),
            from: AlertState::Pending,
            to,
            value: Some(150.0),
            message: "queue ingest holds 150 items".into(),
            at_ms: AT,
            silenced: false,
            ack: None,
        }
    }

    fn json(alert: &PostableAlert) -> serde_json::Value {
        serde_json::to_value(vec![alert]).unwrap()
    }

    #[test]
    fn a_firing_transition_is_an_alert_that_ends_four_resends_ahead() {
        let am = Alertmanager { endpoints: vec![], resend: Duration::from_secs(60), ca_file: None };
        let now = AT + 500;
        let alert = from_transition(&transition(AlertState::Firing), "build-1", now, am.ends_after_ms());
        assert_eq!(
            json(&alert),
            serde_json::json!([{
                "labels": {
                    "alertname": "queue-deep",
                    "severity": "error",
                    "instance": "build-1",
                    "host": "build-1",
                    "queue": "ingest",
                    "team": "ops"
                },
                "annotations": {
                    "summary": "queue ingest holds 150 items",
                    "description": "queue ingest holds 150 items; rule queue-deep at level error on build-1",
                    "id": "queue-deep{queue=\"ingest\"}",
                    "value": "150"
                },
                "startsAt": "2023-11-14T22:13:20.123Z",
                "endsAt": "2023-11-14T22:17:20.623Z"
            }])
        );
    }

    #[test]
    fn a_resolved_transition_ends_when_it_resolved() {
        let alert = from_transition(&transition(AlertState::Resolved), "build-1", AT + 10_000, 240_000);
        assert_eq!(
            (alert.starts_at.as_str(), alert.ends_at.as_str()),
            ("2023-11-14T22:13:20.123Z", "2023-11-14T22:13:20.123Z")
        );
        // An acknowledgement is still an active alert, and says who saw it.
        let mut acked = transition(AlertState::Acknowledged);
        acked.ack = Some(Ack { by: "ann".into(), note: "draining".into(), at_ms: AT });
        let alert = from_transition(&acked, "build-1", AT, 240_000);
        assert_eq!(alert.ends_at, "2023-11-14T22:17:20.123Z");
        assert_eq!(alert.annotations["acknowledged"], "ann: draining");
        assert!(alert.annotations["description"].ends_with("; acknowledged by ann: draining"), "{alert:?}");
    }

    #[test]
    fn label_names_are_made_valid_and_ours_win_over_the_alerts_own() {
        assert_eq!(label_name("bad-label"), "bad_label");
        assert_eq!(label_name("0core"), "_0core");
        assert_eq!(label_name("été.x"), "_t__x");
        assert_eq!(label_name(""), "_");
        assert_eq!(label_name("ok_Name9"), "ok_Name9");
        let mut t = transition(AlertState::Firing);
        t.labels = labels(&[
            ("alertname", "other"),
            ("severity", "page"),
            ("instance", "db-7:9100"),
            ("mount.point", "/"),
            ("empty", ""),
        ]);
        t.value = None;
        let alert = from_transition(&t, "build-1", AT, 1000);
        assert_eq!(
            alert.labels,
            labels(&[
                ("alertname", "queue-deep"),
                ("severity", "error"),
                ("instance", "db-7:9100"),
                ("host", "build-1"),
                ("mount_point", "/"),
            ])
        );
        assert!(!alert.annotations.contains_key("value"));
        // Without a host name there is no instance or host label of ours.
        let alert = from_transition(&transition(AlertState::Firing), "", AT, 1000);
        assert!(!alert.labels.contains_key("instance") && !alert.labels.contains_key("host"), "{alert:?}");
    }

    #[test]
    fn resends_carry_firing_and_acknowledged_alerts_from_when_they_fired() {
        let alert = |state: AlertState, silenced: bool| Alert {
            id: "cpu-hot".into(),
            rule: "cpu-hot".into(),
            level: Level::Warning,
            labels: Labels::new(),
            state,
            since_ms: AT - 60_000,
            fired_ms: Some(AT - 1_000),
            value: Some(97.5),
            message: "CPU at 97.5%".into(),
            silenced,
            ack: None,
        };
        assert!(resent(&alert(AlertState::Firing, false)));
        assert!(resent(&alert(AlertState::Acknowledged, false)));
        assert!(!resent(&alert(AlertState::Firing, true)));
        assert!(!resent(&alert(AlertState::Pending, false)));
        assert!(!resent(&alert(AlertState::Resolved, false)));
        let sent = from_alert(&alert(AlertState::Firing, false), "h", AT, 4_000);
        assert_eq!(
            (sent.starts_at.as_str(), sent.ends_at.as_str()),
            ("2023-11-14T22:13:19.123Z", "2023-11-14T22:13:24.123Z")
        );
        assert_eq!((sent.labels["severity"].as_str(), sent.annotations["value"].as_str()), ("warning", "97.5"));
        assert_eq!(as_repeat(&alert(AlertState::Firing, false)).rule, "cpu-hot");
    }

    #[test]
    fn timestamps_are_rfc3339_in_utc_and_bounded() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(AT), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    fn routing(handler: &str) -> Result<Routing, Vec<String>> {
        #[derive(Deserialize)]
        struct T {
            handler: Vec<HandlerConfig>,
        }
        let t: T =
            toml::from_str(&format!("[[handler]]\nname = \"fleet\"\nkind = \"alertmanager\"\n{handler}")).unwrap();
        Routing::build(&[], &t.handler)
    }

    #[test]
    fn one_or_several_alertmanagers_with_a_resend_interval() {
        let one = routing("url = \"http://alertmanager:9093/\"").unwrap();
        let am = one.handlers[0].alertmanager.clone().unwrap();
        assert_eq!(am.endpoints, ["http://alertmanager:9093/api/v2/alerts"]);
        assert_eq!((am.resend, am.ends_after_ms()), (DEFAULT_RESEND, 240_000));

        let several = routing("urls = [\"http://am-1:9093\", \"https://am-2/prefix\"]\nresend = \"15s\"").unwrap();
        let am = several.handlers[0].alertmanager.clone().unwrap();
        assert_eq!(am.endpoints, ["http://am-1:9093/api/v2/alerts", "https://am-2/prefix/api/v2/alerts"]);
        assert_eq!(am.resend, Duration::from_secs(15));
    }

    #[test]
    fn every_bad_alertmanager_setting_is_named_with_its_fix() {
        let errors = |text: &str| routing(text).unwrap_err();
        assert_eq!(
            errors(""),
            [
                "handler 'fleet': url is missing; write url = \"http://alertmanager:9093\", or urls = [\"http://am-1:9093\", \"http://am-2:9093\"] for several"
            ]
        );
        assert_eq!(
            errors("url = \"http://a:9093\"\nurls = [\"http://b:9093\"]"),
            ["handler 'fleet': url and urls are both set; keep url for one Alertmanager, or list every one in urls"]
        );
        assert_eq!(
            errors(
                "urls = [\"alertmanager:9093\", \"http://a:9093/api/v2/alerts\", \"http://b:9093\", \"http://b:9093/\"]\nresend = \"500ms\""
            ),
            [
                "handler 'fleet': urls 'alertmanager:9093' is not an http:// or https:// URL; write the Alertmanager's address, like http://alertmanager:9093",
                "handler 'fleet': urls 'http://a:9093/api/v2/alerts' ends in /api/v2/alerts; write the Alertmanager's address alone, like http://alertmanager:9093 (/api/v2/alerts is added)",
                "handler 'fleet': urls lists 'http://b:9093/' twice; list each Alertmanager once",
                "handler 'fleet': resend '500ms' is not a duration of 1s or more; write one like 30s or 1m (the default)",
            ]
        );
        assert_eq!(
            errors("url = \"http://a:9093\"\nresend = \"soon\"\ncommand = [\"x\"]\nca_file = \"/nonexistent.pem\""),
            [
                "handler 'fleet': command does not apply to kind 'alertmanager'; remove it",
                "handler 'fleet': ca_file applies to https:// URLs only; url 'http://a:9093' is plain HTTP",
                "handler 'fleet': resend 'soon' is not a duration of 1s or more; write one like 30s or 1m (the default)",
            ]
        );
        // The other kinds have no urls or resend.
        let t: Vec<HandlerConfig> = vec![HandlerConfig {
            name: "hook".into(),
            kind: "webhook".into(),
            url: Some("http://x".into()),
            resend: Some("1m".into()),
            ..HandlerConfig::default()
        }];
        assert_eq!(
            Routing::build(&[], &t).unwrap_err(),
            ["handler 'hook': urls and resend apply to kind 'alertmanager' only; remove them"]
        );
    }
}
