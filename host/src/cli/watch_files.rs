//! `monitor watch-files PATH... -- COMMAND ARGS...`: one watch job in the
//! foreground, without a config or a daemon, like `watchexec`. The command's
//! output goes to the terminal; Ctrl-C (or SIGTERM) stops the watcher and the
//! command's whole process group.

use std::path::PathBuf;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::UsageError;
use crate::error::{Classified, CommandError, CommandResult};
use crate::paths::DataDir;
use crate::watch::config::CommandLine;
use crate::watch::jobs::Options;
use crate::watch::{Busy, JobConfig, Jobs, Pass};

#[derive(Debug, Args)]
pub struct WatchFilesArgs {
    /// Directories (or files) to watch; the first is the project root.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only changes to paths matching this glob count (repeatable): '*.rs', 'src/**'.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out paths matching this glob (repeatable): 'target', '*.tmp'.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Do not honour .gitignore and .ignore files.
    #[arg(long)]
    pub no_ignore: bool,
    /// Watch only the named directories, not their subdirectories.
    #[arg(long)]
    pub non_recursive: bool,
    /// How long the tree must be quiet before the command runs.
    #[arg(long, default_value = "100ms", value_name = "DURATION")]
    pub debounce: String,
    /// What changes arriving while the command runs do.
    #[arg(long, value_enum, default_value_t = Busy::Queue)]
    pub busy: Busy,
    /// Longest a command may run before its process group is stopped.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Time between SIGTERM and SIGKILL when a command is stopped.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub grace: String,
    /// How the command gets the changed paths besides MONITOR_WATCH_PATHS (one a
    /// line): env (only there; the command runs as written), args (after its
    /// own), stdin (as JSON), each (one run per path).
    #[arg(long, value_enum, default_value_t = Pass::Env)]
    pub pass: Pass,
    /// Run COMMAND through 'sh -c' (with --pass args the paths are "$@").
    #[arg(long)]
    pub shell: bool,
    /// The command and its arguments, after '--'.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(data: DataDir, args: WatchFilesArgs) -> CommandResult<()> {
    let command =
        if args.shell { CommandLine::Line(args.command.join(" ")) } else { CommandLine::Argv(args.command.clone()) };
    let config = JobConfig {
        name: "watch-files".into(),
        paths: args.paths.clone(),
        recursive: !args.non_recursive,
        include: args.include,
        exclude: args.exclude,
        ignore_files: !args.no_ignore,
        debounce: args.debounce,
        command,
        on_delete: None,
        shell: args.shell,
        pass: args.pass,
        busy: args.busy,
        timeout: args.timeout,
        grace: args.grace,
        workdir: Some(std::env::current_dir()?),
    };
    let spec = config.validate().map_err(|e| UsageError(flags(&e.to_string())))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let options = Options { progress: None, data_dir: Some(data.root.clone()), echo: true, store: None };
        let jobs = Jobs::start(vec![spec], options).map_err(|e| CommandError::new(e.kind(), flags(&e.to_string())))?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let roots: Vec<String> = jobs.list()[0].roots.iter().map(|r| r.display().to_string()).collect();
        eprintln!("[monitor watch] watching {} (Ctrl-C stops)", roots.join(", "));
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        jobs.stop().await;
        eprintln!("[monitor watch] stopped");
        Ok(())
    })
}

/// A job error in the words of this command's flags.
fn flags(message: &str) -> String {
    message
        .replace("watch job 'watch-files': ", "")
        .replace("debounce = ", "--debounce ")
        .replace("timeout = ", "--timeout ")
        .replace("grace = ", "--grace ")
        .replace("include glob", "--include")
        .replace("exclude glob", "--exclude")
        .replace("; create it or fix paths", "; name a directory that exists")
}
