//! Who may do what through the API: scoped tokens, and the record of changes.
//!
//! Every token has one scope, each including the ones before it:
//!
//! | scope | may |
//! |---|---|
//! | `read` | read everything: dashboards, Prometheus scrapes, `status`, the stream, the audit log |
//! | `report` | also post progress (pipelines, `monitor exec`) |
//! | `operate` | also acknowledge, resolve and silence alerts, test handlers, pause and run watch jobs, save dashboard layouts |
//! | `admin` | also enable, disable and grant plugins, compact the database, manage tokens |
//!
//! The token in `api-token` is the local admin. Other tokens are made by
//! `monitor tokens create`; only a hash of their secret is stored, so the
//! database never holds one in clear.

use serde::{Deserialize, Serialize};

/// What a token may do; each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Report,
    Operate,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Report, Scope::Operate, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Report => "report",
            Scope::Operate => "operate",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .ok_or_else(|| format!("scope '{}': use read, report, operate or admin", crate::text::line(text, 40)))
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The scope a request needs. Reading needs `read`; a change needs the scope
/// named for it, and one not named here needs `admin`, so a route added
/// later is closed until it is placed.
pub fn required(method: &str, path: &str) -> Scope {
    if matches!(method, "GET" | "HEAD") {
        return if path == "/v1/tokens" { Scope::Admin } else { Scope::Read };
    }
    let operate = [
        "/v1/alerts/ack",
        "/v1/alerts/resolve",
        "/v1/alerts/silences",
        "/v1/alerts/test",
        "/v1/jobs/",
        "/v1/dashboard/layouts/",
    ];
    if method == "POST" && (path == "/v1/progress" || path.starts_with("/v1/progress/")) {
        Scope::Report
    } else if operate.iter().any(|p| path == *p || (p.ends_with('/') && path.starts_with(p)))
        || path.starts_with("/v1/alerts/silences/")
    {
        Scope::Operate
    } else {
        Scope::Admin
    }
}

/// Whether a request is recorded in the audit log: every change but progress
/// reports, which have their own history.
pub fn audited(method: &str, path: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS") && required(method, path) != Scope::Report
}

/// The name the token in `api-token` goes by.
pub const LOCAL_ADMIN: &str = "api-token";
/// Who the audit log says made a change the CLI made on the database itself.
pub const LOCAL: &str = "local";

/// A token, as listed (its secret is never stored, its hash never shown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub name: String,
    pub scope: Scope,
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
}

/// Why a token that is known is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Revoked { name: String, at_ms: u64 },
    Expired { name: String, at_ms: u64 },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, what, at_ms) = match self {
            Refused::Revoked { name, at_ms } => (name, "was revoked", at_ms),
            Refused::Expired { name, at_ms } => (name, "expired", at_ms),
        };
        write!(f, "token '{name}' {what} at {}; ask an admin for a new one (monitor tokens create)", rfc3339(*at_ms))
    }
}

impl Token {
    /// The token's state at `now_ms`: usable, or why not.
    pub fn check(&self, now_ms: u64) -> Result<Scope, Refused> {
        if let Some(at_ms) = self.revoked_ms {
            return Err(Refused::Revoked { name: self.name.clone(), at_ms });
        }
        match self.expires_ms {
            Some(at_ms) if at_ms <= now_ms => Err(Refused::Expired { name: self.name.clone(), at_ms }),
            _ => Ok(self.scope),
        }
    }

    /// `active`, `expired` or `revoked` at `now_ms`.
    pub fn state(&self, now_ms: u64) -> &'static str {
        match self.check(now_ms) {
            Ok(_) => "active",
            Err(Refused::Expired { .. }) => "expired",
            Err(Refused::Revoked { .. }) => "revoked",
        }
    }
}

/// Names: 1 to 64 letters, digits, `-`, `_` or `.`; `api-token` is the local admin's.
pub fn check_name(name: &str) -> Result<(), String> {
    let shown = crate::text::line(name, 80);
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(format!("token name '{shown}': use 1 to 64 letters, digits, '-', '_' or '.'"));
    }
    if name == LOCAL_ADMIN {
        return Err(format!("token name '{LOCAL_ADMIN}' is the local admin's (the api-token file); pick another"));
    }
    if name == LOCAL {
        return Err(format!("token name '{LOCAL}' names the CLI's own changes in the audit log; pick another"));
    }
    Ok(())
}

