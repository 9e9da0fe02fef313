//! Colours that mean the same on every panel: green fine, yellow warning, red error
//! or critical. With `NO_COLOR` set the view uses no colour at all, only bold and
//! reverse video, so it reads the same on a monochrome terminal.

use ratatui::style::{Color, Modifier, Style};

use crate::alerts::{AlertState, Level};
use crate::plugin::PluginState;
use crate::progress::Status;
use crate::watch::{Ending, Execution, JobView};

/// A watch job's command running this long is worth a look: a build or a test run
/// that takes over a minute may hang.
pub const RUNNING_LONG_SECS: u64 = 60;

/// What a value says about the machine or the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Fine,
    Warning,
    Bad,
    /// Neither: finished, idle, unknown.
    Quiet,
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to anything but the empty string (no-color.org).
    pub fn from_env() -> Theme {
        Theme { color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) }
    }

    #[cfg(test)]
    pub fn plain() -> Theme {
        Theme { color: false }
    }

    #[cfg(test)]
    pub fn colored() -> Theme {
        Theme { color: true }
    }

    pub fn tone(&self, tone: Tone) -> Style {
        if !self.color {
            return match tone {
                Tone::Bad => Style::new().add_modifier(Modifier::BOLD),
                _ => Style::new(),
            };
        }
        match tone {
            Tone::Fine => Style::new().fg(Color::Green),
            Tone::Warning => Style::new().fg(Color::Yellow),
            Tone::Bad => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            Tone::Quiet => Style::new().fg(Color::DarkGray),
            Tone::Plain => Style::new(),
        }
    }

    /// Column headers and titles.
    pub fn heading(&self) -> Style {
        let style = Style::new().add_modifier(Modifier::BOLD);
        if self.color { style.fg(Color::Cyan) } else { style }
    }

    /// The selected row, the focused tab: reverse video reads without colour too.
    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
}

/// A share of a whole (CPU, memory, disk space) in percent.
pub fn percent_tone(percent: f64) -> Tone {
    match percent {
        p if p >= 90.0 => Tone::Bad,
        p if p >= 70.0 => Tone::Warning,
        _ => Tone::Fine,
    }
}

pub fn status_tone(status: Status) -> Tone {
    match status {
        Status::Running | Status::Completed => Tone::Fine,
        Status::Pending | Status::Paused | Status::Cancelled => Tone::Warning,
        Status::Failed => Tone::Bad,
    }
}

pub fn level_tone(level: Level) -> Tone {
    match level {
        Level::Info => Tone::Fine,
        Level::Warning => Tone::Warning,
        Level::Error | Level::Critical => Tone::Bad,
    }
}

/// An alert's colour: its level while it needs attention, quiet once seen or over.
pub fn alert_tone(state: AlertState, level: Level) -> Tone {
    match state {
        AlertState::Firing | AlertState::Pending => level_tone(level),
        AlertState::Acknowledged | AlertState::Resolved | AlertState::Inactive => Tone::Quiet,
    }
}

pub fn plugin_tone(state: &PluginState) -> Tone {
    match state {
        PluginState::Running => Tone::Fine,
        PluginState::AwaitingGrant { .. } | PluginState::AwaitingConfirmation { .. } => Tone::Warning,
        PluginState::Quarantined { .. } | PluginState::Failed { .. } => Tone::Bad,
        PluginState::Disabled | PluginState::Absent => Tone::Quiet,
    }
}

/// A watch job's state: paused, or running for [`RUNNING_LONG_SECS`] or more, is worth a look.
pub fn job_tone(job: &JobView, running_secs: Option<u64>) -> Tone {
    match running_secs {
        _ if job.paused => Tone::Warning,
        Some(secs) if secs >= RUNNING_LONG_SECS => Tone::Warning,
        _ => Tone::Fine,
    }
}

/// A job's last run: failed, or stopped on purpose (restarted for newer changes, the
/// host stopping), or quiet before the first one.
pub fn run_tone(last: Option<&Execution>) -> Tone {
    match last.map(|run| &run.outcome) {
        None => Tone::Quiet,
        Some(outcome) if outcome.succeeded() => Tone::Fine,
        Some(Ending::Stopped { .. }) => Tone::Warning,
        Some(_) => Tone::Bad,
    }
}
