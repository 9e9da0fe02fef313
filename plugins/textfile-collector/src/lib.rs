//! Metrics from Prometheus text files, like node_exporter's textfile collector.
//!
//! On every sampling tick the plugin reads every `*.prom` file in one directory
//! (in name order, at most `max_files` of them) and turns each sample into a
//! metric with an extra label `file` naming the file it came from. A sample that
//! already has a `file` label keeps it as `exported_file`. Write the files
//! atomically (write `x.prom.tmp`, then rename it to `x.prom`) so the plugin never
//! sees half a file.
//!
//! The files use the Prometheus text exposition format: blank lines and `#`
//! comments are skipped, a sample is `name value`, `name{a="b",c="d"} value` or
//! either followed by a timestamp in milliseconds (accepted and ignored). Values
//! may be `NaN`, `+Inf`, `-Inf` or in scientific notation; label values may hold
//! commas and the escapes `\"`, `\\` and `\n`. A malformed line is skipped and
//! counted; the first one of each file is logged with its line number.
//!
//! Besides the samples, the plugin reports:
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `textfile_parse_errors` | `file` | malformed lines skipped in the file |
//! | `textfile_mtime_seconds` | `file` | when the file was last modified (Unix time) |
//! | `textfile_scrape_error` | | 1 when a `*.prom` file could not be read, else 0 |
//!
//! # Configuration (`textfile-collector.toml`)
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `directory` | required | absolute path of the directory holding the `*.prom` files |
//! | `max_files` | `100` | read at most this many files (the first in name order); more are logged and ignored |
//!
//! ```toml
//! directory = "/var/lib/node_exporter/textfile"
//! max_files = 100
//! ```
//!
//! # Capabilities
//!
//! `fs-read`: reads `*.prom` files from the directory you grant. The host shows the
//! directory inside the sandbox at the same absolute path:
//!
//! ```text
//! monitor plugins enable textfile-collector --grant fs-read:/var/lib/node_exporter/textfile
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::time::UNIX_EPOCH;

use monitor_sdk::config::Deserialize;
use monitor_sdk::{CapabilityRequest, Metric, MetricProvider, Plugin};

const PLUGIN: &str = env!("CARGO_PKG_NAME");
const DEFAULT_MAX_FILES: usize = 100;

#[derive(Default)]
struct TextfileCollector {
    config: Config,
    /// Problems logged already; each is logged again only after it has cleared.
    reported: BTreeSet<String>,
}

impl Plugin for TextfileCollector {
    const SUMMARY: &'static str = "metrics from Prometheus *.prom text files in a directory";

    fn capabilities() -> Vec<CapabilityRequest> {
        vec![CapabilityRequest::new("fs-read", "reads *.prom files from the directory you grant")]
    }

    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.config = Config::parse(config)?;
        Ok(())
    }
}

impl MetricProvider for TextfileCollector {
    fn collect(&mut self) -> Result<Vec<Metric>, String> {
        let scan = scan(&self.config)?;
        let problems: BTreeSet<String> = scan.problems(self.config.max_files).into_iter().collect();
        for problem in problems.difference(&self.reported) {
            monitor_sdk::log::warn(problem);
        }
        self.reported = problems;
        Ok(scan.into_metrics())
    }
}

monitor_sdk::export_metric_provider!(TextfileCollector);

// ---------------------------------------------------------------------------
// Configuration

#[derive(Debug, Default, PartialEq)]
struct Config {
    directory: String,
    max_files: usize,
}

#[derive(Deserialize)]
#[serde(crate = "monitor_sdk::config::serde", deny_unknown_fields)]
struct RawConfig {
    directory: Option<String>,
    max_files: Option<usize>,
}

