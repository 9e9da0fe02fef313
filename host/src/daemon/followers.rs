//! The processes that progress nodes follow (`--pid`, `"pid"` in the API), read in
//! each process table (one at a time: a table that comes while the last is still
//! being read is skipped): each node's figures go to the progress writer as a
//! `resources` update when they change.

use std::collections::HashMap;
use std::sync::Arc;

use crate::progress::{NodePath, Op, Resources, Update};
use crate::sampler::ProcessSample;
use crate::sampler::follow::{Attach, Follow, Table};
use crate::store::{Store, StoreError};
use crate::writer::Writer;

/// The followed nodes, observed off the tick one process table at a time: a
/// table that finds them locked is skipped, so tables are never observed out of
/// order nor pile up behind a slow database.
#[derive(Clone, Default)]
pub struct Followers(Arc<tokio::sync::Mutex<Follows>>);

impl Followers {
    /// Brings the followed nodes' figures up to date with `table`, sampled at
    /// `at_ms`, on a blocking thread; the writer stores them. Skipped while the
    /// previous table is still being observed.
    pub fn observe_soon(&self, store: &Store, writer: &Writer, table: Arc<Vec<ProcessSample>>, at_ms: u64) {
        // Held until the figures are stored, released however the task ends.
        let Ok(mut follows) = self.0.clone().try_lock_owned() else {
            return;
        };
        let (store, writer) = (store.clone(), writer.clone());
        tokio::spawn(async move {
            let observed = tokio::task::spawn_blocking(move || {
                let updates = follows.observe(&store, &table, at_ms);
                (follows, updates)
            })
            .await;
            let (_held, observed) = match observed {
                Ok(observed) => observed,
                Err(e) => return tracing::error!("following processes stopped: {e}"),
            };
            match observed {
                Ok(updates) if updates.is_empty() => {}
                Ok(updates) => {
                    if let Err(e) = writer.apply(updates, false).await {
                        tracing::warn!("recording the followed processes' resources: {e}");
                    }
                }
                Err(e) => tracing::error!("reading the nodes that follow processes: {e}"),
            }
        });
    }
}

#[derive(Default)]
struct Follows {
    /// By node path: what was attached, the tree followed, and the figures last sent.
    by_path: HashMap<String, (Attach, Follow, Option<Resources>)>,
}

impl Follows {
    /// The updates that bring each followed node's figures up to date with `table`.
    /// A node whose processes have all ended is let go ([`Store::progress_unfollow`]).
    fn observe(
        &mut self,
        store: &Store,
        table: &[ProcessSample],
        at_ms: u64,
    ) -> Result<Vec<(NodePath, Update)>, StoreError> {
        let followed = store.progress_followed()?;
        let live: std::collections::HashSet<&str> = followed.iter().map(|(n, _)| n.path.as_str()).collect();
        self.by_path.retain(|path, _| live.contains(path.as_str()));
        let table = Table::new(table);
        let (mut updates, mut over) = (Vec::new(), Vec::new());
        for (node, attach) in followed {
            // A parent that reads finished between two phases may run again: keep it, skip it.
            if node.status.is_terminal() {
                continue;
            }
            let key = node.path.to_string();
            if self.by_path.get(&key).map(|(a, _, _)| a) != Some(&attach) {
                // A reporter may attach the shell that started the host: the host is not its work.
                let follow = Follow::new(&attach).at_least(node.resources).skipping(std::process::id());
                self.by_path.insert(key.clone(), (attach, follow, node.resources));
            }
            let (_, follow, sent) = self.by_path.get_mut(&key).expect("inserted above");
            let now = follow.observe(&table, at_ms);
            if *sent != Some(now) {
                *sent = Some(now);
                let mut update = Update::new(Op::Resources);
                update.resources = Some(now);
                updates.push((node.path.clone(), update));
            }
            if follow.is_over() {
                over.push((node.path, attach));
            }
        }
        // The figures go out even if this fails: the next table tries again.
        if !over.is_empty() {
            match store.progress_unfollow(&over) {
                Ok(()) => {
                    for (path, attach) in &over {
                        tracing::info!("{path}: process {} and everything it started have ended", attach.pid);
                    }
                }
                Err(e) => tracing::error!("letting go of the nodes whose processes ended: {e}"),
            }
        }
        Ok(updates)
    }
}
