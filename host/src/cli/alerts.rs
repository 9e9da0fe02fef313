//! `monitor alerts ...`: check the rules; list, acknowledge, resolve, silence
//! and test alerts of the running host; read the history.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::UsageError;
use super::progress::{seconds, utc};
use crate::alerts::{Alert, AlertState, Labels};
use crate::client::Client;
use crate::config::{ConfigError, HostConfig};
use crate::error::CommandResult;
use crate::paths::DataDir;
use crate::sampler::now_ms;
use crate::store::alerts::HistoryEntry;

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Validate the alert rules, routes and handlers without running them.
    Check {
        /// The host configuration (TOML); without it, the built-in rules are checked.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The alerts as they stand: firing, acknowledged, pending.
    List {
        /// Only alerts in this state.
        #[arg(long, value_parser = parse_state)]
        state: Option<AlertState>,
        #[arg(long)]
        json: bool,
        /// Every host of a hosts file (default: $MONITOR_HOSTS, else
        /// ~/.config/monitor/hosts), each row naming its host.
        #[arg(long, value_name = "FILE")]
        hosts: Option<Option<PathBuf>>,
    },
    /// Acknowledge a firing alert: it stays until resolved, but is not sent again.
    Ack {
        /// The alert's id, or a prefix naming one alert (like the rule's name).
        id: String,
        #[arg(long, default_value = "")]
        note: String,
        /// Who acknowledges [default: $USER].
        #[arg(long)]
        by: Option<String>,
    },
    /// Resolve a firing alert by hand.
    Resolve { id: String },
    /// Silence alerts matching every MATCHER (rule=NAME, level=LEVEL or a label=value) for a while.
    Silence {
        #[arg(required = true, value_name = "MATCHER", value_parser = parse_matcher)]
        matchers: Vec<(String, String)>,
        /// How long, like 30m, 2h or 1d.
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
    },
    /// The active silences.
    Silences {
        #[arg(long)]
        json: bool,
    },
    /// End a silence early.
    Unsilence { id: u64 },
    /// Every transition (fired, acknowledged, resolved, repeated), oldest first.
    History {
        /// How far back, like 1h or 7d.
        #[arg(long, default_value = "1d", value_parser = humantime::parse_duration)]
        since: Duration,
        #[arg(long)]
        json: bool,
    },
    /// Send a synthetic alert of RULE through the routes and show what each handler did.
    Test { rule: String },
}

fn parse_state(text: &str) -> Result<AlertState, String> {
    serde_json::from_value(serde_json::Value::String(text.into()))
        .map_err(|_| format!("'{text}' is not a state; use pending, firing, acknowledged or resolved"))
}

fn parse_matcher(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!("'{text}' is not a matcher; write key=value, like rule=cpu-hot or mount=/data")),
    }
}

pub fn run(data: &DataDir, command: AlertsCommand) -> CommandResult<()> {
    let client = match command {
        AlertsCommand::Check { config } => return check(config),
        AlertsCommand::List { hosts: Some(file), state, json } => return list_hosts(file.as_deref(), state, json),
        _ => crate::client::connect(data, None)?,
    };
    let client: &dyn Client = &*client;
    match command {
        AlertsCommand::Check { .. } => unreachable!("handled above"),
        AlertsCommand::List { state, json, .. } => {
            let alerts = client.alerts(state)?;
            if json {
                super::print_json(&alerts)?;
            } else {
                print_alerts(&alerts, client.is_live());
            }
        }
        AlertsCommand::Ack { id, note, by } => {
            let by = by.or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty())).unwrap_or_else(login_name);
            print_entry(&client.ack(&id, &by, &note)?);
        }
        AlertsCommand::Resolve { id } => print_entry(&client.resolve(&id)?),
        AlertsCommand::Silence { matchers, duration } => {
            let matchers: Labels = matchers.into_iter().collect();
            let silence = client.silence(&matchers, &duration)?;
            println!(
                "silence {} until {} UTC: {}",
                silence.id,
                utc(silence.until_ms),
                matchers_text(&silence.matchers)
            );
        }
        AlertsCommand::Silences { json } => {
            let silences = client.silences()?;
            if json {
                super::print_json(&silences)?;
            } else if silences.is_empty() {
                println!("no active silences");
            }
            for s in silences.iter().filter(|_| !json) {
                println!("{:<4} until {} UTC  {}", s.id, utc(s.until_ms), matchers_text(&s.matchers));
            }
        }
        AlertsCommand::Unsilence { id } => {
            client.unsilence(id)?;
            println!("silence {id} ended");
        }
        AlertsCommand::History { since, json } => {
            let since_ms = now_ms().saturating_sub(since.as_millis() as u64);
            let entries = client.alert_history(since_ms)?;
            if json {
                super::print_json(&entries)?;
            } else if entries.is_empty() {
                println!("no alert transitions in the last {}", humantime::format_duration(since));
            }
            for entry in entries.iter().filter(|_| !json) {
                print_entry(entry);
            }
        }
        AlertsCommand::Test { rule } => {
            let results = client.test_alert(&rule)?;
            if results.is_empty() {
                println!("no route sends rule '{rule}' (level and matchers) to a handler");
            }
            let failed = results.iter().filter(|r| !r.ok).count();
            for r in &results {
                match &r.error {
                    None => println!("{:<24} delivered", r.handler),
                    Some(e) => println!("{:<24} FAILED: {e}", r.handler),
                }
            }
            if failed > 0 {
                return Err(anyhow::anyhow!("{failed} of {} handlers failed", results.len()).into());
            }
        }
    }
    Ok(())
}

