//! The selection stays on its process, node, alert or plugin when the data, the
//! order or the filter changes; where the item is gone, it keeps its row.

use super::*;

fn selected_pid(m: &Model) -> u32 {
    m.processes()[m.selection()].pid
}

#[test]
fn a_process_stays_selected_by_pid_through_refreshes_sorts_and_filters() {
    let mut m = model(Panel::Processes, Theme::plain());
    press(&mut m, KeyCode::Down);
    assert_eq!(selected_pid(&m), 4321, "cargo, second by CPU");

    // cargo becomes the busiest: it moves up, the selection with it.
    let mut next = data(NOW + 1000, 42.0);
    next.processes[2].cpu_percent = 100.0;
    m.receive(next, Origin::Daemon);
    assert_eq!((m.selection(), selected_pid(&m)), (0, 4321));
    assert!(highlighted(&draw(&m, 80, 24)).contains("cargo build"), "{}", text(&draw(&m, 80, 24)));

    press(&mut m, KeyCode::Char('s'));
    assert_eq!((m.selection(), selected_pid(&m)), (1, 4321), "by memory: python3 3G, cargo 1G, sshd 8M");
    press(&mut m, KeyCode::Char('S'));
    assert_eq!(selected_pid(&m), 4321, "reversed");
    press(&mut m, KeyCode::Char('/'));
    for c in "cargo".chars() {
        press(&mut m, KeyCode::Char(c));
    }
    press(&mut m, KeyCode::Enter);
    assert_eq!((m.selection(), selected_pid(&m)), (0, 4321));
    press(&mut m, KeyCode::Esc);
    assert_eq!(selected_pid(&m), 4321, "clearing the filter keeps it too");
    assert!(highlighted(&draw(&m, 80, 24)).contains("cargo build"));
}

#[test]
fn a_vanished_process_leaves_the_selection_on_its_row_or_the_last() {
    let mut m = model(Panel::Processes, Theme::plain());
    press(&mut m, KeyCode::Down);
    let mut next = data(NOW + 1000, 42.0);
    next.processes.retain(|p| p.pid != 4321);
    m.receive(next, Origin::Daemon);
    assert_eq!((m.selection(), selected_pid(&m)), (1, 88), "the row below moved up into its place");
    press(&mut m, KeyCode::End);
    let mut fewer = data(NOW + 2000, 42.0);
    fewer.processes.truncate(1);
    m.receive(fewer, Origin::Daemon);
    assert_eq!(m.selection(), 0, "clamped to the rows there are");
}

#[test]
fn a_node_stays_selected_by_path_when_a_run_comes_before_it() {
    let mut m = model(Panel::Progress, Theme::plain());
    press(&mut m, KeyCode::Char('G'));
    press(&mut m, KeyCode::Up);
    let path = |m: &Model| m.progress()[m.selection()].path.to_string();
    assert_eq!(path(&m), "train-42/fit");
    let mut next = data(NOW + 1000, 42.0);
    next.runs.insert(0, vec![node("early", Status::Running, 1.0, Some(2.0), None)]);
    m.receive(next, Origin::Daemon);
    assert_eq!((m.selection(), path(&m)), (3, "train-42/fit".to_string()));
    assert!(highlighted(&draw(&m, 80, 24)).contains("  fit"));
}

#[test]
fn an_alert_stays_selected_by_id_when_its_order_changes() {
    let mut m = model(Panel::Alerts, Theme::plain());
    press(&mut m, KeyCode::Down);
    assert_eq!(m.selected_alert().unwrap().id, "memory-pressure");
    // cpu-hot resolves and goes to the end: memory-pressure is first now.
    let mut next = data(NOW + 1000, 42.0);
    next.alerts[2].state = AlertState::Resolved;
    m.receive(next, Origin::Daemon);
    assert_eq!((m.selection(), m.selected_alert().unwrap().id.as_str()), (0, "memory-pressure"));
    assert!(highlighted(&draw(&m, 80, 24)).contains("memory-pressure"));
}

#[test]
fn a_plugin_stays_selected_by_name_when_another_one_appears() {
    let mut m = model(Panel::Plugins, Theme::plain());
    press(&mut m, KeyCode::Down);
    let name = |m: &Model| m.plugins()[m.selection()].name.clone();
    assert_eq!(name(&m), "fx-loop");
    let mut next = data(NOW + 1000, 42.0);
    next.plugins.push(plugin("alpha", PluginState::Running, 1, 0));
    m.receive(next, Origin::Daemon);
    assert_eq!((m.selection(), name(&m)), (2, "fx-loop".to_string()));
}

#[test]
fn resuming_keeps_the_item_selected_while_paused() {
    let mut m = model(Panel::Processes, Theme::plain());
    press(&mut m, KeyCode::Char(' '));
    press(&mut m, KeyCode::Down);
    assert_eq!(selected_pid(&m), 4321);
    let mut next = data(NOW + 1000, 42.0);
    next.processes[2].cpu_percent = 100.0;
    m.receive(next, Origin::Daemon);
    assert_eq!(m.selection(), 1, "the frozen screen does not move");
    press(&mut m, KeyCode::Char(' '));
    assert_eq!((m.selection(), selected_pid(&m)), (0, 4321));
}
