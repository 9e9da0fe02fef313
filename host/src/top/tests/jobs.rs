//! The watch jobs below the plugins: their rows and colours, the section absent
//! without jobs, an error in one line, and one selection running down both tables.

use super::*;
use crate::top::theme::{Tone, job_tone};
use crate::watch::{Ending, Execution, JobView, Reason};

fn job(name: &str, state: &str, runs: u64, failures: u64, last: Option<Ending>) -> JobView {
    let root = format!("/src/{name}");
    JobView {
        name: name.into(),
        roots: vec![root.clone().into()],
        command: vec!["sh".into(), "-c".into(), format!("make {name}")],
        state: state.into(),
        paused: state == "paused",
        runs,
        failures,
        last: last.map(|outcome| Execution {
            job: name.into(),
            root: root.clone().into(),
            seq: runs,
            reason: Reason::Changes,
            paths: vec![format!("{root}/lib.rs").into()],
            started_ms: NOW - 4500,
            finished_ms: NOW - 3000,
            outcome,
            stdout_tail: format!("compiling {name}\n\u{1b}[1mfinished\n"),
            stderr_tail: format!("warning: {name} is slow\n"),
        }),
        ..Default::default()
    }
}

/// `tests` runs as the cargo process of the test data (started an hour ago), after a failed run;
/// `build` is idle after a good one; `docs` is paused and never ran.
fn jobs() -> Vec<JobView> {
    let mut tests = job("tests", "running", 5, 2, Some(Ending::Exited { code: 101 }));
    tests.pid = Some(4321);
    vec![tests, job("build", "idle", 12, 0, Some(Ending::Exited { code: 0 })), job("docs", "paused", 0, 0, None)]
}

fn with_jobs(theme: Theme, jobs: Vec<JobView>) -> Model {
    let mut m = model(Panel::Plugins, theme);
    m.receive(Data { jobs, ..data(NOW, 42.0) }, Origin::Daemon);
    m
}

/// The screen line holding `needle`.
fn line_of<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle} in {screen}"))
}

#[test]
fn the_jobs_show_below_the_plugins_with_runs_failures_and_the_last_run() {
    for (w, h) in SIZES {
        let screen = text(&draw(&with_jobs(Theme::colored(), jobs()), w, h));
        let plugins = screen.find("Plugins · 1 running of 2").expect(&screen);
        let title = screen.find("Watch jobs · 1 running of 3 · 1 failed last").expect(&screen);
        assert!(plugins < title && screen.find("fx-loop").unwrap() < title, "jobs below the plugins: {screen}");
        let build = line_of(&screen, "│build");
        for cell in ["idle", "   12", "    0", "exit 0, 3s ago", "sh -c make build"] {
            assert!(build.contains(cell), "{cell} in {build}");
        }
        let tests = line_of(&screen, "│tests");
        assert!(tests.contains("running") && tests.contains("    2") && tests.contains("exit 101, 3s ago"), "{tests}");
        assert!(
            line_of(&screen, "│docs").contains("paused") && line_of(&screen, "│docs").contains("never"),
            "{screen}"
        );
        let order = ["│build", "│docs", "│tests"].map(|name| screen.find(name).unwrap());
        assert!(order.is_sorted(), "by name: {screen}");
    }
}

#[test]
fn jobs_are_coloured_by_what_they_say() {
    let buffer = draw(&with_jobs(Theme::colored(), jobs()), 80, 24);
    assert_eq!(color_of(&buffer, "idle"), Color::Green);
    assert_eq!(color_of(&buffer, "exit 0,"), Color::Green);
    assert_eq!(color_of(&buffer, "paused"), Color::Yellow);
    assert_eq!(color_of(&buffer, "exit 101"), Color::Red, "the last run failed");
    assert_eq!(color_of(&buffer, "never"), Color::DarkGray);
    // The rest of the row from its state on: "running" alone is also a plugin's state.
    let screen = text(&buffer);
    let tests = line_of(&screen, "│tests");
    assert_eq!(color_of(&buffer, &tests[tests.find("running").unwrap()..]), Color::Yellow, "running an hour");

    let running = jobs().remove(0);
    assert_eq!(job_tone(&running, None), Tone::Fine, "not sampled yet");
    assert_eq!(job_tone(&running, Some(5)), Tone::Fine);
    assert_eq!(job_tone(&running, Some(60)), Tone::Warning, "running long");
    assert_eq!(job_tone(&JobView { paused: true, ..running }, Some(5)), Tone::Warning, "paused while running");
}

#[test]
fn no_color_leaves_the_jobs_and_their_details_uncoloured() {
    let mut m = with_jobs(Theme::plain(), jobs());
    press(&mut m, KeyCode::End);
    for details in [false, true] {
        m.details = details;
        for (w, h) in SIZES {
            let buffer = draw(&m, w, h);
            let coloured = buffer.content().iter().filter(|c| c.fg != Color::Reset || c.bg != Color::Reset).count();
            assert_eq!(coloured, 0, "{}", text(&buffer));
        }
    }
}

