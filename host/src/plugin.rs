//! Sandboxed WebAssembly plugins: the engine, loading, the sandbox, grants, one
//! actor per plugin, and the manager that runs a directory of them.

pub mod actor;
pub mod bindings;
pub mod capability;
pub mod deadline;
pub mod engine;
pub mod fault;
pub mod http;
pub mod instance;
pub mod load;
pub mod manager;
pub mod record;
pub mod sandbox;
pub mod stats;
pub mod wait;

pub use bindings::{CONTRACT_PACKAGE, CONTRACT_VERSION};
pub use capability::Grant;
pub use engine::Runtime;
pub use instance::{Fault, Limits};
pub use manager::{Listing, Manager, ManagerError, Problem, Settings};
pub use record::{PluginRecord, PluginState, Role};
