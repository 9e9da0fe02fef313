//! The read side the API and the offline client share: what a question about
//! the database answers, and its error when it has no answer.

use serde::{Deserialize, Serialize};

use crate::error::{CommandError, CommandResult, ErrorKind};
use crate::paths::DataDir;
use crate::progress::Node;
use crate::store::Store;
use crate::store::metrics::SeriesListing;
use crate::store::progress::ProgressEvent;

/// A run's nodes, each with its resources or else its children's summed
/// ([`crate::progress::roll_up`]), or an error naming the runs there are.
pub fn tree(store: &Store, run: &str) -> CommandResult<Vec<Node>> {
    let mut nodes = store.progress_tree(run)?;
    crate::progress::roll_up(&mut nodes);
    with_pace(&mut nodes);
    if nodes.is_empty() {
        let runs: Vec<String> = store.progress_runs()?.iter().map(|n| n.path.to_string()).collect();
        let runs = if runs.is_empty() { "none".into() } else { runs.join(", ") };
        return Err(CommandError::new(ErrorKind::NotFound, format!("no run named '{run}'; runs: {runs}")));
    }
    Ok(nodes)
}

/// Every run's root, with its pace.
pub fn runs(store: &Store) -> CommandResult<Vec<Node>> {
    let mut runs = store.progress_runs()?;
    with_pace(&mut runs);
    Ok(runs)
}

/// Each node's [`Node::pace_at`] now, for readers that do not compute it (the dashboard, scripts).
fn with_pace(nodes: &mut [Node]) {
    let now = crate::sampler::now_ms();
    for node in nodes {
        node.pace = Some(node.pace_at(now)).filter(|p| *p != crate::progress::Pace::default());
    }
}

/// The nodes [`crate::progress::gauges`] exposes: of runs still going or just
/// finished, down to `depth`, resources rolled up.
pub fn exposed_nodes(store: &Store, depth: usize) -> Result<Vec<Node>, crate::store::StoreError> {
    let now = crate::sampler::now_ms();
    let mut out = Vec::new();
    if depth == 0 {
        return Ok(out);
    }
    for run in store.progress_runs()?.into_iter().filter(|r| crate::progress::gauges::exposed(r, now)) {
        let mut nodes = store.progress_tree(run.path.as_str())?;
        crate::progress::roll_up(&mut nodes);
        out.extend(nodes.into_iter().filter(|n| n.path.depth() <= depth));
    }
    Ok(out)
}

/// Every series, and how much disk the database takes.
pub fn series_listing(store: &Store, data: &DataDir) -> CommandResult<SeriesListing> {
    let database_bytes = std::fs::metadata(data.database()).map_or(0, |m| m.len());
    Ok(SeriesListing { series: store.metrics_series()?, database_bytes })
}

/// A run's events after `since`, or an error naming the runs there are.
pub fn history(store: &Store, run: &str, since: u64) -> CommandResult<Vec<ProgressEvent>> {
    tree(store, run)?;
    Ok(store.progress_events(run, since)?)
}

/// One key of a plugin's key-value store, its value as text when it is UTF-8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvEntry {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The value as hex when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    pub bytes: usize,
}

impl KvEntry {
    pub fn new(key: String, value: Vec<u8>) -> KvEntry {
        let bytes = value.len();
        match String::from_utf8(value) {
            Ok(text) => KvEntry { key, text: Some(text), hex: None, bytes },
            Err(e) => {
                let hex = e.into_bytes().iter().map(|b| format!("{b:02x}")).collect();
                KvEntry { key, text: None, hex: Some(hex), bytes }
            }
        }
    }
}
