//! Keys as pure changes of the [`Model`]; what needs the outside world (quitting,
//! acknowledging an alert) comes back as an [`Effect`] for the loop to carry out.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::filter::Filter;
use super::model::{Kill, Model, Panel, Signal, Sort};
use crate::alerts::AlertState;

/// Rows a page key moves.
const PAGE: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    Quit,
    /// Acknowledge the alert with this id.
    Ack(String),
    /// Send a signal the user confirmed.
    Signal(Kill),
}

/// The keys, for the help overlay and the README: key, what it does.
pub const HELP: &[(&str, &str)] = &[
    ("?", "this help; ? or Esc closes it"),
    ("space p", "pause / resume the screen; data keeps coming"),
    ("/", "filter: type, Enter applies, Esc cancels"),
    ("Esc", "clear the filter"),
    ("s S", "sort processes: next column / reverse"),
    ("t", "processes as a tree under their parents / as a list"),
    ("K", "show / hide kernel threads (hidden at start)"),
    ("k", "signal the selected process: SIGTERM, or SIGKILL; asks first"),
    ("tab S-tab 1-6", "next / previous panel, or panel N"),
    ("6", "custom panel: the status by --format PLUGIN"),
    ("↑↓ PgUp PgDn g G", "move the selection"),
    ("enter", "details of the selection"),
    ("a", "acknowledge the selected firing alert"),
    ("q Ctrl-C", "quit"),
];

pub fn handle(model: &mut Model, key: KeyEvent) -> Effect {
    if key.kind == KeyEventKind::Release {
        return Effect::None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Effect::Quit;
    }
    if let Some(text) = &mut model.editing {
        match key.code {
            KeyCode::Char(c) => text.push(c),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Enter => {
                let filter = Filter::parse(text);
                model.editing = None;
                model.keeping_selection(|m| m.filter = filter);
            }
            KeyCode::Esc => model.editing = None,
            _ => {}
        }
        return Effect::None;
    }
    if let Some(kill) = model.confirm.take() {
        return match key.code {
            KeyCode::Char('y') | KeyCode::Enter => confirmed(model, kill),
            KeyCode::Char('9') => confirmed(model, Kill { signal: Signal::Kill, ..kill }),
            KeyCode::Char('n') | KeyCode::Esc => {
                model.notify(false, format!("no signal sent to {}", kill.pid));
                Effect::None
            }
            _ => {
                // Only an answer ends the question.
                model.confirm = Some(kill);
                Effect::None
            }
        };
    }
    if model.help {
        match key.code {
            KeyCode::Char('q') => return Effect::Quit,
            KeyCode::Char('?') | KeyCode::Esc | KeyCode::Enter => model.help = false,
            _ => {}
        }
        return Effect::None;
    }
    if model.details {
        match key.code {
            KeyCode::Char('q') => return Effect::Quit,
            KeyCode::Esc | KeyCode::Enter => model.details = false,
            _ => {}
        }
        return Effect::None;
    }
    match key.code {
        KeyCode::Char('q') => return Effect::Quit,
        KeyCode::Char('?') => model.help = true,
        KeyCode::Char(' ') | KeyCode::Char('p') => model.toggle_pause(),
        KeyCode::Char('/') => model.editing = Some(model.filter.text().to_string()),
        KeyCode::Esc => {
            model.keeping_selection(|m| m.filter = Filter::None);
            model.notice = None;
        }
        KeyCode::Char('s') => sort(model, Sort::new(model.sort.key.next())),
        KeyCode::Char('S') => sort(model, Sort { descending: !model.sort.descending, ..model.sort }),
        KeyCode::Tab => model.step(true),
        KeyCode::BackTab => model.step(false),
        KeyCode::Char(c @ '1'..='6') => match model.panels().get(c as usize - '1' as usize) {
            Some(panel) => model.focus = *panel,
            None => model.notify(true, "no panel 6: the custom panel needs top --format PLUGIN (a display formatter)"),
        },
        KeyCode::Char('t') => {
            model.keeping_selection(|m| m.tree = !m.tree);
            model.notify(false, if model.tree { "processes as a tree" } else { "processes as a list" });
        }
        KeyCode::Char('K') => {
            model.keeping_selection(|m| m.kernel_threads = !m.kernel_threads);
            model.notify(false, if model.kernel_threads { "kernel threads shown" } else { "kernel threads hidden" });
        }
        KeyCode::Char('k') => ask_to_signal(model),
        KeyCode::Up => move_by(model, -1),
        KeyCode::Down => move_by(model, 1),
        KeyCode::PageUp => move_by(model, -(PAGE as isize)),
        KeyCode::PageDown => move_by(model, PAGE as isize),
        KeyCode::Home | KeyCode::Char('g') => move_by(model, isize::MIN),
        KeyCode::End | KeyCode::Char('G') => move_by(model, isize::MAX),
        KeyCode::Enter if model.rows(model.focus) > 0 => model.details = true,
        KeyCode::Char('a') => return ack(model),
        _ => {}
    }
    model.clamp_selection();
    Effect::None
}

