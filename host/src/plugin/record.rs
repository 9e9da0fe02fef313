//! What the host remembers about each plugin, and the rules that decide whether
//! it runs. Both the daemon and the offline CLI apply changes through these
//! methods, so a command behaves the same with or without a daemon.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::capability::{self, Capability, CapabilityRequest, Grant};
use super::stats::StatsSnapshot;

/// The roles a plugin can play; each is an interface the component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    MetricProvider,
    ProgressCalculator,
    AlertHandler,
    DisplayFormatter,
}

impl Role {
    pub const ALL: [Role; 4] =
        [Role::MetricProvider, Role::ProgressCalculator, Role::AlertHandler, Role::DisplayFormatter];

    /// The world name in the WIT contract.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::MetricProvider => "metric-provider",
            Role::ProgressCalculator => "progress-calculator",
            Role::AlertHandler => "alert-handler",
            Role::DisplayFormatter => "display-formatter",
        }
    }

    /// The interfaces a component may export to play this role (an alert
    /// handler built before `alert-events` existed exports `alerts`).
    pub fn interfaces(self) -> &'static [&'static str] {
        match self {
            Role::MetricProvider => &["metrics"],
            Role::ProgressCalculator => &["progress"],
            Role::AlertHandler => &["alert-events", "alerts"],
            Role::DisplayFormatter => &["formatter"],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a plugin stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum PluginState {
    Running,
    Disabled,
    Quarantined {
        reason: String,
    },
    AwaitingGrant {
        missing: Vec<Capability>,
    },
    /// Loaded from a file other than the one its grants were given to: a new
    /// file that claims the name runs as it only once a person says so.
    AwaitingConfirmation {
        granted_file: PathBuf,
    },
    /// Loaded but refused: bad configuration, a granted directory that is gone, ...
    Failed {
        error: String,
    },
    /// Known from an earlier run; its file is gone or no daemon is running.
    Absent,
}

impl fmt::Display for PluginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginState::Running => f.write_str("running"),
            PluginState::Disabled => f.write_str("disabled"),
            PluginState::Quarantined { reason } => write!(f, "quarantined: {reason}"),
            PluginState::AwaitingGrant { missing } => {
                let kinds: Vec<&str> = missing.iter().map(|k| k.as_str()).collect();
                write!(f, "awaiting grant: {}", kinds.join(", "))
            }
            PluginState::AwaitingConfirmation { granted_file } => write!(
                f,
                "awaiting confirmation: its grants were given to {}, not to this file",
                granted_file.display()
            ),
            PluginState::Failed { error } => write!(f, "failed: {error}"),
            PluginState::Absent => f.write_str("absent"),
        }
    }
}

impl PluginState {
    /// One word, for tables.
    pub fn word(&self) -> &'static str {
        match self {
            PluginState::Running => "running",
            PluginState::Disabled => "disabled",
            PluginState::Quarantined { .. } => "quarantined",
            PluginState::AwaitingGrant { .. } => "awaiting-grant",
            PluginState::AwaitingConfirmation { .. } => "awaiting-confirmation",
            PluginState::Failed { .. } => "failed",
            PluginState::Absent => "absent",
        }
    }
}

/// What a plugin says about itself, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub roles: Vec<Role>,
    pub requests: Vec<CapabilityRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRecord {
    pub name: String,
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// BLAKE3 of the `.wasm` last seen.
    #[serde(default)]
    pub hash: Option<String>,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub requests: Vec<CapabilityRequest>,
    /// The user's choice; a new plugin starts enabled.
    pub enabled: bool,
    #[serde(default)]
    pub quarantine: Option<String>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The content hash the grants were given to.
    #[serde(default)]
    pub grants_hash: Option<String>,
    /// The file the grants were given to.
    #[serde(default)]
    pub grants_file: Option<PathBuf>,
    pub state: PluginState,
    #[serde(default)]
    pub stats: StatsSnapshot,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("plugin '{name}' has no grant '{grant}'; its grants are: {held}")]
    NoSuchGrant { name: String, grant: String, held: String },
}

