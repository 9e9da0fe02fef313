//! The jobs service: starts every job of a host, answers `monitor jobs`, and is
//! what the alert engine drives.
//!
//! - [`Jobs::subscribe`] is the hook: a broadcast of every [`JobEvent`] (runs
//!   started and finished with their [`super::Execution`], rescans, skipped
//!   batches). A slow subscriber misses old events (it is told how many), it
//!   never slows a job down.
//! - [`Jobs::pause`], [`Jobs::resume`] and [`Jobs::pause_project`] /
//!   [`Jobs::resume_project`] take effect at once; a paused job keeps its
//!   changes and runs them on resume.
//! - [`Jobs::stop`] stops every job, terminating every running command's
//!   process group, and returns when they are gone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::config::JobSpec;
use super::job::{Context, Control, Job};
use super::lock::{ProjectLock, ProjectLockError};
use super::{Execution, JobEvent};
use crate::writer::Writer;

/// Events kept for a subscriber that lags behind.
const EVENT_BUFFER: usize = 1024;

/// What `monitor jobs list` shows of a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub name: String,
    pub roots: Vec<PathBuf>,
    pub command: Vec<String>,
    /// `idle`, `running` or `paused`.
    pub state: String,
    pub paused: bool,
    /// The running command's PID (its process group).
    pub pid: Option<u32>,
    /// Paths (or whole-tree runs) waiting for the command.
    pub queued: usize,
    pub runs: u64,
    pub failures: u64,
    pub rescans: u64,
    /// Batches dropped by the `skip` policy.
    pub skipped: u64,
    pub last: Option<Execution>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("no watch job named '{name}'; jobs: {known}")]
    NoSuchJob { name: String, known: String },
    #[error("watch job '{name}' is paused; run 'monitor jobs resume {name}' first")]
    Paused { name: String },
    #[error("watch job '{job}': path {path} cannot be watched: {reason}; create it or fix paths")]
    Path { job: String, path: PathBuf, reason: String },
    #[error(transparent)]
    Lock(#[from] ProjectLockError),
}

impl crate::error::Classified for JobsError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            JobsError::NoSuchJob { .. } => ErrorKind::NotFound,
            JobsError::Paused { .. } => ErrorKind::Conflict,
            JobsError::Lock(ProjectLockError::Io { .. }) => ErrorKind::Failed,
            JobsError::Path { .. } | JobsError::Lock(_) => ErrorKind::Usage,
        }
    }
}

/// How the service runs its jobs.
#[derive(Default)]
pub struct Options {
    /// Record each run in the progress tree (the daemon).
    pub progress: Option<Writer>,
    /// Named to a second host that wants the same project.
    pub data_dir: Option<PathBuf>,
    /// Copy command output to the terminal (`watch-files`).
    pub echo: bool,
    /// Keep what each job has done across restarts (the daemon).
    pub store: Option<crate::store::Store>,
}