/// The hash a token's secret is stored and found by. The secret is 256
/// random bits, so one fast hash is as strong as a slow one would be.
pub fn hash(secret: &str) -> String {
    blake3::hash(format!("monitor api token\0{secret}").as_bytes()).to_hex().to_string()
}

/// A new secret: `mt_` and 256 random bits in hex (the prefix lets secret
/// scanners and people tell it for what it is).
pub fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a token: {e}"))?;
    Ok(format!("mt_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// One change made through the API (or, with no host running, by the CLI on
/// the database).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: u64,
    /// The token's name; `local` for the CLI working on the database itself.
    pub token: String,
    /// The client's address; `local` for the CLI.
    pub address: String,
    pub method: String,
    pub path: String,
    /// The start of the request's body, on one line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The HTTP status it was answered with.
    pub status: u16,
    /// `ok`, or the error it was answered with.
    pub outcome: String,
}

/// How much of a request's body an audit entry keeps, and of its error.
pub const DETAIL_CHARS: usize = 300;

/// `2026-12-06T14:02:52Z`.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_needs_its_scope_and_an_unplaced_change_needs_admin() {
        let cases = [
            ("GET", "/metrics", Scope::Read),
            ("GET", "/v1/audit", Scope::Read),
            ("GET", "/v1/plugins/x/kv", Scope::Read),
            ("GET", "/v1/tokens", Scope::Admin),
            ("POST", "/v1/progress", Scope::Report),
            ("POST", "/v1/progress/run/a", Scope::Report),
            ("POST", "/v1/alerts/ack", Scope::Operate),
            ("POST", "/v1/alerts/silences", Scope::Operate),
            ("DELETE", "/v1/alerts/silences/3", Scope::Operate),
            ("POST", "/v1/jobs/build/pause", Scope::Operate),
            ("PUT", "/v1/dashboard/layouts/ops", Scope::Operate),
            ("POST", "/v1/plugins/x/enable", Scope::Admin),
            ("POST", "/v1/db/compact", Scope::Admin),
            ("POST", "/v1/tokens", Scope::Admin),
            ("POST", "/v1/progressive", Scope::Admin),
            ("POST", "/v1/alerts/acknowledge", Scope::Admin),
            ("PATCH", "/v1/anything", Scope::Admin),
        ];
        for (method, path, scope) in cases {
            assert_eq!(required(method, path), scope, "{method} {path}");
        }
        assert!(!audited("POST", "/v1/progress/run"), "progress has its own history");
        assert!(!audited("GET", "/v1/tokens"));
        assert!(audited("POST", "/v1/alerts/ack") && audited("DELETE", "/v1/alerts/silences/1"));
    }

    #[test]
    fn a_token_is_refused_once_revoked_or_expired_saying_which() {
        let token =
            Token { name: "ci".into(), scope: Scope::Report, created_ms: 0, expires_ms: Some(1_000), revoked_ms: None };
        assert_eq!(token.check(999), Ok(Scope::Report));
        let expired = token.check(1_000).unwrap_err();
        assert!(expired.to_string().starts_with("token 'ci' expired at 1970-01-01T00:00:01Z"), "{expired}");
        let revoked = Token { revoked_ms: Some(500), ..token }.check(0).unwrap_err();
        assert!(revoked.to_string().contains("'ci' was revoked"), "{revoked}");
    }

    #[test]
    fn names_scopes_and_secrets() {
        for bad in ["", "a b", "api-token", "local", &"x".repeat(65), "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("ci-runner.1").unwrap();
        assert_eq!(Scope::parse("operate"), Ok(Scope::Operate));
        assert!(Scope::parse("root").unwrap_err().contains("use read, report, operate or admin"));
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert!(a.starts_with("mt_") && a.len() == 67 && a != b);
        assert_ne!(hash(&a), hash(&b));
    }
}