impl crate::error::Classified for ChangeError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Usage
    }
}

impl PluginRecord {
    pub fn new(name: &str) -> PluginRecord {
        PluginRecord {
            name: name.to_string(),
            file: None,
            hash: None,
            version: String::new(),
            summary: String::new(),
            roles: Vec::new(),
            requests: Vec::new(),
            enabled: true,
            quarantine: None,
            grants: Vec::new(),
            grants_hash: None,
            grants_file: None,
            state: PluginState::Absent,
            stats: StatsSnapshot::default(),
        }
    }

    /// Records a loaded file. Grants carry over to new content of the same file
    /// only when they already cover everything it asks for: an upgrade that
    /// asks for more waits. Another file that claims the name gets nothing of
    /// them until confirmed ([`PluginRecord::enable`]).
    pub fn observe(&mut self, file: PathBuf, hash: &str, desc: &Description) {
        if self.grants_file.is_none() && self.grants_hash.is_some() {
            // Granted before grants named their file: the file then seen.
            self.grants_file.clone_from(&self.file);
        }
        self.file = Some(file);
        self.hash = Some(hash.to_string());
        self.version.clone_from(&desc.version);
        self.summary.clone_from(&desc.summary);
        self.roles.clone_from(&desc.roles);
        self.requests.clone_from(&desc.requests);
        if self.grants_hash.as_deref() != Some(hash)
            && !self.grants.is_empty()
            && self.grants_file == self.file
            && capability::missing(&self.requests, &self.grants).is_empty()
        {
            self.grants_hash = Some(hash.to_string());
        }
    }

    /// The grants that apply to the file and content last seen, of the kinds it
    /// asks for: all that reaches its sandbox.
    pub fn bound_grants(&self) -> Vec<Grant> {
        if self.grants_hash.is_none() || self.grants_hash != self.hash || self.grants_file != self.file {
            return Vec::new();
        }
        self.grants.iter().filter(|g| self.requests.iter().any(|r| r.kind == g.kind)).cloned().collect()
    }

    /// What the plugin should be doing now, from the user's choices and its grants.
    pub fn desired_state(&self) -> PluginState {
        if !self.enabled {
            return PluginState::Disabled;
        }
        if let Some(reason) = &self.quarantine {
            return PluginState::Quarantined { reason: reason.clone() };
        }
        if let Some(granted_file) = &self.grants_file
            && !self.grants.is_empty()
            && self.file.as_ref() != Some(granted_file)
        {
            return PluginState::AwaitingConfirmation { granted_file: granted_file.clone() };
        }
        let missing = capability::missing(&self.requests, &self.bound_grants());
        if missing.is_empty() { PluginState::Running } else { PluginState::AwaitingGrant { missing } }
    }

    /// Enables the plugin, clears a quarantine and adds grants, all bound to the
    /// content last seen.
    pub fn enable(&mut self, grants: &[Grant]) {
        self.enabled = true;
        self.quarantine = None;
        self.stats.consecutive_faults = 0;
        // Grants given to other content, or to another file, are confirmed by this enable.
        self.grants_hash.clone_from(&self.hash);
        self.grants_file.clone_from(&self.file);
        for grant in grants {
            if !self.grants.contains(grant) {
                self.grants.push(grant.clone());
            }
        }
        self.grants.sort();
    }

    pub fn disable(&mut self) {
        self.enabled = false;
    }