fn sort(model: &mut Model, sort: Sort) {
    model.keeping_selection(|m| m.sort = sort);
    model.notify(false, format!("processes sorted by {}", sort_name(sort)));
}

fn move_by(model: &mut Model, by: isize) {
    let rows = model.rows(model.focus);
    let selected = &mut model.selected[model.focus.index()];
    *selected = selected.saturating_add_signed(by).min(rows.saturating_sub(1));
}

fn ack(model: &mut Model) -> Effect {
    if model.focus != Panel::Alerts {
        model.notify(true, "'a' acknowledges the selected alert: switch to the alerts panel with tab or 4");
        return Effect::None;
    }
    let Some(alert) = model.selected_alert() else {
        model.notify(true, "no alert to acknowledge");
        return Effect::None;
    };
    if alert.state != AlertState::Firing {
        let text = format!("alert {} is {}; only a firing alert can be acknowledged", alert.id, alert.state);
        model.notify(true, text);
        return Effect::None;
    }
    let id = alert.id.clone();
    model.notify(false, format!("acknowledging {id}…"));
    Effect::Ack(id)
}

fn ask_to_signal(model: &mut Model) {
    if model.focus != Panel::Processes {
        return model.notify(true, "'k' signals the selected process: switch to the processes panel with tab or 2");
    }
    if !model.local() {
        return model.notify(true, "'k' signals processes on this machine; this view shows another host's");
    }
    let Some(p) = model.selected_process() else {
        return model.notify(true, "no process to signal");
    };
    let command = p.display_command(60);
    model.confirm = Some(Kill { pid: p.pid, start_time_secs: p.start_time_secs, command, signal: Signal::Term });
}

fn confirmed(model: &mut Model, kill: Kill) -> Effect {
    model.notify(false, format!("sending {} to {}…", kill.signal.name(), kill.pid));
    Effect::Signal(kill)
}

