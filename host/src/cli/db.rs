//! `monitor db check`: verifies the database file while no host runs.

use clap::Subcommand;

use crate::paths::DataDir;
use crate::store::{Store, StoreError};

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Verify the database: every page (redb repairs what it can) and every
    /// record. The host must be stopped.
    Check,
}

pub fn run(data: &DataDir, command: DbCommand) -> anyhow::Result<()> {
    match command {
        DbCommand::Check => check(data),
    }
}

fn check(data: &DataDir) -> anyhow::Result<()> {
    let path = data.database();
    if !path.exists() {
        println!("{}: no database yet (the host makes one at its first start)", path.display());
        return Ok(());
    }
    let store = match Store::open_checked(&path) {
        Ok(store) => store,
        Err(StoreError::Locked { .. }) => anyhow::bail!(
            "database {} is in use by the running host; stop it first ('monitor db check' needs the file to itself)",
            path.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let plugins = store.plugins()?.len();
    let runs = store.progress_runs()?;
    let (mut nodes, mut events) = (0, 0);
    for run in &runs {
        nodes += store.progress_tree(run.path.as_str())?.len();
        events += store.progress_events(run.path.as_str(), 0)?.len();
    }
    let alerts = store.alerts_saved()?.instances.len();
    let history = store.alerts_history(0, 0, usize::MAX)?.len();
    let series = store.metrics_series()?.len();
    println!("{}: ok", path.display());
    println!("  schema version  {}", store.schema_version()?);
    println!("  plugins         {plugins}");
    println!("  runs            {} ({nodes} nodes, {events} events)", runs.len());
    println!("  alerts          {alerts} active, {history} in the history");
    println!("  metric series   {series}");
    Ok(())
}
