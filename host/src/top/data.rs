//! Fetching on a thread of its own, so a slow or unreachable host never holds up
//! the keys: it sends a [`Fetched`] per fetch and carries out acknowledgements.
//!
//! Without `--url` every fetch looks for the running host first, so `top` follows a
//! host that starts or stops while it runs. With no host the machine is sampled
//! here and runs, alerts and plugins are read from the database, which is opened
//! for each fetch and closed at once: `top` never keeps other commands (or a host
//! starting) from the database.
//!
//! The first fetch also reads the stored metric history for the sparklines (from
//! the host, or from the database when none runs); without it they start empty.
//! With `--format PLUGIN` every fetch asks the host for its status rendered by the
//! plugin; that failing fails only the custom panel. The host's watch jobs come
//! with every fetch too; failing to read them fails only their section (without a
//! host there are none).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::filter::order_runs;
use super::history::History;
use super::model::{Data, Origin};
use crate::client::{Client, Local, Remote};
use crate::error::CommandResult;
use crate::paths::DataDir;
use crate::sampler::Sampler;

/// Finished runs shown below the ones still going, most recent first.
const FINISHED_RUNS: usize = 20;

/// CPU use is a difference between two readings this far apart: closer, and a
/// process's few clock ticks make its percentage jump.
const FIRST_READING: Duration = Duration::from_millis(250);

/// Where the data comes from.
pub enum Source {
    /// This machine: its running host if there is one, else the machine and the database.
    Here(DataDir),
    /// A host elsewhere, by its URL.
    Remote { url: String, client: Remote },
}

#[derive(Debug)]
pub enum Fetched {
    Data(Box<Data>, Origin),
    /// The stored history for the sparklines, just before the first data.
    History(Box<History>),
    /// A fetch failed; the screen keeps the last data.
    Failed(String),
    /// An acknowledgement: the alert's id, or why it was refused.
    Acked(Result<String, String>),
}

#[derive(Debug)]
pub enum Ask {
    Ack(String),
}

/// What the fetching thread fetches and how often.
pub struct FetchPlan {
    pub source: Source,
    pub interval: Duration,
    /// Who acknowledges alerts.
    pub by: String,
    /// The display-formatter plugin of the custom panel.
    pub format: Option<String>,
}

/// Starts the fetching thread; it fetches at once, then every `interval` and right
/// after each request. It ends when the returned receiver is dropped.
pub fn spawn(plan: FetchPlan) -> (Sender<Ask>, Receiver<Fetched>) {
    let (request_tx, requests) = mpsc::channel();
    let (messages, message_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("top-fetch".into())
        .spawn(move || fetch_loop(&plan, &requests, &messages))
        .expect("starting the fetching thread");
    (request_tx, message_rx)
}

fn fetch_loop(plan: &FetchPlan, requests: &Receiver<Ask>, out: &Sender<Fetched>) {
    let FetchPlan { source, interval, by, format } = plan;
    let interval = *interval;
    let mut sampler = None;
    let mut prefilled = false;
    loop {
        let message = match fetch(source, &mut sampler, format.as_deref()) {
            Ok((data, origin)) => {
                if !std::mem::replace(&mut prefilled, true) {
                    let at = data.snapshot.timestamp_ms;
                    if let Ok(history) = with_client(source, |client| History::fetch(client, at, interval))
                        && out.send(Fetched::History(Box::new(history))).is_err()
                    {
                        return;
                    }
                }
                Fetched::Data(Box::new(data), origin)
            }
            Err(e) => Fetched::Failed(format!("{e:#}")),
        };
        if out.send(message).is_err() {
            return;
        }
        let next = Instant::now() + interval;
        match requests.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(Ask::Ack(id)) => {
                let outcome = with_client(source, |client| client.ack(&id, by, "from monitor top"))
                    .map(|_| id)
                    .map_err(|e| format!("{e:#}"));
                if out.send(Fetched::Acked(outcome)).is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Runs `f` on a client for `source`: the host, or the database opened for this call.
fn with_client<T>(source: &Source, f: impl FnOnce(&dyn Client) -> CommandResult<T>) -> CommandResult<T> {
    match source {
        Source::Remote { client, .. } => f(client),
        Source::Here(data) => match Remote::find(data)? {
            Some(remote) => f(&remote),
            None => f(&Local::open(data, None)?),
        },
    }
}

fn fetch(source: &Source, sampler: &mut Option<Sampler>, format: Option<&str>) -> CommandResult<(Data, Origin)> {
    match source {
        Source::Remote { url, client } => Ok((fetch_all(client, format)?, Origin::Remote(url.clone()))),
        Source::Here(data) => {
            if let Some(remote) = Remote::find(data)? {
                *sampler = None;
                return Ok((fetch_all(&remote, format)?, Origin::Daemon));
            }
            let sampler = sampler.get_or_insert_with(|| {
                let mut sampler = Sampler::new();
                sampler.processes();
                std::thread::sleep(FIRST_READING);
                sampler
            });
            let snapshot = sampler.sample();
            let processes = sampler.processes();
            let local = Local::open(data, None)?;
            let (runs, alerts, plugins) = persisted(&local)?;
            // The database client says formatting needs the running host.
            let custom = format.map(|plugin| formatted(&local, plugin));
            let data = Data { snapshot, processes, runs, alerts, plugins, custom, ..Data::default() };
            Ok((data, Origin::Local))
        }
    }
}

fn fetch_all(client: &dyn Client, format: Option<&str>) -> CommandResult<Data> {
    let snapshot = client.resources()?;
    let processes = client.processes()?;
    let (runs, alerts, plugins) = persisted(client)?;
    let custom = format.map(|plugin| formatted(client, plugin));
    let (jobs, jobs_error) = match client.jobs() {
        Ok(jobs) => (jobs, None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    Ok(Data { snapshot, processes, runs, alerts, plugins, custom, jobs, jobs_error })
}

/// The status as `plugin` renders it, or why not, in one line.
fn formatted(client: &dyn Client, plugin: &str) -> Result<String, String> {
    client.status(Some(plugin)).map_err(|e| format!("{e:#}"))
}

type Persisted = (Vec<Vec<crate::progress::Node>>, Vec<crate::alerts::Alert>, Vec<crate::plugin::PluginRecord>);

/// Runs (with the trees of those still going), alerts and plugins.
fn persisted(client: &dyn Client) -> CommandResult<Persisted> {
    let mut roots = client.runs()?;
    roots.sort_by(order_runs);
    let live = roots.iter().filter(|r| !r.status.is_terminal()).count();
    roots.truncate(live + FINISHED_RUNS);
    let runs = roots
        .into_iter()
        .map(|root| {
            if root.status.is_terminal() {
                return vec![root];
            }
            // A run removed between the two reads shows as it was listed.
            client.tree(root.path.as_str()).unwrap_or_else(|_| vec![root])
        })
        .collect();
    Ok((runs, client.alerts(None)?, client.listing()?.plugins))
}
