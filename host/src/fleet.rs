//! Many hosts: the hosts file, which the CLI's `--hosts` and the dashboard's
//! fleet view read, and the host's own look at every host in it, each asked at
//! once and within a few seconds, so one that is down is one line, never a hang.
//!
//! The file (`--hosts FILE`, else `$MONITOR_HOSTS`, else
//! `~/.config/monitor/hosts`; for the dashboard, `api.fleet_hosts`) has one host
//! per line: a name, the API's URL and a file holding a token (a `read` token is
//! enough).
//!
//! ```text
//! # name      url                      token file
//! gpu-box-1   http://10.0.0.11:8750    ~/.config/monitor/gpu-box-1.token
//! build       http://127.0.0.1:8751    /etc/monitor/build.token
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::alerts::{Alert, AlertState};
use crate::error::CommandResult;
use crate::progress::{Node, Status};

/// How long one host may take to answer.
pub const HOST_TIMEOUT: Duration = Duration::from_secs(5);

/// One line of the hosts file: a host (its base URL and token), or why the line is not one.
pub struct Entry {
    /// The host's name; for a bad line, `line N`.
    pub name: String,
    pub host: Result<(String, String), String>,
}

/// The hosts file `--hosts` names, or the default one.
pub fn hosts_file(given: Option<&Path>) -> PathBuf {
    if let Some(path) = given {
        return path.to_path_buf();
    }
    if let Some(path) = std::env::var_os("MONITOR_HOSTS").filter(|p| !p.is_empty()) {
        return path.into();
    }
    crate::paths::config_dir().join("hosts")
}

/// The hosts in `text` (the file at `path`), in order; a bad line is an entry
/// that says which line and why, and the others are kept.
pub fn parse(path: &Path, text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let at = format!("{} line {}", path.display(), index + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, url, token_file] = fields[..] else {
            let error = format!("{at}: write NAME URL TOKEN-FILE, like 'gpu-box-1 http://10.0.0.11:8750 ~/gpu.token'");
            entries.push(Entry { name: format!("line {}", index + 1), host: Err(error) });
            continue;
        };
        let host = parse_url(url).map_err(|e| format!("{at}: {e}")).and_then(|addr| {
            read_token(&expand(token_file)).map(|token| (addr, token)).map_err(|e| format!("{at}: {e}"))
        });
        entries.push(Entry { name: crate::text::line(name, 40), host });
    }
    entries
}

/// Reads the hosts file; a file that cannot be read is the command's error.
pub fn read(path: &Path) -> CommandResult<Vec<Entry>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        crate::error::UsageError(format!(
            "cannot read hosts file {}: {e}; write one line per host, NAME URL TOKEN-FILE (see 'Many hosts' in the README)",
            path.display()
        ))
    })?;
    Ok(parse(path, &text))
}

/// One row of the fleet view: a run or an alert of a host.
#[derive(Debug, Serialize)]
pub struct Row {
    pub host: String,
    /// `run` or `alert`.
    pub kind: &'static str,
    /// The run's id, or the alert's rule.
    pub name: String,
    /// The run's status, or the alert's state.
    pub state: String,
    /// How far the run is, or the alert's level and message.
    pub detail: String,
}

/// A host that did not answer, and why.
#[derive(Debug, Serialize)]
pub struct Unanswered {
    pub host: String,
    pub error: String,
}

/// What every host of a hosts file says, in the file's order.
#[derive(Debug, Default, Serialize)]
pub struct Look {
    pub rows: Vec<Row>,
    pub unanswered: Vec<Unanswered>,
}

/// The largest answer read from a host of the fleet.
const ANSWER_BYTES: u64 = 8 << 20;
/// Most rows kept per host and kind.
const ROWS_PER_HOST: usize = 200;

