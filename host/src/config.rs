//! The host configuration file (TOML). Every field has a default, so the host
//! runs with no file at all; unknown fields and out-of-range values are refused
//! with the field's name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::alerts::AlertsConfig;
use crate::plugin::{Limits, Settings};
use crate::store::metrics::MetricRetention;
use crate::store::progress::Retention;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// How often the machine is sampled and metric providers are called.
    pub sample_interval_ms: u64,
    /// How often the process table is sampled (it costs ~30 µs per process).
    pub processes_interval_ms: u64,
    pub api: ApiConfig,
    pub plugins: PluginsConfig,
    pub progress: ProgressConfig,
    pub metrics: MetricsConfig,
    /// Alert rules; see [`crate::alerts`].
    pub alerts: AlertsConfig,
    /// File-watching jobs (`[[watch]]`); see [`crate::watch`].
    pub watch: Vec<crate::watch::JobConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// How long every sample is kept as it was taken, like `1h`.
    pub keep_raw: String,
    /// How long one-minute aggregates (min, max, mean, last) are kept, like `7d`.
    pub keep_minutes: String,
    /// Most series one plugin may add to the history; samples of more are dropped.
    pub max_series_per_plugin: u64,
    /// How long samples are gathered before they are committed together, like `30s`:
    /// what a crash can lose of the history, and what keeps the disk quiet.
    pub commit_every: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            keep_raw: "1h".into(),
            keep_minutes: "7d".into(),
            max_series_per_plugin: 1000,
            commit_every: "30s".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgressConfig {
    /// How long progress events (the history of runs) are kept, like `30d` or `12h`.
    pub keep_events: String,
    /// At most this many events per run; the oldest go first.
    pub max_events_per_run: u64,
    /// Nodes this deep or less (1: runs only, 2: runs and phases) are metrics
    /// (`monitor_run_*`, with `run` and `node` labels) while they run and for a few
    /// minutes after; 0 for none.
    pub metrics_depth: u64,
}

