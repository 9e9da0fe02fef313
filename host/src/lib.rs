//! `monitor`: a monitoring host extended with sandboxed WebAssembly plugins.
//!
//! The daemon ([`daemon`]) owns the data directory and runs the [`plugin`]
//! manager; every other command goes through one [`client::Client`], which talks
//! to the daemon's [`api`] when it runs and to the [`store`] when it does not.
//!
//! The modules are in layers, each using only its own and those below it;
//! ARCHITECTURE.md at the top of the repository has the table, the flow of a
//! tick and of a progress update, and where to change what. The
//! `architecture` test keeps the table true.

pub mod access;
pub mod alerts;
pub mod api;
#[cfg(test)]
mod architecture;
#[cfg(test)]
mod boundaries;
pub mod cli;
pub mod client;
pub mod config;
pub(crate) mod daemon;
pub(crate) mod error;
pub mod exposition;
pub mod fleet;
pub(crate) mod history;
pub mod lock;
pub mod metrics;
pub mod paths;
pub mod plugin;
pub mod progress;
pub(crate) mod query;
pub mod sampler;
pub(crate) mod sched;
pub(crate) mod status;
pub mod store;
pub(crate) mod stream;
pub(crate) mod text;
pub mod tls;
pub(crate) mod top;
pub mod watch;
pub(crate) mod writer;
