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
}

/// What the daemon writes to `daemon.json` so other commands can find it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    pub addr: String,
}