/// Asks every host of `entries` for its runs and alerts, all at once, each
/// within [`HOST_TIMEOUT`]. Over https a host is trusted as the CLI would: its
/// pin in the known-hosts file, else the Mozilla roots; this never pins (a
/// host's certificate is pinned by a person, with `monitor list --hosts`).
pub fn look(entries: &[Entry]) -> Look {
    let mut look = Look::default();
    for (host, answer) in each(entries, rows_of) {
        match answer {
            Ok(rows) => look.rows.extend(rows),
            Err(error) => look.unanswered.push(Unanswered { host, error }),
        }
    }
    look
}

/// `ask(name, base URL, token)` of every host at once, each on its own thread
/// (reaching one, and over https learning its certificate, waits for no
/// other); per host, in the file's order, its answer or why there is none.
pub fn each<T: Send>(
    entries: &[Entry],
    ask: impl Fn(&str, &str, &str) -> Result<T, String> + Sync,
) -> Vec<(String, Result<T, String>)> {
    std::thread::scope(|scope| {
        let asked: Vec<_> = entries
            .iter()
            .map(|entry| {
                let ask = &ask;
                scope.spawn(move || match &entry.host {
                    Ok((base, token)) => ask(&entry.name, base, token),
                    Err(e) => Err(e.clone()),
                })
            })
            .collect();
        entries
            .iter()
            .zip(asked)
            .map(|(entry, answer)| {
                let answer = answer.join().unwrap_or_else(|_| Err("the request failed".into()));
                (entry.name.clone(), answer.map_err(|e| crate::text::line(&e, 300)))
            })
            .collect()
    })
}

fn rows_of(host: &str, base: &str, token: &str) -> Result<Vec<Row>, String> {
    let agent = host_agent(base);
    // Both at once: the host answers within HOST_TIMEOUT, or is one line.
    let (runs, alerts) = std::thread::scope(|scope| {
        let alerts = scope.spawn(|| fetch::<Vec<Alert>>(&agent, base, token, "/v1/alerts"));
        let runs = fetch::<Vec<Node>>(&agent, base, token, "/v1/runs");
        (runs, alerts.join().unwrap_or_else(|_| Err("the request failed".into())))
    });
    let (mut runs, mut alerts) = (runs?, alerts?);
    // What is going on first, then the most recent: those are kept when a host has many.
    runs.sort_by_key(|r| (!matches!(r.status, Status::Running | Status::Paused), std::cmp::Reverse(r.updated_ms)));
    alerts.sort_by_key(|a| (a.state != AlertState::Firing, std::cmp::Reverse(a.since_ms)));
    let host = host.to_string();
    let runs = runs.into_iter().take(ROWS_PER_HOST).map(|run| Row {
        host: host.clone(),
        kind: "run",
        name: crate::text::line(run.path.as_str(), 200),
        state: run.status.to_string(),
        detail: format!("{:.0}%", run.progress.clamp(0.0, 1.0) * 100.0),
    });
    let alerts = alerts.into_iter().take(ROWS_PER_HOST).map(|alert| Row {
        host: host.clone(),
        kind: "alert",
        name: crate::text::line(&alert.rule, 200),
        state: alert.state.to_string(),
        detail: crate::text::line(&format!("{}: {}", alert.level, alert.message), 300),
    });
    Ok(runs.chain(alerts).collect())
}

/// `GET base + path` with the token, read as JSON of at most [`ANSWER_BYTES`].
fn fetch<T: serde::de::DeserializeOwned>(
    agent: &ureq::Agent,
    base: &str,
    token: &str,
    path: &str,
) -> Result<T, String> {
    let answer = agent.get(format!("{base}{path}")).header("Authorization", format!("Bearer {token}")).call();
    let answer = answer.map_err(|e| match refused_certificate(&e) {
        true => format!(
            "{base}: {e}; if the host made its own certificate, run 'monitor list --hosts' once as this host's user to pin it"
        ),
        false => format!("{base}: {e}"),
    })?;
    let status = answer.status();
    if !status.is_success() {
        return Err(format!("{base}{path} answered {status}"));
    }
    answer.into_body().with_config().limit(ANSWER_BYTES).read_json().map_err(|e| format!("{base}{path}: {e}"))
}