    /// Removes a grant: `kv`, an exact `fs-read:/dir`, or every grant of a kind
    /// when no directory is given (`fs-read`).
    pub fn revoke(&mut self, text: &str) -> Result<Vec<Grant>, ChangeError> {
        let matches = |g: &Grant| g.to_string() == text || g.kind.as_str() == text;
        let removed: Vec<Grant> = self.grants.iter().filter(|g| matches(g)).cloned().collect();
        if removed.is_empty() {
            let held: Vec<String> = self.grants.iter().map(Grant::to_string).collect();
            return Err(ChangeError::NoSuchGrant {
                name: self.name.clone(),
                grant: text.to_string(),
                held: if held.is_empty() { "none".into() } else { held.join(", ") },
            });
        }
        self.grants.retain(|g| !matches(g));
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(kinds: &[Capability]) -> Description {
        Description {
            name: "p".into(),
            version: "1.0.0".into(),
            summary: String::new(),
            roles: vec![Role::MetricProvider],
            requests: kinds.iter().map(|&kind| CapabilityRequest { kind, reason: "r".into() }).collect(),
        }
    }

    fn grant(s: &str) -> Grant {
        Grant::parse(s).unwrap()
    }

    #[test]
    fn a_plugin_asking_nothing_runs_at_once() {
        let mut r = PluginRecord::new("p");
        r.observe("/p.wasm".into(), "h1", &desc(&[]));
        assert_eq!(r.desired_state(), PluginState::Running);
    }

    #[test]
    fn grants_are_bound_to_content_and_an_upgrade_asking_more_waits() {
        let mut r = PluginRecord::new("p");
        r.observe("/p.wasm".into(), "h1", &desc(&[Capability::FsRead]));
        assert_eq!(r.desired_state(), PluginState::AwaitingGrant { missing: vec![Capability::FsRead] });
        r.enable(&[grant("fs-read:/srv")]);
        assert_eq!(r.desired_state(), PluginState::Running);

        // Same capabilities, new content: grants carry over.
        r.observe("/p.wasm".into(), "h2", &desc(&[Capability::FsRead]));
        assert_eq!(r.desired_state(), PluginState::Running);
        assert_eq!(r.grants_hash.as_deref(), Some("h2"));

        // New content that asks for more: nothing applies until granted.
        r.observe("/p.wasm".into(), "h3", &desc(&[Capability::FsRead, Capability::Kv]));
        assert_eq!(r.desired_state(), PluginState::AwaitingGrant { missing: vec![Capability::FsRead, Capability::Kv] });
        assert!(r.bound_grants().is_empty());
        r.enable(&[grant("kv")]);
        assert_eq!(r.desired_state(), PluginState::Running);
        assert_eq!(r.bound_grants().len(), 2);
    }

    #[test]
    fn another_file_claiming_a_granted_name_waits_for_confirmation() {
        let mut r = PluginRecord::new("p");
        r.observe("/plugins/p.wasm".into(), "h1", &desc(&[Capability::Kv]));
        r.enable(&[grant("kv"), grant("fs-read:/srv")]);
        assert_eq!(r.bound_grants(), [grant("kv")], "only the kinds it asks for reach it");

        // A thief asks for nothing and is loaded from another file.
        r.observe("/plugins/thief.wasm".into(), "h2", &desc(&[]));
        assert_eq!(r.desired_state(), PluginState::AwaitingConfirmation { granted_file: "/plugins/p.wasm".into() });
        assert!(r.bound_grants().is_empty());
        assert!(r.desired_state().to_string().contains("given to /plugins/p.wasm"));

        // The real file back, as it was: its grants hold again.
        r.observe("/plugins/p.wasm".into(), "h1", &desc(&[Capability::Kv]));
        assert_eq!(r.desired_state(), PluginState::Running);

        // A person confirms a moved file.
        r.observe("/plugins/moved.wasm".into(), "h1", &desc(&[Capability::Kv]));
        assert!(matches!(r.desired_state(), PluginState::AwaitingConfirmation { .. }));
        r.enable(&[]);
        assert_eq!((r.desired_state(), r.bound_grants()), (PluginState::Running, vec![grant("kv")]));
    }

    #[test]
    fn disable_and_quarantine_win_over_grants_and_enable_clears_quarantine() {
        let mut r = PluginRecord::new("p");
        r.observe("/p.wasm".into(), "h1", &desc(&[]));
        r.quarantine = Some("3 faults".into());
        assert!(matches!(r.desired_state(), PluginState::Quarantined { .. }));
        r.disable();
        assert_eq!(r.desired_state(), PluginState::Disabled);
        r.enable(&[]);
        assert_eq!(r.desired_state(), PluginState::Running);
    }

    #[test]
    fn revoke_takes_exact_grants_or_a_whole_kind() {
        let mut r = PluginRecord::new("p");
        r.observe("/p.wasm".into(), "h1", &desc(&[Capability::FsRead, Capability::Kv]));
        r.enable(&[grant("fs-read:/a"), grant("fs-read:/b"), grant("kv")]);
        assert_eq!(r.revoke("fs-read:/a").unwrap(), [grant("fs-read:/a")]);
        assert_eq!(r.desired_state(), PluginState::Running);
        r.revoke("fs-read").unwrap();
        assert_eq!(r.desired_state(), PluginState::AwaitingGrant { missing: vec![Capability::FsRead] });
        let err = r.revoke("fs-write").unwrap_err().to_string();
        assert_eq!(err, "plugin 'p' has no grant 'fs-write'; its grants are: kv");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Observe(u8, u8, Vec<Capability>),
        Enable(Vec<Capability>),
        Disable,
        Quarantine,
        Revoke(Capability),
    }

    fn kind() -> impl proptest::strategy::Strategy<Value = Capability> {
        proptest::sample::select(Capability::ALL.to_vec())
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0..2u8, 0..3u8, proptest::collection::vec(kind(), 0..3)).prop_map(|(f, h, k)| Op::Observe(f, h, k)),
            proptest::collection::vec(kind(), 0..3).prop_map(Op::Enable),
            Just(Op::Disable),
            Just(Op::Quarantine),
            kind().prop_map(Op::Revoke),
        ]
    }

    fn grant_of(kind: Capability) -> Grant {
        match kind {
            Capability::Kv => grant("kv"),
            Capability::FsRead => grant("fs-read:/r"),
            Capability::FsWrite => grant("fs-write:/w"),
            Capability::Http => grant("http:https://hooks.example.com"),
        }
    }

    proptest::proptest! {
        /// After any sequence of user and host actions, a plugin runs exactly when
        /// it is enabled, not quarantined, loaded from the file its grants were
        /// given to (if any), and every capability it asks for is granted for
        /// its current content; it never holds grants bound to other content or
        /// another file, nor grants of kinds it did not ask for.
        #[test]
        fn runs_only_when_enabled_unquarantined_and_fully_granted(ops in proptest::collection::vec(op(), 1..30)) {
            let mut r = PluginRecord::new("p");
            r.observe("/p.wasm".into(), "h0", &desc(&[]));
            for op in ops {
                match op {
                    Op::Observe(f, h, kinds) => r.observe(format!("/p{f}.wasm").into(), &format!("h{h}"), &desc(&kinds)),
                    Op::Enable(kinds) => r.enable(&kinds.into_iter().map(grant_of).collect::<Vec<_>>()),
                    Op::Disable => r.disable(),
                    Op::Quarantine => r.quarantine = Some("faults".into()),
                    Op::Revoke(kind) => { let _ = r.revoke(kind.as_str()); }
                }
                let bound = r.bound_grants();
                let covered = r.requests.iter().all(|q| bound.iter().any(|g| g.kind == q.kind));
                let own_file = r.grants.is_empty() || r.grants_file.is_none() || r.grants_file == r.file;
                let runs = r.desired_state() == PluginState::Running;
                proptest::prop_assert_eq!(runs, r.enabled && r.quarantine.is_none() && covered && own_file);
                if !bound.is_empty() {
                    proptest::prop_assert_eq!(&r.grants_hash, &r.hash);
                    proptest::prop_assert_eq!(&r.grants_file, &r.file);
                }
                proptest::prop_assert!(bound.iter().all(|g| r.requests.iter().any(|q| q.kind == g.kind)));
            }
        }
    }
}
