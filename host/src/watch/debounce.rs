//! Raw `notify` events become one [`Batch`] per quiet window, and a batch
//! becomes [`Work`]: which paths changed and which were deleted.
//!
//! A batch remembers every path an event named and whether its first event in
//! the window made it appear (a create, or a rename to it). When the window
//! closes, [`Batch::settle`] looks at the file system once:
//!
//! - a path that exists is **changed** (created, written, renamed to, chmod);
//! - a path that does not exist is **deleted**, unless it appeared inside this
//!   window: then it was transient (an editor's `file.tmp` renamed over `file`,
//!   a file created and removed at once) and nothing is reported for it;
//! - directories are not reported themselves, but a directory that appeared
//!   (moved into the tree, or created with files before it was watched)
//!   reports every file inside it, since no event will name them.
//!
//! [`Work`] is what waits for the command; merging two works keeps the latest
//! fact about each path, so coalesced batches lose nothing and repeat nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use notify::EventKind;
use notify::event::{CreateKind, ModifyKind, RemoveKind, RenameMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// The first event in the window made the path appear.
    appeared: bool,
    /// An event said it is a directory.
    dir: bool,
}

/// The events of one debounce window, not yet looked at.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Batch {
    seen: BTreeMap<PathBuf, Seen>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Adds one event's paths; `keep` filters paths (the second argument says
    /// whether the event called it a directory). Access events are not changes.
    pub fn record(&mut self, kind: &EventKind, paths: &[PathBuf], keep: impl Fn(&Path, bool) -> bool) {
        let (appears, dir) = match kind {
            EventKind::Access(_) => return,
            EventKind::Create(k) => (true, *k == CreateKind::Folder),
            EventKind::Remove(k) => (false, *k == RemoveKind::Folder),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => (true, false),
            _ => (false, false),
        };
        let both = matches!(kind, EventKind::Modify(ModifyKind::Name(RenameMode::Both)));
        for (i, path) in paths.iter().enumerate() {
            // In a rename with both paths, the second is the one that appears.
            let appears = appears || (both && i == 1);
            if keep(path, dir) {
                self.touch(path.clone(), appears, dir);
            }
        }
    }

    pub fn touch(&mut self, path: PathBuf, appeared: bool, dir: bool) {
        self.seen.entry(path).and_modify(|s| s.dir |= dir).or_insert(Seen { appeared, dir });
    }

    /// Looks at the file system through `kind_of` (`None`: missing; `Some(true)`:
    /// a directory) and `files_in` (the files below a directory), once per path.
    pub fn settle(self, kind_of: impl Fn(&Path) -> Option<bool>, files_in: impl Fn(&Path) -> Vec<PathBuf>) -> Work {
        let mut work = Work::default();
        for (path, seen) in self.seen {
            match kind_of(&path) {
                Some(false) => {
                    work.deleted.remove(&path);
                    work.changed.insert(path);
                }
                Some(true) if seen.appeared => work.changed.extend(files_in(&path)),
                Some(true) => {}
                None if seen.appeared || seen.dir => {}
                None => {
                    work.deleted.insert(path);
                }
            }
        }
        work
    }
}

/// What the command is to be given: settled paths, or a whole-tree run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Work {
    pub changed: BTreeSet<PathBuf>,
    pub deleted: BTreeSet<PathBuf>,
    /// Events may have been lost: run for the whole tree.
    pub rescan: bool,
    /// Asked for by hand: run for the whole tree.
    pub manual: bool,
}

