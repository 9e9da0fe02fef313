//! What the view knows: the latest data, a short history for sparklines, and the
//! user's choices (panel, sort, filter, selection, pause). Rendering reads only
//! this; keys and data change it; nothing here does I/O.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;

use super::filter::{self, Filter};
use super::theme::Theme;
use crate::alerts::Alert;
use crate::plugin::PluginRecord;
use crate::progress::Node;
use crate::sampler::{ProcessSample, Snapshot};

/// Points kept per sparkline: two minutes at the default interval.
pub const HISTORY_POINTS: usize = 120;

/// One fetch of everything the view shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    pub snapshot: Snapshot,
    pub processes: Vec<ProcessSample>,
    /// Each run's nodes, root first in path order; finished runs only their root.
    pub runs: Vec<Vec<Node>>,
    pub alerts: Vec<Alert>,
    pub plugins: Vec<PluginRecord>,
}

/// The panels, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Panel {
    System,
    Processes,
    Progress,
    Alerts,
    Plugins,
}

impl Panel {
    pub const ALL: [Panel; 5] = [Panel::System, Panel::Processes, Panel::Progress, Panel::Alerts, Panel::Plugins];

    pub fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).expect("every panel is listed")
    }

    pub fn title(self) -> &'static str {
        match self {
            Panel::System => "System",
            Panel::Processes => "Processes",
            Panel::Progress => "Progress",
            Panel::Alerts => "Alerts",
            Panel::Plugins => "Plugins",
        }
    }

    /// The next panel (`forward`) or the previous one, wrapping around.
    pub fn step(self, forward: bool) -> Panel {
        let n = Panel::ALL.len();
        let i = if forward { self.index() + 1 } else { self.index() + n - 1 };
        Panel::ALL[i % n]
    }
}

/// The process columns one can sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    Cpu,
    Mem,
    Io,
    Pid,
    Name,
}

impl SortKey {
    pub const ALL: [SortKey; 5] = [SortKey::Cpu, SortKey::Mem, SortKey::Io, SortKey::Pid, SortKey::Name];

    /// Largest first for amounts; PID and name read naturally ascending.
    pub fn descending_by_default(self) -> bool {
        matches!(self, SortKey::Cpu | SortKey::Mem | SortKey::Io)
    }

    pub fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).expect("every key is listed");
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    pub fn new(key: SortKey) -> Sort {
        Sort { key, descending: key.descending_by_default() }
    }
}

/// Recent values of the machine-wide figures, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub cpu: VecDeque<f64>,
    pub cores: Vec<VecDeque<f64>>,
    pub memory: VecDeque<f64>,
    pub disk_read: VecDeque<f64>,
    pub disk_write: VecDeque<f64>,
    pub net_rx: VecDeque<f64>,
    pub net_tx: VecDeque<f64>,
    /// The snapshot last added, so a snapshot fetched twice is counted once.
    last_ms: u64,
}

impl History {
    pub fn add(&mut self, s: &Snapshot) {
        if s.timestamp_ms == self.last_ms && self.last_ms != 0 {
            return;
        }
        self.last_ms = s.timestamp_ms;
        push(&mut self.cpu, f64::from(s.cpu_percent));
        self.cores.resize_with(s.per_core_percent.len(), VecDeque::new);
        for (core, value) in self.cores.iter_mut().zip(&s.per_core_percent) {
            push(core, f64::from(*value));
        }
        let memory = if s.memory_total_bytes == 0 {
            0.0
        } else {
            100.0 * s.memory_used_bytes as f64 / s.memory_total_bytes as f64
        };
        push(&mut self.memory, memory);
        let sum = |f: fn(&crate::sampler::BlockDeviceSample) -> Option<f64>| {
            s.block_devices.iter().filter_map(f).sum::<f64>()
        };
        push(&mut self.disk_read, sum(|d| d.read_bytes_per_second));
        push(&mut self.disk_write, sum(|d| d.write_bytes_per_second));
        // Loopback traffic never leaves the machine: it is not network use.
        let nets = || s.networks.iter().filter(|n| n.interface != "lo");
        push(&mut self.net_rx, nets().filter_map(|n| n.receive_bytes_per_second).sum());
        push(&mut self.net_tx, nets().filter_map(|n| n.transmit_bytes_per_second).sum());
    }
}

