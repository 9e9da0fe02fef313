//! Group commit: the daemon's one writer of progress updates.
//!
//! Every API request hands its updates to one thread, which applies whatever has
//! queued up meanwhile in a single write transaction (one commit, one fsync for
//! all of them) and only then answers each request. With one reporter a batch is
//! one request and the latency is one commit; with many, batches grow and share
//! the fsync, so throughput rises with load while every update the API
//! acknowledged is already on disk.
//!
//! The same thread prunes old events between batches, so pruning never races a
//! write.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::plugin::Manager;
use crate::progress::{Applied, Node, NodePath, Update, UpdateError};
use crate::store::Store;
use crate::store::progress::{Calculator, Retention};
use crate::stream::Hub;

/// Most updates applied in one transaction; more wait for the next one.
pub const MAX_BATCH: usize = 8192;
/// Requests that may wait for the writer before senders wait too.
const QUEUE: usize = 1024;

/// One update's fate: what it did and, when asked for, the node afterwards.
pub type Reply = Result<(Applied, Option<Node>), UpdateError>;

/// Why a batch was not stored: nothing of it was acknowledged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    /// The database cannot take writes for now (a full or failing disk); try again later.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

impl crate::error::Classified for WriteError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            WriteError::Unavailable(_) => crate::error::ErrorKind::Unavailable,
            WriteError::Failed(_) => crate::error::ErrorKind::Failed,
        }
    }
}

enum Task {
    Apply { updates: Vec<(NodePath, Update)>, read_back: bool, reply: oneshot::Sender<Result<Vec<Reply>, WriteError>> },
    Prune { retention: Retention, reply: oneshot::Sender<Result<u64, String>> },
}

/// A handle on the writer thread; clones share it. The thread ends when the
/// last handle is dropped, after finishing what was queued.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Task>,
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer; `calculator` runs the progress-calculator plugins.
    /// The thread's handle lets a clean stop wait for the last commit.
    /// Each commit's events go to `hub`'s stream once they are on disk.
    pub fn start(
        store: Store,
        calculator: Option<Box<dyn Calculator + Send>>,
        hub: Hub,
    ) -> std::io::Result<(Writer, std::thread::JoinHandle<()>)> {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        let thread = std::thread::Builder::new().name("progress-writer".into()).spawn(move || {
            let committed =
                Committed { calculator: calculator.as_deref().map(|c| c as &dyn Calculator), hub, commits: &counter };
            run(&store, &committed, jobs)
        })?;
        Ok((Writer { queue, commits }, thread))
    }

    /// How many commits changed progress so far: readers that cache the tree
    /// re-read it only when this moved.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// Applies `updates` in order and answers once they are committed. With
    /// `read_back`, each accepted update also returns its node as committed.
    pub async fn apply(&self, updates: Vec<(NodePath, Update)>, read_back: bool) -> Result<Vec<Reply>, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.send(Task::Apply { updates, read_back, reply }, answer).await.map_err(WriteError::Failed)?
    }

    /// Removes events that `retention` no longer keeps; how many went.
    pub async fn prune(&self, retention: Retention) -> Result<u64, String> {
        let (reply, answer) = oneshot::channel();
        self.send(Task::Prune { retention, reply }, answer).await?
    }

    async fn send<T>(&self, job: Task, answer: oneshot::Receiver<T>) -> Result<T, String> {
        self.queue.send(job).await.map_err(|_| "the progress writer has stopped".to_string())?;
        answer.await.map_err(|_| "the progress writer stopped before answering".to_string())
    }
}

/// What each commit involves besides the store.
struct Committed<'a> {
    calculator: Option<&'a dyn Calculator>,
    hub: Hub,
    commits: &'a AtomicU64,
}

fn run(store: &Store, committed: &Committed, mut jobs: mpsc::Receiver<Task>) {
    let mut waiting = None;
    loop {
        let Some(first) = waiting.take().or_else(|| jobs.blocking_recv()) else {
            return;
        };
        let (updates, read_back, reply) = match first {
            Task::Prune { retention, reply } => {
                let _ = reply.send(prune(store, &retention));
                continue;
            }
            Task::Apply { updates, read_back, reply } => (updates, read_back, reply),
        };
        // Take everything else already queued, up to the batch size.
        let mut batch = updates;
        let mut requests = vec![(0..batch.len(), read_back, reply)];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(Task::Apply { updates, read_back, reply }) => {
                    let start = batch.len();
                    batch.extend(updates);
                    requests.push((start..batch.len(), read_back, reply));
                }
                Ok(prune) => {
                    waiting = Some(prune);
                    break;
                }
                Err(_) => break,
            }
        }
        commit(store, committed, &batch, requests);
    }
}

type Queued = (std::ops::Range<usize>, bool, oneshot::Sender<Result<Vec<Reply>, WriteError>>);

fn commit(store: &Store, committed: &Committed, batch: &[(NodePath, Update)], requests: Vec<Queued>) {
    let now = crate::sampler::now_ms();
    let results = match store.progress_apply_with(batch, now, committed.calculator) {
        Ok((results, events)) => {
            committed.commits.fetch_add(1, Ordering::Release);
            committed.hub.publish_progress(&events);
            results
        }
        Err(e) => {
            tracing::error!("progress commit of {} updates failed: {e}", batch.len());
            let refused = match e.is_unavailable() {
                true => WriteError::Unavailable(e.to_string()),
                false => WriteError::Failed(format!("the database refused the update: {e}")),
            };
            for (_, _, reply) in requests {
                let _ = reply.send(Err(refused.clone()));
            }
            return;
        }
    };
    for (range, read_back, reply) in requests {
        let answer = range
            .map(|i| {
                let applied = results[i].clone()?;
                let node = if read_back { store.progress_node(&batch[i].0).ok().flatten() } else { None };
                Ok((applied, node))
            })
            .collect();
        let _ = reply.send(Ok(answer));
    }
}

fn prune(store: &Store, retention: &Retention) -> Result<u64, String> {
    let now = crate::sampler::now_ms();
    let removed = store.progress_prune(retention, now).map_err(|e| e.to_string())?;
    if removed > 0 {
        tracing::info!(removed, "old progress events pruned");
    }
    Ok(removed)
}

/// How often the daemon asks the writer to prune.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Runs the progress-calculator plugins of the daemon's manager from the writer
/// thread. A plugin that cannot be called is reported once, not on every update.
pub struct PluginCalculator {
    manager: Arc<Manager>,
    runtime: tokio::runtime::Handle,
    failing: Mutex<HashSet<String>>,
}

impl PluginCalculator {
    pub fn new(manager: Arc<Manager>, runtime: tokio::runtime::Handle) -> PluginCalculator {
        PluginCalculator { manager, runtime, failing: Mutex::default() }
    }
}

impl Calculator for PluginCalculator {
    fn compute(&self, plugin: &str, parent: &Node, children: &[Node]) -> Option<(f64, Option<f64>)> {
        let result = self.runtime.block_on(self.manager.compute(plugin, parent, children));
        let mut failing = self.failing.lock().expect("failing lock");
        match result {
            Ok(estimate) => {
                failing.remove(plugin);
                Some(estimate)
            }
            Err(e) => {
                if failing.insert(plugin.to_string()) {
                    tracing::warn!(plugin, "progress calculator unavailable, using the default aggregation: {e}");
                }
                None
            }
        }
    }
}
