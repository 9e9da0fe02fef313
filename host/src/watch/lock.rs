//! One watcher per project: an advisory lock keyed by the project's canonical
//! path, so two hosts (two daemons with different data directories, a daemon and
//! a `monitor watch-files`) never run commands for the same tree at once.
//!
//! The lock files live outside the project, so watching never writes into the
//! tree it watches: in `$XDG_RUNTIME_DIR/monitor-watch/`, else
//! `/tmp/monitor-watch-UID/` (private to the user), named by a hash of the
//! canonical root, holding a JSON line with the holder's PID, data directory
//! and root. The kernel releases the lock however the holder dies, so a stale
//! file never blocks anyone. (Two different users watching one tree are not
//! kept apart: each has their own lock directory.)
//!
//! In a shared `/tmp` another user could make that directory first, or put a
//! link where a lock file goes: the directory is used only if it is a real
//! directory, ours and private (0700), and lock files are opened without
//! following links and must be ours too.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ProjectLockError {
    #[error(
        "{root} is already watched by monitor PID {pid}{}; stop that one first or watch another directory",
        data_dir.as_ref().map(|d| format!(" (data dir {})", d.display())).unwrap_or_default()
    )]
    Held { root: PathBuf, pid: String, data_dir: Option<PathBuf> },
    #[error("cannot lock {root} for watching ({path}): {source}")]
    Io { root: PathBuf, path: PathBuf, source: std::io::Error },
    #[error(
        "lock directory {dir} {why}; another user may have made it: remove it, or set XDG_RUNTIME_DIR to a private directory"
    )]
    Unsafe { dir: PathBuf, why: String },
}

/// What the lock file says about its holder.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    pid: u32,
    #[serde(default)]
    data_dir: Option<PathBuf>,
    root: PathBuf,
}

/// Held until dropped (or until the process dies, however it dies).
#[derive(Debug)]
pub struct ProjectLock {
    pub root: PathBuf,
    _file: File,
}

/// Where the lock files are.
pub fn lock_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("monitor-watch"),
        None => std::env::temp_dir().join(format!("monitor-watch-{}", rustix::process::getuid().as_raw())),
    }
}

impl ProjectLock {
    /// Locks `root` (canonical) for this process; `data_dir` is shown to a second host.
    pub fn acquire(root: &Path, data_dir: Option<&Path>) -> Result<ProjectLock, ProjectLockError> {
        let dir = lock_dir();
        let path = dir.join(format!("{}.lock", &blake3::hash(root.as_os_str().as_encoded_bytes()).to_hex()[..32]));
        let io = |source| ProjectLockError::Io { root: root.into(), path: path.clone(), source };
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io)?;
        }
        let unsafe_dir = |why: String| ProjectLockError::Unsafe { dir: dir.clone(), why };
        private_to_us(&std::fs::symlink_metadata(&dir).map_err(io)?).map_err(unsafe_dir)?;
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(io)?
        };
        {
            use std::os::unix::fs::MetadataExt;
            let owner = file.metadata().map_err(io)?.uid();
            if owner != rustix::process::getuid().as_raw() {
                return Err(unsafe_dir(format!("holds {} owned by uid {owner}", path.display())));
            }
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let (pid, data_dir) = match serde_json::from_str::<Holder>(text.trim()) {
                    Ok(h) => (h.pid.to_string(), h.data_dir),
                    Err(_) => ("unknown".into(), None),
                };
                return Err(ProjectLockError::Held { root: root.into(), pid, data_dir });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let holder = Holder { pid: std::process::id(), data_dir: data_dir.map(Path::to_path_buf), root: root.into() };
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", serde_json::to_string(&holder).expect("plain data")).map_err(io)?;
        Ok(ProjectLock { root: root.into(), _file: file })
    }
}

/// Whether a lock directory is a real directory of ours that only we can use.
fn private_to_us(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !meta.file_type().is_dir() {
        return Err("is not a directory (a symbolic link?)".into());
    }
    if meta.uid() != rustix::process::getuid().as_raw() {
        return Err(format!("belongs to uid {}, not to you", meta.uid()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!("has mode {mode:o}; it must be private (700)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_private_directory_of_ours_is_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(private_to_us(&std::fs::symlink_metadata(&private).unwrap()).is_ok());
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = private_to_us(&std::fs::symlink_metadata(&private).unwrap()).unwrap_err();
        assert_eq!(err, "has mode 777; it must be private (700)");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&private, &link).unwrap();
        let err = private_to_us(&std::fs::symlink_metadata(&link).unwrap()).unwrap_err();
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn a_second_lock_on_a_root_names_the_first_holder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let first = ProjectLock::acquire(&root, Some(Path::new("/data/one"))).unwrap();
        // flock locks belong to the open file, so a second open in this process conflicts too.
        let err = ProjectLock::acquire(&root, None).unwrap_err().to_string();
        let expected = format!(
            "{} is already watched by monitor PID {} (data dir /data/one); stop that one first",
            root.display(),
            std::process::id()
        );
        assert!(err.starts_with(&expected), "{err}");
        drop(first);
        ProjectLock::acquire(&root, None).expect("free again once dropped");
    }
}
