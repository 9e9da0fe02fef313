//! `monitor`: parse, set up logging, run, map errors to exit codes
//! (0 success, 1 failure at run time, 2 bad usage or configuration).

use std::process::ExitCode;

use clap::Parser;
use monitor_host::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let host = matches!(cli.command, Command::Run(_));
    if !host {
        // A command whose output is closed early (`| head`) ends quietly, like
        // other Unix tools; the host keeps ignoring SIGPIPE for its sockets.
        // SAFETY: at the start of main, before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let default_level = if host { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MONITOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colour only for a person at a terminal, and never with NO_COLOR (no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colour).with_writer(std::io::stderr).init();

    match cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monitor: {e}");
            ExitCode::from(e.kind().exit_status())
        }
    }
}