impl Default for ProgressConfig {
    fn default() -> Self {
        ProgressConfig { keep_events: "30d".into(), max_events_per_run: 1_000_000, metrics_depth: 2 }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Where the daemon's HTTP API listens; port 0 picks a free port (the
    /// last one again when it is free), which other commands find in the data
    /// directory.
    pub listen: String,
    /// Names the host answers to besides `localhost`, its machine name and IP
    /// addresses, like `["gpu-box-1.lan"]`: a request naming another host in
    /// `Host` is refused, so a web page elsewhere cannot reach the API through
    /// a name of its own that points here (DNS rebinding).
    pub hosts: Vec<String>,
    /// How long the audit log keeps a change made through the API, like `90d`.
    pub keep_audit: String,
    /// Serve the API over TLS: with `tls_cert` and `tls_key` if given, else
    /// with a certificate the host makes, which clients pin on first use.
    pub tls: bool,
    /// A PEM file: the certificate, then any intermediates.
    pub tls_cert: Option<PathBuf>,
    /// A PEM file: the certificate's private key.
    pub tls_key: Option<PathBuf>,
    /// Listen beyond loopback over plain HTTP, the token in clear: refused unless this says so.
    pub plain_http_beyond_loopback: bool,
    /// A hosts file (`NAME URL TOKEN-FILE` a line, as `--hosts` reads): the
    /// dashboard's fleet view shows every host's runs and alerts. Anyone who
    /// may read this host then reads what those tokens read there.
    pub fleet_hosts: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// The plugin directory when `--plugins` is not given.
    pub dir: Option<PathBuf>,
    pub memory_limit_mib: u64,
    pub call_timeout_ms: u64,
    pub max_output_kib: u64,
    pub max_metrics: u64,
    pub quarantine_after: u32,
    /// The largest plugin file loaded; larger ones are refused unread.
    pub max_file_mib: u64,
    /// How long compiling one plugin may take before the compiler is stopped.
    pub compile_timeout_secs: u64,
    /// How much memory the compiler may use for one plugin.
    pub compile_memory_mib: u64,
    /// A PEM file of certificate authorities plugins' `http` requests also
    /// trust, besides the Mozilla roots (a private CA).
    pub http_ca_file: Option<PathBuf>,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            sample_interval_ms: 1000,
            processes_interval_ms: 5000,
            api: ApiConfig::default(),
            plugins: PluginsConfig::default(),
            progress: ProgressConfig::default(),
            metrics: MetricsConfig::default(),
            alerts: AlertsConfig::default(),
            watch: Vec::new(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:0".into(),
            hosts: Vec::new(),
            keep_audit: "90d".into(),
            tls: false,
            tls_cert: None,
            tls_key: None,
            plain_http_beyond_loopback: false,
            fleet_hosts: None,
        }
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: None,
            memory_limit_mib: 64,
            call_timeout_ms: 100,
            max_output_kib: 1024,
            max_metrics: 1000,
            quarantine_after: 3,
            max_file_mib: 64,
            compile_timeout_secs: 120,
            compile_memory_mib: 2048,
            http_ca_file: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {field} = {value} is out of range; use {range}")]
    Range { path: PathBuf, field: &'static str, value: u64, range: &'static str },
    #[error("config file {path}: api.listen = '{value}' is not an address like 127.0.0.1:8750")]
    Listen { path: PathBuf, value: String },
    #[error("config file {path}: {}", errors.join("; "))]
    Alerts { path: PathBuf, errors: Vec<String> },
    #[error("config file {path}: {source}")]
    Watch { path: PathBuf, source: crate::watch::ConfigError },
    #[error("config file {path}: {field} = '{value}' is not a duration; write one like 30d, 12h or 90m")]
    Duration { path: PathBuf, field: &'static str, value: String },
    #[error("config file {path}: metrics.commit_every = '{value}' is not a duration from 0s to 5m; write one like 10s")]
    CommitEvery { path: PathBuf, value: String },
}

/// The longest the history may gather samples: more would be a lot to lose to a crash.
const MAX_COMMIT_EVERY: Duration = Duration::from_secs(300);

impl HostConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<HostConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        HostConfig::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<HostConfig, ConfigError> {
        let config: HostConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_string();
            let message = match e.span() {
                Some(span) => {
                    let line = text[..span.start].matches('\n').count() + 1;
                    // What the error points at, so "duplicate key" says which.
                    let at = text.get(span).and_then(|t| t.lines().next()).map(str::trim).unwrap_or_default();
                    match at {
                        "" => format!("line {line}: {message}"),
                        at => format!("line {line}: {message} (at `{}`)", crate::text::line(at, 60)),
                    }
                }
                None => message,
            };
            ConfigError::Parse { path: path.into(), message }
        })?;
        let p = &config.plugins;
        let checks: [(&'static str, u64, u64, u64, &'static str); 13] = [
            ("sample_interval_ms", config.sample_interval_ms, 100, 3_600_000, "100 to 3600000"),
            ("processes_interval_ms", config.processes_interval_ms, 500, 3_600_000, "500 to 3600000"),
            ("plugins.memory_limit_mib", p.memory_limit_mib, 1, 4096, "1 to 4096"),
            ("plugins.call_timeout_ms", p.call_timeout_ms, 1, 60_000, "1 to 60000"),
            ("plugins.max_output_kib", p.max_output_kib, 1, 1 << 20, "1 to 1048576"),
            ("plugins.max_metrics", p.max_metrics, 1, 1_000_000, "1 to 1000000"),
            ("plugins.quarantine_after", p.quarantine_after.into(), 1, 1000, "1 to 1000"),
            ("plugins.max_file_mib", p.max_file_mib, 1, 1024, "1 to 1024"),
            ("plugins.compile_timeout_secs", p.compile_timeout_secs, 1, 3600, "1 to 3600"),
            ("plugins.compile_memory_mib", p.compile_memory_mib, 256, 65536, "256 to 65536"),
            ("progress.max_events_per_run", config.progress.max_events_per_run, 1, u64::MAX, "1 or more"),
            ("progress.metrics_depth", config.progress.metrics_depth, 0, 32, "0 to 32"),
            ("metrics.max_series_per_plugin", config.metrics.max_series_per_plugin, 1, 1_000_000, "1 to 1000000"),
        ];
        for (field, value, min, max, range) in checks {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::Range { path: path.into(), field, value, range });
            }
        }
        let Ok(listen) = config.api.listen.parse::<std::net::SocketAddr>() else {
            return Err(ConfigError::Listen { path: path.into(), value: config.api.listen.clone() });
        };
        let api = &config.api;
        let message = if api.tls_cert.is_some() != api.tls_key.is_some() {
            Some("api.tls_cert and api.tls_key go together: give both, or neither for a certificate the host makes")
        } else if api.tls_cert.is_some() && !api.tls {
            Some("api.tls_cert is given but api.tls is false; set tls = true")
        } else if !listen.ip().is_loopback() && !api.tls && !api.plain_http_beyond_loopback {
            Some(
                "api.listen is beyond loopback, where the token would travel in clear; set tls = true (the host makes a certificate clients pin), or plain_http_beyond_loopback = true on a private network",
            )
        } else {
            None
        };
        if let Some(message) = message {
            return Err(ConfigError::Parse { path: path.into(), message: message.into() });
        }
        let durations = [
            ("progress.keep_events", &config.progress.keep_events),
            ("metrics.keep_raw", &config.metrics.keep_raw),
            ("metrics.keep_minutes", &config.metrics.keep_minutes),
            ("api.keep_audit", &config.api.keep_audit),
        ];
        for (field, value) in durations {
            if humantime::parse_duration(value).is_err() {
                return Err(ConfigError::Duration { path: path.into(), field, value: value.clone() });
            }
        }
        let commit_every = &config.metrics.commit_every;
        match humantime::parse_duration(commit_every) {
            Ok(every) if every <= MAX_COMMIT_EVERY => {}
            _ => return Err(ConfigError::CommitEvery { path: path.into(), value: commit_every.clone() }),
        }
        if let Err(errors) = crate::alerts::validate(&config.alerts) {
            return Err(ConfigError::Alerts { path: path.into(), errors });
        }
        crate::watch::config::validate_all(&config.watch)
            .map_err(|source| ConfigError::Watch { path: path.into(), source })?;
        Ok(config)
    }

    /// The watch jobs, validated on load.
    pub fn watch_jobs(&self) -> Vec<crate::watch::JobSpec> {
        crate::watch::config::validate_all(&self.watch).expect("validated on load")
    }

    /// Which progress events the daemon keeps.
    pub fn retention(&self) -> Retention {
        Retention {
            max_age_ms: millis(&self.progress.keep_events),
            max_events_per_run: self.progress.max_events_per_run,
        }
    }

    /// How long metric history is kept.
    pub fn metric_retention(&self) -> MetricRetention {
        MetricRetention { raw_ms: millis(&self.metrics.keep_raw), minutes_ms: millis(&self.metrics.keep_minutes) }
    }

    /// How long the audit log keeps a change.
    pub fn keep_audit_ms(&self) -> u64 {
        millis(&self.api.keep_audit)
    }

    /// How long the history's samples are gathered before a commit.
    pub fn history_commit_every(&self) -> Duration {
        Duration::from_millis(millis(&self.metrics.commit_every))
    }

    pub fn sample_interval(&self) -> Duration {
        Duration::from_millis(self.sample_interval_ms)
    }

    /// How plugins run from `dir`, for a host whose data is in `data_dir`.
    pub fn plugin_settings(&self, dir: PathBuf, data_dir: &Path) -> Settings {
        let p = &self.plugins;
        Settings {
            host_dirs: crate::plugin::capability::HostDirs::new(data_dir, &dir),
            dir,
            limits: Limits {
                call_timeout: Duration::from_millis(p.call_timeout_ms),
                max_output_bytes: (p.max_output_kib as usize) << 10,
                max_metrics: p.max_metrics as usize,
            },
            memory_bytes: (p.memory_limit_mib as usize) << 20,
            quarantine_after: p.quarantine_after,
            max_file_bytes: p.max_file_mib << 20,
            http_tls: None,
            processes: Default::default(),
            host_metrics: Default::default(),
        }
    }

    /// Plugins compiled in a child process under the configured limits.
    pub fn compiler(&self) -> crate::plugin::engine::Compiler {
        crate::plugin::engine::Compiler::child(
            Duration::from_secs(self.plugins.compile_timeout_secs),
            self.plugins.compile_memory_mib << 20,
        )
    }
}

