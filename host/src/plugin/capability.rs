//! Capabilities: the named powers a plugin asks for and a person grants.
//!
//! A plugin asks for a capability by kind (`kv`, `fs-read`, `fs-write`,
//! `http`), with a reason. A grant names the kind and, for file-system kinds,
//! the directory: `fs-read:/var/lib/textfiles`; for `http`, where requests may
//! go: a scheme and host, maybe a port and a path prefix
//! (`http:https://hooks.example.com/services`). Everything not granted is denied.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The kinds of power a plugin can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// The plugin's private key-value store.
    Kv,
    /// Read-only access to a granted directory.
    FsRead,
    /// Read-write access to a granted directory.
    FsWrite,
    /// Outbound HTTP requests (`wasi:http/outgoing-handler`) to a granted origin.
    Http,
}

impl Capability {
    pub const ALL: [Capability; 4] = [Capability::Kv, Capability::FsRead, Capability::FsWrite, Capability::Http];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Kv => "kv",
            Capability::FsRead => "fs-read",
            Capability::FsWrite => "fs-write",
            Capability::Http => "http",
        }
    }

    pub fn parse(name: &str) -> Result<Capability, CapabilityError> {
        Capability::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| CapabilityError::UnknownKind(name.to_string()))
    }

    fn takes_path(self) -> bool {
        matches!(self, Capability::FsRead | Capability::FsWrite)
    }

    /// What a grant of this kind names after the colon, for a command to fill in.
    fn placeholder(self) -> Option<&'static str> {
        match self {
            Capability::Kv => None,
            Capability::FsRead | Capability::FsWrite => Some("DIR"),
            Capability::Http => Some("https://HOST"),
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One granted capability, as the user wrote it after validation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Grant {
    pub kind: Capability,
    /// The directory, for file-system kinds; absolute and normalised.
    pub path: Option<PathBuf>,
    /// Where requests may go, for `http`.
    pub origin: Option<Origin>,
}

/// An `http` grant's reach: requests with this scheme, to this host and port,
/// whose path is the prefix or below it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub https: bool,
    /// Lower case.
    pub host: String,
    /// As written; the scheme's default when none is.
    pub port: Option<u16>,
    /// Without a trailing `/`; empty for the whole host.
    pub prefix: String,
}

impl Origin {
    fn parse(text: &str) -> Option<Origin> {
        let (https, rest) = match text.split_once("://")? {
            ("https", rest) => (true, rest),
            ("http", rest) => (false, rest),
            _ => return None,
        };
        if rest.contains(['?', '#', '@', '\\']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        // `[::1]:8080`: a colon inside the brackets is the address's, after them the port's.
        let (host, port) = match authority.rsplit_once(':').filter(|(_, port)| !port.contains(']')) {
            Some((host, port)) => (host, Some(port.parse::<u16>().ok().filter(|p| *p > 0)?)),
            None => (authority, None),
        };
        let host_ok = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']').is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
            None => !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)),
        };
        if !host_ok || escapes(path) {
            return None;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let prefix = if path.is_empty() { String::new() } else { format!("/{}", path.trim_end_matches('/')) };
        Some(Origin { https, host: host.to_ascii_lowercase(), port, prefix })
    }

    /// Whether a request with this scheme, host, port and path is within reach.
    /// A path that could climb out of the prefix once a server resolves it
    /// (`..`, or an encoded `/`, `\\` or `.`) never is.
    pub fn allows(&self, https: bool, host: &str, port: Option<u16>, path: &str) -> bool {
        let default = if self.https { 443 } else { 80 };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (self.prefix.is_empty() || !escapes(path))
            && https == self.https
            && host.eq_ignore_ascii_case(&self.host)
            && port.unwrap_or(default) == self.port.unwrap_or(default)
            && (self.prefix.is_empty()
                || path == self.prefix
                || path.strip_prefix(&self.prefix).is_some_and(|rest| rest.starts_with(['/', '?'])))
    }
}