#[test]
fn without_jobs_the_section_is_absent_and_an_error_takes_one_line() {
    let screen = text(&draw(&with_jobs(Theme::colored(), Vec::new()), 80, 24));
    assert!(screen.contains("Plugins · 1 running of 2") && !screen.contains("Watch jobs"), "{screen}");

    let mut m = model(Panel::Plugins, Theme::colored());
    let error = "GET /v1/jobs: connection reset by peer".to_string();
    m.receive(Data { jobs_error: Some(error), ..data(NOW, 42.0) }, Origin::Daemon);
    let buffer = draw(&m, 80, 24);
    let screen = text(&buffer);
    assert!(screen.contains("┌ Watch jobs") && screen.contains("derived-metrics"), "the plugins go on: {screen}");
    assert_eq!(color_of(&buffer, "GET /v1/jobs: connection reset"), Color::Red);
}

#[test]
fn the_selection_runs_from_the_plugins_into_the_jobs_and_stays_on_a_job_by_name() {
    let mut m = with_jobs(Theme::plain(), jobs());
    press(&mut m, KeyCode::Down);
    assert!(highlighted(&draw(&m, 80, 24)).contains("fx-loop"));
    press(&mut m, KeyCode::Down);
    press(&mut m, KeyCode::Down);
    assert_eq!(m.selection(), 3);
    let buffer = draw(&m, 80, 24);
    assert!(highlighted(&buffer).contains("│docs"), "{}", text(&buffer));
    press(&mut m, KeyCode::End);
    assert!(highlighted(&draw(&m, 80, 24)).contains("│tests"));
    press(&mut m, KeyCode::Up);

    // A plugin and a job named alike come in ahead of it: the selection follows docs.
    let mut next = Data { jobs: jobs(), ..data(NOW + 1000, 42.0) };
    next.plugins.push(plugin("docs", PluginState::Running, 1, 0));
    next.jobs.push(job("assets", "idle", 1, 0, None));
    m.receive(next, Origin::Daemon);
    assert_eq!(m.selection(), 5);
    assert!(highlighted(&draw(&m, 80, 24)).contains("│docs     paused"), "{}", text(&draw(&m, 80, 24)));

    // Filtered to the running ones, the plugins and jobs left keep one selection.
    m.keeping_selection(|m| m.filter = Filter::Active);
    assert_eq!(m.rows(Panel::Plugins), 3, "derived-metrics, docs (the plugin) and tests");
    let screen = text(&draw(&m, 80, 24));
    assert!(screen.contains("Watch jobs · 1 running of 1") && !screen.contains("│build"), "{screen}");
}

#[test]
fn enter_on_a_job_shows_its_roots_command_and_last_output() {
    let mut m = with_jobs(Theme::plain(), jobs());
    press(&mut m, KeyCode::End);
    press(&mut m, KeyCode::Enter);
    let screen = text(&draw(&m, 160, 48));
    for line in [
        "job  tests",
        "state  running for 1h00m (pid 4321)",
        "roots  /src/tests",
        "command  sh -c make tests",
        "runs  5 (2 failed, 0 rescans, 0 skipped)",
        "last run  #5 for changes: exit 101 at 2023-11-14 22:13:17, took 1s 500ms",
        "paths  1: /src/tests/lib.rs",
        "stdout  compiling tests",
        " [1mfinished",
        "stderr  warning: tests is slow",
    ] {
        assert!(screen.contains(line), "{line}: {screen}");
    }
    let buffer = draw(&m, 80, 24);
    assert!(buffer.content().iter().all(|c| !c.symbol().chars().any(char::is_control)), "{}", text(&buffer));
    assert!(text(&buffer).contains("Details") && text(&buffer).contains("roots  /src/tests"));

    press(&mut m, KeyCode::Esc);
    press(&mut m, KeyCode::Up);
    press(&mut m, KeyCode::Enter);
    let screen = text(&draw(&m, 160, 48));
    assert!(screen.contains("state  paused") && screen.contains("last run  never"), "{screen}");
}

#[test]
fn many_jobs_at_80_by_24_keep_the_plugins_and_scroll_to_the_selection() {
    let many: Vec<JobView> =
        (0..30).map(|i| job(&format!("job-{i:02}"), "idle", i, 0, Some(Ending::Exited { code: 0 }))).collect();
    let mut m = with_jobs(Theme::plain(), many);
    let screen = text(&draw(&m, 80, 24));
    assert!(screen.contains("derived-metrics") && screen.contains("fx-loop"), "{screen}");
    assert!(screen.contains("│job-00") && screen.lines().last().unwrap().contains("q quit"), "{screen}");
    press(&mut m, KeyCode::End);
    let buffer = draw(&m, 80, 24);
    assert!(highlighted(&buffer).contains("│job-29"), "{}", text(&buffer));
    assert!(text(&buffer).contains("fx-loop"), "the plugins stay: {}", text(&buffer));
}
