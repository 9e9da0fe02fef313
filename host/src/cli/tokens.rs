//! `monitor tokens` (scoped API tokens) and `monitor audit` (the changes made).

use clap::{Args, Subcommand};

use super::progress::utc;
use crate::access::{self, AuditEntry, Scope, Token};
use crate::api::access::CreateRequest;
use crate::client::Client;
use crate::error::{CommandResult, UsageError};
use crate::sampler::now_ms;

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Make a token and print its secret, once: only its hash is kept.
    /// Scopes, each including the ones before: read (dashboards, scrapes,
    /// status), report (post progress), operate (acknowledge, silence, jobs),
    /// admin (plugins, grants, tokens).
    Create {
        name: String,
        #[arg(long, value_parser = Scope::parse)]
        scope: Scope,
        /// How long it lasts, like 30d or 12h; without: until revoked.
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Print the token and its secret as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every token: scope, state, when made and when it expires (never a secret).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Refuse a token from now on.
    Revoke { name: String },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How far back, like 7d or 12h.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    since: std::time::Duration,
    #[arg(long)]
    json: bool,
}

pub fn run(client: &dyn Client, command: TokensCommand) -> CommandResult<()> {
    match command {
        TokensCommand::Create { name, scope, expires, json } => {
            access::check_name(&name).map_err(UsageError)?;
            let created = client.token_create(&CreateRequest { name, scope: scope.name().into(), expires })?;
            if json {
                return super::print_json(&created);
            }
            println!("{}", created.secret);
            let expires = created
                .token
                .expires_ms
                .map_or_else(|| "never expires".into(), |ms| format!("expires {} UTC", utc(ms)));
            eprintln!(
                "token '{}' (scope {}, {expires}): the line above is its secret, shown this once; send it as 'Authorization: Bearer SECRET'",
                created.token.name, created.token.scope
            );
            Ok(())
        }
        TokensCommand::List { json } => {
            let tokens = client.tokens()?;
            if json {
                return super::print_json(&tokens);
            }
            print!("{}", render(&tokens, now_ms()));
            Ok(())
        }
        TokensCommand::Revoke { name } => {
            let token = client.token_revoke(&name)?;
            println!("token '{}' revoked; requests with it are refused from now on", token.name);
            Ok(())
        }
    }
}

pub fn audit(client: &dyn Client, args: &AuditArgs) -> CommandResult<()> {
    let since = now_ms().saturating_sub(u64::try_from(args.since.as_millis()).unwrap_or(u64::MAX));
    let entries = client.audit(since)?;
    if args.json {
        return super::print_json(&entries);
    }
    print!("{}", render_audit(&entries));
    Ok(())
}

fn render(tokens: &[Token], now_ms: u64) -> String {
    let mut out = format!("{:<24} {:<8} {:<8} {:<20} {}\n", "NAME", "SCOPE", "STATE", "CREATED (UTC)", "EXPIRES (UTC)");
    for t in tokens {
        let expires = t.expires_ms.map_or_else(|| "never".into(), utc);
        out.push_str(&format!(
            "{:<24} {:<8} {:<8} {:<20} {expires}\n",
            t.name,
            t.scope.name(),
            t.state(now_ms),
            utc(t.created_ms)
        ));
    }
    if tokens.is_empty() {
        out.push_str(
            "(none besides api-token, the local admin; make one with 'monitor tokens create NAME --scope read')\n",
        );
    }
    out
}

fn render_audit(entries: &[AuditEntry]) -> String {
    if entries.is_empty() {
        return "no changes in that time\n".into();
    }
    let mut out = String::new();
    for e in entries {
        let detail = if e.detail.is_empty() { String::new() } else { format!(" {}", e.detail) };
        out.push_str(&format!(
            "{} UTC  {:<16} {:<15} {} {}{detail}  → {} {}\n",
            utc(e.at_ms),
            e.token,
            e.address,
            e.method,
            e.path,
            e.status,
            e.outcome
        ));
    }
    out
}
