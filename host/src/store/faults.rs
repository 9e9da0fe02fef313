//! The store under a failing disk: faults injected through redb's storage
//! backend (ENOSPC and EIO on write and on sync, a torn write), and a damaged
//! file.

use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use redb::backends::FileBackend;
use redb::{BackendError, Builder, StorageBackend};

use super::*;
use crate::progress::{NodePath, Op, Update};

/// What the backend does to the next writes and syncs.
#[derive(Debug, Default)]
struct Faults {
    /// errno for every write (0: none).
    write: AtomicI32,
    /// errno for every sync (0: none).
    sync: AtomicI32,
    /// When set, the next write lands only its first half, then fails.
    tear: AtomicU8,
}

#[derive(Debug)]
struct Faulty {
    inner: FileBackend,
    faults: Arc<Faults>,
}

fn inject(errno: &AtomicI32) -> io::Result<()> {
    match errno.load(Ordering::SeqCst) {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

impl StorageBackend for Faulty {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        inject(&self.faults.write)?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), io::Error> {
        inject(&self.faults.sync)?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        inject(&self.faults.write)?;
        if self.faults.tear.swap(0, Ordering::SeqCst) == 1 {
            self.inner.write(offset, &data[..data.len() / 2])?;
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(s, e)
    }
    fn try_lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(s, e)
    }
}

fn faulty(path: &Path) -> (Store, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let (file, shared) = (path.to_path_buf(), faults.clone());
    let store = Store::open_with(
        path,
        Box::new(move || {
            let handle = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&file)?;
            let inner = FileBackend::new(handle)?;
            Builder::new().create_with_backend(Faulty { inner, faults: shared.clone() })
        }),
    )
    .unwrap();
    (store, faults)
}

fn advance(store: &Store, path: &str, at: u64) -> Result<(), StoreError> {
    let update = Update::new(Op::Advance { units: 1.0 });
    store.progress_apply(&[(NodePath::parse(path).unwrap(), update)], at).map(drop)
}

/// Waits until the store has opened the database again.
fn wait_reopened(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.health().cause.is_some() {
        assert!(Instant::now() < deadline, "the database was not opened again: {:?}", store.health());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every way the disk fails: the write is refused and says why, the store
/// refuses further work at once, recovers by itself once the disk is fine,
/// and what was committed before is all there, with nothing half-written.
#[test]
fn a_failing_disk_refuses_writes_then_recovers_with_nothing_committed_lost() {
    type Break = fn(&Faults);
    type Mend = fn(&Faults);
    let cases: [(&str, Break, Mend); 4] = [
        ("ENOSPC on write", |f| f.write.store(libc::ENOSPC, Ordering::SeqCst), |f| f.write.store(0, Ordering::SeqCst)),
        ("EIO on write", |f| f.write.store(libc::EIO, Ordering::SeqCst), |f| f.write.store(0, Ordering::SeqCst)),
        ("EIO on sync", |f| f.sync.store(libc::EIO, Ordering::SeqCst), |f| f.sync.store(0, Ordering::SeqCst)),
        ("ENOSPC on sync", |f| f.sync.store(libc::ENOSPC, Ordering::SeqCst), |f| f.sync.store(0, Ordering::SeqCst)),
    ];
    for (what, break_it, mend) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (store, faults) = faulty(&dir.path().join("m.redb"));
        for i in 0..5 {
            advance(&store, "r/a", i).unwrap();
        }
        break_it(&faults);
        let err = advance(&store, "r/a", 5).unwrap_err();
        assert!(err.is_unavailable(), "{what}: {err}");
        assert!(err.to_string().contains("opens it again by itself"), "{what}: {err}");
        assert!(!store.health().healthy, "{what}");
        // Refused at once meanwhile, reads too.
        assert!(advance(&store, "r/b", 6).unwrap_err().is_unavailable(), "{what}");
        assert!(store.progress_runs().unwrap_err().is_unavailable(), "{what}");
        mend(&faults);
        wait_reopened(&store);
        let health = store.health();
        assert_eq!((health.healthy, health.cause), (false, None), "{what}: healthy only a while after the failure");
        assert!(health.failed_ms.is_some(), "{what}");
        let node = store.progress_node(&NodePath::parse("r/a").unwrap()).unwrap().unwrap();
        let events = store.progress_events("r", 0).unwrap().len();
        if what.ends_with("on write") {
            assert_eq!(node.done, 5.0, "{what}: the five committed updates, not the refused one");
        } else {
            // A sync that failed may have reached the disk all the same: the
            // refused update may be there, and then whole, never half.
            assert!(node.done == 5.0 || node.done == 6.0, "{what}: {}", node.done);
        }
        assert_eq!(events as f64, node.done, "{what}: every update stored has its event and no more");
        advance(&store, "r/a", 7).unwrap();
        let after = store.progress_node(&NodePath::parse("r/a").unwrap()).unwrap().unwrap().done;
        assert_eq!(after, node.done + 1.0, "{what}");
    }
}

#[test]
fn a_torn_write_loses_only_what_was_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.redb");
    let (store, faults) = faulty(&path);
    for i in 0..3 {
        advance(&store, "r/a", i).unwrap();
    }
    faults.tear.store(1, Ordering::SeqCst);
    assert!(advance(&store, "r/a", 3).is_err(), "the torn commit is not acknowledged");
    wait_reopened(&store);
    assert_eq!(store.progress_node(&NodePath::parse("r/a").unwrap()).unwrap().unwrap().done, 3.0);
    drop(store);
    // And the file opens as it is afterwards, with the same content.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.progress_node(&NodePath::parse("r/a").unwrap()).unwrap().unwrap().done, 3.0);
}

