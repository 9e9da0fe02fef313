//! Command-line definitions and dispatch; one module per command group.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::CommandResult;
use crate::paths::{DataDir, default_data_dir};

pub mod alerts;
pub mod db;
pub mod exec;
mod fleet;
pub mod jobs;
pub mod metrics;
pub mod plugins;
pub mod progress;
pub mod report;
pub mod resources;
mod run;
mod scaffold;
pub mod stream;
pub mod tokens;
pub mod top;
pub mod watch_files;

/// A monitoring host for long-running work, extended with sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "monitor", version, about)]
pub struct Cli {
    /// Where the host keeps its database, compile cache and API token
    /// [default: $XDG_STATE_HOME/monitor or ~/.local/state/monitor]
    #[arg(long, global = true, env = "MONITOR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// A host elsewhere, like http://gpu-box-1:8750 (its api.listen address): commands
    /// read from and act on it instead of the local one. Needs its token.
    #[arg(long, global = true, env = "MONITOR_URL", value_name = "URL")]
    pub url: Option<String>,

    /// The remote host's API token (the content of api-token in its data directory).
    #[arg(long, global = true, env = "MONITOR_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host in the foreground with the plugins in a directory.
    Run(run::RunArgs),
    /// Manage plugins: list, inspect, check, enable, disable, revoke grants.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Alerts: check the rules; list, acknowledge, resolve, silence, test; history.
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// The metric history: list the series, query one metric.
    #[command(subcommand)]
    Metrics(metrics::MetricsCommand),
    /// Report progress of a run: start, update, finish, fail or cancel a node.
    #[command(subcommand)]
    Progress(progress::ProgressCommand),
    /// Run a command as a progress node, recording what its processes use; exits with its status.
    Exec(exec::ExecArgs),
    /// A run's report: per phase its duration, state, progress, resources, alerts and slowest steps.
    Report(report::ReportArgs),
    /// Runs, with status, progress, start time and duration.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        filter: progress::RunFilter,
        /// Every host of a hosts file (default: $MONITOR_HOSTS, else
        /// ~/.config/monitor/hosts), each row naming its host.
        #[arg(long, value_name = "FILE")]
        hosts: Option<Option<PathBuf>>,
    },
    /// A run's tree, redrawn as it changes, until the run ends (Ctrl-C leaves the run as it is).
    Watch {
        run: String,
        /// How often to look, in milliseconds.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=60_000))]
        interval_ms: u64,
    },
    /// A run's timeline: every update in order, then how long each node took.
    History {
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// A run's progress tree; without RUN, one line of host status.
    Status {
        /// The run to show.
        run: Option<String>,
        #[arg(long)]
        json: bool,
        /// A display-formatter plugin to render the run, or the host status line (needs the running host).
        #[arg(long, value_name = "PLUGIN", conflicts_with = "json")]
        format: Option<String>,
    },
    /// The machine now: CPU, memory, disks, network and, with --processes, the top processes.
    Resources(resources::ResourcesArgs),
    /// The running host's watch jobs: list, pause, resume, run now.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Watch paths and run a command on each batch of changes, in the foreground (Ctrl-C stops).
    WatchFiles(watch_files::WatchFilesArgs),
    /// Follow the host's live stream (progress, alerts, plugins, jobs) line by line; resumes after a lost connection.
    Stream(stream::StreamArgs),
    /// A live view of the machine, processes, runs, alerts and plugins (q quits, ? lists the keys).
    Top(top::TopArgs),
    /// The database: check it (with the host stopped), see what takes its space, compact it.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// The API's scoped tokens: create, list, revoke.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// The changes made through the API (and by the CLI with no host running):
    /// when, which token, from where, what, and how it ended.
    Audit(tokens::AuditArgs),
    /// Print the running host's API address and token as shell exports, for
    /// scripts and curl: eval "$(monitor api-env)".
    ApiEnv,
    /// Print the link to the running host's web dashboard (it carries the token
    /// in its fragment, which a browser never sends) and, when the host listens
    /// on loopback, the SSH tunnel that reaches it from a laptop.
    Dashboard,
    /// Compiles the plugin on standard input into OUT: the host runs it to keep
    /// the compiler out of its own process.
    #[command(name = "__compile-plugin", hide = true)]
    CompilePlugin { out: PathBuf },
}

