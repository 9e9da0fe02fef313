//! What the view knows: the latest data, a short history for sparklines, and the
//! user's choices (panel, sort, filter, selection, pause). Rendering reads only
//! this; keys and data change it; nothing here does I/O.

use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;

use super::filter::{self, Filter};
use super::history::History;
use super::theme::Theme;
use crate::alerts::Alert;
use crate::plugin::PluginRecord;
use crate::progress::Node;
use crate::sampler::{ProcessSample, Snapshot};
use crate::watch::JobView;

/// One fetch of everything the view shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    pub snapshot: Snapshot,
    pub processes: Vec<ProcessSample>,
    /// Each run's nodes, root first in path order; finished runs only their root.
    pub runs: Vec<Vec<Node>>,
    pub alerts: Vec<Alert>,
    pub plugins: Vec<PluginRecord>,
    /// With `--format PLUGIN`: the host status as the plugin renders it, or why it did not.
    pub custom: Option<Result<String, String>>,
    /// The host's watch jobs; none without a host.
    pub jobs: Vec<JobView>,
    /// Why the jobs could not be read, while the rest could.
    pub jobs_error: Option<String>,
}

/// A row of the plugins panel: the plugins first, then the watch jobs below them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PluginsRow<'a> {
    Plugin(&'a PluginRecord),
    Job(&'a JobView),
}

/// The panels, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Panel {
    System,
    Processes,
    Progress,
    Alerts,
    Plugins,
    /// The host status rendered by a display-formatter plugin; only with `--format`.
    Custom,
}

impl Panel {
    pub const ALL: [Panel; 6] =
        [Panel::System, Panel::Processes, Panel::Progress, Panel::Alerts, Panel::Plugins, Panel::Custom];

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
            Panel::Custom => "Custom",
        }
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

/// The signals `k` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Kill => "SIGKILL",
        }
    }
}