/// Whether `path` (before its query) has a `.` or `..` segment, or a `\\`, once
/// `%2e`, `%2f` and `%5c` are decoded.
fn escapes(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default().to_ascii_lowercase();
    let decoded = path.replace("%2e", ".").replace("%2f", "/").replace("%5c", "\\");
    decoded.contains('\\') || decoded.split('/').any(|part| part == "." || part == "..")
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]", self.host)?;
        } else {
            write!(f, "{scheme}://{}", self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(&self.prefix)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error("unknown capability '{0}'; known capabilities are kv, fs-read:DIR, fs-write:DIR and http:https://HOST")]
    UnknownKind(String),
    #[error(
        "capability 'http' needs where requests may go: a scheme and host, maybe a port and a path prefix, e.g. 'http:https://hooks.example.com/services'"
    )]
    MissingOrigin,
    #[error(
        "'{0}' is not a place requests may go; write http: then http:// or https://, a host, maybe :PORT and a /path prefix, e.g. 'http:https://hooks.example.com/services'"
    )]
    BadOrigin(String),
    #[error("capability '{0}' needs a directory, e.g. '{0}:/var/lib/monitor'")]
    MissingPath(String),
    #[error("capability 'kv' takes no directory; write 'kv'")]
    UnexpectedPath,
    #[error("the directory in capability '{0}' must be absolute and plain (no '..'), e.g. 'fs-read:/srv/data'")]
    BadPath(String),
    #[error("capability '{grant}' would give the whole file system; grant the directory the plugin needs")]
    Root { grant: String },
    #[error(
        "capability '{grant}' (resolved: {}) would reach the host's {what} {}; grant a directory that neither holds nor lies inside it",
        resolved.display(), dir.display()
    )]
    HostDirectory { grant: String, resolved: PathBuf, what: &'static str, dir: PathBuf },
    #[error("capability '{grant}': {} is not a directory (does it exist?); create it, or grant the directory the plugin should use", resolved.display())]
    NotADirectory { grant: String, resolved: PathBuf },
}

impl Grant {
    pub fn parse(text: &str) -> Result<Grant, CapabilityError> {
        let (kind, path) = match text.split_once(':') {
            Some((kind, path)) => (Capability::parse(kind)?, Some(path)),
            None => (Capability::parse(text)?, None),
        };
        if kind == Capability::Http {
            let origin = match path {
                None | Some("") => return Err(CapabilityError::MissingOrigin),
                Some(url) => Origin::parse(url).ok_or_else(|| CapabilityError::BadOrigin(text.into()))?,
            };
            return Ok(Grant { kind, path: None, origin: Some(origin) });
        }
        let path = match (kind.takes_path(), path) {
            (true, None) | (true, Some("")) => {
                return Err(CapabilityError::MissingPath(kind.to_string()));
            }
            (false, Some(_)) => return Err(CapabilityError::UnexpectedPath),
            (false, None) => None,
            (true, Some(path)) => Some(normalise(path).ok_or_else(|| CapabilityError::BadPath(text.into()))?),
        };
        Ok(Grant { kind, path, origin: None })
    }
}

/// The host's own directories, which no grant may reach: a plugin that could
/// write there could replace plugins, read the API token or plant compiled
/// code; and the kernel's views of processes and devices (`/proc`, `/sys`,
/// `/dev`), through which it could read or write the host itself. The
/// directory of the `monitor` binary may not be written either.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostDirs(Vec<(&'static str, PathBuf, Reach)>);

/// Which grants a host directory refuses.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reach {
    Any,
    Write,
}

impl HostDirs {
    pub fn new(data: &Path, plugins: &Path) -> HostDirs {
        let mut dirs = vec![
            ("data directory", resolve(data), Reach::Any),
            ("plugin directory", resolve(plugins), Reach::Any),
            ("process table", PathBuf::from("/proc"), Reach::Any),
            ("kernel's objects", PathBuf::from("/sys"), Reach::Any),
            ("devices", PathBuf::from("/dev"), Reach::Any),
        ];
        if let Some(bin) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(resolve)) {
            dirs.push(("program directory", bin, Reach::Write));
        }
        HostDirs(dirs)
    }

    /// The grant's directory as it resolves now (symbolic links followed), or
    /// why it may not be given: it is not a directory, it is `/`, or it holds
    /// or lies inside one of the host's directories.
    pub fn check(&self, grant: &Grant) -> Result<Option<PathBuf>, CapabilityError> {
        let Some(path) = &grant.path else {
            return Ok(None);
        };
        let resolved = resolve(path);
        if resolved == Path::new("/") {
            return Err(CapabilityError::Root { grant: grant.to_string() });
        }
        for (what, dir, reach) in &self.0 {
            if *reach == Reach::Write && grant.kind != Capability::FsWrite {
                continue;
            }
            if dir.starts_with(&resolved) || resolved.starts_with(dir) {
                let (grant, dir) = (grant.to_string(), dir.clone());
                return Err(CapabilityError::HostDirectory { grant, resolved, what, dir });
            }
        }
        if !resolved.is_dir() {
            return Err(CapabilityError::NotADirectory { grant: grant.to_string(), resolved });
        }
        Ok(Some(resolved))
    }
}