impl Work {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.deleted.is_empty() && !self.rescan && !self.manual
    }

    pub fn paths(&self) -> usize {
        self.changed.len() + self.deleted.len()
    }

    /// Adds `later` to this work; where both name a path, `later` is right.
    pub fn merge(&mut self, later: Work) {
        for path in later.changed {
            self.deleted.remove(&path);
            self.changed.insert(path);
        }
        for path in later.deleted {
            self.changed.remove(&path);
            self.deleted.insert(path);
        }
        self.rescan |= later.rescan;
        self.manual |= later.manual;
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, DataChange};

    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn settle(batch: Batch, existing: &[&str], dirs: &[&str]) -> Work {
        batch.settle(
            |path| {
                if dirs.iter().any(|d| Path::new(d) == path) {
                    Some(true)
                } else if existing.iter().any(|e| Path::new(e) == path) {
                    Some(false)
                } else {
                    None
                }
            },
            |dir| existing.iter().map(PathBuf::from).filter(|e| e.starts_with(dir)).collect(),
        )
    }

    fn set(v: &[&str]) -> BTreeSet<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    const ALL: fn(&Path, bool) -> bool = |_, _| true;
    const WRITE: EventKind = EventKind::Modify(ModifyKind::Data(DataChange::Any));

    #[test]
    fn many_events_on_a_path_coalesce_into_one() {
        let mut b = Batch::default();
        for _ in 0..100 {
            b.record(&WRITE, &[p("/r/a")], ALL);
        }
        b.record(&EventKind::Access(AccessKind::Any), &[p("/r/b")], ALL);
        assert_eq!(b.len(), 1, "access is not a change");
        let w = settle(b, &["/r/a"], &[]);
        assert_eq!((w.changed, w.deleted), (set(&["/r/a"]), set(&[])));
    }

    #[test]
    fn an_atomic_save_reports_the_target_only() {
        let mut b = Batch::default();
        b.record(&EventKind::Create(CreateKind::File), &[p("/r/.a.swp")], ALL);
        b.record(&WRITE, &[p("/r/.a.swp")], ALL);
        b.record(&EventKind::Modify(ModifyKind::Name(RenameMode::Both)), &[p("/r/.a.swp"), p("/r/a")], ALL);
        let w = settle(b, &["/r/a"], &[]);
        assert_eq!((w.changed, w.deleted), (set(&["/r/a"]), set(&[])));
    }

    #[test]
    fn deletions_are_reported_unless_the_path_was_transient() {
        let mut b = Batch::default();
        b.record(&EventKind::Remove(RemoveKind::File), &[p("/r/old")], ALL);
        b.record(&EventKind::Create(CreateKind::File), &[p("/r/blip")], ALL);
        b.record(&EventKind::Remove(RemoveKind::File), &[p("/r/blip")], ALL);
        b.record(&EventKind::Remove(RemoveKind::Folder), &[p("/r/gone-dir")], ALL);
        b.record(&EventKind::Modify(ModifyKind::Name(RenameMode::From)), &[p("/r/moved-away")], ALL);
        let w = settle(b, &[], &[]);
        assert_eq!((w.changed, w.deleted), (set(&[]), set(&["/r/moved-away", "/r/old"])));
    }

    #[test]
    fn a_directory_that_appears_reports_its_files() {
        let mut b = Batch::default();
        b.record(&EventKind::Modify(ModifyKind::Name(RenameMode::To)), &[p("/r/d")], ALL);
        b.record(&EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::Any)), &[p("/r/e")], ALL);
        let w = settle(b, &["/r/d/1", "/r/d/x/2"], &["/r/d", "/r/e"]);
        assert_eq!(w.changed, set(&["/r/d/1", "/r/d/x/2"]), "a directory that was just touched reports nothing");
    }

    #[test]
    fn the_filter_sees_every_path() {
        let mut b = Batch::default();
        b.record(&WRITE, &[p("/r/a.rs"), p("/r/a.log")], |path, _| path.extension().is_some_and(|e| e == "rs"));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn merged_work_keeps_the_latest_fact_per_path() {
        let mut w = Work { changed: set(&["/a", "/b"]), deleted: set(&["/c"]), ..Work::default() };
        w.merge(Work { changed: set(&["/c"]), deleted: set(&["/a"]), rescan: true, manual: false });
        assert_eq!((w.changed, w.deleted, w.rescan), (set(&["/b", "/c"]), set(&["/a"]), true));
        assert!(Work::default().is_empty());
        assert!(!Work { manual: true, ..Work::default() }.is_empty());
    }
}
