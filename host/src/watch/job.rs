//! One job's loop: raw events in, debounced [`Work`] out, one command at a time.
//!
//! The loop owns the `notify` watcher, the open [`Batch`], the work waiting for
//! the command, and the running command. When the window closes, the batch is
//! settled into work and handed on by the busy policy:
//!
//! - nothing running: the work starts now;
//! - `queue`: it is merged into the one pending work, which starts when the
//!   command ends (many batches, one next run);
//! - `skip`: it is dropped, counted and reported;
//! - `restart`: the running command's group is stopped (SIGTERM, then SIGKILL
//!   after the grace period) and the command runs again with the interrupted
//!   run's paths plus the new ones, so a restart never loses a path.
//!
//! A paused job keeps collecting changes and runs them, coalesced, on resume;
//! a running command is not interrupted by a pause. The quiet window is capped:
//! a tree that never goes quiet still gets a run every `max(10 × debounce, 1 s)`.
//!
//! Events the kernel dropped (inotify queue overflow), watcher errors and a
//! watched root that disappears (it is re-watched as soon as it is back) all
//! count as a **rescan**: the command runs once for the whole tree, with the
//! job's roots as its paths and `MONITOR_WATCH_REASON=rescan`.
//!
//! Every run is a node in the progress tree under the run `watch-NAME`, in one
//! of [`KEEP_EXECUTIONS`] slots `exec-00`… reused in turn (a re-run of a finished
//! node), so a job's tree stays bounded however long it runs; each update is
//! also an event in the run's history, which the progress retention prunes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::Watcher;
use serde_json::json;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::config::{Busy, CommandSpec, JobSpec, Pass};
use super::debounce::{Batch, Work};
use super::filter::Filter;
use super::jobs::JobView;
use super::runner::{self, Ending, Invocation, Ran};
use super::{Execution, JobEvent, Reason};
use crate::progress::{FailurePolicy, NodePath, Op, Update};
use crate::writer::Writer;

/// Progress nodes kept per job: the last this many runs.
pub const KEEP_EXECUTIONS: u64 = 20;
/// How often the roots are checked for having vanished (and looked for again).
const REWATCH_EVERY: Duration = Duration::from_millis(250);
/// Most paths named in a progress node's metadata.
const PATHS_IN_METADATA: usize = 10;

/// A watcher's event, tagged with the watcher's generation.
pub(crate) type Tagged = (u64, notify::Result<notify::Event>);

/// What a job's loop is told from outside.
pub(crate) enum Control {
    /// The shared state changed (pause, resume): look again.
    Wake,
    /// Run now for the whole tree.
    Run,
    /// Stop the running command (its whole group) and end the loop.
    Stop(oneshot::Sender<()>),
}

/// What every job of a host shares.
pub struct Context {
    /// The daemon's progress writer; `None` outside the daemon.
    pub progress: Option<Writer>,
    pub events: broadcast::Sender<JobEvent>,
    /// Copy command output to the terminal and say what runs (`watch-files`).
    pub echo: bool,
    /// Where what each job has done is kept across restarts (the daemon).
    pub store: Option<crate::store::Store>,
}

/// What a job has done, as kept across restarts.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Saved {
    runs: u64,
    failures: u64,
    rescans: u64,
    skipped: u64,
    last: Option<Execution>,
}

/// Takes up what the job had done before the host restarted.
pub(crate) fn restore(store: &crate::store::Store, view: &mut JobView) {
    let saved = match store.watch_job(&view.name) {
        Ok(Some(json)) => serde_json::from_str::<Saved>(&json),
        Ok(None) => return,
        Err(e) => return tracing::warn!(job = %view.name, "cannot read what the job did before: {e}"),
    };
    match saved {
        Ok(s) => {
            (view.runs, view.failures, view.rescans, view.skipped, view.last) =
                (s.runs, s.failures, s.rescans, s.skipped, s.last)
        }
        Err(e) => tracing::warn!(job = %view.name, "what the job did before is unreadable: {e}"),
    }
}