impl Config {
    fn parse(text: &str) -> Result<Config, String> {
        let raw: RawConfig = monitor_sdk::config::from_toml(text)?;
        let directory = raw.directory.ok_or_else(|| {
            format!(
                "missing `directory`: set it in {PLUGIN}.toml to the directory holding the *.prom \
                 files, e.g. directory = \"/var/lib/node_exporter/textfile\""
            )
        })?;
        // The sandbox shows granted directories at their absolute host paths.
        if !directory.starts_with('/') {
            return Err(format!(
                "directory = {directory:?}: must be an absolute path, e.g. \"/var/lib/node_exporter/textfile\""
            ));
        }
        let max_files = raw.max_files.unwrap_or(DEFAULT_MAX_FILES);
        if max_files == 0 {
            return Err("max_files = 0: must be at least 1".into());
        }
        Ok(Config { directory, max_files })
    }
}

// ---------------------------------------------------------------------------
// Reading the directory (std only, no host calls)

/// One `*.prom` file and what came of reading it.
#[derive(Debug)]
struct FileScan {
    name: String,
    mtime_seconds: Option<f64>,
    parsed: Result<Parsed, String>,
}

#[derive(Debug)]
struct Scan {
    files: Vec<FileScan>,
    /// `*.prom` files beyond `max_files`, not read.
    skipped: usize,
}

fn scan(config: &Config) -> Result<Scan, String> {
    let directory = &config.directory;
    let entries = fs::read_dir(directory).map_err(|e| {
        format!(
            "cannot read directory '{directory}': {e}; grant it with \
             'monitor plugins enable {PLUGIN} --grant fs-read:{directory}'"
        )
    })?;

    let mut candidates = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !name.ends_with(".prom") {
            continue;
        }
        let path = entry.path();
        // `fs::metadata` follows symlinks, so a link to a file counts as a file.
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {
                let mtime =
                    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs_f64());
                candidates.push((name, path, mtime));
            }
            Ok(_) => {}
            // Keep it: reading the file reports the error.
            Err(_) => candidates.push((name, path, None)),
        }
    }
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    let skipped = candidates.len().saturating_sub(config.max_files);
    candidates.truncate(config.max_files);

    let files = candidates
        .into_iter()
        .map(|(name, path, mtime)| {
            let parsed = fs::read_to_string(&path)
                .map(|text| parse_text(&text))
                .map_err(|e| format!("cannot read '{}': {e}", path.display()));
            FileScan { name, mtime_seconds: mtime, parsed }
        })
        .collect();
    Ok(Scan { files, skipped })
}

impl Scan {
    /// Messages worth a line in the host log.
    fn problems(&self, max_files: usize) -> Vec<String> {
        let mut problems = Vec::new();
        if self.skipped > 0 {
            problems.push(format!("{} *.prom files beyond max_files = {max_files} are ignored", self.skipped));
        }
        for file in &self.files {
            match &file.parsed {
                Err(e) => problems.push(e.clone()),
                Ok(parsed) => {
                    if let Some((line, reason)) = parsed.errors.first() {
                        problems.push(format!(
                            "{}: line {line} skipped: {reason}{}",
                            file.name,
                            match parsed.errors.len() {
                                1 => String::new(),
                                n => format!(" (and {} more malformed lines)", n - 1),
                            }
                        ));
                    }
                }
            }
        }
        problems
    }

    fn into_metrics(self) -> Vec<Metric> {
        let mut metrics = Vec::new();
        let mut scrape_error = false;
        for file in self.files {
            match file.parsed {
                Err(_) => scrape_error = true,
                Ok(parsed) => {
                    for sample in parsed.samples {
                        metrics.push(sample.into_metric(&file.name));
                    }
                    metrics.push(
                        Metric::new("textfile_parse_errors", parsed.errors.len() as f64)
                            .label("file", file.name.as_str()),
                    );
                }
            }
            if let Some(mtime) = file.mtime_seconds {
                metrics.push(
                    Metric::new("textfile_mtime_seconds", mtime).unit("seconds").label("file", file.name.as_str()),
                );
            }
        }
        metrics.push(Metric::new("textfile_scrape_error", if scrape_error { 1.0 } else { 0.0 }));
        metrics
    }
}