/// `monitor api-env`: `MONITOR_URL` and `MONITOR_TOKEN` of the host running on
/// this data directory, as shell exports (other commands take them too).
fn api_env(data: &DataDir) -> CommandResult<()> {
    let Some(host) = crate::client::Remote::find(data)? else {
        return Err(crate::client::no_host(data, " (or pass --data-dir DIR)"));
    };
    let token = std::fs::read_to_string(data.token())?;
    println!("export MONITOR_URL={}", host.base());
    println!("export MONITOR_TOKEN={}", token.trim());
    // Over TLS, the certificate to trust: curl --cacert "$MONITOR_CA".
    if let Some(ca) = crate::paths::DaemonInfo::read(data).and_then(|i| i.tls) {
        println!("export MONITOR_CA={}", ca.display());
    }
    Ok(())
}

/// `monitor dashboard`: the link, and the tunnel to it when it is on loopback.
fn dashboard(data: &DataDir) -> CommandResult<()> {
    let host =
        crate::client::running(data)?.ok_or_else(|| crate::client::no_host(data, " (or pass --url and --token)"))?;
    let link = host.dashboard_link();
    println!("{link}");
    let addr = host.base().trim_start_matches("http://");
    if let Some(port) = addr.strip_prefix("127.0.0.1:").or_else(|| addr.strip_prefix("[::1]:")) {
        let user = std::env::var("USER").unwrap_or_else(|_| "you".into());
        let machine = crate::api::dashboard::machine_name();
        println!("From another machine, tunnel to it first, then open the link there with localhost:");
        println!("  ssh -N -L {port}:{addr} {user}@{machine}");
        println!("  {}", link.replacen(addr, &format!("localhost:{port}"), 1));
    }
    Ok(())
}

/// Prints `value` as indented JSON, for `--json`.
pub fn print_json(value: &impl serde::Serialize) -> CommandResult<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints text from the host or a formatter, ending its last line.
pub fn print_text(text: &str) {
    if text.ends_with('\n') {
        print!("{text}");
    } else {
        println!("{text}");
    }
}

pub use crate::error::UsageError;

impl Cli {
    pub fn data(&self) -> DataDir {
        DataDir::new(&self.data_dir.clone().unwrap_or_else(default_data_dir))
    }
}

pub fn dispatch(cli: Cli) -> CommandResult<()> {
    let data = cli.data();
    if let Some(url) = &cli.url {
        if matches!(cli.command, Command::Run(_) | Command::WatchFiles(_)) {
            return Err(UsageError(format!(
                "--url '{url}' applies to commands that talk to a host; 'run' and 'watch-files' work here only"
            ))
            .into());
        }
        crate::client::use_remote(url, cli.token.as_deref())?;
    }
    match cli.command {
        Command::Run(args) => run::run(data, args),
        Command::Plugins(command) => plugins::run(&data, command),
        Command::Alerts(command) => alerts::run(&data, command),
        Command::Metrics(command) => metrics::run(&*crate::client::connect(&data, None)?, command),
        Command::Exec(args) => {
            let code = exec::run(&data, args)?;
            std::process::exit(code)
        }
        Command::Report(args) => report::run(&*crate::client::connect(&data, None)?, &args),
        Command::Progress(command) => progress::run(&*crate::client::connect(&data, None)?, command),
        Command::Watch { run, interval_ms } => {
            progress::watch(&data, &run, std::time::Duration::from_millis(interval_ms))
        }
        Command::History { run, json } => progress::history(&*crate::client::connect(&data, None)?, &run, json),
        Command::List { json, filter, hosts: Some(file) } => {
            progress::list_hosts(&crate::client::fleet::hosts_file(file.as_deref()), json, &filter)
        }
        Command::List { json, filter, hosts: None } => {
            progress::list(&*crate::client::connect(&data, None)?, json, &filter)
        }
        Command::Status { run: Some(run), json, format } => {
            progress::tree(&*crate::client::connect(&data, None)?, &run, json, format.as_deref())
        }
        Command::Status { run: None, format, .. } => {
            let client = crate::client::connect(&data, None)?;
            print_text(&client.status(format.as_deref())?);
            Ok(())
        }
        Command::Resources(args) => resources::run(&args),
        Command::Jobs(command) => jobs::run(&*crate::client::connect(&data, None)?, command),
        Command::WatchFiles(args) => watch_files::run(data, args),
        Command::Top(args) => top::run(&data, args),
        Command::Stream(args) => stream::run(&data, args),
        Command::Db(command) => db::run(&data, command),
        Command::Tokens(command) => tokens::run(&*crate::client::connect(&data, None)?, command),
        Command::Audit(args) => tokens::audit(&*crate::client::connect(&data, None)?, &args),
        Command::ApiEnv => api_env(&data),
        Command::Dashboard => dashboard(&data),
        Command::CompilePlugin { out } => Ok(crate::plugin::engine::compile_plugin_command(&out)?),
    }
}