/// The progress run of a job.
pub fn progress_run(job: &str) -> NodePath {
    NodePath::parse(&format!("watch-{job}")).expect("job names are validated")
}

/// A job's watcher and the channel its events come on.
pub(crate) struct Watching {
    watcher: notify::RecommendedWatcher,
    events_tx: mpsc::UnboundedSender<Tagged>,
    events: mpsc::UnboundedReceiver<Tagged>,
}

impl Watching {
    /// Another way into the job's event stream (tests inject kernel events with it).
    #[cfg(test)]
    pub fn sender(&self) -> mpsc::UnboundedSender<Tagged> {
        self.events_tx.clone()
    }
}

struct Current {
    seq: u64,
    reason: Reason,
    paths: Vec<PathBuf>,
    work: Work,
    started_ms: u64,
    node: NodePath,
    stop: Option<oneshot::Sender<String>>,
    restarting: bool,
    task: tokio::task::JoinHandle<Ran>,
}

pub(crate) struct Job {
    pub spec: JobSpec,
    /// Canonical watched paths; the first is the project root.
    pub roots: Vec<PathBuf>,
    pub ctx: Arc<Context>,
    pub state: Arc<Mutex<JobView>>,
}

impl Job {
    fn root(&self) -> &Path {
        &self.roots[0]
    }

    fn paused(&self) -> bool {
        self.state.lock().expect("job state").paused
    }

    fn say(&self, text: String) {
        if self.ctx.echo {
            eprintln!("[monitor watch] {text}");
        } else {
            tracing::info!(job = %self.spec.name, "{text}");
        }
    }

    async fn report(&self, updates: Vec<(NodePath, Update)>) {
        if let Some(writer) = &self.ctx.progress
            && let Err(e) = writer.apply(updates, false).await
        {
            tracing::warn!(job = %self.spec.name, "progress of watch job not recorded: {e}");
        }
    }

    /// A watcher on every root whose events carry `generation`, so events of an
    /// older watcher (of a root that was removed) are told apart.
    fn watch(
        &self,
        events: &mpsc::UnboundedSender<Tagged>,
        generation: u64,
    ) -> notify::Result<notify::RecommendedWatcher> {
        let events = events.clone();
        let mut watcher = notify::recommended_watcher(move |e| {
            let _ = events.send((generation, e));
        })?;
        let mode =
            if self.spec.recursive { notify::RecursiveMode::Recursive } else { notify::RecursiveMode::NonRecursive };
        for root in &self.roots {
            watcher.watch(root, mode)?;
        }
        Ok(watcher)
    }

    /// Starts watching every root: done before the job's loop runs, so a job
    /// that started misses no change and a path that cannot be watched is an
    /// error at start.
    pub fn start_watching(&self) -> notify::Result<Watching> {
        let (events_tx, events) = mpsc::unbounded_channel();
        let watcher = self.watch(&events_tx, 0)?;
        Ok(Watching { watcher, events_tx, events })
    }

