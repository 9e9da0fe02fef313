//! File watching that hands work to short-lived commands.
//!
//! A **job** ([`JobConfig`], `[[watch]]` in the host config, or `monitor
//! watch-files`) watches one or more directories with `notify`, keeps the
//! changes that pass its [`Filter`] (include and exclude globs, `.gitignore`
//! files), coalesces them over a debounce window ([`Batch`]) and runs a command
//! with the changed paths ([`runner`]). The work happens in the child process,
//! never in the host.
//!
//! The pieces, each with its own rules documented where it lives:
//!
//! - [`config`]: what the user writes, validated once into a [`JobSpec`];
//! - [`filter`]: which paths count;
//! - [`debounce`]: how raw events become one batch (and what an atomic save is);
//! - [`runner`]: one command in its own process group, its timeout, its output;
//! - [`lock`]: one watcher per project, across hosts;
//! - [`job`]: one job's loop (events, debounce, busy policy, pause);
//! - [`jobs`]: the service the daemon and `watch-files` run: control
//!   ([`Jobs::pause`], [`Jobs::pause_project`], ...), state, and the
//!   [`JobEvent`] hook the alert engine subscribes to.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod config;
pub mod debounce;
pub mod filter;
pub mod job;
pub mod jobs;
pub mod lock;
pub mod runner;

pub use config::{Busy, CommandSpec, ConfigError, JobConfig, JobSpec, Pass};
pub use debounce::Batch;
pub use filter::Filter;
pub use jobs::{JobView, Jobs, JobsError};
pub use runner::Ending;

/// Why a command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Files changed; the command gets them.
    Changes,
    /// Files were deleted; the delete command gets them.
    Deletions,
    /// Events may have been lost (kernel queue overflow, watcher error, a watched
    /// root that vanished and came back): the command gets the whole tree, that
    /// is the job's roots as its paths.
    Rescan,
    /// Someone asked (`monitor jobs run`); the command gets the job's roots.
    Manual,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Changes => "changes",
            Reason::Deletions => "deletions",
            Reason::Rescan => "rescan",
            Reason::Manual => "manual",
        }
    }
}

/// One finished run of a job's command: what the alert engine and `monitor
/// jobs list` see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub job: String,
    /// The job's first watched path (its project root).
    pub root: PathBuf,
    /// Per job, from 1.
    pub seq: u64,
    pub reason: Reason,
    /// The paths the command was given (the roots for a rescan or a manual run).
    pub paths: Vec<PathBuf>,
    pub started_ms: u64,
    pub finished_ms: u64,
    pub outcome: Ending,
    /// The last bytes of the command's output (see [`runner::TAIL_BYTES`]).
    pub stdout_tail: String,
    pub stderr_tail: String,
}

impl Execution {
    pub fn succeeded(&self) -> bool {
        self.outcome.succeeded()
    }

    pub fn duration_ms(&self) -> u64 {
        self.finished_ms.saturating_sub(self.started_ms)
    }
}

/// What a job tells its subscribers ([`Jobs::subscribe`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum JobEvent {
    Started {
        job: String,
        root: PathBuf,
        seq: u64,
        reason: Reason,
        paths: Vec<PathBuf>,
        started_ms: u64,
    },
    Finished(Box<Execution>),
    /// Events may have been lost; a rescan run follows. `count` is the job's total.
    Rescan {
        job: String,
        root: PathBuf,
        why: String,
        count: u64,
    },
    /// A batch arrived while the command ran and the job's policy is `skip`.
    Skipped {
        job: String,
        root: PathBuf,
        paths: usize,
    },
}

#[cfg(test)]
mod tests;