struct Handle {
    name: String,
    roots: Vec<PathBuf>,
    state: Arc<Mutex<JobView>>,
    control: mpsc::UnboundedSender<Control>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The running jobs of one host. Cheap to share behind an `Arc`.
pub struct Jobs {
    jobs: Vec<Handle>,
    events: broadcast::Sender<JobEvent>,
    _locks: Vec<ProjectLock>,
}

impl Jobs {
    /// Locks every project, checks that every path can be watched, and starts the
    /// jobs; nothing runs when one of them cannot start. Needs a tokio runtime.
    pub fn start(specs: Vec<JobSpec>, options: Options) -> Result<Jobs, JobsError> {
        let mut prepared = Vec::with_capacity(specs.len());
        let mut locks: BTreeMap<PathBuf, ProjectLock> = BTreeMap::new();
        for spec in specs {
            let mut roots = Vec::with_capacity(spec.paths.len());
            for path in &spec.paths {
                let root = path.canonicalize().map_err(|e| JobsError::Path {
                    job: spec.name.clone(),
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                if !locks.contains_key(&root) {
                    let lock = ProjectLock::acquire(&root, options.data_dir.as_deref())?;
                    locks.insert(root.clone(), lock);
                }
                roots.push(root);
            }
            prepared.push((spec, roots));
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let ctx = Arc::new(Context {
            progress: options.progress,
            events: events.clone(),
            echo: options.echo,
            store: options.store,
        });
        let mut jobs = Vec::with_capacity(prepared.len());
        for (spec, roots) in prepared {
            let mut view = JobView {
                name: spec.name.clone(),
                roots: roots.clone(),
                command: spec.command.argv.clone(),
                state: "idle".into(),
                ..JobView::default()
            };
            if let Some(store) = &ctx.store {
                super::job::restore(store, &mut view);
            }
            let state = Arc::new(Mutex::new(view));
            let (control, inbox) = mpsc::unbounded_channel();
            let job = Job { spec: spec.clone(), roots: roots.clone(), ctx: ctx.clone(), state: state.clone() };
            let watching = job.start_watching().map_err(|e| JobsError::Path {
                job: spec.name.clone(),
                path: e.paths.first().cloned().unwrap_or_else(|| roots[0].clone()),
                reason: e.to_string(),
            })?;
            let task = tokio::spawn(job.run(watching, inbox));
            jobs.push(Handle { name: spec.name, roots, state, control, task: Mutex::new(Some(task)) });
        }
        Ok(Jobs { jobs, events, _locks: locks.into_values().collect() })
    }

    /// Every event of every job from now on: the alert engine's hook.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    pub fn list(&self) -> Vec<JobView> {
        self.jobs.iter().map(|h| h.state.lock().expect("job state").clone()).collect()
    }

    pub fn view(&self, name: &str) -> Result<JobView, JobsError> {
        Ok(self.handle(name)?.state.lock().expect("job state").clone())
    }

    fn handle(&self, name: &str) -> Result<&Handle, JobsError> {
        self.jobs.iter().find(|h| h.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.jobs.iter().map(|h| h.name.as_str()).collect();
            let known =
                if names.is_empty() { "none configured ([[watch]] in the config)".into() } else { names.join(", ") };
            JobsError::NoSuchJob { name: name.into(), known }
        })
    }

    fn set_paused(handle: &Handle, paused: bool) -> JobView {
        let view = {
            let mut state = handle.state.lock().expect("job state");
            state.paused = paused;
            if state.state != "running" {
                state.state = if paused { "paused" } else { "idle" }.into();
            }
            state.clone()
        };
        let _ = handle.control.send(Control::Wake);
        view
    }

    /// Stops starting commands for job `name` (a running one finishes); changes
    /// are kept for [`Jobs::resume`].
    pub fn pause(&self, name: &str) -> Result<JobView, JobsError> {
        Ok(Self::set_paused(self.handle(name)?, true))
    }

    /// Lets job `name` run again, starting with what changed while it was paused.
    pub fn resume(&self, name: &str) -> Result<JobView, JobsError> {
        Ok(Self::set_paused(self.handle(name)?, false))
    }

    /// Pauses every job watching `root` or a path inside it; the names paused.
    pub fn pause_project(&self, root: &Path) -> Vec<String> {
        self.of_project(root).map(|h| Self::set_paused(h, true).name).collect()
    }

    /// Resumes every job watching `root` or a path inside it; the names resumed.
    pub fn resume_project(&self, root: &Path) -> Vec<String> {
        self.of_project(root).map(|h| Self::set_paused(h, false).name).collect()
    }

    fn of_project(&self, root: &Path) -> impl Iterator<Item = &Handle> {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        self.jobs.iter().filter(move |h| h.roots.iter().any(|r| r.starts_with(&root)))
    }

    /// Runs job `name` now, for its whole tree (through its busy policy).
    pub fn run_now(&self, name: &str) -> Result<JobView, JobsError> {
        let handle = self.handle(name)?;
        let view = handle.state.lock().expect("job state").clone();
        if view.paused {
            return Err(JobsError::Paused { name: name.into() });
        }
        let _ = handle.control.send(Control::Run);
        Ok(view)
    }

    /// Stops every job and every command's process group; returns once they are gone.
    pub async fn stop(&self) {
        let mut waits = Vec::new();
        for handle in &self.jobs {
            let (reply, done) = oneshot::channel();
            if handle.control.send(Control::Stop(reply)).is_ok() {
                waits.push(done);
            }
        }
        for done in waits {
            let _ = done.await;
        }
        for handle in &self.jobs {
            let task = handle.task.lock().expect("job task").take();
            if let Some(task) = task {
                let _ = task.await;
            }
        }
    }
}
