//! `monitor plugins ...`.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Subcommand;

use super::UsageError;
use crate::client;
use crate::error::{CommandError, CommandResult, ErrorKind};
use crate::paths::DataDir;
use crate::plugin::manager::inspect;
use crate::plugin::sandbox::SandboxSpec;
use crate::plugin::{CONTRACT_VERSION, Grant, Limits, Listing, PluginRecord, PluginState, Runtime};

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Every known plugin: roles, version, state, grants and self-metrics.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Everything about one plugin, including the capabilities it asks for and why.
    Info {
        name: String,
        #[arg(long)]
        json: bool,
        /// Where to look for a plugin the host has not loaded yet (no host running).
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
    },
    /// Start a plugin: a project ready to build, with the role's skeleton, a
    /// configuration and tests (cargo test runs them natively).
    New {
        name: String,
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(super::scaffold::ROLES))]
        role: String,
        #[arg(long, default_value = "rust", value_parser = clap::builder::PossibleValuesParser::new(super::scaffold::LANGUAGES))]
        lang: String,
        /// Where to write it; default ./NAME.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Another copy of the SDK (monitor's sdk/) for a Rust project to build
        /// against; by default the project carries its own, in monitor-sdk/. (A
        /// Python project carries its own copy of the contract and helper.)
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
    },
    /// Write the contract's WIT files, as this monitor speaks it, into DIR, to
    /// build a plugin against in any language.
    Wit {
        /// Where to write them.
        #[arg(default_value = "wit")]
        dir: PathBuf,
    },
    /// Validate a .wasm without installing it: roles, contract version, capabilities.
    Check {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Enable a plugin (clearing a quarantine) and grant capabilities, e.g. --grant fs-read:/srv/prom.
    Enable {
        name: String,
        /// A capability to grant: kv, fs-read:DIR, fs-write:DIR or http:ORIGIN[/PREFIX] (repeatable).
        #[arg(long = "grant", value_name = "CAP")]
        grants: Vec<String>,
        /// Where to look for a plugin the host has not loaded yet (no daemon running).
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
    },
    /// Stop a plugin and keep it stopped across restarts.
    Disable { name: String },
    /// Take back a grant: kv, fs-read:DIR, fs-write:DIR, http:ORIGIN, or a kind alone for all of that kind.
    Revoke { name: String, capability: String },
    /// What a plugin keeps in its key-value store (read only): every key, or one.
    Kv {
        name: String,
        key: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(data: &DataDir, command: PluginsCommand) -> CommandResult<()> {
    if let PluginsCommand::Check { file, json } = &command {
        return check(file, *json);
    }
    if let PluginsCommand::New { name, role, lang, dir, sdk } = &command {
        let (written, next) = super::scaffold::new(name, role, lang, dir.as_deref(), sdk.as_deref())?;
        for path in &written {
            println!("wrote {}", path.display());
        }
        println!("next: {next}");
        return Ok(());
    }
    if let PluginsCommand::Wit { dir } = &command {
        for path in super::scaffold::wit(dir)? {
            println!("wrote {}", path.display());
        }
        return Ok(());
    }
    let plugins_dir = match &command {
        PluginsCommand::Enable { plugins, .. } | PluginsCommand::Info { plugins, .. } => plugins.clone(),
        _ => None,
    };
    let client = client::connect(data, plugins_dir)?;
    let when = if client.is_live() { "" } else { " (no host running: applied when it starts)" };
    match command {
        PluginsCommand::List { json: true } => super::print_json(&client.listing()?)?,
        PluginsCommand::List { json: false } => {
            print!("{}", table(&client.listing()?, client.is_live()))
        }
        PluginsCommand::Info { name, json: true, .. } => super::print_json(&client.plugin(&name)?)?,
        PluginsCommand::Info { name, json: false, .. } => print!("{}", details(&client.plugin(&name)?)),
        PluginsCommand::Enable { name, grants, .. } => {
            let grants = grants
                .iter()
                .map(|g| Grant::parse(g).map_err(|e| UsageError(format!("--grant {g}: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            let record = client.enable(&name, &grants)?;
            println!("{name}: {}{when}", record.state);
            if record.state != PluginState::Running {
                return Err(CommandError::new(ErrorKind::Conflict, format!("{name} is not running: {}", record.state)));
            }
        }
        PluginsCommand::Disable { name } => {
            println!("{name}: {}{when}", client.disable(&name)?.state)
        }
        PluginsCommand::Revoke { name, capability } => {
            println!("{name}: {}{when}", client.revoke(&name, &capability)?.state)
        }
        PluginsCommand::Kv { name, key, json } => {
            let mut entries = client.plugin_kv(&name)?;
            if let Some(key) = &key {
                entries.retain(|e| &e.key == key);
                if entries.is_empty() {
                    return Err(CommandError::new(
                        ErrorKind::NotFound,
                        format!("plugin '{name}' has no key '{key}'; 'monitor plugins kv {name}' lists its keys"),
                    ));
                }
            }
            if json {
                super::print_json(&entries)?;
            } else if entries.is_empty() {
                println!("{name} keeps nothing in its key-value store");
            }
            for e in entries.iter().filter(|_| !json) {
                // Stored by the plugin: shown escaped, never as terminal control.
                let value = match (&e.text, &e.hex) {
                    (Some(text), _) => crate::text::line(text, 200),
                    (None, Some(hex)) => format!("0x{}", crate::text::line(hex, 200)),
                    _ => String::new(),
                };
                println!("{}  ({} bytes)  {value}", crate::text::line(&e.key, 256), e.bytes);
            }
        }
        PluginsCommand::Check { .. } | PluginsCommand::New { .. } | PluginsCommand::Wit { .. } => {
            unreachable!("handled above")
        }
    }
    Ok(())
}

fn check(file: &PathBuf, json: bool) -> CommandResult<()> {
    let max = crate::config::HostConfig::default().plugins.max_file_mib << 20;
    let bytes = crate::plugin::manager::read_capped(file, max).map_err(|e| anyhow::anyhow!(e))?;
    // Compiled into a private directory of its own (a fresh name, mode 0700: no one
    // can plant an artifact there) that goes afterwards: checking installs nothing.
    let scratch = tempfile::Builder::new().prefix("monitor-check-").tempdir()?;
    let runtime = Runtime::new(Some(scratch.path().to_path_buf()))
        .map_err(|e| anyhow::anyhow!("{e:#}"))?
        .compile_with(crate::config::HostConfig::default().compiler());
    let spec = SandboxSpec::bare("(check)");
    let inspected = inspect(&runtime, &spec, Limits::default(), file, &bytes);
    drop(scratch);
    let (loaded, desc) = inspected.map_err(|e| anyhow::anyhow!(e))?;
    if json {
        let out = serde_json::json!({
            "file": file, "hash": loaded.hash, "contract": format!("monitor:plugin@{}", loaded.contract),
            "name": desc.name, "version": desc.version, "summary": desc.summary,
            "roles": desc.roles, "capabilities": desc.requests,
        });
        super::print_json(&out)?;
        return Ok(());
    }
    let roles: Vec<&str> = desc.roles.iter().map(|r| r.as_str()).collect();
    println!("{}: valid plugin", file.display());
    println!("  name          {} {}", desc.name, desc.version);
    println!("  summary       {}", desc.summary);
    println!("  roles         {}", roles.join(", "));
    let newest = if loaded.contract == CONTRACT_VERSION { "" } else { " (an earlier version: it runs as it is)" };
    println!("  contract      monitor:plugin@{}{newest}", loaded.contract);
    if desc.requests.is_empty() {
        println!("  capabilities  none");
    }
    for (i, r) in desc.requests.iter().enumerate() {
        let label = if i == 0 { "capabilities" } else { "" };
        println!("  {label:<13} {} — {}", r.kind, r.reason);
    }
    Ok(())
}

fn table(listing: &Listing, live: bool) -> String {
    let mut out = String::new();
    if listing.plugins.is_empty() {
        out.push_str("no plugins known yet\n");
    } else {
        // Without a host, a state is only what it last was.
        let state = if live { "STATE" } else { "LAST STATE" };
        let mut rows = vec![
            ["NAME", "VERSION", "ROLES", state, "CALLS", "FAULTS", "ERRORS", "P50", "P99", "MEM", "GRANTS"]
                .map(String::from)
                .to_vec(),
        ];
        for p in &listing.plugins {
            let roles: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
            let grants: Vec<String> = p.grants.iter().map(Grant::to_string).collect();
            rows.push(vec![
                p.name.clone(),
                p.version.clone(),
                roles.join(","),
                p.state.word().into(),
                p.stats.calls.to_string(),
                p.stats.faults.to_string(),
                p.stats.errors.to_string(),
                micros(p.stats.p50_us),
                micros(p.stats.p99_us),
                mib(p.stats.memory_peak_bytes),
                if grants.is_empty() { "-".into() } else { grants.join(",") },
            ]);
        }
        out.push_str(&columns(&rows, &[4, 5, 6, 7, 8, 9]));
    }
    for p in &listing.plugins {
        match &p.state {
            PluginState::Running | PluginState::Disabled | PluginState::Absent => {}
            PluginState::AwaitingGrant { missing } => {
                let command = crate::plugin::capability::grant_command(&p.name, missing);
                let _ = writeln!(out, "  {}: {}; run '{command}'", p.name, p.state);
            }
            PluginState::AwaitingConfirmation { .. } => {
                let file = p.file.as_ref().map_or("-".into(), |f| f.display().to_string());
                let _ = writeln!(
                    out,
                    "  {}: {}; if {file} is the plugin you granted, run 'monitor plugins enable {}'",
                    p.name, p.state, p.name
                );
            }
            state => {
                let _ = writeln!(out, "  {}: {state}", p.name);
            }
        }
    }
    for problem in &listing.problems {
        let _ = writeln!(out, "  not loaded: {}", problem.error);
    }
    if !live {
        out.push_str("(no host is running: each state is as it last was; 'monitor run' starts one)\n");
    }
    out
}

/// Rows laid out in columns as wide as their widest cell; the columns in
/// `right` are aligned right (numbers), the last one is not padded.
fn columns(rows: &[Vec<String>], right: &[usize]) -> String {
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..rows[0].len()).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let last = row.len() - 1;
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| match c {
                c if c == last => cell.clone(),
                c if right.contains(&c) => format!("{cell:>w$}", w = widths[c]),
                c => format!("{cell:<w$}", w = widths[c]),
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn details(p: &PluginRecord) -> String {
    let mut out = String::new();
    let roles: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
    let _ = writeln!(out, "{} {}", p.name, p.version);
    let _ = writeln!(out, "  summary       {}", p.summary);
    let _ = writeln!(out, "  file          {}", p.file.as_ref().map_or("-".into(), |f| f.display().to_string()));
    let _ = writeln!(out, "  hash          {}", p.hash.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "  roles         {}", roles.join(", "));
    let _ = writeln!(out, "  state         {}", p.state);
    let _ = writeln!(out, "  enabled       {}", if p.enabled { "yes" } else { "no" });
    let bound = p.bound_grants();
    if !p.grants.is_empty() {
        let to = match (&p.grants_file, &p.grants_hash) {
            (Some(file), Some(hash)) => format!("{} (content {hash})", file.display()),
            _ => "-".into(),
        };
        let _ = writeln!(out, "  granted to    {to}");
    }
    for r in &p.requests {
        let granted: Vec<String> = bound
            .iter()
            .filter(|g| g.kind == r.kind)
            .map(|g| match g.path.as_deref().map(crate::plugin::capability::resolve) {
                Some(real) if Some(real.as_path()) != g.path.as_deref() => {
                    format!("{g} (resolves to {})", real.display())
                }
                _ => g.to_string(),
            })
            .collect();
        let status = match granted.is_empty() {
            true => format!("NOT GRANTED; run '{}'", crate::plugin::capability::grant_command(&p.name, &[r.kind])),
            false => format!("granted {}", granted.join(", ")),
        };
        let _ = writeln!(out, "  asks for      {} ({}) — {status}", r.kind, r.reason);
    }
    let s = &p.stats;
    let _ = writeln!(
        out,
        "  calls         {} ({} faults, {} in a row; {} errors)",
        s.calls, s.faults, s.consecutive_faults, s.errors
    );
    let _ = writeln!(out, "  latency       p50 {} p99 {}", micros(s.p50_us), micros(s.p99_us));
    let _ = writeln!(out, "  memory peak   {}", mib(s.memory_peak_bytes));
    if let Some(e) = &s.last_error {
        let _ = writeln!(out, "  last error    {e}");
    }
    out
}

fn micros(us: f64) -> String {
    if us >= 1000.0 { format!("{:.1}ms", us / 1000.0) } else { format!("{us:.1}µs") }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}MiB", bytes as f64 / (1 << 20) as f64)
}