/// A duration checked on load, in milliseconds.
fn millis(text: &str) -> u64 {
    let duration = humantime::parse_duration(text).expect("validated on load");
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HostConfig, String> {
        HostConfig::parse(text, Path::new("host.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(parse("").unwrap(), HostConfig::default());
    }

    #[test]
    fn fields_are_read() {
        let c = parse("sample_interval_ms = 500\n[plugins]\ncall_timeout_ms = 50\ndir = \"/p\"\n").unwrap();
        assert_eq!(c.sample_interval_ms, 500);
        assert_eq!(c.plugins.call_timeout_ms, 50);
        assert_eq!(c.plugins.dir.as_deref(), Some(Path::new("/p")));
        assert_eq!(c.plugins.quarantine_after, 3);
        let c = parse("[progress]\nkeep_events = \"2h\"\nmax_events_per_run = 10").unwrap();
        assert_eq!(c.retention(), Retention { max_age_ms: 7_200_000, max_events_per_run: 10 });
        let c = parse("[metrics]\nkeep_raw = \"10m\"").unwrap();
        assert_eq!(c.metric_retention(), MetricRetention { raw_ms: 600_000, minutes_ms: 7 * 86_400_000 });
    }

    #[test]
    fn bad_values_name_the_field() {
        let cases = [
            ("[plugins]\ncall_timeout_ms = 0", "plugins.call_timeout_ms = 0 is out of range; use 1 to 60000"),
            ("[plugins]\ntimeout = 5", "line 2: unknown field `timeout`"),
            ("[alerts]\ndisable = []\n[plugins]\n[alerts]\n", "line 4: duplicate key (at `alerts`)"),
            ("sample_interval_ms = \"fast\"", "line 1: invalid type: string \"fast\", expected u64"),
            ("[api]\nlisten = \"localhost\"", "api.listen = 'localhost' is not an address"),
            ("[progress]\nkeep_events = \"a while\"", "progress.keep_events = 'a while' is not a duration"),
            ("[progress]\nmax_events_per_run = 0", "progress.max_events_per_run = 0 is out of range"),
            ("[metrics]\nkeep_minutes = \"1 week-ish\"", "metrics.keep_minutes = '1 week-ish' is not a duration"),
            ("[metrics]\ncommit_every = \"1h\"", "metrics.commit_every = '1h' is not a duration from 0s to 5m"),
            (
                "[[alerts.rule]]\nname = \"hot\"\nlevel = \"warning\"\nkind = \"threshold\"\nmetric = \"x\"\nop = \"=>\"\nvalue = 1",
                "rule 'hot': op '=>' is not one of >, >=, <, <=",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
