//! Alert rules as the user writes them, and the built-in defaults.
//!
//! ```toml
//! [alerts]
//! disable = ["memory-pressure"]
//!
//! [[alerts.rule]]
//! name = "cpu-hot"
//! level = "warning"
//! kind = "threshold"
//! metric = "monitor_cpu_core_usage_percent"
//! matchers = { core = "0" }
//! op = ">"
//! value = 90
//! clear = 80
//! for = "1m"
//! repeat = "1h"
//! labels = { team = "ops" }
//! message = "core {labels.core} at {value}% for {for}"
//! ```
//!
//! The built-in rules ([`BUILTIN`]) come first; a rule of the user's with a
//! built-in's name replaces it, and `disable` turns any rule off by name.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::route::{HandlerConfig, RouteConfig, Routing};
use super::rule::{Labels, Rule, RuleError};

/// The `[alerts]` table of the host config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Rules (built-in or not) to leave out, by name.
    pub disable: Vec<String>,
    /// `[[alerts.rule]]` entries.
    pub rule: Vec<RuleConfig>,
    /// `[[alerts.route]]` entries; see [`super::route`].
    pub route: Vec<RouteConfig>,
    /// `[[alerts.handler]]` entries.
    pub handler: Vec<HandlerConfig>,
    /// How long alert history is kept, like `30d`.
    pub keep_history: String,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            disable: Vec::new(),
            rule: Vec::new(),
            route: Vec::new(),
            handler: Vec::new(),
            keep_history: "30d".into(),
        }
    }
}

/// One `[[alerts.rule]]`. Words and durations are kept as written, so that a
/// bad one is reported by [`validate`] with the rule's name rather than by the
/// TOML parser.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// `info`, `warning`, `error` or `critical`.
    pub level: String,
    /// `threshold`, `absence`, `stalled`, `progress_failed`, `plugin_quarantined`, `watch_failed`,
    /// `run_finished` or `run_failed`.
    pub kind: String,
    /// How long the condition must hold before the alert fires, like `1m`; default 0.
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// Re-send a firing, unacknowledged alert this often; default never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<String>,
    /// threshold, absence: the series name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// threshold, absence: labels a series must have, with these exact values.
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub matchers: Labels,
    /// threshold: `>`, `>=`, `<` or `<=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// threshold: the value compared against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// threshold: once firing, resolve only when the value is past this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clear: Option<f64>,
    /// absence, stalled: how long without a sample or an update, like `10m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// stalled, progress_failed: only nodes at or below this path; run_finished, run_failed: that run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// plugin_quarantined: only this plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// watch_failed: only this watch job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Added to every alert of the rule.
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// The alert's text; see [`super::template`] for the placeholders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The rules every host has unless disabled. The two ratios are derived by the
/// engine from the sampler's byte counts (see [`super::derive`]).
pub const BUILTIN: &str = r#"
[[rule]]
name = "disk-almost-full"
level = "warning"
kind = "threshold"
metric = "monitor_disk_available_ratio"
op = "<"
value = 0.1
clear = 0.15
for = "5m"
message = "disk {labels.mount} has {percent}% of its space left"

[[rule]]
name = "memory-pressure"
level = "warning"
kind = "threshold"
metric = "monitor_memory_used_ratio"
op = ">"
value = 0.9
clear = 0.85
for = "5m"
message = "memory is {percent}% used"

[[rule]]
name = "step-stalled"
level = "warning"
kind = "stalled"
after = "10m"
message = "{labels.path} is running but has not reported for {age}"

[[rule]]
name = "plugin-quarantined"
level = "error"
kind = "plugin_quarantined"
message = "plugin {labels.plugin} is quarantined; see 'monitor plugins info {labels.plugin}'"

[[rule]]
name = "database-unwritable"
level = "critical"
kind = "threshold"
metric = "monitor_database_healthy"
op = "<"
value = 1
message = "the host's database cannot be written (a full or failing disk?); progress and alerts are refused until it can; see the host's log"

[[rule]]
name = "watch-job-failed"
level = "error"
kind = "watch_failed"
message = "watch job {labels.job} failed: {outcome}; see 'monitor jobs list'"
"#;

/// The built-in rules as configs.
pub fn builtin() -> Vec<RuleConfig> {
    #[derive(Deserialize)]
    struct File {
        rule: Vec<RuleConfig>,
    }
    toml::from_str::<File>(BUILTIN).expect("the built-in rules parse").rule
}

