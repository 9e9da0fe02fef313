//! `monitor alerts ...`.

use std::path::PathBuf;

use clap::Subcommand;

use super::UsageError;
use crate::config::{ConfigError, HostConfig};

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Validate the alert rules (the built-in ones and the config file's) without running them.
    Check {
        /// The host configuration (TOML); without it, the built-in rules are checked.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

pub fn run(command: AlertsCommand) -> anyhow::Result<()> {
    let AlertsCommand::Check { config } = command;
    let config = match &config {
        Some(path) => match HostConfig::load(path) {
            Ok(config) => config,
            Err(ConfigError::Alerts { path, errors }) => {
                for error in &errors {
                    eprintln!("{}: {error}", path.display());
                }
                return Err(UsageError(format!("{} problems in the alert rules", errors.len())).into());
            }
            Err(e) => return Err(UsageError(e.to_string()).into()),
        },
        None => HostConfig::default(),
    };
    let rules = config
        .alerts
        .rules()
        .map_err(|errors| UsageError(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
    for rule in &rules {
        let after = if rule.for_ms > 0 {
            format!(" for {}", humantime::format_duration(std::time::Duration::from_millis(rule.for_ms)))
        } else {
            String::new()
        };
        println!("{:<28} {:<9} {}{after}", rule.name, rule.level.as_str(), rule.kind.name());
    }
    println!("{} rules OK", rules.len());
    Ok(())
}
