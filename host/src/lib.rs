//! `monitor`: a monitoring host extended with sandboxed WebAssembly plugins.
//!
//! The daemon ([`daemon`]) owns the data directory and runs the [`plugin`]
//! manager; every other command goes through one [`client::Client`], which talks
//! to the daemon's [`api`] when it runs and to the [`store`] when it does not.

pub mod alerts;
pub mod api;
#[cfg(test)]
mod boundaries;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod exposition;
pub mod history;
pub mod lock;
pub mod metrics;
pub mod paths;
pub mod plugin;
pub mod progress;
pub mod sampler;
pub mod sched;
pub mod status;
pub mod store;
pub mod stream;
pub mod text;
pub mod top;
pub mod watch;
pub mod writer;