// ---------------------------------------------------------------------------
// The Prometheus text format (pure)

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
}

impl Sample {
    fn into_metric(self, file: &str) -> Metric {
        let taken: Vec<String> = self.labels.iter().map(|(k, _)| k.clone()).collect();
        let mut metric = Metric::new(self.name, self.value);
        for (key, value) in self.labels {
            let key = if key == "file" {
                // Like Prometheus on a clash: prefix `exported_` until the name is free.
                let mut renamed = format!("exported_{key}");
                while taken.contains(&renamed) {
                    renamed = format!("exported_{renamed}");
                }
                renamed
            } else {
                key
            };
            metric = metric.label(key, value);
        }
        metric.label("file", file)
    }
}

#[derive(Debug, Default, PartialEq)]
struct Parsed {
    samples: Vec<Sample>,
    /// Malformed lines: 1-based line number and reason.
    errors: Vec<(usize, String)>,
}

fn parse_text(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    for (index, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(sample)) => parsed.samples.push(sample),
            Ok(None) => {}
            Err(reason) => parsed.errors.push((index + 1, reason)),
        }
    }
    parsed
}

/// One line: `Ok(None)` for a blank line or a comment.
fn parse_line(line: &str) -> Result<Option<Sample>, String> {
    let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }

    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("invalid metric name `{name}`"));
    }

    let mut rest = skip_blanks(&line[name_end..]);
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }

    let mut fields = rest.split([' ', '\t']).filter(|f| !f.is_empty());
    let value = fields.next().ok_or("missing value")?;
    let value = parse_value(value)?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(t) => Some(t.parse::<i64>().map_err(|_| format!("invalid timestamp `{t}`"))?),
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected `{extra}` after the timestamp"));
    }
    Ok(Some(Sample { name: name.to_string(), labels, value, timestamp_ms }))
}

fn skip_blanks(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// Parses `a="b",c="d"}` (after the `{`), returns what follows the `}`.
fn parse_labels<'a>(mut s: &'a str, labels: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        s = skip_blanks(s);
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        let name_end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).ok_or("unterminated label set")?;
        let name = &s[..name_end];
        if !is_label_name(name) {
            return Err(match s[name_end..].chars().next() {
                Some(c) if name.is_empty() => format!("unexpected `{c}` in the label set"),
                _ => format!("invalid label name `{name}`"),
            });
        }
        if name == "__name__" {
            return Err("the label name `__name__` is reserved".into());
        }
        if labels.iter().any(|(k, _)| k == name) {
            return Err(format!("label `{name}` appears twice"));
        }
        s = skip_blanks(&s[name_end..]);
        s = s.strip_prefix('=').ok_or_else(|| format!("expected `=` after label `{name}`"))?;
        s = skip_blanks(s);
        s = s.strip_prefix('"').ok_or_else(|| format!("expected `\"` to start the value of label `{name}`"))?;
        let (value, rest) = parse_label_value(s).map_err(|reason| format!("label `{name}`: {reason}"))?;
        labels.push((name.to_string(), value));
        s = skip_blanks(rest);
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err(format!("expected `,` or `}}` after label `{name}`"));
        }
    }
}

/// Reads an escaped label value up to its closing quote; returns it and the rest.
fn parse_label_value(s: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, other)) => return Err(format!("invalid escape `\\{other}`")),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err("unterminated value".into())
}

