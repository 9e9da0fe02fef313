//! `monitor run`.

use std::path::PathBuf;

use clap::Args;

use super::UsageError;
use crate::config::HostConfig;
use crate::daemon;
use crate::error::CommandResult;
use crate::paths::DataDir;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plugin directory: every `NAME.wasm` in it, configured by `NAME.toml` beside it
    /// [default: plugins.dir from the config, else DATA_DIR/plugins]
    #[arg(long, value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// The host configuration (TOML); every setting has a default.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(data: DataDir, args: RunArgs) -> CommandResult<()> {
    let config = match &args.config {
        Some(path) => HostConfig::load(path).map_err(|e| UsageError(e.to_string()))?,
        None => HostConfig::default(),
    };
    let plugins_dir = args.plugins.or_else(|| config.plugins.dir.clone()).unwrap_or_else(|| data.root.join("plugins"));
    if !plugins_dir.is_dir() {
        return Err(UsageError(format!(
            "plugin directory {} does not exist; create it or pass --plugins DIR",
            plugins_dir.display()
        ))
        .into());
    }
    // The tick runs on this thread (`block_on`) with a short slice; the runtime's
    // own threads, some started from it, are ordinary work.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(crate::sched::ordinary)
        .enable_all()
        .build()?;
    runtime.block_on(daemon::run(daemon::Options { data, plugins_dir, config }))
}
