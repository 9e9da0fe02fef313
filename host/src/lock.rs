//! One daemon per data directory: an advisory lock on a file that holds its PID.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("monitor is already running on {dir} (PID {pid}); stop it first or use another --data-dir")]
    Held { dir: PathBuf, pid: String },
    #[error("cannot lock {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl crate::error::Classified for LockError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            LockError::Held { .. } => crate::error::ErrorKind::Usage,
            LockError::Io { .. } => crate::error::ErrorKind::Failed,
        }
    }
}

/// Released when dropped (or when the process dies, however it dies).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    pub fn acquire(path: &Path) -> Result<InstanceLock, LockError> {
        let io = |source| LockError::Io { path: path.into(), source };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = if pid.trim().is_empty() { "unknown".into() } else { pid.trim().to_string() };
                let dir = path.parent().unwrap_or(path).to_path_buf();
                return Err(LockError::Held { dir, pid });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(InstanceLock { _file: file })
    }
}
