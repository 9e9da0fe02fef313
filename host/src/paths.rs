//! Where the host keeps its files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The data directory: `--data-dir`, else `$MONITOR_DATA_DIR` (both handled by
/// the CLI), else `$XDG_STATE_HOME/monitor`, else `~/.local/state/monitor`.
pub fn default_data_dir() -> PathBuf {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(state).join("monitor");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/monitor")
}

/// Where a user's own settings for `monitor` go: `$XDG_CONFIG_HOME/monitor`,
/// else `~/.config/monitor` (the hosts file, pinned certificates).
pub fn config_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("monitor")
}

/// The files inside a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: &Path) -> DataDir {
        DataDir { root: root.to_path_buf() }
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("monitor.redb")
    }

    /// Held locked by the running daemon; holds its PID.
    pub fn lock(&self) -> PathBuf {
        self.root.join("monitor.lock")
    }

    /// Written by the running daemon: its PID and API address.
    pub fn daemon_info(&self) -> PathBuf {
        self.root.join("daemon.json")
    }

    /// The API address of the host's last run, kept after it stops: with port 0
    /// the next run takes that port again when it is free.
    pub fn last_addr(&self) -> PathBuf {
        self.root.join("api-addr")
    }

    /// The API token, readable only by the owner.
    pub fn token(&self) -> PathBuf {
        self.root.join("api-token")
    }

    pub fn compile_cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Creates the directory, private to its owner.
    pub fn create(&self) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.root)
    }

    /// Makes the directory and everything in it private to its owner again where
    /// something opened it to others (a `chmod`, a copy, a restore from a backup):
    /// a line for the log per path changed, and per path it may not change.
    pub fn secure(&self) -> Vec<String> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let me = rustix::process::getuid().as_raw();
        let mut said = Vec::new();
        let mut pending = vec![(self.root.clone(), 0usize)];
        let mut seen = 0usize;
        while let Some((path, depth)) = pending.pop() {
            seen += 1;
            if seen > SECURE_MAX_ENTRIES {
                said.push(format!(
                    "{} holds more than {SECURE_MAX_ENTRIES} entries; the rest were not checked",
                    self.root.display()
                ));
                break;
            }
            // Links are not followed: what they point to is not the host's to change.
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if !(meta.is_dir() || meta.is_file()) {
                continue;
            }
            let open = meta.mode() & 0o077;
            if open != 0 {
                if meta.uid() != me {
                    said.push(format!(
                        "{} is open to others and owned by user id {}; left as it is",
                        path.display(),
                        meta.uid()
                    ));
                } else {
                    let private = meta.mode() & 0o700;
                    match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(private)) {
                        Ok(()) => said.push(format!(
                            "{} was open to others (mode {:o}); made private ({private:o})",
                            path.display(),
                            meta.mode() & 0o777
                        )),
                        Err(e) => said.push(format!(
                            "{} is open to others (mode {:o}) and could not be made private: {e}",
                            path.display(),
                            meta.mode() & 0o777
                        )),
                    }
                }
            }
            if meta.is_dir()
                && depth < SECURE_MAX_DEPTH
                && let Ok(entries) = std::fs::read_dir(&path)
            {
                pending.extend(entries.flatten().map(|e| (e.path(), depth + 1)));
            }
        }
        said
    }
}

/// How deep and how many entries [`DataDir::secure`] looks at: the directory is the
/// host's, a few levels deep; a huge tree there is not, and is not walked at every start.
const SECURE_MAX_DEPTH: usize = 4;
const SECURE_MAX_ENTRIES: usize = 10_000;

/// Writes `bytes` to a new file at `path` that only its owner may read.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?.write_all(bytes)
}

/// What the daemon writes to `daemon.json` so other commands can find it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    pub addr: String,
    /// With TLS on the API: the PEM file of the certificate a client on this machine trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<PathBuf>,
}

impl DaemonInfo {
    /// What `daemon.json` in `data` says; none when it is missing or unreadable.
    pub fn read(data: &DataDir) -> Option<DaemonInfo> {
        serde_json::from_slice(&std::fs::read(data.daemon_info()).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn what_is_open_to_others_is_made_private_and_links_are_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let data = DataDir::new(&root.path().join("data"));
        data.create().unwrap();
        assert!(data.secure().is_empty(), "a new directory is private already");
        let cache = data.root.join("cache");
        std::fs::create_dir(&cache).unwrap();
        std::fs::write(cache.join("module"), b"x").unwrap();
        write_private(&data.token(), b"secret").unwrap();
        let outside = root.path().join("outside");
        std::fs::write(&outside, b"not the host's").unwrap();
        std::os::unix::fs::symlink(&outside, data.root.join("link")).unwrap();
        for (path, m) in [(&data.root, 0o755), (&cache, 0o775), (&cache.join("module"), 0o664), (&outside, 0o644)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
        }
        let said = data.secure();
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said[0].contains("was open to others (mode 755); made private (700)"), "{said:?}");
        assert_eq!((mode(&data.root), mode(&cache), mode(&cache.join("module"))), (0o700, 0o700, 0o600));
        assert_eq!((mode(&data.token()), mode(&outside)), (0o600, 0o644), "a link's target is not the host's");
        assert!(data.secure().is_empty(), "nothing left to say");
    }
}
