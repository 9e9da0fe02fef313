//! Which changed paths count for a job.
//!
//! A path counts when it lies under the watched root, is not inside a `.git`
//! directory, matches one of the include globs (when there are any), matches no
//! exclude glob (itself or any directory above it), and, with `ignore_files`,
//! is not ignored by a `.gitignore` or `.ignore` file in its directory or any
//! directory above it up to the root, or by `.git/info/exclude` (the deepest file
//! that says something decides, so `!keep.log` in a subdirectory wins, as in git).
//!
//! Globs are gitignore-like: one without `/` matches a name at any depth
//! (`*.rs`, `target`), one with `/` matches the path relative to the root
//! (`src/**/*.rs`; a leading `/` is allowed and means the same).

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The ignore-file names read in every directory.
pub const IGNORE_FILES: [&str; 2] = [".gitignore", ".ignore"];

/// Compiles one user glob; the error says why it is not one.
pub fn glob(pattern: &str) -> Result<Glob, String> {
    let trimmed = pattern.trim_start_matches('/');
    if trimmed.is_empty() {
        return Err("it is empty".into());
    }
    let full = if pattern.contains('/') { trimmed.trim_end_matches('/').to_string() } else { format!("**/{trimmed}") };
    GlobBuilder::new(&full).literal_separator(true).build().map_err(|e| e.kind().to_string())
}

fn set(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder.add(glob(p).map_err(|e| format!("glob '{p}': {e}"))?);
    }
    builder.build().map(Some).map_err(|e| e.to_string())
}

/// The filter of one watched root.
#[derive(Debug, Clone)]
pub struct Filter {
    root: PathBuf,
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    ignore_files: bool,
    /// One matcher per ignore file, shallowest first.
    ignores: Vec<Gitignore>,
}

impl Filter {
    /// A filter for `root`; with `ignore_files`, the ignore files under it are read now
    /// (and again by [`Filter::reload`] when one changes).
    pub fn new(root: &Path, include: &[String], exclude: &[String], ignore_files: bool) -> Result<Filter, String> {
        let mut filter = Filter {
            root: root.to_path_buf(),
            include: set(include)?,
            exclude: set(exclude)?,
            ignore_files,
            ignores: Vec::new(),
        };
        filter.reload();
        Ok(filter)
    }

    /// The watched root this filter is for.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads the ignore files again (after one changed).
    pub fn reload(&mut self) {
        self.ignores.clear();
        if !self.ignore_files {
            return;
        }
        let exclude = self.root.join(".git/info/exclude");
        if exclude.is_file() {
            let mut builder = GitignoreBuilder::new(&self.root);
            builder.add(&exclude);
            if let Ok(g) = builder.build() {
                self.ignores.push(g);
            }
        }
        // The walk itself skips what is already ignored, so an ignored
        // `node_modules` or `target` is not searched for ignore files.
        let walk = ignore::WalkBuilder::new(&self.root).hidden(false).git_global(false).parents(false).build();
        let mut found: Vec<PathBuf> = walk
            .flatten()
            .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
            .filter(|e| IGNORE_FILES.iter().any(|n| e.file_name() == *n))
            .map(ignore::DirEntry::into_path)
            .collect();
        found.sort_by_key(|p| p.components().count());
        for file in found {
            let dir = file.parent().unwrap_or(&self.root);
            let mut builder = GitignoreBuilder::new(dir);
            if let Some(e) = builder.add(&file) {
                tracing::warn!("ignore file {}: {e}", file.display());
            }
            match builder.build() {
                Ok(g) => self.ignores.push(g),
                Err(e) => tracing::warn!("ignore file {}: {e}", file.display()),
            }
        }
    }

