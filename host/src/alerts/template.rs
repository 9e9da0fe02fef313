//! Alert messages: text with `{placeholder}`s filled in per alert.
//!
//! A template is parsed once, when the rule is validated, against the
//! placeholders its kind can fill, so a typo is a configuration error rather
//! than a message with a hole in it. `{{` and `}}` are literal braces. A
//! `{labels.NAME}` whose label the alert does not have renders as nothing:
//! which labels a series carries is only known at run time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// A value a template can ask for besides labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The rule's name.
    Rule,
    /// The rule's level.
    Level,
    /// The rule's `for` duration.
    For,
    /// The value that made the alert: a sample, or seconds without data.
    Value,
    /// The value times 100, for ratios.
    Percent,
    /// Time since the last sample or update, like `10m 3s`.
    Age,
    /// The metric the rule watches.
    Metric,
    /// The comparison, like `>`.
    Op,
    /// The value compared against.
    Threshold,
    /// The rule's `after` duration.
    After,
    /// How a watch job's command ended, like `exit 3`.
    Outcome,
}

impl Field {
    #[cfg(test)]
    pub const ALL: [Field; 11] = [
        Field::Rule,
        Field::Level,
        Field::For,
        Field::Value,
        Field::Percent,
        Field::Age,
        Field::Metric,
        Field::Op,
        Field::Threshold,
        Field::After,
        Field::Outcome,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Rule => "rule",
            Field::Level => "level",
            Field::For => "for",
            Field::Value => "value",
            Field::Percent => "percent",
            Field::Age => "age",
            Field::Metric => "metric",
            Field::Op => "op",
            Field::Threshold => "threshold",
            Field::After => "after",
            Field::Outcome => "outcome",
        }
    }
}

/// What a rendered template can draw on; `None` renders as nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Values<'a> {
    pub rule: &'a str,
    pub level: &'a str,
    pub for_ms: u64,
    pub after_ms: Option<u64>,
    pub metric: Option<&'a str>,
    pub op: Option<&'a str>,
    pub threshold: Option<f64>,
    pub value: Option<f64>,
    pub age_ms: Option<u64>,
    pub outcome: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field(Field),
    Label(String),
}

/// A parsed message template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// Why a template was refused; the caller adds the rule and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("has an unclosed '{{'; write '{{{{' for a literal brace")]
    Unclosed,
    #[error("has a '}}' with no '{{' before it; write '}}}}' for a literal brace")]
    Unmatched,
    #[error("placeholder {{{placeholder}}} is unknown; use {allowed}")]
    Unknown { placeholder: String, allowed: String },
}

impl Template {
    /// Parses `text`, accepting only the `allowed` fields and `{labels.NAME}`.
    pub fn parse(text: &str, allowed: &[Field]) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut text_part = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            text_part.push_str(&rest[..at]);
            let brace = rest.as_bytes()[at];
            rest = &rest[at + 1..];
            if rest.as_bytes().first() == Some(&brace) {
                text_part.push(char::from(brace));
                rest = &rest[1..];
                continue;
            }
            if brace == b'}' {
                return Err(TemplateError::Unmatched);
            }
            let end = rest.find('}').ok_or(TemplateError::Unclosed)?;
            let name = &rest[..end];
            rest = &rest[end + 1..];
            let part = match name.strip_prefix("labels.") {
                Some(label) if !label.is_empty() && !label.contains('{') => Part::Label(label.to_string()),
                _ => match allowed.iter().find(|f| f.name() == name) {
                    Some(field) => Part::Field(*field),
                    None => return Err(unknown(name, allowed)),
                },
            };
            if !text_part.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text_part)));
            }
            parts.push(part);
        }
        text_part.push_str(rest);
        if !text_part.is_empty() {
            parts.push(Part::Text(text_part));
        }
        Ok(Template { source: text.to_string(), parts })
    }

    pub fn render(&self, values: &Values, labels: &BTreeMap<String, String>) -> String {
        let mut out = String::with_capacity(self.source.len() + 16);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Label(name) => out.push_str(labels.get(name).map_or("", String::as_str)),
                Part::Field(field) => render_field(&mut out, *field, values),
            }
        }
        out
    }
}

fn unknown(name: &str, allowed: &[Field]) -> TemplateError {
    let mut list = String::new();
    for field in allowed {
        let _ = write!(list, "{{{}}}, ", field.name());
    }
    list.push_str("{labels.NAME}");
    TemplateError::Unknown { placeholder: name.to_string(), allowed: list }
}

fn render_field(out: &mut String, field: Field, v: &Values) {
    let duration = |ms: u64| humantime::format_duration(Duration::from_secs(ms / 1000)).to_string();
    match field {
        Field::Rule => out.push_str(v.rule),
        Field::Level => out.push_str(v.level),
        Field::For => out.push_str(&duration(v.for_ms)),
        Field::After => out.push_str(&v.after_ms.map(duration).unwrap_or_default()),
        Field::Age => out.push_str(&v.age_ms.map(duration).unwrap_or_default()),
        Field::Metric => out.push_str(v.metric.unwrap_or_default()),
        Field::Op => out.push_str(v.op.unwrap_or_default()),
        Field::Threshold => out.push_str(&v.threshold.map(format_value).unwrap_or_default()),
        Field::Value => out.push_str(&v.value.map(format_value).unwrap_or_default()),
        Field::Percent => out.push_str(&v.value.map(|x| format_value(x * 100.0)).unwrap_or_default()),
        Field::Outcome => out.push_str(v.outcome.unwrap_or_default()),
    }
}

/// A number for people: two decimals from 1 up, four below, no trailing zeros.
pub fn format_value(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let decimals = if value.abs() >= 1.0 { 2 } else { 4 };
    let text = format!("{value:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".to_string() } else { text.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str, values: &Values) -> String {
        let labels = BTreeMap::from([("core".to_string(), "3".to_string())]);
        Template::parse(text, &Field::ALL).unwrap().render(values, &labels)
    }

    #[test]
    fn placeholders_are_filled() {
        let values = Values {
            rule: "cpu-hot",
            level: "warning",
            for_ms: 90_000,
            metric: Some("cpu"),
            op: Some(">"),
            threshold: Some(90.0),
            value: Some(93.456),
            ..Values::default()
        };
        assert_eq!(
            render("{rule} [{level}] core {labels.core}: {metric} {value} {op} {threshold} for {for}", &values),
            "cpu-hot [warning] core 3: cpu 93.46 > 90 for 1m 30s"
        );
        assert_eq!(render("{{literal}} {labels.missing}|", &values), "{literal} |");
        assert_eq!(render("{percent}%", &Values { value: Some(0.0934), ..values }), "9.34%");
        assert_eq!(render("{age}", &Values { age_ms: Some(603_400), ..values }), "10m 3s");
    }

    #[test]
    fn bad_templates_are_refused() {
        let only = [Field::Rule];
        assert_eq!(Template::parse("a {rule", &only), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("a } b", &only), Err(TemplateError::Unmatched));
        assert_eq!(
            Template::parse("{value}", &only).unwrap_err().to_string(),
            "placeholder {value} is unknown; use {rule}, {labels.NAME}"
        );
        assert!(Template::parse("{labels.}", &only).is_err());
    }

    #[test]
    fn values_are_short() {
        assert_eq!(format_value(90.0), "90");
        assert_eq!(format_value(1.5e10), "15000000000");
        assert_eq!(format_value(0.09341), "0.0934");
        assert_eq!(format_value(-0.00001), "0");
        assert_eq!(format_value(-2.5), "-2.5");
    }
}
