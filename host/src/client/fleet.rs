//! Many hosts from one terminal: a hosts file, and asking every host in it at
//! once, each within a few seconds, so one that is down is one line, never a hang.
//!
//! The file (`--hosts FILE`, else `$MONITOR_HOSTS`, else
//! `~/.config/monitor/hosts`) has one host per line: a name, the API's URL and
//! a file holding a token (a `read` token is enough to list).
//!
//! ```text
//! # name      url                      token file
//! gpu-box-1   http://10.0.0.11:8750    ~/.config/monitor/gpu-box-1.token
//! build       http://127.0.0.1:8751    /etc/monitor/build.token
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Remote, parse_url};
use crate::error::CommandResult;

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

/// Asks every host at once; per host, in the file's order, its answer or why there is none.
pub fn ask<T: Send>(
    entries: &[Entry],
    question: impl Fn(&Remote) -> CommandResult<T> + Sync,
) -> Vec<(String, Result<T, String>)> {
    std::thread::scope(|scope| {
        let asked: Vec<_> = entries
            .iter()
            .map(|entry| {
                let question = &question;
                // Made here, on the host's own thread: reaching it (and, over
                // https, learning its certificate) waits for no other host.
                scope.spawn(move || match &entry.host {
                    Ok((base, token)) => {
                        question(&Remote::with_timeout(base, token, HOST_TIMEOUT)).map_err(|e| e.to_string())
                    }
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