fn push(series: &mut VecDeque<f64>, value: f64) {
    if series.len() == HISTORY_POINTS {
        series.pop_front();
    }
    series.push_back(if value.is_finite() { value } else { 0.0 });
}

/// What is on screen: the data and the history that goes with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub data: Arc<Data>,
    pub history: History,
    /// Whether any data has arrived yet.
    pub loaded: bool,
}

/// A line at the bottom saying what just happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub error: bool,
    pub text: String,
}

/// Where the data comes from, shown in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The running host on this machine.
    Daemon,
    /// No host runs: the machine sampled here, runs and alerts from the database.
    Local,
    /// A host elsewhere.
    Remote(String),
}

pub struct Model {
    /// Always the newest data, paused or not.
    pub live: View,
    /// What the screen shows while paused.
    pub frozen: Option<View>,
    /// Fetches received, paused or not.
    pub received: u64,
    pub origin: Option<Origin>,
    pub focus: Panel,
    pub sort: Sort,
    pub filter: Filter,
    /// The filter being typed after `/`, until Enter or Esc.
    pub editing: Option<String>,
    pub help: bool,
    pub details: bool,
    /// The selected row of each panel, by [`Panel::index`].
    pub selected: [usize; 5],
    pub notice: Option<Notice>,
    pub theme: Theme,
    pub interval: Duration,
}

impl Model {
    pub fn new(focus: Panel, sort: SortKey, filter: Filter, theme: Theme, interval: Duration) -> Model {
        Model {
            live: View::default(),
            frozen: None,
            received: 0,
            origin: None,
            focus,
            sort: Sort::new(sort),
            filter,
            editing: None,
            help: false,
            details: false,
            selected: [0; 5],
            notice: None,
            theme,
            interval,
        }
    }

    /// Takes a fetch; the screen shows it unless paused.
    pub fn receive(&mut self, data: Data, origin: Origin) {
        self.live.history.add(&data.snapshot);
        self.live.data = Arc::new(data);
        self.live.loaded = true;
        self.origin = Some(origin);
        self.received += 1;
        // The last fetch error is over once a fetch succeeds.
        if self.notice.as_ref().is_some_and(|n| n.error && n.text.starts_with("fetching:")) {
            self.notice = None;
        }
        self.clamp_selection();
    }

