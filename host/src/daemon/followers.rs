//! The processes that progress nodes follow (`--pid`, `"pid"` in the API), read at
//! every process sample: each node's figures go to the progress writer as a
//! `resources` update when they change.

use std::collections::HashMap;

use crate::progress::{NodePath, Op, Resources, Update};
use crate::sampler::ProcessSample;
use crate::sampler::follow::{Attach, Follow, Table};
use crate::store::{Store, StoreError};

#[derive(Default)]
pub struct Followers {
    /// By node path: what was attached, the tree followed, and the figures last sent.
    follows: HashMap<String, (Attach, Follow, Option<Resources>)>,
}

impl Followers {
    /// The updates that bring each followed node's figures up to date with `table`.
    /// A node whose processes have all ended is let go ([`Store::progress_unfollow`]).
    pub fn observe(
        &mut self,
        store: &Store,
        table: &[ProcessSample],
        at_ms: u64,
    ) -> Result<Vec<(NodePath, Update)>, StoreError> {
        let followed = store.progress_followed()?;
        let live: std::collections::HashSet<&str> = followed.iter().map(|(n, _)| n.path.as_str()).collect();
        self.follows.retain(|path, _| live.contains(path.as_str()));
        let table = Table::new(table);
        let (mut updates, mut over) = (Vec::new(), Vec::new());
        for (node, attach) in followed {
            // A parent that reads finished between two phases may run again: keep it, skip it.
            if node.status.is_terminal() {
                continue;
            }
            let key = node.path.to_string();
            if self.follows.get(&key).map(|(a, _, _)| a) != Some(&attach) {
                // A reporter may attach the shell that started the host: the host is not its work.
                let follow = Follow::new(&attach).at_least(node.resources).skipping(std::process::id());
                self.follows.insert(key.clone(), (attach, follow, node.resources));
            }
            let (_, follow, sent) = self.follows.get_mut(&key).expect("inserted above");
            let now = follow.observe(&table, at_ms);
            if *sent != Some(now) {
                *sent = Some(now);
                let mut update = Update::new(Op::Resources);
                update.resources = Some(now);
                updates.push((node.path.clone(), update));
            }
            if follow.is_over() {
                over.push(node.path);
            }
        }
        if !over.is_empty() {
            store.progress_unfollow(&over)?;
        }
        Ok(updates)
    }
}