/// Whether `e` is a TLS handshake that refused the host's certificate.
pub fn refused_certificate(e: &ureq::Error) -> bool {
    let rustls = match e {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(e) => e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    matches!(rustls, Some(rustls::Error::InvalidCertificate(_)))
}

/// An agent that gives up after [`HOST_TIMEOUT`] and, over https, trusts the
/// host's pin, else the Mozilla roots.
fn host_agent(base: &str) -> ureq::Agent {
    let pin = base.strip_prefix("https://").and_then(|addr| crate::tls::pinned(&crate::tls::known_hosts(), addr));
    let tls = pin.map_or_else(ureq::tls::TlsConfig::default, |pin| trusting(std::slice::from_ref(&pin.cert)));
    agent(&tls, Some(HOST_TIMEOUT))
}

/// An agent that gives up on a request after `timeout` (none: never) and
/// trusts what `tls` says.
pub fn agent(tls: &ureq::tls::TlsConfig, timeout: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(timeout)
        .tls_config(tls.clone())
        .build()
        .into()
}

/// Trusting these certificates, and only them.
pub fn trusting(certs: &[rustls::pki_types::CertificateDer<'_>]) -> ureq::tls::TlsConfig {
    let certs: Vec<_> = certs.iter().map(|c| ureq::tls::Certificate::from_der(c).to_owned()).collect();
    ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&certs)).build()
}

/// `http://host:port`, `https://host:port`, `host:port` (http) → the base URL.
pub fn parse_url(text: &str) -> Result<String, String> {
    let shown = crate::text::line(text, 100);
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
        Some(_) => return Err(format!("'{shown}': use http:// or https://")),
        None => ("http", text),
    };
    let addr = rest.trim_end_matches('/');
    if addr.is_empty() || addr.contains('/') || !addr.contains(':') {
        return Err(format!("'{shown}' is not a host's address; write one like http://gpu-box-1:8750"));
    }
    Ok(format!("{scheme}://{addr}"))
}

fn expand(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn read_token(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_string()),
        Ok(_) => Err(format!("token file {} is empty", path.display())),
        Err(e) => Err(format!("cannot read token file {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_host_and_port() {
        assert_eq!(parse_url("http://gpu-box:8750/").unwrap(), "http://gpu-box:8750");
        assert_eq!(parse_url("https://gpu-box:8750").unwrap(), "https://gpu-box:8750");
        assert_eq!(parse_url("127.0.0.1:9").unwrap(), "http://127.0.0.1:9");
        assert!(parse_url("ftp://x:1").unwrap_err().contains("use http:// or https://"));
        assert!(parse_url("http://x").unwrap_err().contains("like http://gpu-box-1:8750"));
        assert!(parse_url("http://x:1/v1").is_err());
    }

    #[test]
    fn each_line_is_a_host_or_says_what_is_wrong_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("t");
        std::fs::write(&token, "secret\n").unwrap();
        let path = dir.path().join("hosts");
        let text = format!(
            "# fleet\n\na http://127.0.0.1:1 {t}  # trailing\nb 127.0.0.1:2\nc ftp://x:1 {t}\nd http://127.0.0.1:3 /nope\ne ftp:/x {t}\n",
            t = token.display()
        );
        let entries = parse(&path, &text);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "line 4", "c", "d", "e"]);
        assert_eq!(entries[0].host.as_ref().map(|(base, _)| base.as_str()), Ok("http://127.0.0.1:1"));
        let error = |i: usize| entries[i].host.as_ref().err().cloned().unwrap();
        assert!(error(1).contains("line 4: write NAME URL TOKEN-FILE"), "{}", error(1));
        assert!(error(2).contains("line 5: 'ftp://x:1': use http:// or https://"), "{}", error(2));
        assert!(error(3).contains("line 6: cannot read token file /nope"), "{}", error(3));
        assert!(error(4).contains("line 7") && error(4).contains("not a host's address"), "{}", error(4));
    }
}