    /// What the screen shows: frozen while paused, else the newest.
    pub fn shown(&self) -> &View {
        self.frozen.as_ref().unwrap_or(&self.live)
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    pub fn toggle_pause(&mut self) {
        self.frozen = match self.frozen {
            Some(_) => None,
            None => Some(self.live.clone()),
        };
        self.clamp_selection();
    }

    pub fn processes(&self) -> Vec<&ProcessSample> {
        let mut rows = filter::processes(&self.shown().data.processes, &self.filter, self.sort);
        if matches!(self.filter, Filter::Text(_)) && !matches!(self.origin, Some(Origin::Remote(_))) {
            // `monitor top --filter TEXT` has the text in its own command line: it is no answer.
            rows.retain(|p| p.pid != std::process::id());
        }
        rows
    }

    pub fn progress(&self) -> Vec<&Node> {
        filter::progress(&self.shown().data.runs, &self.filter)
    }

    pub fn alerts(&self) -> Vec<&Alert> {
        filter::alerts(&self.shown().data.alerts, &self.filter)
    }

    pub fn plugins(&self) -> Vec<&PluginRecord> {
        filter::plugins(&self.shown().data.plugins, &self.filter)
    }

    /// How many rows the focused panel has to select from.
    pub fn rows(&self, panel: Panel) -> usize {
        match panel {
            Panel::System => 0,
            Panel::Processes => self.processes().len(),
            Panel::Progress => self.progress().len(),
            Panel::Alerts => self.alerts().len(),
            Panel::Plugins => self.plugins().len(),
        }
    }

    pub fn selection(&self) -> usize {
        self.selected[self.focus.index()]
    }

    /// The selected alert, if the alerts panel has one.
    pub fn selected_alert(&self) -> Option<&Alert> {
        self.alerts().get(self.selected[Panel::Alerts.index()]).copied()
    }

    /// Keeps every selection on a row that exists.
    pub fn clamp_selection(&mut self) {
        for panel in Panel::ALL {
            let rows = self.rows(panel);
            let selected = &mut self.selected[panel.index()];
            *selected = (*selected).min(rows.saturating_sub(1));
        }
    }

    pub fn notify(&mut self, error: bool, text: impl Into<String>) {
        self.notice = Some(Notice { error, text: text.into() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(at: u64, cpu: f32) -> Snapshot {
        Snapshot { timestamp_ms: at, cpu_percent: cpu, per_core_percent: vec![cpu, cpu / 2.0], ..Default::default() }
    }

    #[test]
    fn history_keeps_the_newest_points_and_counts_a_snapshot_once() {
        let mut history = History::default();
        for i in 0..(HISTORY_POINTS as u64 + 10) {
            history.add(&snapshot(i + 1, i as f32));
            history.add(&snapshot(i + 1, i as f32));
        }
        assert_eq!(history.cpu.len(), HISTORY_POINTS);
        assert_eq!(history.cpu.back(), Some(&(HISTORY_POINTS as f64 + 9.0)));
        assert_eq!(history.cores.len(), 2);
        assert_eq!(history.cores[1].back(), Some(&((HISTORY_POINTS as f64 + 9.0) / 2.0)));
    }

    #[test]
    fn pause_freezes_the_screen_while_data_keeps_arriving() {
        let mut model = Model::new(Panel::System, SortKey::Cpu, Filter::None, Theme::plain(), Duration::from_secs(1));
        model.receive(Data { snapshot: snapshot(1, 10.0), ..Default::default() }, Origin::Local);
        model.toggle_pause();
        model.receive(Data { snapshot: snapshot(2, 20.0), ..Default::default() }, Origin::Local);
        model.receive(Data { snapshot: snapshot(3, 30.0), ..Default::default() }, Origin::Local);
        assert!(model.paused());
        assert_eq!(model.shown().data.snapshot.timestamp_ms, 1, "the screen is frozen");
        assert_eq!(model.live.data.snapshot.timestamp_ms, 3, "the model keeps receiving");
        assert_eq!((model.received, model.live.history.cpu.len(), model.shown().history.cpu.len()), (3, 3, 1));
        model.toggle_pause();
        assert_eq!(model.shown().data.snapshot.timestamp_ms, 3, "resuming shows the newest at once");
    }

    #[test]
    fn a_text_filter_leaves_out_top_itself_unless_the_host_is_remote() {
        let me = ProcessSample { pid: std::process::id(), name: "monitor".into(), ..Default::default() };
        let other = ProcessSample { pid: 1, name: "monitor-agent".into(), ..Default::default() };
        let data = Data { processes: vec![me, other], ..Default::default() };
        let filter = Filter::parse("monitor");
        let mut model = Model::new(Panel::Processes, SortKey::Pid, filter, Theme::plain(), Duration::from_secs(1));
        model.receive(data.clone(), Origin::Local);
        assert_eq!(model.processes().iter().map(|p| p.pid).collect::<Vec<_>>(), [1]);
        model.receive(data, Origin::Remote("http://elsewhere:1".into()));
        assert_eq!(model.processes().len(), 2, "a PID on another machine is another process");
    }

    #[test]
    fn panels_step_around() {
        assert_eq!(Panel::System.step(true), Panel::Processes);
        assert_eq!(Panel::Plugins.step(true), Panel::System);
        assert_eq!(Panel::System.step(false), Panel::Plugins);
        assert_eq!(SortKey::Name.next(), SortKey::Cpu);
    }
}