#[test]
fn while_the_disk_fails_the_recovery_keeps_trying_and_counts_its_tries() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = faulty(&dir.path().join("m.redb"));
    advance(&store, "r/a", 0).unwrap();
    faults.write.store(libc::ENOSPC, Ordering::SeqCst);
    assert!(advance(&store, "r/a", 1).is_err());
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.health().reopen_attempts < 2 {
        assert!(Instant::now() < deadline, "{:?}", store.health());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!store.health().healthy);
    faults.write.store(0, Ordering::SeqCst);
    wait_reopened(&store);
}

#[test]
fn a_damaged_file_is_one_line_naming_it_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.redb");
    std::fs::write(&path, b"this is not a database, it is a text file that someone put here by mistake\n").unwrap();
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(err.starts_with(&format!("database {} is damaged", path.display())), "{err}");
    assert!(err.contains("monitor db check") && err.contains(".damaged") && !err.contains('\n'), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Bytes flipped anywhere in a database file: a checked open either works
    /// (redb may have repaired it), and then every record reads, or says the
    /// file is damaged in one line; it never panics.
    #[test]
    fn flipped_bytes_never_panic_on_open(flips in proptest::collection::vec((0.0..1.0f64, 1..=255u8), 1..16)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.redb");
        {
            let store = Store::open(&path).unwrap();
            for i in 0..20 {
                advance(&store, &format!("r/n{i}"), i).unwrap();
            }
        }
        let mut bytes = std::fs::read(&path).unwrap();
        for (at, xor) in flips {
            let i = ((bytes.len() - 1) as f64 * at) as usize;
            bytes[i] ^= xor;
        }
        std::fs::write(&path, &bytes).unwrap();
        match Store::open_checked(&path) {
            Ok(store) => {
                for run in store.progress_runs().unwrap_or_default() {
                    let _ = store.progress_tree(run.path.as_str());
                    let _ = store.progress_events(run.path.as_str(), 0);
                }
            }
            Err(e) => {
                let text = e.to_string();
                proptest::prop_assert!(!text.contains('\n'), "{}", text);
            }
        }
    }
}