fn parse_value(text: &str) -> Result<f64, String> {
    // Rust accepts `NaN`, `inf`, `+Inf`, `-Inf`, `1e3`, `.5` like Go's ParseFloat.
    text.parse::<f64>().map_err(|_| format!("invalid value `{text}`"))
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(line: &str) -> Sample {
        parse_line(line).unwrap_or_else(|e| panic!("{line:?}: {e}")).unwrap_or_else(|| panic!("{line:?}: no sample"))
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn plain_sample() {
        let s = sample("backup_last_success 1700000000");
        assert_eq!(s.name, "backup_last_success");
        assert!(s.labels.is_empty());
        assert_eq!(s.value, 1_700_000_000.0);
        assert_eq!(s.timestamp_ms, None);
    }

    #[test]
    fn labels_and_timestamp() {
        let s = sample(r#"http_requests_total{method="post",code="200"} 1027 1395066363000"#);
        assert_eq!(s.labels, labels(&[("method", "post"), ("code", "200")]));
        assert_eq!(s.value, 1027.0);
        assert_eq!(s.timestamp_ms, Some(1_395_066_363_000));
        assert_eq!(sample("x 1 -5").timestamp_ms, Some(-5));
    }

    #[test]
    fn special_values() {
        assert!(sample("a NaN").value.is_nan());
        assert_eq!(sample("a +Inf").value, f64::INFINITY);
        assert_eq!(sample("a -Inf").value, f64::NEG_INFINITY);
        assert_eq!(sample("a Inf").value, f64::INFINITY);
        assert_eq!(sample("a 1.5e-3").value, 0.0015);
        assert_eq!(sample("a -2E+2").value, -200.0);
        assert_eq!(sample("a .5").value, 0.5);
        assert_eq!(sample("a 0").value, 0.0);
    }

    #[test]
    fn escapes_and_commas_in_label_values() {
        let s = sample(
            r#"msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\"",list="a,b,c"} 1.458255915e9"#,
        );
        assert_eq!(
            s.labels,
            labels(&[("path", r"C:\DIR\FILE.TXT"), ("error", "Cannot find file:\n\"FILE.TXT\""), ("list", "a,b,c"),])
        );
        assert_eq!(s.value, 1.458255915e9);
        assert_eq!(sample(r#"a{x="}{ 1 2"} 3"#).labels, labels(&[("x", "}{ 1 2")]));
        assert_eq!(sample(r#"a{x="é ☃"} 3"#).labels, labels(&[("x", "é ☃")]));
    }

    #[test]
    fn lenient_spacing_and_trailing_comma() {
        let s = sample("  cpu_seconds { mode = \"idle\" , cpu=\"0\", }\t12.5\t ");
        assert_eq!(s.name, "cpu_seconds");
        assert_eq!(s.labels, labels(&[("mode", "idle"), ("cpu", "0")]));
        assert_eq!(s.value, 12.5);
        assert_eq!(sample("a{} 1").labels, vec![]);
        assert_eq!(sample("a{b=\"c\"}7").value, 7.0);
        assert_eq!(sample("ns:rule_name:rate5m 1\r").name, "ns:rule_name:rate5m");
    }

    #[test]
    fn comments_and_blank_lines() {
        for line in ["", "   ", "# HELP a help", "# TYPE a counter", "#", "\t# x"] {
            assert_eq!(parse_line(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn malformed_lines() {
        for line in [
            "a",
            "a{b=\"c\"}",
            "1abc 2",
            "a-b 1",
            "a one",
            "a 1 2 3",
            "a 1 1.5",
            "a{b=\"c} 1",
            "a{b=c} 1",
            "a{b=\"c\" d=\"e\"} 1",
            "a{b=\"c\",b=\"d\"} 1",
            "a{b=\"\\t\"} 1",
            "a{1b=\"c\"} 1",
            "a{__name__=\"x\"} 1",
            "a{b=\"c\"",
            "a{,} 1",
            "{b=\"c\"} 1",
        ] {
            assert!(parse_line(line).is_err(), "{line:?} parsed");
        }
    }

    #[test]
    fn text_counts_errors_with_line_numbers() {
        let text = "# HELP a x\n# TYPE a gauge\na 1\n\nbad line here\na{b=\"c\"} 2\nb{\n";
        let parsed = parse_text(text);
        assert_eq!(parsed.samples.len(), 2);
        assert_eq!(parsed.errors.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [5, 7]);
    }

    #[test]
    fn file_label_is_added_and_clash_renamed() {
        let m = sample(r#"a{file="x",job="j"} 1"#).into_metric("f.prom");
        let got: Vec<(&str, &str)> = m.labels.iter().map(|l| (l.key.as_str(), l.value.as_str())).collect();
        assert_eq!(got, [("exported_file", "x"), ("job", "j"), ("file", "f.prom")]);

        let m = sample(r#"a{file="x",exported_file="y"} 1"#).into_metric("f.prom");
        let keys: Vec<&str> = m.labels.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["exported_exported_file", "exported_file", "file"]);
    }

    #[test]
    fn config() {
        assert_eq!(
            Config::parse("directory = \"/srv/prom\""),
            Ok(Config { directory: "/srv/prom".into(), max_files: 100 })
        );
        assert_eq!(Config::parse("directory = \"/srv/prom\"\nmax_files = 3").map(|c| c.max_files), Ok(3));
        let missing = Config::parse("").unwrap_err();
        assert!(missing.contains("missing `directory`"), "{missing}");
        assert!(Config::parse("directory = \"prom\"").unwrap_err().contains("absolute"));
        assert!(Config::parse("directory = \"/a\"\nmax_files = 0").unwrap_err().contains("max_files"));
        assert!(Config::parse("directory = \"/a\"\nmax_file = 3").is_err());
        assert!(Config::parse("directory = 3").is_err());
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let nanos = std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("textfile-collector-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn scans_prom_files_in_name_order() {
        let dir = temp_dir("scan");
        fs::write(dir.join("b.prom"), "b_metric{x=\"1\"} 2\noops\n").unwrap();
        fs::write(dir.join("a.prom"), "# TYPE a gauge\na_metric 1\n").unwrap();
        fs::write(dir.join("c.prom.tmp"), "ignored 1\n").unwrap();
        fs::write(dir.join("notes.txt"), "ignored 1\n").unwrap();
        fs::create_dir(dir.join("sub.prom")).unwrap();
        let config = Config { directory: dir.to_str().unwrap().into(), max_files: 100 };

        let scan = scan(&config).unwrap();
        assert_eq!(scan.skipped, 0);
        let problems = scan.problems(100);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("b.prom: line 2 skipped"), "{problems:?}");

        let metrics = scan.into_metrics();
        let find = |name: &str, file: &str| {
            metrics
                .iter()
                .find(|m| m.name == name && m.labels.iter().any(|l| l.key == "file" && l.value == file))
                .map(|m| m.value)
        };
        assert_eq!(find("a_metric", "a.prom"), Some(1.0));
        assert_eq!(find("b_metric", "b.prom"), Some(2.0));
        assert_eq!(find("textfile_parse_errors", "a.prom"), Some(0.0));
        assert_eq!(find("textfile_parse_errors", "b.prom"), Some(1.0));
        assert!(find("textfile_mtime_seconds", "a.prom").unwrap() > 1.0e9);
        assert!(!metrics.iter().any(|m| m.name == "ignored"));
        let last = metrics.last().unwrap();
        assert_eq!((last.name.as_str(), last.value), ("textfile_scrape_error", 0.0));

        let limited = super::scan(&Config { max_files: 1, ..config }).unwrap();
        assert_eq!(limited.skipped, 1);
        assert_eq!(limited.files.len(), 1);
        assert_eq!(limited.files[0].name, "a.prom");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_directory_says_how_to_grant() {
        let dir = temp_dir("missing").join("nope");
        let directory = dir.to_str().unwrap().to_string();
        let error = scan(&Config { directory: directory.clone(), max_files: 1 }).unwrap_err();
        assert!(error.starts_with(&format!("cannot read directory '{directory}': ")), "{error}");
        assert!(
            error.ends_with(&format!(
                "; grant it with 'monitor plugins enable textfile-collector --grant fs-read:{directory}'"
            )),
            "{error}"
        );
    }
}