    /// Whether a change of `path` (a directory when `is_dir`) counts.
    pub fn accepts(&self, path: &Path, is_dir: bool) -> bool {
        let Ok(relative) = path.strip_prefix(&self.root) else {
            return false;
        };
        let relative = if relative.as_os_str().is_empty() {
            // The root itself, when a single file is watched.
            match path.file_name() {
                Some(name) => Path::new(name),
                None => return false,
            }
        } else {
            relative
        };
        if relative.components().any(|c| c.as_os_str() == ".git") {
            return false;
        }
        if let Some(exclude) = &self.exclude
            && relative.ancestors().filter(|a| !a.as_os_str().is_empty()).any(|a| exclude.is_match(a))
        {
            return false;
        }
        if let Some(include) = &self.include
            && !include.is_match(relative)
        {
            return false;
        }
        !self.ignored(path, is_dir)
    }

    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        let mut verdict = false;
        for g in &self.ignores {
            if !path.starts_with(g.path()) || path == g.path() {
                continue;
            }
            match g.matched_path_or_any_parents(path, is_dir) {
                Match::Ignore(_) => verdict = true,
                Match::Whitelist(_) => verdict = false,
                Match::None => {}
            }
        }
        verdict
    }

    /// Whether `path` is an ignore file, whose change means [`Filter::reload`].
    pub fn is_ignore_file(&self, path: &Path) -> bool {
        self.ignore_files
            && (path.file_name().is_some_and(|n| IGNORE_FILES.iter().any(|i| n == *i))
                || path.ends_with(".git/info/exclude"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn globs_without_a_slash_match_names_at_any_depth() {
        let root = Path::new("/nonexistent/p");
        let f = Filter::new(root, &strings(&["*.rs", "docs/*.md"]), &strings(&["target", "gen_*.rs"]), false).unwrap();
        assert!(f.accepts(&root.join("main.rs"), false));
        assert!(f.accepts(&root.join("src/deep/lib.rs"), false));
        assert!(f.accepts(&root.join("docs/a.md"), false));
        assert!(!f.accepts(&root.join("docs/sub/a.md"), false), "a slash anchors the glob; * stops at /");
        assert!(!f.accepts(&root.join("README.md"), false));
        assert!(!f.accepts(&root.join("target/debug/x.rs"), false), "an excluded directory excludes its files");
        assert!(!f.accepts(&root.join("src/gen_a.rs"), false));
        assert!(!f.accepts(&root.join(".git/index"), false));
        assert!(!f.accepts(Path::new("/elsewhere/a.rs"), false));
    }

    #[test]
    fn no_include_means_everything() {
        let root = Path::new("/nonexistent/p");
        let f = Filter::new(root, &[], &strings(&["/build/"]), false).unwrap();
        assert!(f.accepts(&root.join("a/b/c.txt"), false));
        assert!(!f.accepts(&root.join("build/out.o"), false));
        assert!(f.accepts(&root.join("src/build/out.o"), false), "a leading / anchors at the root");
    }

    #[test]
    fn ignore_files_are_honoured_deepest_last() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/deep")).unwrap();
        std::fs::write(root.join(".gitignore"), "*.log\nout/\n").unwrap();
        std::fs::write(root.join("sub/.gitignore"), "!keep.log\n").unwrap();
        std::fs::write(root.join("sub/deep/.ignore"), "*.tmp\n").unwrap();
        let f = Filter::new(root, &[], &[], true).unwrap();
        assert!(!f.accepts(&root.join("a.log"), false));
        assert!(!f.accepts(&root.join("x/out/a.txt"), false), "an ignored directory ignores what is below");
        assert!(f.accepts(&root.join("sub/keep.log"), false), "a deeper file can re-include");
        assert!(!f.accepts(&root.join("sub/other.log"), false));
        assert!(!f.accepts(&root.join("sub/deep/a.tmp"), false));
        assert!(f.accepts(&root.join("a.tmp"), false), "a deeper file does not reach up");
        assert!(f.accepts(&root.join("a.txt"), false));
        assert!(f.is_ignore_file(&root.join("sub/.gitignore")));
        let off = Filter::new(root, &[], &[], false).unwrap();
        assert!(off.accepts(&root.join("a.log"), false));
    }

    #[test]
    fn bad_globs_say_why() {
        assert!(glob("a[").unwrap_err().contains("unclosed"), "{}", glob("a[").unwrap_err());
        assert_eq!(glob("/").unwrap_err(), "it is empty");
    }
}