    /// Runs until told to stop.
    pub async fn run(self, watching: Watching, mut control: mpsc::UnboundedReceiver<Control>) {
        let Watching { watcher, events_tx, mut events } = watching;
        let mut filters: Vec<Filter> = self
            .roots
            .iter()
            .map(|r| {
                Filter::new(r, &self.spec.include, &self.spec.exclude, self.spec.ignore_files)
                    .expect("globs are validated")
            })
            .collect();
        let mut generation = 0;
        let mut watcher = Some(watcher);
        let mut watched = identity(&self.roots);
        let run = progress_run(&self.spec.name);
        let start = Update::new(Op::Start { total: None, weight: None })
            .with_message(format!("watching {}", self.root().display()))
            .with_metadata(json!({"roots": self.roots, "command": self.spec.command.argv}));
        let start = Update { on_failure: Some(FailurePolicy::Continue), ..start };
        self.report(vec![(run.clone(), start)]).await;

        let debounce = self.spec.debounce;
        let max_wait = (debounce * 10).max(Duration::from_secs(1));
        let mut batch = Batch::default();
        let (mut first_at, mut last_at) = (Instant::now(), Instant::now());
        let mut pending = Work::default();
        let mut current: Option<Current> = None;
        let mut rewatch = tokio::time::interval(REWATCH_EVERY);
        // Runs are numbered on from before a restart.
        let mut seq = self.state.lock().expect("job state").last.as_ref().map_or(0, |last| last.seq);
        let stopped = loop {
            let deadline = (last_at + debounce).min(first_at + max_wait);
            tokio::select! {
                Some((from, event)) = events.recv() => match event {
                    Ok(event) if event.need_rescan() => self.rescan(&mut pending, "the kernel dropped events (queue overflow)"),
                    Ok(event) => {
                        if from == generation && gone(&event, &self.roots) && watcher.take().is_some() {
                            self.say(format!("{} disappeared; watching again when it is back", self.root().display()));
                        }
                        if event.paths.iter().any(|p| filters.iter().any(|f| f.is_ignore_file(p))) {
                            filters.iter_mut().for_each(Filter::reload);
                        }
                        if batch.is_empty() {
                            first_at = Instant::now();
                        }
                        last_at = Instant::now();
                        batch.record(&event.kind, &event.paths, |path, dir| accepts(&filters, path, dir));
                    }
                    Err(e) => self.rescan(&mut pending, &format!("watcher error: {e}")),
                },
                () = tokio::time::sleep_until(deadline.into()), if !batch.is_empty() => {
                    let work = std::mem::take(&mut batch).settle(
                        |p| std::fs::symlink_metadata(p).ok().map(|m| m.is_dir()),
                        |dir| files_in(dir).into_iter().filter(|f| accepts(&filters, f, false)).collect(),
                    );
                    self.submit(work, &mut pending, &mut current);
                }
                ran = finished(&mut current) => {
                    let done = current.take().expect("a command was running");
                    self.finish(done, ran, &mut pending).await;
                }
                _ = rewatch.tick() => {
                    // A root removed (and maybe made again) leaves the old watch on a dead inode.
                    if watcher.is_some() && identity(&self.roots) != watched {
                        self.say(format!("{} disappeared; watching again when it is back", self.root().display()));
                        watcher = None;
                    }
                    if watcher.is_none() && self.roots.iter().all(|r| r.exists())
                        && let Ok(w) = self.watch(&events_tx, generation + 1)
                    {
                        generation += 1;
                        watcher = Some(w);
                        watched = identity(&self.roots);
                        filters.iter_mut().for_each(Filter::reload);
                        self.rescan(&mut pending, "a watched path came back");
                    }
                }
                message = control.recv() => match message {
                    Some(Control::Wake) => {}
                    Some(Control::Run) => self.submit(Work { manual: true, ..Work::default() }, &mut pending, &mut current),
                    Some(Control::Stop(reply)) => break Some(reply),
                    None => break None,
                },
            }
            if current.is_none() && !self.paused() {
                current = self.start_next(&mut pending, &mut seq).await;
            }
            self.publish(&pending, current.as_ref());
        };
        drop(watcher);
        if let Some(mut running) = current.take() {
            if let Some(stop) = running.stop.take() {
                let _ = stop.send("the host is stopping".into());
            }
            let ran = (&mut running.task).await;
            self.finish(running, ran, &mut Work::default()).await;
        }
        self.publish(&pending, None);
        if let Some(reply) = stopped {
            let _ = reply.send(());
        }
    }

