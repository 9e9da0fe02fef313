//! The read side the API and the offline client share: what a question about
//! the database answers, and its error when it has no answer.

use serde::{Deserialize, Serialize};

use crate::error::{CommandError, CommandResult, ErrorKind};
use crate::paths::DataDir;
use crate::progress::Node;
use crate::store::Store;
use crate::store::metrics::SeriesListing;
use crate::store::progress::ProgressEvent;

/// A run's nodes, or an error naming the runs there are.
pub fn tree(store: &Store, run: &str) -> CommandResult<Vec<Node>> {
    let nodes = store.progress_tree(run)?;
    if nodes.is_empty() {
        let runs: Vec<String> = store.progress_runs()?.iter().map(|n| n.path.to_string()).collect();
        let runs = if runs.is_empty() { "none".into() } else { runs.join(", ") };
        return Err(CommandError::new(ErrorKind::NotFound, format!("no run named '{run}'; runs: {runs}")));
    }
    Ok(nodes)
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