/// `path`, absolute, with symbolic links followed as far as it exists (a
/// directory not made yet resolves through its nearest existing parent).
pub fn resolve(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return path,
        }
    }
}

/// An absolute path without `.` or `..` parts and without a trailing slash.
fn normalise(path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for part in path.components().skip(1) {
        match part {
            std::path::Component::Normal(p) => out.push(p),
            std::path::Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, &self.origin) {
            (Some(path), _) => write!(f, "{}:{}", self.kind, path.display()),
            (None, Some(origin)) => write!(f, "{}:{origin}", self.kind),
            (None, None) => write!(f, "{}", self.kind),
        }
    }
}

impl TryFrom<String> for Grant {
    type Error = CapabilityError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Grant::parse(&s)
    }
}

impl From<Grant> for String {
    fn from(g: Grant) -> String {
        g.to_string()
    }
}

/// A capability a plugin asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityRequest {
    pub kind: Capability,
    pub reason: String,
}

/// The kinds asked for that no grant covers, in request order.
pub fn missing(requests: &[CapabilityRequest], grants: &[Grant]) -> Vec<Capability> {
    let mut out: Vec<Capability> = Vec::new();
    for r in requests {
        if !grants.iter().any(|g| g.kind == r.kind) && !out.contains(&r.kind) {
            out.push(r.kind);
        }
    }
    out
}