fn print_alerts(alerts: &[Alert], live: bool) {
    if alerts.is_empty() {
        println!("no alerts{}", if live { "" } else { " (the host is not running; as last stored)" });
        return;
    }
    let now = now_ms();
    println!("{}", alert_header());
    for a in alerts {
        println!("{}", alert_row(a, now));
        if let Some(ack) = &a.ack {
            let note = if ack.note.is_empty() { String::new() } else { format!(": {}", ack.note) };
            println!("{:<13} acknowledged by {} {} ago{note}", "", ack.by, seconds(now.saturating_sub(ack.at_ms)));
        }
    }
    if !live {
        println!("(the host is not running; alerts as last stored)");
    }
}

/// `monitor alerts list --hosts`: every host's alerts in one table.
fn list_hosts(file: Option<&std::path::Path>, state: Option<AlertState>, json: bool) -> CommandResult<()> {
    let entries = crate::client::fleet::read(&crate::client::fleet::hosts_file(file))?;
    let answers = crate::client::fleet::ask(&entries, |host| host.alerts(state));
    let now = now_ms();
    super::fleet::print(&answers, json, &alert_header(), |a| alert_row(a, now))
}

fn alert_header() -> String {
    format!("{:<13} {:<9} {:<8} {:<40} MESSAGE", "STATE", "LEVEL", "FOR", "ID")
}

fn alert_row(a: &Alert, now: u64) -> String {
    let state = if a.silenced { format!("{} (s)", a.state) } else { a.state.to_string() };
    let age = seconds(now.saturating_sub(a.fired_ms.unwrap_or(a.since_ms)));
    format!("{state:<13} {:<9} {age:<8} {:<40} {}", a.level.as_str(), a.id, a.message)
}

fn print_entry(entry: &HistoryEntry) {
    let t = &entry.transition;
    let change = if t.is_repeat() { "firing (repeat)".to_string() } else { format!("{} → {}", t.from, t.to) };
    let silenced = if t.silenced { " [silenced]" } else { "" };
    let by = t.ack.as_ref().filter(|_| t.to == AlertState::Acknowledged).map_or(String::new(), |a| {
        if a.note.is_empty() { format!(" (by {})", a.by) } else { format!(" (by {}: {})", a.by, a.note) }
    });
    println!("{} UTC  {:<9} {:<26} {}{silenced}{by}  {}", utc(t.at_ms), t.level.as_str(), change, t.id, t.message);
}

fn matchers_text(matchers: &Labels) -> String {
    matchers.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

fn check(config: Option<PathBuf>) -> CommandResult<()> {
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
    let routing = config.alerts.routing().map_err(|errors| UsageError(errors.join("; ")))?;
    for handler in &routing.handlers {
        let action = match &handler.action {
            crate::alerts::route::Action::Command(argv) => format!("command {}", argv.join(" ")),
            crate::alerts::route::Action::Webhook(url, _) => format!("webhook {url}"),
        };
        println!("handler {:<20} {action}", handler.name);
    }
    let routes = config.alerts.route.len();
    println!(
        "{} handlers, {} OK",
        routing.handlers.len(),
        if routes == 0 { "default routes".into() } else { format!("{routes} routes") }
    );
    Ok(())
}

/// The name of the user this runs as, from the password database: `USER` is
/// not always set (cron, containers, `sudo -E`).
fn login_name() -> String {
    let uid = rustix::process::getuid();
    let users = sysinfo::Users::new_with_refreshed_list();
    users
        .iter()
        .find(|u| **u.id() == uid.as_raw())
        .map_or_else(|| format!("uid {}", uid.as_raw()), |u| u.name().to_string())
}
