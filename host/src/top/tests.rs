//! Rendering tests: a model drawn into ratatui's `TestBackend`, read back as text
//! and styles, at the smallest supported size (80×24) and a large one.

use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};

use super::filter::Filter;
use super::keys;
use super::model::{Data, Model, Origin, Panel, SortKey};
use super::render::render;
use super::theme::Theme;
use crate::alerts::{Ack, Alert, AlertState, Level};
use crate::plugin::{PluginRecord, PluginState};
use crate::progress::{Node, NodePath, Status};
use crate::sampler::{BlockDeviceSample, MountSample, NetworkSample, ProcessSample, Snapshot};

mod custom;
mod history;
mod jobs;
mod selection;

const NOW: u64 = 1_700_000_000_000;

/// What compact-status makes of the status view.
const STATUS: &str = "cpu 42% mem 75% load 1.50 | train-42 40% | 1 firing (critical)";

fn snapshot(at: u64, cpu: f32) -> Snapshot {
    Snapshot {
        timestamp_ms: at,
        hostname: "box".into(),
        cpu_percent: cpu,
        per_core_percent: vec![cpu, 95.0],
        memory_total_bytes: 8 << 30,
        memory_used_bytes: 6 << 30,
        swap_total_bytes: 2 << 30,
        load_one: 1.5,
        uptime_secs: 3 * 86_400,
        process_count: 3,
        disks: vec![MountSample {
            mount_point: "/".into(),
            device: "/dev/vda1".into(),
            filesystem: "ext4".into(),
            total_bytes: 100 << 30,
            available_bytes: 5 << 30,
            used_bytes: 95 << 30,
        }],
        block_devices: vec![BlockDeviceSample {
            device: "vda".into(),
            read_bytes_per_second: Some(2048.0),
            write_bytes_per_second: Some(1_048_576.0),
            ..Default::default()
        }],
        networks: vec![NetworkSample {
            interface: "eth0".into(),
            receive_bytes_per_second: Some(1536.0),
            transmit_bytes_per_second: Some(512.0),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn process(pid: u32, name: &str, command: &str, cpu: f32, memory: u64) -> ProcessSample {
    ProcessSample {
        pid,
        name: name.into(),
        command: command.into(),
        user: "alice".into(),
        status: "running".into(),
        cpu_percent: cpu,
        memory_bytes: memory,
        disk_read_bytes_per_second: Some(0.0),
        disk_write_bytes_per_second: Some(4096.0),
        start_time_secs: NOW / 1000 - 3600,
        ..Default::default()
    }
}

fn node(path: &str, status: Status, done: f64, total: Option<f64>, message: Option<&str>) -> Node {
    let mut n = Node::new(NodePath::parse(path).unwrap(), NOW - 60_000);
    n.status = status;
    n.done = done;
    n.total = total;
    n.progress = total.map_or(0.0, |t| done / t);
    n.started_ms = Some(NOW - 60_000);
    n.message = message.map(Into::into);
    if status.is_terminal() {
        n.finished_ms = Some(NOW - 1000);
    }
    n
}

fn alert(id: &str, state: AlertState, level: Level) -> Alert {
    Alert {
        id: id.into(),
        rule: id.split('{').next().unwrap().into(),
        level,
        labels: Default::default(),
        state,
        since_ms: NOW - 120_000,
        fired_ms: Some(NOW - 90_000),
        value: Some(97.5),
        message: format!("{id} says hello"),
        silenced: false,
        ack: None,
    }
}

fn plugin(name: &str, state: PluginState, calls: u64, faults: u64) -> PluginRecord {
    let mut p = PluginRecord::new(name);
    p.state = state;
    p.stats.calls = calls;
    p.stats.faults = faults;
    p.stats.p50_us = 85.0;
    p.stats.p99_us = 1500.0;
    p
}

fn data(at: u64, cpu: f32) -> Data {
    let mut acked = alert("disk-almost-full{mount=\"/\"}", AlertState::Acknowledged, Level::Warning);
    acked.ack = Some(Ack { by: "bob".into(), note: "cleaning".into(), at_ms: NOW });
    Data {
        snapshot: snapshot(at, cpu),
        processes: vec![
            process(1234, "python3", "python3 train.py --epochs 10", 99.5, 3 << 30),
            process(88, "sshd", "/usr/sbin/sshd -D", 0.5, 8 << 20),
            process(4321, "cargo", "cargo build --release", 55.0, 1 << 30),
        ],
        runs: vec![
            vec![
                node("train-42", Status::Running, 0.0, None, None),
                node("train-42/build", Status::Completed, 10.0, Some(10.0), None),
                {
                    let mut fit = node("train-42/fit", Status::Running, 4.0, Some(10.0), Some("epoch 4"));
                    let used =
                        crate::progress::Resources { cpu_secs: 12.5, rss_peak_bytes: 3 << 30, ..Default::default() };
                    fit.resources = Some(used);
                    fit
                },
            ],
            vec![node("old-run", Status::Failed, 1.0, Some(3.0), Some("disk full"))],
        ],
        alerts: vec![
            alert("memory-pressure", AlertState::Pending, Level::Warning),
            acked,
            alert("cpu-hot{core=\"0\"}", AlertState::Firing, Level::Critical),
        ],
        plugins: vec![
            plugin("derived-metrics", PluginState::Running, 120, 0),
            plugin("fx-loop", PluginState::Quarantined { reason: "too many faults".into() }, 3, 3),
        ],
        custom: Some(Ok(STATUS.into())),
        ..Default::default()
    }
}

fn model(focus: Panel, theme: Theme) -> Model {
    let custom = (focus == Panel::Custom).then(|| "compact-status".to_string());
    let mut model = Model::new(focus, SortKey::Cpu, Filter::None, theme, Duration::from_secs(1)).with_custom(custom);
    model.receive(data(NOW - 1000, 20.0), Origin::Daemon);
    model.receive(data(NOW, 42.0), Origin::Daemon);
    model
}

fn draw(model: &Model, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| render(model, frame)).unwrap();
    terminal.backend().buffer().clone()
}

fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        for x in 0..area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The foreground colour of the first cell where `needle` starts, on the last line holding it
/// (titles come before rows).
fn color_of(buffer: &Buffer, needle: &str) -> Color {
    let screen = text(buffer);
    let (row, line) = screen.lines().enumerate().filter(|(_, l)| l.contains(needle)).last().expect(needle);
    let column = line[..line.find(needle).unwrap()].chars().count();
    buffer[(column as u16, row as u16)].fg
}

/// The text of the highlighted table row (below the header and tabs).
fn highlighted(buffer: &Buffer) -> String {
    let screen = text(buffer);
    let row = (3..buffer.area.height).find(|&y| buffer[(1, y)].modifier.contains(Modifier::REVERSED));
    row.and_then(|y| screen.lines().nth(y as usize)).unwrap_or_default().to_string()
}

fn press(model: &mut Model, code: KeyCode) {
    keys::handle(model, KeyEvent::new(code, KeyModifiers::NONE));
}

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

#[test]
fn the_header_and_tabs_show_the_host_and_every_panel() {
    for (w, h) in SIZES {
        let screen = text(&draw(&model(Panel::System, Theme::colored()), w, h));
        let first = screen.lines().next().unwrap();
        assert!(first.contains("box  up 3d00h  load 1.50"), "{screen}");
        assert!(first.contains("sampled 22:13:20") && first.contains("LIVE"), "{screen}");
        let tabs = screen.lines().nth(1).unwrap();
        for title in ["1 System", "2 Processes", "3 Progress", "4 Alerts 1 firing", "5 Plugins"] {
            assert!(tabs.contains(title), "{title} in {tabs}");
        }
    }
}

#[test]
fn the_system_panel_shows_cores_memory_disks_and_network() {
    for (w, h) in SIZES {
        let buffer = draw(&model(Panel::System, Theme::colored()), w, h);
        let screen = text(&buffer);
        assert!(screen.contains("System"), "{screen}");
        assert!(screen.contains("CPU") && screen.contains("42.0%") && screen.contains("95.0%"), "{screen}");
        assert!(screen.contains("6.0G of 8.0G used"), "{screen}");
        assert!(screen.contains("DISK  read     2.0K/s") && screen.contains("write    1.0M/s"), "{screen}");
        assert!(screen.contains("NET   rx       1.5K/s"), "{screen}");
        assert!(screen.contains("▂▄"), "the CPU's history as a sparkline: {screen}");
        if h > 24 {
            assert!(screen.contains("5.0G free  /"), "{screen}");
        }
        assert_eq!(color_of(&buffer, "95.0%"), Color::Red, "a core at 95% is critical");
        assert_eq!(color_of(&buffer, "42.0%"), Color::Green);
        assert_eq!(color_of(&buffer, " 75.0%"), Color::Yellow, "memory at 75% is a warning");
    }
}

#[test]
fn the_processes_panel_sorts_and_marks_the_column() {
    for (w, h) in SIZES {
        let mut m = model(Panel::Processes, Theme::colored());
        let screen = text(&draw(&m, w, h));
        assert!(screen.contains("Processes 3 · sort cpu ▼"), "{screen}");
        assert!(screen.contains("CPU%▼") && screen.contains("COMMAND"), "{screen}");
        let order = |screen: &str| {
            ["python3 train", "cargo build", "/usr/sbin/sshd"].map(|c| screen.find(c).unwrap_or(usize::MAX))
        };
        let [python, cargo, sshd] = order(&screen);
        assert!(python < cargo && cargo < sshd, "by CPU: {screen}");
        assert!(screen.contains("   1234 alice") && screen.contains("3.0G"), "{screen}");
        // The machine summary sits above the table.
        assert!(screen.contains(" CPU ") && screen.contains(" MEM ") && screen.contains("DISK"), "{screen}");

        press(&mut m, KeyCode::Char('s'));
        press(&mut m, KeyCode::Char('s'));
        press(&mut m, KeyCode::Char('s'));
        let screen = text(&draw(&m, w, h));
        assert!(screen.contains("PID▲"), "{screen}");
        let [python, cargo, sshd] = order(&screen);
        assert!(sshd < python && python < cargo, "by PID: {screen}");
    }
}

#[test]
fn the_processes_panel_filters_and_says_when_nothing_matches() {
    let mut m = model(Panel::Processes, Theme::plain());
    m.filter = Filter::parse("cargo");
    let screen = text(&draw(&m, 80, 24));
    assert!(screen.contains("Processes 1") && screen.contains("filter 'cargo'"), "{screen}");
    assert!(screen.contains("cargo build") && !screen.contains("python3 train"), "{screen}");
    m.filter = Filter::parse("nothing-like-it");
    assert!(text(&draw(&m, 80, 24)).contains("no processes match the filter; Esc clears it"));
    press(&mut m, KeyCode::Esc);
    press(&mut m, KeyCode::Char('/'));
    for c in "py".chars() {
        press(&mut m, KeyCode::Char(c));
    }
    let screen = text(&draw(&m, 80, 24));
    assert!(screen.lines().last().unwrap().contains("filter: py█"), "{screen}");
}

#[test]
fn the_progress_panel_draws_runs_as_trees_with_bars() {
    for (w, h) in SIZES {
        let buffer = draw(&model(Panel::Progress, Theme::colored()), w, h);
        let screen = text(&buffer);
        assert!(screen.contains("Progress · 1 running of 2 runs"), "{screen}");
        assert!(screen.contains("train-42") && screen.contains("  build") && screen.contains("  fit"), "{screen}");
        assert!(screen.contains("40%") && screen.contains("4/10") && screen.contains("epoch 4"), "{screen}");
        assert!(screen.contains("12.5s 3.0G"), "CPU time and peak memory: {screen}");
        assert!(screen.contains("█████"), "bars: {screen}");
        assert!(screen.find("train-42").unwrap() < screen.find("old-run").unwrap(), "running first");
        assert_eq!(color_of(&buffer, "failed"), Color::Red);
        assert_eq!(color_of(&buffer, "completed"), Color::Green);
    }
}

#[test]
fn the_alerts_panel_shows_firing_first_in_their_colours() {
    for (w, h) in SIZES {
        let buffer = draw(&model(Panel::Alerts, Theme::colored()), w, h);
        let screen = text(&buffer);
        assert!(screen.contains("Alerts · 1 firing of 3"), "{screen}");
        let firing = screen.find("cpu-hot").unwrap();
        assert!(firing < screen.find("memory-pressure").unwrap(), "{screen}");
        assert!(screen.find("memory-pressure").unwrap() < screen.find("disk-almost-full").unwrap(), "{screen}");
        assert!(screen.contains("97.5") && screen.contains("1m30s"), "value and how long it fires: {screen}");
        assert_eq!(color_of(&buffer, "critical"), Color::Red);
        assert_eq!(color_of(&buffer, "pending"), Color::Yellow);
        assert_eq!(color_of(&buffer, "acknowledged"), Color::DarkGray);
    }
}

#[test]
fn the_plugins_panel_shows_state_calls_faults_and_latency() {
    for (w, h) in SIZES {
        let buffer = draw(&model(Panel::Plugins, Theme::colored()), w, h);
        let screen = text(&buffer);
        assert!(screen.contains("Plugins · 1 running of 2"), "{screen}");
        assert!(screen.contains("derived-metrics") && screen.contains("120") && screen.contains("85µs"), "{screen}");
        assert!(screen.contains("1.5ms"), "{screen}");
        assert_eq!(color_of(&buffer, "quarantined"), Color::Red);
        assert_eq!(color_of(&buffer, "running "), Color::Green);
    }
}

#[test]
fn no_color_means_no_colour_in_any_panel_or_overlay() {
    for panel in Panel::ALL {
        let mut m = model(panel, Theme::plain());
        for overlay in [None, Some(KeyCode::Char('?')), Some(KeyCode::Enter)] {
            if let Some(key) = overlay {
                press(&mut m, key);
            }
            for (w, h) in SIZES {
                let buffer = draw(&m, w, h);
                let coloured: Vec<_> = buffer
                    .content()
                    .iter()
                    .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
                    .map(|c| c.symbol().to_string())
                    .collect();
                assert!(coloured.is_empty(), "{panel:?} {overlay:?}: coloured {coloured:?}\n{}", text(&buffer));
            }
            press(&mut m, KeyCode::Esc);
        }
    }
    assert!(!Theme::plain().color);
}

#[test]
fn the_help_overlay_lists_every_key_and_the_colours() {
    let mut m = model(Panel::Processes, Theme::colored());
    press(&mut m, KeyCode::Char('?'));
    let screen = text(&draw(&m, 80, 24));
    for key in
        ["space p", "tab S-tab 1-6", "custom panel: the status by --format PLUGIN", "enter", "q Ctrl-C", "acknowledge"]
    {
        assert!(screen.contains(key), "{key}: {screen}");
    }
    let big = text(&draw(&m, 160, 48));
    assert!(big.contains("colours: fine  warning  error/critical"), "{big}");
}

#[test]
fn details_show_the_selected_row_in_full() {
    let mut m = model(Panel::Processes, Theme::plain());
    press(&mut m, KeyCode::Enter);
    let screen = text(&draw(&m, 80, 24));
    assert!(screen.contains("python3 train.py --epochs 10") && screen.contains("age  1h00m"), "{screen}");
    assert!(screen.contains("Details") && screen.contains("pid  1234"), "{screen}");
    press(&mut m, KeyCode::Esc);
    press(&mut m, KeyCode::Char('3'));
    press(&mut m, KeyCode::Down);
    press(&mut m, KeyCode::Down);
    press(&mut m, KeyCode::Enter);
    let screen = text(&draw(&m, 80, 24));
    assert!(screen.contains("train-42/fit") && screen.contains("epoch 4"), "{screen}");
    press(&mut m, KeyCode::Esc);
    press(&mut m, KeyCode::Char('4'));
    press(&mut m, KeyCode::End);
    press(&mut m, KeyCode::Enter);
    let screen = text(&draw(&m, 160, 48));
    assert!(screen.contains("by bob") && screen.contains("cleaning"), "{screen}");
}

#[test]
fn pause_freezes_what_is_drawn() {
    let mut m = model(Panel::System, Theme::plain());
    press(&mut m, KeyCode::Char(' '));
    m.receive(data(NOW + 5000, 77.0), Origin::Daemon);
    let screen = text(&draw(&m, 80, 24));
    assert!(screen.contains("PAUSED") && screen.contains("sampled 22:13:20") && screen.contains("42.0%"), "{screen}");
    assert!(!screen.contains("77.0%"), "{screen}");
    press(&mut m, KeyCode::Char(' '));
    let screen = text(&draw(&m, 80, 24));
    assert!(screen.contains("LIVE") && screen.contains("sampled 22:13:25") && screen.contains("77.0%"), "{screen}");
}

#[test]
fn tiny_and_empty_screens_still_draw() {
    let empty = Model::new(Panel::Processes, SortKey::Cpu, Filter::None, Theme::colored(), Duration::from_secs(1));
    assert!(text(&draw(&empty, 80, 24)).contains("waiting for the first sample…"));
    for panel in Panel::ALL {
        let mut m = model(panel, Theme::colored());
        for (w, h) in [(20, 5), (1, 1), (80, 3), (1000, 200)] {
            draw(&m, w, h);
            (m.help, m.details) = (true, false);
            draw(&m, w, h);
            (m.help, m.details) = (false, true);
            draw(&m, w, h);
            m.details = false;
        }
    }
}

#[test]
fn fetch_errors_and_acks_show_in_the_footer() {
    let mut m = model(Panel::Alerts, Theme::colored());
    super::receive(&mut m, super::data::Fetched::Failed("cannot reach the daemon".into()));
    let buffer = draw(&m, 80, 24);
    assert!(text(&buffer).lines().last().unwrap().contains("fetching: cannot reach the daemon"));
    assert_eq!(color_of(&buffer, "fetching:"), Color::Red);
    super::receive(&mut m, super::data::Fetched::Data(Box::new(data(NOW, 1.0)), Origin::Local));
    assert!(m.notice.is_none(), "a good fetch clears the error");
    super::receive(&mut m, super::data::Fetched::Acked(Ok("cpu-hot".into())));
    assert!(text(&draw(&m, 80, 24)).contains("acknowledged cpu-hot"));
    assert!(text(&draw(&m, 80, 24)).lines().next().unwrap().contains("local"));
}