    fn rescan(&self, pending: &mut Work, why: &str) {
        pending.rescan = true;
        let count = {
            let mut state = self.state.lock().expect("job state");
            state.rescans += 1;
            state.rescans
        };
        self.say(format!("rescan ({why}); the command runs for the whole tree"));
        let _ = self.ctx.events.send(JobEvent::Rescan {
            job: self.spec.name.clone(),
            root: self.root().into(),
            why: why.into(),
            count,
        });
    }

    /// Hands settled work on according to the busy policy.
    fn submit(&self, work: Work, pending: &mut Work, current: &mut Option<Current>) {
        if work.is_empty() {
            return;
        }
        let Some(running) = current.as_mut() else {
            pending.merge(work);
            return;
        };
        match self.spec.busy {
            Busy::Queue => {
                self.say(format!("busy: {} changed paths queued for the next run", work.paths()));
                pending.merge(work);
            }
            Busy::Skip => {
                self.state.lock().expect("job state").skipped += 1;
                let paths = work.paths();
                self.say(format!("busy: {paths} changed paths skipped"));
                let _ = self.ctx.events.send(JobEvent::Skipped {
                    job: self.spec.name.clone(),
                    root: self.root().into(),
                    paths,
                });
            }
            Busy::Restart => {
                pending.merge(work);
                if let Some(stop) = running.stop.take() {
                    self.say(format!("busy: restarting #{} for newer changes", running.seq));
                    running.restarting = true;
                    let _ = stop.send("restarted for newer changes".into());
                }
            }
        }
    }

    /// Starts the next run from `pending`, if there is one.
    async fn start_next(&self, pending: &mut Work, seq: &mut u64) -> Option<Current> {
        let (reason, command, paths, deleted, taken) = self.next(pending)?;
        *seq += 1;
        let seq = *seq;
        let node = progress_run(&self.spec.name)
            .child(&format!("exec-{:02}", (seq - 1) % KEEP_EXECUTIONS))
            .expect("a valid segment");
        let mut argv = command.argv.clone();
        let stdin = match self.spec.pass {
            Pass::Stdin => Some(
                serde_json::to_vec(&json!({
                    "job": self.spec.name, "root": self.root(), "reason": reason.as_str(), "seq": seq,
                    "paths": paths, "deleted": deleted,
                }))
                .expect("plain data"),
            ),
            Pass::Args | Pass::Each => {
                argv.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
                None
            }
            Pass::Env => None,
        };
        let (listed, cut) = path_lines(&paths);
        let invocation = Invocation {
            argv,
            workdir: self.spec.workdir.clone(),
            env: vec![
                ("MONITOR_WATCH_JOB".into(), self.spec.name.clone()),
                ("MONITOR_WATCH_ROOT".into(), self.root().to_string_lossy().into_owned()),
                ("MONITOR_WATCH_REASON".into(), reason.as_str().into()),
                ("MONITOR_WATCH_SEQ".into(), seq.to_string()),
                ("MONITOR_WATCH_PATHS".into(), listed),
                ("MONITOR_WATCH_PATHS_CUT".into(), if cut { "1" } else { "0" }.into()),
            ],
            stdin,
            echo: self.ctx.echo,
        };
        let started_ms = crate::sampler::now_ms();
        let what = match paths.as_slice() {
            [one] => one.display().to_string(),
            many => format!("{} paths", many.len()),
        };
        self.say(format!("#{seq} {}: {what} → {}", reason.as_str(), command.argv.join(" ")));
        let (stop, stopped) = oneshot::channel();
        let (timeout, grace) = (self.spec.timeout, self.spec.grace);
        let state = self.state.clone();
        let task = tokio::spawn(async move {
            match runner::spawn(&invocation) {
                Ok(running) => {
                    state.lock().expect("job state").pid = Some(running.pid());
                    running.wait(timeout, grace, stopped).await
                }
                Err(e) => Ran {
                    outcome: Ending::SpawnFailed { error: format!("{}: {e}", invocation.argv[0]) },
                    stdout: String::new(),
                    stderr: String::new(),
                },
            }
        });
        let shown: Vec<&PathBuf> = paths.iter().take(PATHS_IN_METADATA).collect();
        let update = Update::new(Op::Start { total: None, weight: None })
            .with_message(format!("#{seq} {}: {what}", reason.as_str()))
            .with_metadata(json!({
                "seq": seq, "reason": reason.as_str(), "paths": shown, "path_count": paths.len(),
                "outcome": null, "duration_ms": null,
            }));
        self.report(vec![(node.clone(), update)]).await;
        let _ = self.ctx.events.send(JobEvent::Started {
            job: self.spec.name.clone(),
            root: self.root().into(),
            seq,
            reason,
            paths: paths.clone(),
            started_ms,
        });
        Some(Current { seq, reason, paths, work: taken, started_ms, node, stop: Some(stop), restarting: false, task })
    }

