//! `monitor top`: the options, checked and turned into [`crate::top::Settings`].

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;

use super::UsageError;
use crate::error::CommandResult;
use crate::paths::DataDir;
use crate::top::data::Source;
use crate::top::filter::Filter;
use crate::top::model::{Panel, SortKey};
use crate::top::theme::Theme;

#[derive(Debug, Args)]
pub struct TopArgs {
    /// How often to fetch and redraw, like 1s, 500ms or 5s (100ms to 1h).
    #[arg(long, default_value = "1s", value_parser = parse_interval, value_name = "DURATION")]
    pub interval: Duration,
    /// The process column to sort by (largest first for cpu, mem and io).
    #[arg(long, value_enum, default_value_t = SortKey::Cpu, value_name = "KEY")]
    pub sort: SortKey,
    /// Show only rows containing TEXT (`user:NAME` for a user's processes), or `active`:
    /// processes using CPU or disk, runs still going, alerts firing or pending, running
    /// plugins and watch jobs.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// The panel shown first (`custom` needs --format).
    #[arg(long, value_enum, default_value_t = Panel::Processes, value_name = "PANEL")]
    pub focus: Panel,
    /// A display-formatter plugin: adds a `custom` panel (key 6) with the host status as the
    /// plugin renders it, like `monitor status --format PLUGIN` (needs the running host).
    #[arg(long, value_name = "PLUGIN")]
    pub format: Option<String>,
}

impl TopArgs {
    /// The plugin of the custom panel; `--focus custom` without one is a usage error.
    fn custom_panel(&self) -> Result<Option<String>, UsageError> {
        let format = self.format.as_deref().map(str::trim);
        if format == Some("") {
            return Err(UsageError(
                "--format needs a display-formatter plugin's name, like --format compact-status".into(),
            ));
        }
        if self.focus == Panel::Custom && format.is_none() {
            return Err(UsageError(
                "--focus custom shows the panel of a display-formatter plugin; name one with --format PLUGIN, like 'monitor top --format compact-status --focus custom'"
                    .into(),
            ));
        }
        Ok(format.map(str::to_string))
    }
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text)
        .map_err(|_| format!("'{text}' is not a duration; write one like 1s or 500ms"))?;
    if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&interval) {
        return Err(format!("'{text}' is outside 100ms to 1h; pick an interval within it"));
    }
    Ok(interval)
}

pub fn run(data: &DataDir, args: TopArgs) -> CommandResult<()> {
    let format = args.custom_panel()?;
    let source = match crate::client::remote() {
        Some(remote) => Source::Remote { url: remote.base().to_string(), client: remote },
        None => Source::Here(data.clone()),
    };
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(UsageError(
            "monitor top needs a terminal; for output to a pipe or file use 'monitor resources --processes' or 'monitor status'"
                .into(),
        )
        .into());
    }
    let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "top".into());
    crate::top::run(crate::top::Settings {
        source,
        interval: args.interval,
        focus: args.focus,
        sort: args.sort,
        filter: args.filter.as_deref().map(Filter::parse).unwrap_or_default(),
        theme: Theme::from_env(),
        user,
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<TopArgs, clap::Error> {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: TopArgs,
        }
        Cli::try_parse_from(std::iter::once("top").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn top_options_parse_and_bad_ones_are_refused() {
        let args = parse(&["--interval", "250ms", "--sort", "io", "--focus", "alerts", "--filter", "active"]).unwrap();
        assert_eq!((args.interval, args.sort, args.focus), (Duration::from_millis(250), SortKey::Io, Panel::Alerts));
        let defaults = parse(&[]).unwrap();
        assert_eq!(
            (defaults.interval, defaults.sort, defaults.focus),
            (Duration::from_secs(1), SortKey::Cpu, Panel::Processes)
        );
        let err = parse(&["--interval", "fast"]).unwrap_err();
        assert!(err.to_string().contains("'fast' is not a duration; write one like 1s or 500ms"), "{err}");
        assert!(parse(&["--interval", "10ms"]).unwrap_err().to_string().contains("outside 100ms to 1h"));
        assert!(parse(&["--sort", "size"]).is_err());
        assert!(parse(&["--focus", "disks"]).is_err());
    }

    #[test]
    fn the_custom_panel_needs_a_plugin() {
        let args = parse(&["--format", "compact-status", "--focus", "custom"]).unwrap();
        assert_eq!(args.custom_panel().unwrap().as_deref(), Some("compact-status"));
        assert_eq!(parse(&[]).unwrap().custom_panel().unwrap(), None);
        let err = parse(&["--focus", "custom"]).unwrap().custom_panel().unwrap_err();
        assert!(err.0.contains("--focus custom") && err.0.contains("--format PLUGIN"), "{}", err.0);
        assert!(parse(&["--format", " "]).unwrap().custom_panel().unwrap_err().0.contains("plugin's name"));
    }
}
