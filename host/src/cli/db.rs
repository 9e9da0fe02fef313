//! `monitor db`: verify the database file while no host runs, see what takes
//! its space, and give freed space back.

use clap::Subcommand;

use super::resources::bytes;
use crate::error::{CommandError, CommandResult, ErrorKind};
use crate::paths::DataDir;
use crate::store::space::Space;
use crate::store::{Store, StoreError};

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Verify the database: every page (redb repairs what it can) and every
    /// record. The host must be stopped.
    Check,
    /// What takes the database's space: by table, and the metric history by
    /// plugin. Through the running host if there is one.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give the pages retention freed back to the file system (the file never
    /// shrinks by itself; its free pages are reused). Through the running host
    /// if there is one; everything else that uses the database waits meanwhile.
    Compact,
}

pub fn run(data: &DataDir, command: DbCommand) -> CommandResult<()> {
    match command {
        DbCommand::Check => check(data),
        DbCommand::Stats { json } => {
            let space = crate::client::connect(data, None)?.space()?;
            if json {
                super::print_json(&space)?;
            } else {
                print!("{}", render(&space));
            }
            Ok(())
        }
        DbCommand::Compact => {
            let done = crate::client::connect(data, None)?.compact()?;
            println!(
                "{}: {} before, {} now",
                data.database().display(),
                bytes(done.before_bytes),
                bytes(done.after_bytes)
            );
            Ok(())
        }
    }
}

fn render(space: &Space) -> String {
    let mut out = format!(
        "file {}, {} in use, {} free (reused by new writes; 'monitor db compact' gives it back)\n\n",
        bytes(space.file_bytes),
        bytes(space.allocated_bytes),
        bytes(space.file_bytes.saturating_sub(space.allocated_bytes))
    );
    out += &format!("{:<26} {:>10} {:>10} {:>10}\n", "TABLE", "ENTRIES", "DATA", "PAGES");
    for t in space.tables.iter().filter(|t| t.entries > 0) {
        out += &format!("{:<26} {:>10} {:>10} {:>10}\n", t.name, t.entries, bytes(t.stored_bytes), bytes(t.page_bytes));
    }
    if !space.plugins.is_empty() {
        out += &format!("\n{:<26} {:>10} {:>10} {:>10} {:>10}\n", "METRICS OF", "SERIES", "POINTS", "MINUTES", "DATA");
        for p in &space.plugins {
            out += &format!(
                "{:<26} {:>10} {:>10} {:>10} {:>10}\n",
                p.plugin,
                p.series,
                p.raw_points,
                p.minutes,
                bytes(p.stored_bytes)
            );
        }
    }
    out
}

fn check(data: &DataDir) -> CommandResult<()> {
    let path = data.database();
    if !path.exists() {
        println!("{}: no database yet (the host makes one at its first start)", path.display());
        return Ok(());
    }
    let store = match Store::open_checked(&path) {
        Ok(store) => store,
        Err(StoreError::Locked { .. }) => {
            return Err(CommandError::new(
                ErrorKind::Conflict,
                format!(
                    "database {} is in use by the running host; stop it first ('monitor db check' needs the file to itself)",
                    path.display()
                ),
            ));
        }
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
