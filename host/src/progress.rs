//! Progress of long-running work, as a tree of nodes.
//!
//! A **run** is one execution of a pipeline, named by the first segment of a
//! [`NodePath`] (`train-42`). Below it any number of levels of **nodes** (phase,
//! step, substep, ...) are named by longer paths (`train-42/build/compile`).
//! Each node has a [`Status`], done/total units, a progress fraction,
//! timestamps, a message and free-form metadata.
//!
//! Reporters change a node only by sending [`Update`]s to [`Node::apply`]; the
//! rules are documented in [`node`]. In short: bad input is refused and changes
//! nothing; a finished node ignores everything but a new `Start` (a re-run);
//! done is clamped to the total; progress stays within 0..=1.
//!
//! A parent's progress and status come from its children through the pure
//! [`aggregate()`] under a [`FailurePolicy`], and [`Rate`] turns recent samples of
//! `done` into a speed and an ETA. This module holds no I/O: storing nodes and
//! serving them is the store's and the API's job.

pub mod aggregate;
mod exact;
pub mod gauges;
pub mod node;
pub mod path;
pub mod rate;
pub mod resources;

pub use aggregate::{Aggregate, Children, FailurePolicy, aggregate};
pub use node::{Applied, Node, Op, Pace, Status, Update, UpdateError};
pub use path::{NodePath, PathError};
pub use rate::Rate;
pub use resources::{Resources, roll_up};