/// Checks every rule, the `disable` list, routes, handlers and retention; one
/// message per bad field.
pub fn validate(config: &AlertsConfig) -> Result<(), Vec<String>> {
    let mut errors: Vec<String> = config.rules().err().unwrap_or_default().iter().map(ToString::to_string).collect();
    errors.extend(config.routing().err().unwrap_or_default());
    if config.keep_history_ms().is_none() {
        errors.push(format!("keep_history '{}' is not a duration; write one like 30d or 12h", config.keep_history));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

impl AlertsConfig {
    pub fn routing(&self) -> Result<Routing, Vec<String>> {
        Routing::build(&self.route, &self.handler)
    }

    pub fn keep_history_ms(&self) -> Option<u64> {
        humantime::parse_duration(&self.keep_history).ok().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// The rules to run: built-ins (unless replaced or disabled), then the user's.
    pub fn rules(&self) -> Result<Vec<Rule>, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut names = BTreeSet::new();
        let mut user = Vec::new();
        for (i, config) in self.rule.iter().enumerate() {
            if !config.name.is_empty() && !names.insert(config.name.as_str()) {
                errors.push(RuleError {
                    rule: config.name.clone(),
                    field: "name",
                    message: "name is used by an earlier rule too; give each rule its own name".into(),
                });
            }
            match config.build(i) {
                Ok(rule) => user.push(rule),
                Err(e) => errors.extend(e),
            }
        }
        let builtin = builtin();
        for name in &self.disable {
            if !names.contains(name.as_str()) && !builtin.iter().any(|b| &b.name == name) {
                let known: Vec<&str> = builtin.iter().map(|b| b.name.as_str()).collect();
                errors.push(RuleError {
                    rule: name.clone(),
                    field: "disable",
                    message: format!(
                        "disable names no rule; the built-in ones are {} (or use one of your rule names)",
                        known.join(", ")
                    ),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let enabled = |name: &str| !self.disable.iter().any(|d| d == name);
        let mut rules: Vec<Rule> = builtin
            .iter()
            .enumerate()
            .filter(|(_, b)| enabled(&b.name) && !names.contains(b.name.as_str()))
            .map(|(i, b)| b.build(i).expect("the built-in rules are valid"))
            .collect();
        rules.extend(user.into_iter().filter(|r| enabled(&r.name)));
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Level;

    fn errors(text: &str) -> Vec<String> {
        let config: AlertsConfig = toml::from_str(text).expect("parses");
        validate(&config).unwrap_err().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_documented_format_parses_inside_a_host_config() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Host {
            alerts: AlertsConfig,
        }
        // The example in the module docs.
        let doc = r#"
            [alerts]
            disable = ["memory-pressure"]

            [[alerts.rule]]
            name = "cpu-hot"
            level = "warning"
            kind = "threshold"
            metric = "monitor_cpu_core_usage_percent"
            matchers = { core = "0" }
            op = ">"
            value = 90
            clear = 80
            for = "1m"
            repeat = "1h"
            labels = { team = "ops" }
            message = "core {labels.core} at {value}% for {for}"
        "#;
        let host: Host = toml::from_str(doc).unwrap();
        assert_eq!(host.alerts.disable, ["memory-pressure"]);
        let rules = host.alerts.rules().unwrap();
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "disk-almost-full",
                "step-stalled",
                "plugin-quarantined",
                "database-unwritable",
                "watch-job-failed",
                "cpu-hot"
            ]
        );
        let cpu = &rules[5];
        assert_eq!((cpu.for_ms, cpu.repeat_ms, cpu.level), (60_000, Some(3_600_000), Level::Warning));
    }

    #[test]
    fn one_error_per_bad_field() {
        let text = r#"
            [[rule]]
            name = "cpu-hot"
            level = "high"
            kind = "threshold"
            metric = "cpu usage"
            op = "=>"
            value = 90
            clear = 95
            for = "a minute"
            repeat = "0s"
            after = "5m"
            labels = { "bad-label" = "x" }
            message = "{value} {nope}"

            [[rule]]
            level = "info"
            kind = "absence"
            metric = "beat"
            op = ">"

            [[rule]]
            name = "low"
            level = "error"
            kind = "threshold"
            metric = "free"
            op = "<"
            value = 10
            clear = 5
            message = "{age}"

            [[rule]]
            name = "cpu-hot"
            level = "info"
            kind = "gauge"

            [[rule]]
            name = "nodes"
            level = "info"
            kind = "stalled"
            path = "run//x"
            matchers = { a = "b" }

            [[rule]]
            name = "tpl"
            level = "info"
            kind = "progress_failed"
            message = "{labels.path} failed {"
        "#;
        let threshold_fields = "{rule}, {level}, {for}, {value}, {percent}, {metric}, {op}, {threshold}, {labels.NAME}";
        assert_eq!(
            errors(text),
            [
                "rule 'cpu-hot': level 'high'; use one of info, warning, error, critical".to_string(),
                "rule 'cpu-hot': for 'a minute' is not a duration; write one like 90s, 5m or 1h".into(),
                "rule 'cpu-hot': repeat must be longer than 0; remove it to never repeat".into(),
                "rule 'cpu-hot': labels key 'bad-label' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)".into(),
                "rule 'cpu-hot': after does not apply to kind 'threshold'; remove it".into(),
                "rule 'cpu-hot': metric 'cpu usage' is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)".into(),
                "rule 'cpu-hot': op '=>' is not one of >, >=, <, <=".into(),
                format!("rule 'cpu-hot': message placeholder {{nope}} is unknown; use {threshold_fields}"),
                "rule '#2': name is missing; add name = \"...\"".into(),
                "rule '#2': op does not apply to kind 'absence'; remove it".into(),
                "rule '#2': after is missing; add after = \"10m\" (how long without data)".into(),
                "rule 'low': clear 5 is below value 10; with op '<' set clear at least 10 \
                 (the alert resolves once the value is past clear)"
                    .into(),
                format!("rule 'low': message placeholder {{age}} is unknown; use {threshold_fields}"),
                "rule 'cpu-hot': name is used by an earlier rule too; give each rule its own name".into(),
                "rule 'cpu-hot': kind 'gauge'; use one of threshold, absence, stalled, progress_failed, \
                 plugin_quarantined, watch_failed, run_finished, run_failed"
                    .into(),
                "rule 'nodes': matchers does not apply to kind 'stalled'; remove it".into(),
                "rule 'nodes': path: node id 'run//x' has an empty segment; write segments separated by single '/'"
                    .into(),
                "rule 'nodes': after is missing; add after = \"10m\" (how long without data)".into(),
                "rule 'tpl': message has an unclosed '{'; write '{{' for a literal brace".into(),
            ]
        );
    }

    #[test]
    fn clear_on_the_wrong_side_of_a_high_threshold() {
        let text = r#"
            [[rule]]
            name = "hot"
            level = "info"
            kind = "threshold"
            metric = "t"
            op = ">="
            value = 90
            clear = 95
        "#;
        assert_eq!(
            errors(text),
            ["rule 'hot': clear 95 is above value 90; with op '>=' set clear at most 90 \
              (the alert resolves once the value is past clear)"]
        );
    }

    #[test]
    fn missing_fields_are_named() {
        assert_eq!(
            errors("[[rule]]\nname = \"x\""),
            [
                "rule 'x': level is missing; use one of info, warning, error, critical",
                "rule 'x': kind is missing; use one of threshold, absence, stalled, progress_failed, plugin_quarantined, watch_failed, run_finished, run_failed",
            ]
        );
        assert_eq!(
            errors("[[rule]]\nname = \"x\"\nlevel = \"info\"\nkind = \"threshold\""),
            [
                "rule 'x': metric is missing; add metric = \"NAME\"",
                "rule 'x': op is missing; use one of >, >=, <, <=",
                "rule 'x': value is missing; add value = NUMBER",
            ]
        );
    }

    #[test]
    fn built_ins_are_valid_and_can_be_disabled_or_replaced() {
        let all = AlertsConfig::default().rules().unwrap();
        let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "disk-almost-full",
                "memory-pressure",
                "step-stalled",
                "plugin-quarantined",
                "database-unwritable",
                "watch-job-failed"
            ]
        );

        let config: AlertsConfig = toml::from_str(
            r#"
            disable = ["disk-almost-full", "plugin-quarantined", "mine"]
            [[rule]]
            name = "step-stalled"
            level = "critical"
            kind = "stalled"
            after = "1h"
            [[rule]]
            name = "mine"
            level = "info"
            kind = "plugin_quarantined"
            "#,
        )
        .unwrap();
        let rules = config.rules().unwrap();
        let names: Vec<(&str, Level)> = rules.iter().map(|r| (r.name.as_str(), r.level)).collect();
        assert_eq!(
            names,
            [
                ("memory-pressure", Level::Warning),
                ("database-unwritable", Level::Critical),
                ("watch-job-failed", Level::Error),
                ("step-stalled", Level::Critical)
            ]
        );

        let config = AlertsConfig { disable: vec!["disk-full".into()], ..AlertsConfig::default() };
        assert_eq!(
            validate(&config).unwrap_err()[0].to_string(),
            "rule 'disk-full': disable names no rule; the built-in ones are disk-almost-full, memory-pressure, \
             step-stalled, plugin-quarantined, database-unwritable, watch-job-failed (or use one of your rule names)"
        );
    }

    #[test]
    fn unknown_fields_are_refused_by_the_parser() {
        let err = toml::from_str::<AlertsConfig>("[[rule]]\nname = \"x\"\nthreshold = 3").unwrap_err();
        assert!(err.to_string().contains("unknown field `threshold`"), "{err}");
    }
}