/// A signal for a process, named by PID and start time so that it never reaches
/// another process that took the PID since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    pub pid: u32,
    pub start_time_secs: u64,
    /// The command as shown, for the prompt.
    pub command: String,
    pub signal: Signal,
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
    /// Kernel threads in the process list; hidden by default.
    pub kernel_threads: bool,
    /// Processes drawn as a tree under their parents, the sort within each level.
    pub tree: bool,
    /// A signal waiting for the user to confirm it.
    pub confirm: Option<Kill>,
    /// The selected row of each panel, by [`Panel::index`].
    pub selected: [usize; Panel::ALL.len()],
    /// The display-formatter plugin of the custom panel; without one there is no such panel.
    pub custom: Option<String>,
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
            kernel_threads: false,
            tree: false,
            confirm: None,
            selected: [0; Panel::ALL.len()],
            custom: None,
            notice: None,
            theme,
            interval,
        }
    }

    /// Adds the custom panel, showing what `plugin` renders.
    pub fn with_custom(mut self, plugin: Option<String>) -> Model {
        self.custom = plugin;
        self
    }

    /// The panels this view has, in tab order: the custom one only with a plugin for it.
    pub fn panels(&self) -> &'static [Panel] {
        match self.custom {
            Some(_) => &Panel::ALL,
            None => &Panel::ALL[..Panel::ALL.len() - 1],
        }
    }

    /// Focuses the next panel (`forward`) or the previous one, wrapping around.
    pub fn step(&mut self, forward: bool) {
        let panels = self.panels();
        let n = panels.len();
        let i = panels.iter().position(|p| *p == self.focus).unwrap_or(0);
        self.focus = panels[if forward { i + 1 } else { i + n - 1 } % n];
    }

    /// Starts the sparklines from stored history; it comes just before the first fetch.
    pub fn prefill(&mut self, history: History) {
        if self.received == 0 {
            self.live.history = history;
        }
    }

    /// Takes a fetch; the screen shows it unless paused.
    pub fn receive(&mut self, data: Data, origin: Origin) {
        self.keeping_selection(|model| {
            model.live.history.add(&data.snapshot);
            model.live.data = Arc::new(data);
            model.live.loaded = true;
        });
        self.origin = Some(origin);
        self.received += 1;
        // The last fetch error is over once a fetch succeeds.
        if self.notice.as_ref().is_some_and(|n| n.error && n.text.starts_with("fetching:")) {
            self.notice = None;
        }
    }

    /// What the screen shows: frozen while paused, else the newest.
    pub fn shown(&self) -> &View {
        self.frozen.as_ref().unwrap_or(&self.live)
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    pub fn toggle_pause(&mut self) {
        self.keeping_selection(|model| {
            model.frozen = match model.frozen {
                Some(_) => None,
                None => Some(model.live.clone()),
            };
        });
    }

    pub fn processes(&self) -> Vec<&ProcessSample> {
        self.process_rows().into_iter().map(|(_, p)| p).collect()
    }

    /// The processes shown, in order, each with the branch drawn before its command in
    /// the tree view (empty otherwise).
    pub fn process_rows(&self) -> Vec<(String, &ProcessSample)> {
        let data = &self.shown().data;
        let mut rows = filter::processes(&data.processes, &self.filter, self.sort, self.kernel_threads);
        if matches!(self.filter, Filter::Text(_)) && self.local() {
            // `monitor top --filter TEXT` has the text in its own command line: it is no answer.
            rows.retain(|p| p.pid != std::process::id());
        }
        match self.tree {
            true => filter::tree(&rows),
            false => rows.into_iter().map(|p| (String::new(), p)).collect(),
        }
    }

    /// Whether the processes shown are this machine's (a PID here means the same process).
    pub fn local(&self) -> bool {
        !matches!(self.origin, Some(Origin::Remote(_)))
    }

    /// The selected process, if the processes panel has one.
    pub fn selected_process(&self) -> Option<&ProcessSample> {
        self.processes().get(self.selected[Panel::Processes.index()]).copied()
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

    pub fn jobs(&self) -> Vec<&JobView> {
        filter::jobs(&self.shown().data.jobs, &self.filter)
    }

    /// The selected row of the plugins panel: a plugin, or a job past the last plugin.
    pub fn selected_plugins_row(&self) -> Option<PluginsRow<'_>> {
        let row = self.selected[Panel::Plugins.index()];
        let plugins = self.plugins();
        match plugins.get(row).copied() {
            Some(plugin) => Some(PluginsRow::Plugin(plugin)),
            None => self.jobs().get(row - plugins.len()).copied().map(PluginsRow::Job),
        }
    }

    /// How long a running job's command has run, from its process's start as last
    /// sampled (the view does not know until the process list has it).
    pub fn job_running_secs(&self, job: &JobView) -> Option<u64> {
        let pid = job.pid.filter(|_| job.state == "running")?;
        let data = &self.shown().data;
        let process = data.processes.iter().find(|p| p.pid == pid)?;
        Some((data.snapshot.timestamp_ms / 1000).saturating_sub(process.start_time_secs))
    }

    /// How many rows the focused panel has to select from.
    pub fn rows(&self, panel: Panel) -> usize {
        match panel {
            Panel::System | Panel::Custom => 0,
            Panel::Processes => self.processes().len(),
            Panel::Progress => self.progress().len(),
            Panel::Alerts => self.alerts().len(),
            Panel::Plugins => self.plugins().len() + self.jobs().len(),
        }
    }

    #[cfg(test)]
    pub fn selection(&self) -> usize {
        self.selected[self.focus.index()]
    }

    /// The selected alert, if the alerts panel has one.
    pub fn selected_alert(&self) -> Option<&Alert> {
        self.alerts().get(self.selected[Panel::Alerts.index()]).copied()
    }

    /// Each row's identity, in the order shown: what a selection holds on to.
    fn identities(&self, panel: Panel) -> Vec<String> {
        match panel {
            Panel::System | Panel::Custom => Vec::new(),
            Panel::Processes => self.processes().iter().map(|p| p.pid.to_string()).collect(),
            Panel::Progress => self.progress().iter().map(|n| n.path.to_string()).collect(),
            Panel::Alerts => self.alerts().iter().map(|a| a.id.clone()).collect(),
            Panel::Plugins => {
                let plugins = self.plugins().into_iter().map(|p| format!("plugin {}", p.name));
                plugins.chain(self.jobs().into_iter().map(|j| format!("job {}", j.name))).collect()
            }
        }
    }

    /// Makes `change` (new data, another order or filter, pause) and keeps each panel's
    /// selection on the same process, node, alert, plugin or job wherever it moved; where
    /// that is gone, the selection stays at its row, or the last one.
    pub fn keeping_selection(&mut self, change: impl FnOnce(&mut Model)) {
        let before = Panel::ALL.map(|p| self.identities(p).into_iter().nth(self.selected[p.index()]));
        change(self);
        for (panel, id) in Panel::ALL.into_iter().zip(before) {
            if let Some(row) = id.and_then(|id| self.identities(panel).iter().position(|i| *i == id)) {
                self.selected[panel.index()] = row;
            }
        }
        self.clamp_selection();
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
        Snapshot { timestamp_ms: at, cpu_percent: cpu, ..Default::default() }
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
    fn panels_step_around_and_past_the_custom_one_only_with_a_plugin() {
        let mut model = Model::new(Panel::System, SortKey::Cpu, Filter::None, Theme::plain(), Duration::from_secs(1));
        let steps = |model: &mut Model, forward: bool, times: usize| {
            (0..times)
                .map(|_| {
                    model.step(forward);
                    model.focus
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            steps(&mut model, true, 5),
            [Panel::Processes, Panel::Progress, Panel::Alerts, Panel::Plugins, Panel::System]
        );
        assert_eq!(steps(&mut model, false, 1), [Panel::Plugins]);
        let mut model = model.with_custom(Some("compact-status".into()));
        assert_eq!(steps(&mut model, true, 2), [Panel::Custom, Panel::System]);
        assert_eq!(steps(&mut model, false, 1), [Panel::Custom]);
        assert_eq!(SortKey::Name.next(), SortKey::Cpu);
    }
}
