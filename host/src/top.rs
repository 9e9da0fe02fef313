//! `monitor top`: a live terminal view of the machine, its processes, the progress of
//! runs, alerts, plugins and watch jobs, and with `--format PLUGIN` the host status as that
//! display-formatter plugin renders it.
//!
//! The parts, each small and most of them pure:
//!
//! - [`data`] fetches on a thread of its own (through the [`crate::client::Client`]
//!   of the running host, or the machine and the database when none runs) and
//!   sends what it got over a channel;
//! - [`model`] holds what the view knows, with [`history`] behind the sparklines;
//!   [`keys`] turns keys into changes of it;
//! - [`render`] and [`panels`] draw a model into a ratatui frame, with [`theme`]'s
//!   colours (none under `NO_COLOR`);
//! - [`signal`] sends the signal confirmed after `k`;
//! - [`terminal`] takes the terminal over and gives it back, also on panic;
//! - [`run`] ties them together: it redraws at the interval and on every key, and
//!   never waits on the network.

use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event};

pub mod data;
pub mod filter;
pub mod format;
pub mod history;
pub mod keys;
pub mod model;
pub mod panels;
pub mod render;
pub mod signal;
pub mod terminal;
pub mod theme;

use data::{Ask, FetchPlan, Fetched, Source};
use filter::Filter;
use keys::Effect;
use model::{Model, Panel, SortKey};
use theme::Theme;

use crate::error::CommandResult;

/// How long the loop waits for a key before looking for data again.
const INPUT_WAIT: Duration = Duration::from_millis(100);

/// Everything `top` needs, validated from the command line.
pub struct Settings {
    pub source: Source,
    pub interval: Duration,
    pub focus: Panel,
    pub sort: SortKey,
    pub filter: Filter,
    pub theme: Theme,
    /// Who acknowledges alerts from this view.
    pub user: String,
    /// The display-formatter plugin whose rendering of the status the custom panel shows.
    pub format: Option<String>,
}

pub fn run(settings: Settings) -> CommandResult<()> {
    let mut model = Model::new(settings.focus, settings.sort, settings.filter, settings.theme, settings.interval)
        .with_custom(settings.format.clone());
    let (requests, messages) = data::spawn(FetchPlan {
        source: settings.source,
        interval: settings.interval,
        by: settings.user,
        format: settings.format,
    });
    let mut screen = terminal::enter()?;
    let outcome = event_loop(&mut screen.terminal, &mut model, &requests, &messages);
    drop(screen);
    outcome
}

fn event_loop(
    terminal: &mut ratatui::Terminal<ratatui::backend::CrosstermBackend<std::io::Stdout>>,
    model: &mut Model,
    requests: &Sender<Ask>,
    messages: &Receiver<Fetched>,
) -> CommandResult<()> {
    let mut dirty = true;
    let mut drawn = Instant::now();
    loop {
        while let Ok(message) = messages.try_recv() {
            receive(model, message);
            dirty = true;
        }
        // Also at the interval, for a host that went quiet: its age still shows.
        if dirty || drawn.elapsed() >= model.interval {
            terminal.draw(|frame| render::render(model, frame))?;
            dirty = false;
            drawn = Instant::now();
        }
        if !event::poll(INPUT_WAIT)? {
            continue;
        }
        match event::read()? {
            Event::Key(key) => match keys::handle(model, key) {
                Effect::Quit => return Ok(()),
                Effect::Ack(id) => {
                    // The fetcher ends only when this loop does.
                    let _ = requests.send(Ask::Ack(id));
                }
                Effect::Signal(kill) => match signal::send(&kill) {
                    Ok(done) => model.notify(false, done),
                    Err(why) => model.notify(true, why),
                },
                Effect::None => {}
            },
            Event::Resize(..) => terminal.autoresize()?,
            _ => {}
        }
        dirty = true;
    }
}

/// Applies one message from the fetching thread.
pub fn receive(model: &mut Model, message: Fetched) {
    match message {
        Fetched::Data(data, origin) => model.receive(*data, origin),
        Fetched::History(history) => model.prefill(*history),
        Fetched::Failed(error) => model.notify(true, format!("fetching: {error}")),
        Fetched::Acked(Ok(id)) => model.notify(false, format!("acknowledged {id}")),
        Fetched::Acked(Err(error)) => model.notify(true, format!("not acknowledged: {error}")),
    }
}

#[cfg(test)]
mod tests;
