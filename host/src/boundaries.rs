//! Property tests at every place where the host takes what it did not make:
//! configuration files, API bodies and query strings, stream cursors, and what
//! a plugin returns. Whatever comes in is taken or refused with a bounded,
//! printable message; nothing panics.
//!
//! CI runs the default number of cases; a longer run:
//! `PROPTEST_CASES=100000 cargo test -p monitor-host --lib boundaries`.

use proptest::prelude::*;

use crate::plugin::bindings::types;

/// A refusal a person reads: one line, bounded, no control character.
fn readable(message: &str) -> bool {
    message.len() < 2048 && !message.chars().any(char::is_control)
}

/// Text with a fair share of what breaks parsers and terminals.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,40}", "[\\x00-\\x1f\\x7f-\\u{9f}\\u{202e}a-z=.,:/\\[\\]\"' ]{0,40}", Just("x".repeat(5000)),]
}

fn label() -> impl Strategy<Value = types::Label> {
    (hostile(), hostile()).prop_map(|(key, value)| types::Label { key, value })
}

fn metric() -> impl Strategy<Value = types::Metric> {
    (prop_oneof![hostile(), "[a-z_]{1,12}"], any::<f64>(), hostile(), proptest::collection::vec(label(), 0..4))
        .prop_map(|(name, value, unit, labels)| types::Metric { name, value, unit, labels })
}

fn plugin_info() -> impl Strategy<Value = types::PluginInfo> {
    let request = (prop_oneof![hostile(), Just("kv".to_string())], hostile())
        .prop_map(|(name, reason)| types::CapabilityRequest { name, reason });
    (prop_oneof![hostile(), "[a-z]{1,10}"], hostile(), hostile(), proptest::collection::vec(request, 0..20))
        .prop_map(|(name, version, summary, capabilities)| types::PluginInfo { name, version, summary, capabilities })
}

proptest! {
    /// A host configuration: taken, or refused by name; never a panic.
    #[test]
    fn config_files(text in prop_oneof![
        hostile(),
        ("[a-z_.]{1,24}", "[0-9a-z\"]{0,12}").prop_map(|(k, v)| format!("{k} = {v}")),
        ("(api|plugins|progress|metrics)", "[a-z_]{1,20}", "-?[0-9]{1,20}").prop_map(|(t, k, v)| format!("[{t}]\n{k} = {v}")),
    ]) {
        if let Err(e) = crate::config::HostConfig::parse(&text, std::path::Path::new("host.toml")) {
            prop_assert!(!e.to_string().contains('\n'), "{}", e);
        }
    }

    /// A stream request's query: a subscription, or a readable refusal.
    #[test]
    fn stream_queries(topics in proptest::option::of(hostile()), after in proptest::option::of(hostile()), run in proptest::option::of(hostile())) {
        let request = crate::stream::StreamQuery { topics, run, series: None, after };
        if let Err(e) = crate::stream::Subscription::parse(&request) {
            prop_assert!(readable(&e), "{}", e);
        }
    }

    /// A cursor reads back as it was written.
    #[test]
    fn stream_cursors(progress in proptest::option::of(any::<u64>()), alerts in proptest::option::of(any::<u64>())) {
        let cursor = crate::stream::Cursor { progress, alerts };
        prop_assert_eq!(crate::stream::Cursor::parse(&cursor.to_string()), Ok(cursor));
    }

    /// What a plugin says about itself: kept bounded and printable, or refused readably.
    #[test]
    fn plugin_descriptions(info in plugin_info()) {
        match crate::plugin::instance::validate(info) {
            Ok(desc) => {
                prop_assert!(desc.version.len() <= 64 && !desc.version.chars().any(char::is_control));
                prop_assert!(readable(&desc.summary) && desc.summary.len() <= 203);
                prop_assert!(desc.requests.iter().all(|r| readable(&r.reason)));
            }
            Err(e) => prop_assert!(readable(&e), "{}", e),
        }
    }

    /// A plugin's metric: kept only when its name, unit and labels are valid
    /// and printable; refused with a readable reason otherwise.
    #[test]
    fn plugin_metrics(metric in metric()) {
        let metric = crate::metrics::Metric::from(metric);
        match crate::metrics::check(&metric) {
            Ok(()) => {
                prop_assert!(metric.value.is_finite() && metric.unit.len() <= 64);
                prop_assert!(metric.labels.iter().all(|(_, v)| v.len() <= 1024 && !v.chars().any(char::is_control)));
            }
            Err(e) => prop_assert!(readable(&e), "{}", e),
        }
    }

    /// A formatter's text, as shown: lines kept, nothing else that steers a terminal.
    #[test]
    fn formatter_text(text in hostile()) {
        let shown = crate::text::lines(&text, 1024);
        prop_assert!(!crate::text::has_controls(&shown));
        prop_assert!(shown.len() <= 1024 + 3);
    }

    /// An API body for progress, in any shape: an update or a readable refusal.
    #[test]
    fn progress_bodies(body in prop_oneof![
        hostile(),
        (hostile(), hostile()).prop_map(|(k, v)| format!("{{\"op\":\"start\",\"{k}\":\"{v}\"}}")),
        any::<i64>().prop_map(|n| format!("{{\"op\":{n}}}")),
    ]) {
        if let Err(e) = serde_json::from_str::<crate::progress::Update>(&body) {
            prop_assert!(!e.to_string().contains('\n'));
        }
        if let Err(e) = serde_json::from_str::<crate::api::BatchRequest>(&body) {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }
}