/// `cpu ▼`, `name ▲`.
pub fn sort_name(sort: Sort) -> String {
    let key = format!("{:?}", sort.key).to_lowercase();
    format!("{key} {}", if sort.descending { "▼" } else { "▲" })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::alerts::{Alert, Level};
    use crate::sampler::ProcessSample;
    use crate::top::model::{Data, Origin, SortKey};
    use crate::top::theme::Theme;

    fn press(model: &mut Model, code: KeyCode) -> Effect {
        handle(model, KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn typed(model: &mut Model, text: &str) {
        for c in text.chars() {
            press(model, KeyCode::Char(c));
        }
    }

    fn alert(id: &str, state: AlertState) -> Alert {
        Alert {
            id: id.into(),
            rule: id.into(),
            level: Level::Warning,
            labels: Default::default(),
            state,
            since_ms: 0,
            fired_ms: Some(0),
            value: None,
            message: String::new(),
            silenced: false,
            ack: None,
        }
    }

    fn model() -> Model {
        let mut model = Model::new(Panel::System, SortKey::Cpu, Filter::None, Theme::plain(), Duration::from_secs(1));
        let processes = (1..=30)
            .map(|pid| ProcessSample {
                pid,
                name: format!("p{pid}"),
                command: format!("p{pid} --run"),
                cpu_percent: pid as f32,
                ..Default::default()
            })
            .collect();
        let alerts = vec![alert("hot", AlertState::Firing), alert("old", AlertState::Resolved)];
        model.receive(Data { processes, alerts, ..Default::default() }, Origin::Daemon);
        model
    }

    #[test]
    fn quit_with_q_or_ctrl_c_from_anywhere() {
        let mut m = model();
        assert_eq!(press(&mut m, KeyCode::Char('q')), Effect::Quit);
        m.help = true;
        assert_eq!(press(&mut m, KeyCode::Char('q')), Effect::Quit);
        m.editing = Some(String::new());
        assert_eq!(press(&mut m, KeyCode::Char('q')), Effect::None, "q is text while typing a filter");
        assert_eq!(handle(&mut m, KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Effect::Quit);
    }

    #[test]
    fn help_opens_and_closes() {
        let mut m = model();
        press(&mut m, KeyCode::Char('?'));
        assert!(m.help);
        press(&mut m, KeyCode::Tab);
        assert_eq!((m.help, m.focus), (true, Panel::System), "keys wait while help is open");
        press(&mut m, KeyCode::Esc);
        assert!(!m.help);
        press(&mut m, KeyCode::Char('?'));
        press(&mut m, KeyCode::Char('?'));
        assert!(!m.help);
    }

    #[test]
    fn space_and_p_pause_and_resume() {
        let mut m = model();
        press(&mut m, KeyCode::Char(' '));
        assert!(m.paused());
        press(&mut m, KeyCode::Char(' '));
        assert!(!m.paused());
        press(&mut m, KeyCode::Char('p'));
        assert!(m.paused());
        press(&mut m, KeyCode::Char('p'));
        assert!(!m.paused());
    }

    #[test]
    fn slash_edits_the_filter_enter_applies_esc_cancels() {
        let mut m = model();
        press(&mut m, KeyCode::Char('/'));
        typed(&mut m, "p22x");
        press(&mut m, KeyCode::Backspace);
        assert_eq!(m.editing.as_deref(), Some("p22"));
        assert_eq!(m.filter, Filter::None, "nothing applies before Enter");
        press(&mut m, KeyCode::Enter);
        assert_eq!((m.filter.clone(), m.editing.clone()), (Filter::Text("p22".into()), None));
        assert_eq!(m.processes().iter().map(|p| p.pid).collect::<Vec<_>>(), [22]);

        press(&mut m, KeyCode::Char('/'));
        assert_eq!(m.editing.as_deref(), Some("p22"), "editing starts from the filter in force");
        typed(&mut m, "9");
        press(&mut m, KeyCode::Esc);
        assert_eq!((m.filter.clone(), m.editing.clone()), (Filter::Text("p22".into()), None), "Esc cancels");
        press(&mut m, KeyCode::Esc);
        assert_eq!(m.filter, Filter::None, "Esc outside editing clears the filter");
    }

    #[test]
    fn s_cycles_the_sort_column_and_shift_s_reverses_it() {
        let mut m = model();
        assert_eq!(m.processes()[0].pid, 30);
        press(&mut m, KeyCode::Char('s'));
        assert_eq!(m.sort, Sort { key: SortKey::Mem, descending: true });
        press(&mut m, KeyCode::Char('s'));
        press(&mut m, KeyCode::Char('s'));
        assert_eq!(m.sort, Sort { key: SortKey::Pid, descending: false });
        assert_eq!(m.processes()[0].pid, 1);
        press(&mut m, KeyCode::Char('S'));
        assert_eq!(m.processes()[0].pid, 30);
        assert!(m.notice.as_ref().unwrap().text.contains("pid ▼"));
        press(&mut m, KeyCode::Char('s'));
        press(&mut m, KeyCode::Char('s'));
        assert_eq!(m.sort.key, SortKey::Cpu);
    }

    #[test]
    fn tab_and_numbers_switch_panels() {
        let mut m = model();
        press(&mut m, KeyCode::Tab);
        assert_eq!(m.focus, Panel::Processes);
        press(&mut m, KeyCode::BackTab);
        press(&mut m, KeyCode::BackTab);
        assert_eq!(m.focus, Panel::Plugins);
        press(&mut m, KeyCode::Char('3'));
        assert_eq!(m.focus, Panel::Progress);
        press(&mut m, KeyCode::Char('6'));
        assert_eq!(m.focus, Panel::Progress, "no custom panel without a plugin for it");
        assert!(m.notice.as_ref().unwrap().text.contains("--format PLUGIN"), "{:?}", m.notice);
        let mut m = m.with_custom(Some("compact-status".into()));
        press(&mut m, KeyCode::Char('6'));
        assert_eq!(m.focus, Panel::Custom);
        press(&mut m, KeyCode::Tab);
        assert_eq!(m.focus, Panel::System);
    }

    #[test]
    fn arrows_move_the_selection_within_the_rows() {
        let mut m = model();
        press(&mut m, KeyCode::Char('2'));
        press(&mut m, KeyCode::Up);
        assert_eq!(m.selection(), 0);
        press(&mut m, KeyCode::Down);
        press(&mut m, KeyCode::Down);
        assert_eq!(m.selection(), 2);
        press(&mut m, KeyCode::Up);
        assert_eq!(m.selection(), 1);
        press(&mut m, KeyCode::PageDown);
        assert_eq!(m.selection(), 11);
        press(&mut m, KeyCode::End);
        assert_eq!(m.selection(), 29);
        press(&mut m, KeyCode::Down);
        assert_eq!(m.selection(), 29, "stays on the last row");
        press(&mut m, KeyCode::Char('g'));
        assert_eq!(m.selection(), 0);
        press(&mut m, KeyCode::Char('/'));
        typed(&mut m, "p3");
        press(&mut m, KeyCode::Enter);
        assert_eq!(m.selection(), 0, "p30 stays selected under the new filter");
        press(&mut m, KeyCode::Char('G'));
        assert_eq!(m.selection(), 1, "p30 and p3");
    }

    #[test]
    fn enter_opens_details_of_a_row_and_esc_closes_them() {
        let mut m = model();
        press(&mut m, KeyCode::Enter);
        assert!(!m.details, "the system panel has no rows");
        press(&mut m, KeyCode::Char('2'));
        press(&mut m, KeyCode::Enter);
        assert!(m.details);
        press(&mut m, KeyCode::Down);
        assert_eq!(m.selection(), 0, "keys wait while details are open");
        press(&mut m, KeyCode::Esc);
        assert!(!m.details);
    }

    #[test]
    fn a_acknowledges_the_selected_firing_alert() {
        let mut m = model();
        assert_eq!(press(&mut m, KeyCode::Char('a')), Effect::None, "not on the alerts panel");
        assert!(m.notice.as_ref().unwrap().error);
        press(&mut m, KeyCode::Char('4'));
        assert_eq!(press(&mut m, KeyCode::Char('a')), Effect::Ack("hot".into()));
        press(&mut m, KeyCode::Down);
        assert_eq!(press(&mut m, KeyCode::Char('a')), Effect::None);
        assert!(m.notice.as_ref().unwrap().text.contains("alert old is resolved"), "{:?}", m.notice);
    }

    #[test]
    fn k_asks_before_signalling_the_selected_process() {
        let mut m = model();
        assert_eq!(press(&mut m, KeyCode::Char('k')), Effect::None);
        assert!(m.confirm.is_none() && m.notice.as_ref().unwrap().error, "not on the processes panel");
        press(&mut m, KeyCode::Char('2'));
        press(&mut m, KeyCode::Char('k'));
        let asked = m.confirm.clone().expect("a question");
        assert_eq!((asked.pid, asked.signal), (30, Signal::Term), "the selected process, SIGTERM first");
        assert_eq!(press(&mut m, KeyCode::Char('q')), Effect::None, "only an answer ends the question");
        assert_eq!(press(&mut m, KeyCode::Down), Effect::None);
        assert_eq!((m.selection(), m.confirm.is_some()), (0, true));
        assert_eq!(press(&mut m, KeyCode::Esc), Effect::None);
        assert!(m.confirm.is_none());
        press(&mut m, KeyCode::Char('k'));
        assert_eq!(press(&mut m, KeyCode::Char('y')), Effect::Signal(asked.clone()));
        press(&mut m, KeyCode::Char('k'));
        assert_eq!(press(&mut m, KeyCode::Char('9')), Effect::Signal(Kill { signal: Signal::Kill, ..asked }));
        m.origin = Some(Origin::Remote("http://elsewhere:1".into()));
        press(&mut m, KeyCode::Char('k'));
        assert!(m.confirm.is_none(), "a PID of another machine is not ours to signal");
    }

    #[test]
    fn t_shows_the_tree_and_shift_k_the_kernel_threads() {
        let mut m = model();
        let mut data = (*m.live.data).clone();
        data.processes = vec![
            ProcessSample { pid: 2, name: "kthreadd".into(), ..Default::default() },
            ProcessSample { pid: 9, parent: Some(2), name: "kworker".into(), ..Default::default() },
            ProcessSample { pid: 10, command: "init".into(), cpu_percent: 1.0, ..Default::default() },
            ProcessSample { pid: 11, parent: Some(10), command: "job".into(), cpu_percent: 5.0, ..Default::default() },
        ];
        m.receive(data, Origin::Local);
        press(&mut m, KeyCode::Char('2'));
        let pids = |m: &Model| m.processes().iter().map(|p| p.pid).collect::<Vec<_>>();
        let kernel_hidden = if cfg!(target_os = "linux") { vec![11, 10] } else { vec![11, 10, 9, 2] };
        assert_eq!(pids(&m), kernel_hidden, "by CPU");
        press(&mut m, KeyCode::Char('t'));
        assert_eq!(pids(&m)[..2], [10, 11], "the child under its parent");
        assert_eq!(m.process_rows()[1].0, "└─ ");
        assert_eq!(m.selection(), 1, "the selection stays on its process");
        press(&mut m, KeyCode::Char('K'));
        assert_eq!(pids(&m).len(), 4);
        press(&mut m, KeyCode::Char('t'));
        assert_eq!(pids(&m)[..2], [11, 10]);
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut m = model();
        let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(handle(&mut m, release), Effect::None);
    }
}