/// The command that grants `missing` to plugin `name`: `kv` as it is, a
/// directory kind with `DIR` for the directory to give, `http` with the host.
pub fn grant_command(name: &str, missing: &[Capability]) -> String {
    let grants: Vec<String> = missing
        .iter()
        .map(|k| match k.placeholder() {
            Some(what) => format!("--grant {k}:{what}"),
            None => format!("--grant {k}"),
        })
        .collect();
    format!("monitor plugins enable {name} {}", grants.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_grants() {
        for text in ["kv", "fs-read:/var/lib/x", "fs-write:/tmp"] {
            assert_eq!(Grant::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Grant::parse("fs-read:/a/./b/").unwrap().to_string(), "fs-read:/a/b");
    }

    #[test]
    fn rejects_bad_grants_with_the_fix() {
        let cases = [
            ("net", "unknown capability 'net'"),
            ("fs-read", "needs a directory"),
            ("fs-read:", "needs a directory"),
            ("kv:/x", "takes no directory"),
            ("fs-read:relative/dir", "must be absolute"),
            ("fs-write:/a/../etc", "must be absolute and plain"),
        ];
        for (text, expected) in cases {
            let err = Grant::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn http_grants_name_a_scheme_and_host_and_reach_only_below_their_prefix() {
        let grant = Grant::parse("http:https://Hooks.Example.com/services/").unwrap();
        assert_eq!(grant.to_string(), "http:https://hooks.example.com/services");
        let origin = grant.origin.unwrap();
        assert!(origin.allows(true, "hooks.example.com", None, "/services"));
        assert!(origin.allows(true, "HOOKS.example.com", Some(443), "/services/T1/B2?x=1"));
        assert!(!origin.allows(false, "hooks.example.com", None, "/services"), "the scheme is part of the grant");
        assert!(!origin.allows(true, "hooks.example.com", Some(8443), "/services"));
        assert!(!origin.allows(true, "hooks.example.com.evil", None, "/services"));
        assert!(!origin.allows(true, "hooks.example.com", None, "/servicesX"));
        assert!(!origin.allows(true, "hooks.example.com", None, "/"));
        for climbing in
            ["/services/../admin", "/services/%2e%2E/admin", "/services/x%2F..%2Fadmin", "/services/.\\admin"]
        {
            assert!(!origin.allows(true, "hooks.example.com", None, climbing), "{climbing}");
        }
        let v6 = Grant::parse("http:http://[::1]").unwrap();
        assert_eq!(v6.to_string(), "http:http://[::1]");
        assert!(v6.origin.unwrap().allows(false, "[::1]", Some(80), "/x"));
        assert!(Grant::parse("http:http://[::1]:8080/x").is_ok());
        assert!(Grant::parse("http:http://a:b").is_err());
        let whole = Grant::parse("http:http://127.0.0.1:8080").unwrap().origin.unwrap();
        assert!(whole.allows(false, "127.0.0.1", Some(8080), "/anything"));
        assert!(!whole.allows(false, "127.0.0.1", None, "/"), "port 80 is not 8080");
        for bad in [
            "http",
            "http:",
            "http:hooks.example.com",
            "http:ftp://x",
            "http:https://",
            "http:https://u@x",
            "http:https://x:0",
            "http:https://x:99999",
            "http:https://x/a/../b",
            "http:https://x/?q",
            "http:https://x y",
        ] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
        assert!(Grant::parse("http").unwrap_err().to_string().contains("needs where requests may go"));
        assert_eq!(grant_command("hook", &[Capability::Http]), "monitor plugins enable hook --grant http:https://HOST");
    }

    #[test]
    fn missing_lists_each_ungranted_kind_once() {
        let req = |kind| CapabilityRequest { kind, reason: String::new() };
        let requests = [req(Capability::Kv), req(Capability::FsRead), req(Capability::FsRead)];
        let grants = [Grant::parse("fs-write:/tmp").unwrap()];
        assert_eq!(missing(&requests, &grants), [Capability::Kv, Capability::FsRead]);
        let grants = [Grant::parse("kv").unwrap(), Grant::parse("fs-read:/a").unwrap()];
        assert!(missing(&requests, &grants).is_empty());
    }

    #[test]
    fn no_grant_reaches_the_host_s_own_directories() {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().canonicalize().unwrap();
        let (data, plugins, srv) = (base.join("home/.local/state/monitor"), base.join("plugins"), base.join("srv"));
        for dir in [&data, &plugins, &srv] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::os::unix::fs::symlink(&data, base.join("sneaky")).unwrap();
        let dirs = HostDirs::new(&data, &plugins);
        let check = |text: String| dirs.check(&Grant::parse(&text).unwrap()).map_err(|e| e.to_string());

        assert_eq!(check(format!("fs-read:{}", srv.display())).unwrap(), Some(srv.clone()));
        assert_eq!(check("kv".into()).unwrap(), None);
        assert!(check("fs-write:/".into()).unwrap_err().contains("the whole file system"));
        assert!(check("fs-read:/proc/self".into()).unwrap_err().contains("process table"));
        assert!(check("fs-write:/dev".into()).unwrap_err().contains("devices"));
        let bin = std::env::current_exe().unwrap().parent().unwrap().canonicalize().unwrap();
        assert!(check(format!("fs-write:{}", bin.display())).unwrap_err().contains("program directory"));
        assert!(check(format!("fs-read:{}", bin.display())).is_ok(), "reading it is fine");
        // Not made yet: resolved through the nearest parent that exists, and refused either way.
        let later = base.join("sneaky/later");
        let err = check(format!("fs-write:{}", later.display())).unwrap_err();
        assert!(err.contains(&format!("(resolved: {})", data.join("later").display())), "{err}");
        let err = check(format!("fs-read:{}", srv.join("nope").display())).unwrap_err();
        assert!(err.contains("is not a directory (does it exist?)"), "{err}");
        for reach in [base.join("home"), data.clone(), data.join("cache"), plugins.clone(), base.clone()] {
            let err = check(format!("fs-write:{}", reach.display())).unwrap_err();
            assert!(err.contains("would reach the host's"), "{reach:?}: {err}");
        }
        let err = check(format!("fs-read:{}", base.join("sneaky").display())).unwrap_err();
        assert!(err.contains(&format!("(resolved: {})", data.display())), "{err}");
        assert!(err.contains("data directory"), "{err}");
    }

    proptest::proptest! {
        /// Whatever is granted prints as text that parses back to the same grant.
        #[test]
        fn grants_round_trip(kind in 0..4usize, parts in proptest::collection::vec("[a-zA-Z0-9_.-]{1,8}", 1..5)) {
            let kind = Capability::ALL[kind];
            let text = match kind {
                Capability::Kv => "kv".to_string(),
                Capability::Http => format!("http:https://{}", parts.join("/")),
                _ => format!("{kind}:/{}", parts.join("/")),
            };
            if let Ok(grant) = Grant::parse(&text) {
                proptest::prop_assert_eq!(Grant::parse(&grant.to_string()), Ok(grant.clone()));
                if let Some(path) = &grant.path {
                    proptest::prop_assert!(path.is_absolute());
                    proptest::prop_assert!(!path.components().any(|c| c == std::path::Component::ParentDir));
                }
            }
        }

        /// Arbitrary text either parses or gives a message; it never panics.
        #[test]
        fn any_text_parses_or_is_refused(text in ".{0,40}") {
            let _ = Grant::parse(&text);
        }
    }
}
