//! The custom panel: what a display-formatter plugin renders, or why it rendered nothing.

use super::*;

fn custom(rendered: Result<&str, &str>) -> Model {
    let mut m = model(Panel::Custom, Theme::colored());
    let data = Data { custom: Some(rendered.map(Into::into).map_err(Into::into)), ..data(NOW + 1000, 42.0) };
    m.receive(data, Origin::Daemon);
    m
}

#[test]
fn the_custom_panel_shows_the_plugins_text_at_every_size() {
    for (w, h) in SIZES {
        let screen = text(&draw(&custom(Ok(STATUS)), w, h));
        assert!(screen.contains("┌ Custom · the status as compact-status renders it"), "{screen}");
        assert!(screen.contains("6 Custom"), "a tab of its own: {screen}");
        assert!(screen.contains("cpu 42% mem 75% load 1.50 | train-42"), "{screen}");
        assert!(screen.contains("1 firing (critical)"), "a long line wraps, nothing is lost: {screen}");
    }
    let screen = text(&draw(&custom(Ok("first\nsecond\n\n")), 80, 24));
    let first = screen.lines().position(|l| l.contains("│first")).expect(&screen);
    assert!(screen.lines().nth(first + 1).unwrap().contains("│second"), "lines stay lines: {screen}");
}

#[test]
fn the_custom_panel_says_in_one_line_why_there_is_no_text() {
    for error in [
        "plugin 'derived-metrics' is not a display-formatter",
        "no plugin named 'nope'; known plugins: compact-status",
        "formatting with plugin 'compact-status' needs the running host; start it with 'monitor run'",
    ] {
        let buffer = draw(&custom(Err(error)), 80, 24);
        let screen = text(&buffer);
        let line = screen.lines().find(|l| l.contains(&error[..20])).expect(&screen);
        assert!(line.contains(&error[..error.len().min(70)]), "{screen}");
        assert_eq!(color_of(&buffer, &error[..20]), Color::Red);
    }
    let screen = text(&draw(&custom(Ok("  \n")), 80, 24));
    assert!(screen.contains("compact-status rendered nothing"), "{screen}");
    let waiting = Model::new(Panel::Custom, SortKey::Cpu, Filter::None, Theme::plain(), Duration::from_secs(1))
        .with_custom(Some("compact-status".into()));
    assert!(text(&draw(&waiting, 80, 24)).contains("waiting for data…"));
}

#[test]
fn a_plugins_control_characters_never_reach_the_terminal() {
    let buffer = draw(&custom(Ok("\u{1b}[2Jcleared\u{7}\tand more")), 80, 24);
    let screen = text(&buffer);
    assert!(screen.contains("[2Jcleared  and more"), "{screen}");
    assert!(buffer.content().iter().all(|c| !c.symbol().chars().any(char::is_control)), "{screen}");
}

#[test]
fn without_a_plugin_there_is_no_custom_tab_and_tab_skips_it() {
    let mut m = model(Panel::Plugins, Theme::plain());
    let screen = text(&draw(&m, 80, 24));
    assert!(!screen.lines().nth(1).unwrap().contains("Custom"), "{screen}");
    press(&mut m, KeyCode::Tab);
    assert_eq!(m.focus, Panel::System);
    let mut m = m.with_custom(Some("compact-status".into()));
    press(&mut m, KeyCode::BackTab);
    assert_eq!(m.focus, Panel::Custom);
    press(&mut m, KeyCode::Enter);
    assert!(!m.details, "the plugin's text has no rows to detail");
}

#[test]
fn every_tab_fits_80_columns_with_many_alerts_firing() {
    let mut m = custom(Ok(STATUS));
    let mut many = data(NOW + 2000, 42.0);
    many.alerts = (0..12).map(|i| alert(&format!("hot-{i}"), AlertState::Firing, Level::Critical)).collect();
    m.receive(many, Origin::Daemon);
    let screen = text(&draw(&m, 80, 24));
    let tabs = screen.lines().nth(1).unwrap();
    assert!(tabs.contains("4 Alerts 12 firing") && tabs.contains("6 Custom"), "{tabs}");
}

#[test]
fn pause_freezes_the_plugins_text_too() {
    let mut m = custom(Ok("before"));
    press(&mut m, KeyCode::Char(' '));
    m.receive(Data { custom: Some(Ok("after".into())), ..data(NOW + 5000, 1.0) }, Origin::Daemon);
    assert!(text(&draw(&m, 80, 24)).contains("before"));
    press(&mut m, KeyCode::Char(' '));
    assert!(text(&draw(&m, 80, 24)).contains("after"));
}