    /// Takes the next run out of `pending`: its reason, command, paths, which of
    /// them are deletions, and the work it covers (to give back on a restart).
    #[allow(clippy::type_complexity)]
    fn next(&self, pending: &mut Work) -> Option<(Reason, CommandSpec, Vec<PathBuf>, Vec<PathBuf>, Work)> {
        if pending.is_empty() {
            return None;
        }
        let main = self.spec.command.clone();
        if pending.rescan || pending.manual {
            let reason = if pending.rescan { Reason::Rescan } else { Reason::Manual };
            let taken = std::mem::take(pending);
            return Some((reason, main, self.roots.clone(), Vec::new(), taken));
        }
        let delete = self.spec.on_delete.clone();
        if self.spec.pass == Pass::Each {
            if let Some(path) = pending.changed.pop_first() {
                let taken = Work { changed: [path.clone()].into(), ..Work::default() };
                return Some((Reason::Changes, main, vec![path], Vec::new(), taken));
            }
            let path = pending.deleted.pop_first()?;
            let taken = Work { deleted: [path.clone()].into(), ..Work::default() };
            return Some((Reason::Deletions, delete.unwrap_or(main), vec![path.clone()], vec![path], taken));
        }
        if !pending.changed.is_empty() {
            let mut taken = Work { changed: std::mem::take(&mut pending.changed), ..Work::default() };
            if delete.is_none() {
                taken.deleted = std::mem::take(&mut pending.deleted);
            }
            let paths = taken.changed.iter().chain(&taken.deleted).cloned().collect();
            let deleted = taken.deleted.iter().cloned().collect();
            return Some((Reason::Changes, main, paths, deleted, taken));
        }
        let taken = Work { deleted: std::mem::take(&mut pending.deleted), ..Work::default() };
        let paths: Vec<PathBuf> = taken.deleted.iter().cloned().collect();
        Some((Reason::Deletions, delete.unwrap_or(main), paths.clone(), paths, taken))
    }

    /// Records a finished run: state, progress node, event.
    async fn finish(&self, current: Current, ran: Result<Ran, tokio::task::JoinError>, pending: &mut Work) {
        let ran = ran.unwrap_or_else(|e| Ran {
            outcome: Ending::SpawnFailed { error: format!("the run's task failed: {e}") },
            stdout: String::new(),
            stderr: String::new(),
        });
        if current.restarting {
            // The interrupted run's paths go first; newer facts about them win.
            let newer = std::mem::replace(pending, current.work.clone());
            pending.merge(newer);
        }
        let execution = Execution {
            job: self.spec.name.clone(),
            root: self.root().into(),
            seq: current.seq,
            reason: current.reason,
            paths: current.paths,
            started_ms: current.started_ms,
            finished_ms: crate::sampler::now_ms(),
            outcome: ran.outcome,
            stdout_tail: ran.stdout,
            stderr_tail: ran.stderr,
        };
        let took = humantime::format_duration(Duration::from_millis(execution.duration_ms()));
        let mut message = format!("#{} {} in {took}", execution.seq, execution.outcome);
        if !execution.succeeded()
            && let Some(line) = execution.stderr_tail.lines().rev().find(|l| !l.trim().is_empty())
        {
            message.push_str(": ");
            message.push_str(&crate::text::line(line.trim(), 200));
        }
        self.say(message.clone());
        let op = match &execution.outcome {
            o if o.succeeded() => Op::Finish,
            Ending::Stopped { .. } => Op::Cancel,
            _ => Op::Fail,
        };
        let metadata = json!({"outcome": execution.outcome, "duration_ms": execution.duration_ms()});
        self.report(vec![(current.node, Update::new(op).with_message(message).with_metadata(metadata))]).await;
        let saved = {
            let mut state = self.state.lock().expect("job state");
            state.pid = None;
            state.runs += 1;
            if !execution.succeeded() && !matches!(execution.outcome, Ending::Stopped { .. }) {
                state.failures += 1;
            }
            state.last = Some(execution.clone());
            Saved {
                runs: state.runs,
                failures: state.failures,
                rescans: state.rescans,
                skipped: state.skipped,
                last: state.last.clone(),
            }
        };
        if let Some(store) = self.ctx.store.clone() {
            let name = self.spec.name.clone();
            let json = serde_json::to_string(&saved).expect("plain data");
            let stored = tokio::task::spawn_blocking(move || store.put_watch_job(&name, &json)).await;
            if let Ok(Err(e)) = stored {
                tracing::warn!(job = %self.spec.name, "what the job did is not kept across a restart: {e}");
            }
        }
        let _ = self.ctx.events.send(JobEvent::Finished(Box::new(execution)));
    }

    fn publish(&self, pending: &Work, current: Option<&Current>) {
        let mut state = self.state.lock().expect("job state");
        state.queued = pending.paths() + usize::from(pending.rescan || pending.manual);
        state.state = match (current.is_some(), state.paused) {
            (true, _) => "running",
            (false, true) => "paused",
            (false, false) => "idle",
        }
        .into();
    }
}

/// Most bytes of paths put in `MONITOR_WATCH_PATHS` (the kernel refuses one
/// environment string over 128 KiB); past it the list is cut at a whole line
/// and `MONITOR_WATCH_PATHS_CUT=1` says so.
const PATHS_ENV_BYTES: usize = 64 * 1024;

/// The paths one a line, within [`PATHS_ENV_BYTES`], and whether some were left out.
fn path_lines(paths: &[PathBuf]) -> (String, bool) {
    let mut out = String::new();
    for path in paths {
        let line = path.to_string_lossy();
        if out.len() + line.len() + 1 > PATHS_ENV_BYTES {
            return (out, true);
        }
        out.push_str(&line);
        out.push('\n');
    }
    (out, false)
}

fn accepts(filters: &[Filter], path: &Path, dir: bool) -> bool {
    filters.iter().filter(|f| path.starts_with(f.root())).any(|f| f.accepts(path, dir))
}

async fn finished(current: &mut Option<Current>) -> Result<Ran, tokio::task::JoinError> {
    match current {
        Some(c) => (&mut c.task).await,
        None => std::future::pending().await,
    }
}

/// Whether `event` says a root itself was removed or moved away.
fn gone(event: &notify::Event, roots: &[PathBuf]) -> bool {
    use notify::event::{ModifyKind, RenameMode};
    matches!(event.kind, notify::EventKind::Remove(_) | notify::EventKind::Modify(ModifyKind::Name(RenameMode::From)))
        && event.paths.iter().any(|p| roots.contains(p))
}

/// Which inodes the roots are, to notice one that was removed and made again.
fn identity(roots: &[PathBuf]) -> Vec<Option<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    roots.iter().map(|r| std::fs::metadata(r).ok().map(|m| (m.dev(), m.ino()))).collect()
}

/// Every file below `dir`, ignore files not consulted (the filter decides).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .build()
        .flatten()
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .map(ignore::DirEntry::into_path)
        .collect()
}
