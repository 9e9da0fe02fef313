//! Rules tested the way `promtool test rules` does: synthetic series in, the
//! exact transitions out, tick by tick.
//!
//! A series is written `name{label="value",...}` with one value per tick:
//! a number, `_` for no sample at that tick, or `v*n` for `n` ticks of `v`.
//! A transition is written `SECONDS ID FROM->TO`, with ` silenced` when marked.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::metrics::Sample;
use crate::progress::{NodePath, Status};

/// The user rules of an `[alerts]` table, without the built-ins.
fn rules(toml_text: &str) -> Vec<Rule> {
    let config: AlertsConfig = toml::from_str(toml_text).expect("test rules parse");
    config.rule.iter().enumerate().map(|(i, r)| r.build(i).unwrap_or_else(|e| panic!("{e:?}"))).collect()
}

fn line(t: &Transition) -> String {
    let silenced = if t.silenced { " silenced" } else { "" };
    format!("{} {} {}->{}{silenced}", t.at_ms / 1000, t.id, t.from, t.to)
}

fn parse_series(spec: &str) -> (String, Labels) {
    let Some((name, rest)) = spec.split_once('{') else { return (spec.to_string(), Labels::new()) };
    let labels = rest
        .trim_end_matches('}')
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("label=\"value\"");
            (k.trim().to_string(), v.trim().trim_matches('"').to_string())
        })
        .collect();
    (name.to_string(), labels)
}

fn parse_values(values: &str) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for word in values.split_whitespace() {
        let (value, times) = word.split_once('*').map_or((word, 1), |(v, n)| (v, n.parse().expect("v*n")));
        let value = if value == "_" { None } else { Some(value.parse().expect("a number")) };
        out.extend(std::iter::repeat_n(value, times));
    }
    out
}

fn sample(name: &str, labels: &Labels, value: f64, at_ms: u64) -> Sample {
    Sample { name: name.into(), labels: labels.clone(), value, unit: String::new(), timestamp_ms: at_ms }
}

/// One table case: rules, a tick length, series, and every transition expected.
struct Case {
    name: &'static str,
    rules: &'static str,
    step_s: u64,
    series: &'static [(&'static str, &'static str)],
    expect: &'static [&'static str],
}

fn run(case: &Case) -> Vec<String> {
    let mut engine = Engine::new(rules(case.rules));
    let series: Vec<_> = case.series.iter().map(|(s, v)| (parse_series(s), parse_values(v))).collect();
    let ticks = series.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let mut lines = Vec::new();
    for tick in 0..ticks {
        let now = tick as u64 * case.step_s * 1000;
        let samples: Vec<Sample> = series
            .iter()
            .filter_map(|((name, labels), values)| {
                values.get(tick).copied().flatten().map(|v| sample(name, labels, v, now))
            })
            .collect();
        lines.extend(engine.evaluate(&Inputs { samples: &samples, ..Inputs::default() }, now).iter().map(line));
    }
    lines
}

const CPU: &str = r#"
[[rule]]
name = "cpu"
level = "warning"
kind = "threshold"
metric = "cpu"
op = ">"
value = 90
for = "30s"
"#;

const CASES: &[Case] = &[
    Case {
        name: "fires only once `for` has elapsed, resolves when the value drops",
        rules: CPU,
        step_s: 10,
        series: &[("cpu", "50 95 95 95 95 50")],
        expect: &["40 cpu pending->firing", "50 cpu firing->resolved"],
    },
    Case {
        name: "pending that goes false returns to inactive and emits nothing",
        rules: CPU,
        step_s: 10,
        series: &[("cpu", "95 95 95 50 95 95 50 95*3")],
        expect: &[],
    },
    Case {
        name: "hysteresis holds the alert until the value is past clear; without it, it flaps",
        rules: r#"
            [[rule]]
            name = "steady"
            level = "warning"
            kind = "threshold"
            metric = "cpu"
            op = ">"
            value = 90
            clear = 80
            [[rule]]
            name = "flappy"
            level = "warning"
            kind = "threshold"
            metric = "cpu"
            op = ">"
            value = 90
        "#,
        step_s: 1,
        series: &[("cpu", "85 91 89 91 85 80 79 91")],
        expect: &[
            "1 steady inactive->firing",
            "1 flappy inactive->firing",
            "2 flappy firing->resolved",
            "3 flappy inactive->firing",
            "4 flappy firing->resolved",
            "6 steady firing->resolved",
            "7 steady inactive->firing",
            "7 flappy inactive->firing",
        ],
    },
    Case {
        name: "hysteresis on a low threshold",
        rules: r#"
            [[rule]]
            name = "low"
            level = "error"
            kind = "threshold"
            metric = "free"
            op = "<="
            value = 10
            clear = 20
        "#,
        step_s: 1,
        series: &[("free", "30 10 15 20 21 5")],
        expect: &["1 low inactive->firing", "4 low firing->resolved", "5 low inactive->firing"],
    },
    Case {
        name: "label matchers pick the series",
        rules: r#"
            [[rule]]
            name = "core1"
            level = "info"
            kind = "threshold"
            metric = "core"
            matchers = { core = "1" }
            op = ">="
            value = 90
        "#,
        step_s: 1,
        series: &[(r#"core{core="0"}"#, "95 95 95"), (r#"core{core="1"}"#, "50 90 50"), ("core", "99")],
        expect: &[r#"1 core1{core="1"} inactive->firing"#, r#"2 core1{core="1"} firing->resolved"#],
    },
    Case {
        name: "one rule, one alert per series, in id order",
        rules: r#"
            [[rule]]
            name = "disk"
            level = "warning"
            kind = "threshold"
            metric = "free"
            op = "<"
            value = 0.1
            labels = { team = "ops" }
        "#,
        step_s: 1,
        series: &[
            (r#"free{mount="/srv"}"#, "0.05 0.05 0.5"),
            (r#"free{mount="/"}"#, "0.5 0.01 0.01"),
            (r#"free{mount="/home"}"#, "0.01 0.5 _"),
        ],
        expect: &[
            r#"0 disk{mount="/home"} inactive->firing"#,
            r#"0 disk{mount="/srv"} inactive->firing"#,
            r#"1 disk{mount="/"} inactive->firing"#,
            r#"1 disk{mount="/home"} firing->resolved"#,
            r#"2 disk{mount="/srv"} firing->resolved"#,
        ],
    },
    Case {
        name: "a series that disappears counts as condition false",
        rules: CPU,
        step_s: 10,
        series: &[("cpu", "95*4 _ _ 95")],
        expect: &["30 cpu pending->firing", "40 cpu firing->resolved"],
    },
    Case {
        name: "absence fires after the window without samples and resolves when they return",
        rules: r#"
            [[rule]]
            name = "heartbeat"
            level = "error"
            kind = "absence"
            metric = "beat"
            matchers = { job = "x" }
            after = "30s"
        "#,
        step_s: 10,
        series: &[(r#"beat{job="x"}"#, "1 1 _ _ _ _ 1 1 _"), (r#"beat{job="y"}"#, "1*9")],
        expect: &[r#"40 heartbeat{job="x"} inactive->firing"#, r#"60 heartbeat{job="x"} firing->resolved"#],
    },
    Case {
        name: "absence of a metric never seen counts from the first evaluation",
        rules: r#"
            [[rule]]
            name = "never"
            level = "info"
            kind = "absence"
            metric = "nothing"
            after = "20s"
            for = "10s"
        "#,
        step_s: 10,
        series: &[("other", "1*5")],
        expect: &["30 never pending->firing"],
    },
    Case {
        name: "a firing alert is re-emitted only at its repeat interval",
        rules: r#"
            [[rule]]
            name = "loud"
            level = "critical"
            kind = "threshold"
            metric = "cpu"
            op = ">"
            value = 90
            repeat = "25s"
            [[rule]]
            name = "quiet"
            level = "critical"
            kind = "threshold"
            metric = "cpu"
            op = ">"
            value = 90
        "#,
        step_s: 10,
        series: &[("cpu", "95*7 50")],
        expect: &[
            "0 loud inactive->firing",
            "0 quiet inactive->firing",
            "30 loud firing->firing",
            "60 loud firing->firing",
            "70 loud firing->resolved",
            "70 quiet firing->resolved",
        ],
    },
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for case in CASES {
        let got = run(case);
        if got != case.expect {
            failures.push(format!("{}:\n  expected {:#?}\n  got {got:#?}", case.name, case.expect));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn node(path: &str, status: Status, updated_s: u64) -> NodeInput {
    NodeInput { path: NodePath::parse(path).unwrap(), status, updated_ms: updated_s * 1000 }
}

fn eval(engine: &mut Engine, inputs: &Inputs, at_s: u64) -> Vec<String> {
    engine.evaluate(inputs, at_s * 1000).iter().map(line).collect()
}

#[test]
fn a_stalled_step_fires_for_the_step_not_its_parents() {
    let mut engine = Engine::new(rules(
        r#"
        [[rule]]
        name = "stalled"
        level = "warning"
        kind = "stalled"
        after = "60s"
        [[rule]]
        name = "stalled-other"
        level = "warning"
        kind = "stalled"
        path = "other"
        after = "60s"
        "#,
    ));
    let running = |build_s| {
        vec![
            node("run", Status::Running, build_s),
            node("run/build", Status::Running, build_s),
            node("run/build/compile", Status::Running, build_s),
            node("run/test", Status::Pending, 0),
            node("run-2", Status::Paused, 0),
        ]
    };
    let nodes = running(0);
    let inputs = Inputs { nodes: &nodes, ..Inputs::default() };
    assert_eq!(eval(&mut engine, &inputs, 59), Vec::<String>::new());
    assert_eq!(eval(&mut engine, &inputs, 60), [r#"60 stalled{path="run/build/compile"} inactive->firing"#]);
    let alert = &engine.alerts(60_000)[0];
    assert_eq!(alert.message, "run/build/compile is running but has not reported for 1m");
    assert_eq!(alert.value, Some(60.0));

    let nodes = running(70);
    let inputs = Inputs { nodes: &nodes, ..Inputs::default() };
    assert_eq!(eval(&mut engine, &inputs, 70), [r#"70 stalled{path="run/build/compile"} firing->resolved"#]);
    assert_eq!(eval(&mut engine, &inputs, 130), [r#"130 stalled{path="run/build/compile"} inactive->firing"#]);
    let nodes = [node("run/build/compile", Status::Completed, 135)];
    let inputs = Inputs { nodes: &nodes, ..Inputs::default() };
    assert_eq!(eval(&mut engine, &inputs, 140), [r#"140 stalled{path="run/build/compile"} firing->resolved"#]);
}

#[test]
fn a_failed_node_fires_for_the_cause_under_the_prefix() {
    let mut engine = Engine::new(rules(
        r#"
        [[rule]]
        name = "failed"
        level = "error"
        kind = "progress_failed"
        path = "train"
        "#,
    ));
    let nodes = [
        node("train", Status::Failed, 5),
        node("train/build", Status::Failed, 5),
        node("train/build/compile", Status::Failed, 5),
        node("train/test", Status::Failed, 5),
        node("train-2", Status::Failed, 5),
        node("train/lint", Status::Completed, 5),
    ];
    let inputs = Inputs { nodes: &nodes, ..Inputs::default() };
    assert_eq!(
        eval(&mut engine, &inputs, 10),
        [
            r#"10 failed{path="train/build/compile"} inactive->firing"#,
            r#"10 failed{path="train/test"} inactive->firing"#
        ]
    );
    assert_eq!(eval(&mut engine, &inputs, 20), Vec::<String>::new(), "still failed: no repeat");
    assert_eq!(engine.alerts(20_000)[0].message, "train/build/compile failed");

    let nodes = [node("train/build/compile", Status::Running, 25), node("train/test", Status::Failed, 5)];
    let inputs = Inputs { nodes: &nodes, ..Inputs::default() };
    assert_eq!(eval(&mut engine, &inputs, 30), [r#"30 failed{path="train/build/compile"} firing->resolved"#]);
}

#[test]
fn a_run_that_ends_notifies_once_and_resolves_after_a_while() {
    let mut engine = Engine::new(rules(
        r#"
        [[rule]]
        name = "ended"
        level = "info"
        kind = "run_finished"
        [[rule]]
        name = "broke"
        level = "error"
        kind = "run_failed"
        path = "nightly"
        "#,
    ));
    let nodes = [
        node("nightly", Status::Failed, 100),
        node("nightly/build", Status::Failed, 100),
        node("train", Status::Completed, 100),
        node("etl", Status::Running, 100),
    ];
    let inputs = Inputs { nodes: &nodes, ..Inputs::default() };
    assert_eq!(
        eval(&mut engine, &inputs, 110),
        [
            r#"110 ended{run="nightly",status="failed"} inactive->firing"#,
            r#"110 ended{run="train",status="completed"} inactive->firing"#,
            r#"110 broke{run="nightly",status="failed"} inactive->firing"#,
        ]
    );
    assert_eq!(eval(&mut engine, &inputs, 120), Vec::<String>::new(), "one notification each");
    assert_eq!(engine.alerts(120_000).iter().find(|a| a.rule == "ended").unwrap().message, "run nightly failed");
    let later = 100 + crate::alerts::rule::RUN_ENDED_FRESH_MS / 1000;
    assert_eq!(eval(&mut engine, &inputs, later).len(), 3, "all three resolve once the end is old news");
}

#[test]
fn a_quarantined_plugin_fires_until_released() {
    let mut engine = Engine::new(rules(
        r#"
        [[rule]]
        name = "q"
        level = "error"
        kind = "plugin_quarantined"
        [[rule]]
        name = "q-one"
        level = "critical"
        kind = "plugin_quarantined"
        plugin = "b"
        "#,
    ));
    let both = ["a".to_string(), "b".to_string()];
    let inputs = Inputs { quarantined: &both, ..Inputs::default() };
    assert_eq!(
        eval(&mut engine, &inputs, 1),
        [
            r#"1 q{plugin="a"} inactive->firing"#,
            r#"1 q{plugin="b"} inactive->firing"#,
            r#"1 q-one{plugin="b"} inactive->firing"#
        ]
    );
    let only_a = ["a".to_string()];
    let inputs = Inputs { quarantined: &only_a, ..Inputs::default() };
    assert_eq!(
        eval(&mut engine, &inputs, 2),
        [r#"2 q{plugin="b"} firing->resolved"#, r#"2 q-one{plugin="b"} firing->resolved"#]
    );
}

/// One `cpu` series at `value`, sampled at `at_s`.
fn cpu(value: f64, at_s: u64) -> Vec<Sample> {
    vec![sample("cpu", &Labels::new(), value, at_s * 1000)]
}

fn tick(engine: &mut Engine, value: f64, at_s: u64) -> Vec<String> {
    let samples = cpu(value, at_s);
    eval(engine, &Inputs { samples: &samples, ..Inputs::default() }, at_s)
}

const REPEATING: &str = r#"
[[rule]]
name = "cpu"
level = "critical"
kind = "threshold"
metric = "cpu"
op = ">"
value = 90
repeat = "20s"
labels = { host = "a" }
message = "{rule}: {metric} at {value} on {labels.host} ({level}, {op} {threshold} for {for})"
"#;

#[test]
fn an_ack_lasts_until_the_alert_resolves_and_stops_repeats() {
    let mut engine = Engine::new(rules(REPEATING));
    assert!(matches!(engine.ack("cpu", "ann", "", 0), Err(AlertError::Unknown(_))));
    assert_eq!(tick(&mut engine, 95.0, 0), ["0 cpu inactive->firing"]);

    let ack = engine.ack("cpu", "ann", "looking", 5_000).unwrap();
    assert_eq!(line(&ack), "5 cpu firing->acknowledged");
    let by = Ack { by: "ann".into(), note: "looking".into(), at_ms: 5_000 };
    assert_eq!(ack.ack.as_ref(), Some(&by));
    assert_eq!(
        engine.ack("cpu", "bob", "", 6_000).unwrap_err().to_string(),
        "alert 'cpu' is already acknowledged by ann"
    );
    for at in [10, 20, 30, 40, 50] {
        assert_eq!(tick(&mut engine, 95.0, at), Vec::<String>::new(), "no repeat while acknowledged");
    }
    assert_eq!(engine.alerts(50_000)[0].state, AlertState::Acknowledged);

    let resolved = engine.evaluate(&Inputs { samples: &cpu(50.0, 60), ..Inputs::default() }, 60_000);
    assert_eq!(resolved.iter().map(line).collect::<Vec<_>>(), ["60 cpu acknowledged->resolved"]);
    assert_eq!(resolved[0].ack.as_ref(), Some(&by));
    assert_eq!(resolved[0].value, Some(50.0));

    let fired = engine.evaluate(&Inputs { samples: &cpu(99.0, 70), ..Inputs::default() }, 70_000);
    assert_eq!((line(&fired[0]), fired[0].ack.is_none()), ("70 cpu inactive->firing".into(), true));
    assert_eq!(tick(&mut engine, 99.0, 90), ["90 cpu firing->firing"], "repeats again once the ack is gone");
}

#[test]
fn messages_carry_the_value_and_labels() {
    let mut engine = Engine::new(rules(REPEATING));
    let t = &engine.evaluate(&Inputs { samples: &cpu(93.456, 0), ..Inputs::default() }, 0)[0];
    assert_eq!(t.message, "cpu: cpu at 93.46 on a (critical, > 90 for 0s)");
    assert_eq!(t.labels, Labels::from([("host".to_string(), "a".to_string())]));
    assert_eq!((t.level, t.value), (Level::Critical, Some(93.456)));
    let json = serde_json::to_value(t).unwrap();
    assert_eq!(json["from"], "inactive");
    assert_eq!(json["to"], "firing");
    assert_eq!(json["level"], "critical");
    assert!(json.get("ack").is_none());
    let back: Transition = serde_json::from_value(json).unwrap();
    assert_eq!(&back, t);
}

#[test]
fn silences_mark_transitions_until_they_expire() {
    let mut engine = Engine::new(rules(REPEATING));
    assert!(matches!(engine.silence(Labels::new(), 10, 0), Err(AlertError::NoMatchers)));
    assert!(matches!(
        engine.silence(Labels::from([("rule".into(), "cpu".into())]), 0, 0),
        Err(AlertError::Past { .. })
    ));
    let other = engine.silence(Labels::from([("host".into(), "b".into())]), 1_000_000, 0).unwrap();
    engine
        .silence(Labels::from([("rule".into(), "cpu".into()), ("level".into(), "critical".into())]), 45_000, 0)
        .unwrap();

    assert_eq!(tick(&mut engine, 95.0, 10), ["10 cpu inactive->firing silenced"]);
    assert!(engine.alerts(10_000)[0].silenced);
    assert_eq!(tick(&mut engine, 95.0, 30), ["30 cpu firing->firing silenced"], "repeats are marked too");
    assert_eq!(tick(&mut engine, 95.0, 40), Vec::<String>::new());
    assert_eq!(tick(&mut engine, 95.0, 45), ["45 cpu firing->firing"], "sent once the silence ends");
    assert_eq!(engine.silences().len(), 1);
    assert!(engine.unsilence(other));
    assert_eq!(tick(&mut engine, 95.0, 50), Vec::<String>::new());
    assert_eq!(tick(&mut engine, 50.0, 55), ["55 cpu firing->resolved"]);
}

#[test]
fn a_silence_over_a_whole_episode_marks_both_ends() {
    let mut engine = Engine::new(rules(CPU));
    engine.silence(Labels::from([("rule".into(), "cpu".into())]), 100_000, 0).unwrap();
    let lines: Vec<String> =
        [(95.0, 0), (95.0, 30), (50.0, 40)].into_iter().flat_map(|(v, at)| tick(&mut engine, v, at)).collect();
    assert_eq!(lines, ["30 cpu pending->firing silenced", "40 cpu firing->resolved silenced"]);
}

#[test]
fn a_manual_resolve_holds_until_the_condition_clears() {
    let mut engine = Engine::new(rules(CPU));
    assert_eq!(tick(&mut engine, 95.0, 0), Vec::<String>::new());
    assert_eq!(
        engine.resolve("cpu", 1_000).unwrap_err().to_string(),
        "alert 'cpu' is pending; only a firing alert can be resolved"
    );
    assert_eq!(tick(&mut engine, 95.0, 30), ["30 cpu pending->firing"]);
    assert_eq!(line(&engine.resolve("cpu", 35_000).unwrap()), "35 cpu firing->resolved");
    assert_eq!(tick(&mut engine, 95.0, 100), Vec::<String>::new(), "still true: stays resolved");
    assert_eq!(tick(&mut engine, 50.0, 110), Vec::<String>::new(), "cleared silently");
    assert_eq!(tick(&mut engine, 95.0, 120), Vec::<String>::new());
    assert_eq!(tick(&mut engine, 95.0, 150), ["150 cpu pending->firing"]);
}

#[test]
fn the_built_in_rules_fire_on_derived_ratios() {
    let mut engine = Engine::new(AlertsConfig::default().rules().unwrap());
    let mount = Labels::from([("mount".to_string(), "/srv".to_string()), ("device".into(), "sda1".into())]);
    let at = |s: u64| s * 60_000;
    let inputs = |minute: u64, available: f64| {
        vec![
            sample("monitor_disk_total_bytes", &mount, 1000.0, at(minute)),
            sample("monitor_disk_available_bytes", &mount, available, at(minute)),
            sample("monitor_memory_used_bytes", &Labels::new(), 95.0, at(minute)),
            sample("monitor_memory_total_bytes", &Labels::new(), 100.0, at(minute)),
        ]
    };
    let quarantined = ["hostile".to_string()];
    let mut lines = Vec::new();
    let mut messages = BTreeMap::new();
    for (minute, available) in [(0, 50.0), (1, 50.0), (5, 50.0), (10, 140.0), (11, 160.0)] {
        let samples = inputs(minute, available);
        let nodes = [node("job/step", Status::Running, 0)];
        let inputs = Inputs { samples: &samples, nodes: &nodes, quarantined: &quarantined, jobs: &[] };
        for t in engine.evaluate(&inputs, at(minute)) {
            lines.push(format!("{} {} {}->{}", t.at_ms / 60_000, t.id, t.from, t.to));
            messages.entry(t.rule.clone()).or_insert(t.message);
        }
    }
    assert_eq!(
        lines,
        [
            r#"0 plugin-quarantined{plugin="hostile"} inactive->firing"#,
            r#"5 disk-almost-full{device="sda1",mount="/srv"} pending->firing"#,
            "5 memory-pressure pending->firing",
            r#"10 step-stalled{path="job/step"} inactive->firing"#,
            r#"11 disk-almost-full{device="sda1",mount="/srv"} firing->resolved"#,
        ]
    );
    assert_eq!(
        messages.into_values().collect::<Vec<_>>(),
        [
            "disk /srv has 5% of its space left",
            "memory is 95% used",
            "plugin hostile is quarantined; see 'monitor plugins info hostile'",
            "job/step is running but has not reported for 10m",
        ]
    );
}

fn hysteresis_rule(for_s: u64) -> Vec<Rule> {
    rules(&format!(
        "[[rule]]\nname = \"h\"\nlevel = \"warning\"\nkind = \"threshold\"\nmetric = \"cpu\"\n\
         op = \">\"\nvalue = 90\nclear = 80\nfor = \"{for_s}s\"\n"
    ))
}

proptest! {
    /// A hysteresis alert alternates fire, resolve, fire...: it never fires
    /// twice in a row, never resolves without having fired, fires only above
    /// the threshold and resolves only below clear (or when the series is gone).
    #[test]
    fn hysteresis_never_double_fires_or_resolves_unfired(
        values in prop::collection::vec(prop_oneof![Just(None), (70.0..100.0f64).prop_map(Some)], 0..80),
        for_s in 0u64..4,
    ) {
        let mut engine = Engine::new(hysteresis_rule(for_s));
        let mut firing = false;
        for (i, value) in values.iter().enumerate() {
            let now = i as u64 * 1000;
            let samples: Vec<Sample> = value.iter().map(|v| sample("cpu", &Labels::new(), *v, now)).collect();
            for t in engine.evaluate(&Inputs { samples: &samples, ..Inputs::default() }, now) {
                match t.to {
                    AlertState::Firing => {
                        prop_assert!(!firing, "fired twice at {now}: {values:?}");
                        prop_assert!(t.value.unwrap() > 90.0);
                        firing = true;
                    }
                    AlertState::Resolved => {
                        prop_assert!(firing, "resolved unfired at {now}: {values:?}");
                        prop_assert!(t.value.is_none_or(|v| v < 80.0));
                        firing = false;
                    }
                    other => prop_assert!(false, "unexpected transition to {other}"),
                }
            }
        }
    }
}

/// Saves the engine as the daemon does, through JSON, into a new engine.
fn restart(engine: &Engine, rules_text: &str, at_s: u64) -> (Engine, Vec<String>) {
    let json = serde_json::to_string(&engine.save()).unwrap();
    let mut next = Engine::new(rules(rules_text));
    let orphans = next.restore(serde_json::from_str(&json).unwrap(), at_s * 1000);
    (next, orphans.iter().map(line).collect())
}

const TWO_CPUS: &str = r#"
[[rule]]
name = "core-hot"
level = "warning"
kind = "threshold"
metric = "core"
op = ">"
value = 90
repeat = "20s"

[[rule]]
name = "gone"
level = "info"
kind = "absence"
metric = "heartbeat"
after = "30s"
"#;

fn cores(values: [f64; 2], at_s: u64) -> Vec<Sample> {
    (0..2).map(|i| sample("core", &Labels::from([("core".into(), i.to_string())]), values[i], at_s * 1000)).collect()
}

#[test]
fn after_a_restart_an_alert_waits_for_its_input_before_resolving() {
    const HOT: &str = "[[rule]]\nname = \"core-hot\"\nlevel = \"warning\"\nkind = \"threshold\"\nmetric = \"core\"\nop = \">\"\nvalue = 90\n";
    // Its plugin's series is not there yet just after a start: no evidence.
    let mut engine = Engine::new(rules(HOT));
    let go = |e: &mut Engine, samples: &[Sample], at| eval(e, &Inputs { samples, ..Inputs::default() }, at);
    assert_eq!(go(&mut engine, &cores([95.0, 10.0], 0), 0).len(), 1);
    let (mut engine, _) = restart(&engine, HOT, 10);
    assert_eq!(go(&mut engine, &[], 11), Vec::<String>::new(), "no series yet: stays firing");
    assert_eq!(go(&mut engine, &cores([95.0, 10.0], 15), 15), Vec::<String>::new(), "seen again, still hot");
    assert_eq!(go(&mut engine, &[], 16), [r#"16 core-hot{core="0"} firing->resolved"#], "seen once: gone is gone");

    // A series that never comes back resolves once the wait is over.
    let mut engine = Engine::new(rules(HOT));
    go(&mut engine, &cores([95.0, 10.0], 0), 0);
    let (mut engine, _) = restart(&engine, HOT, 10);
    let wait_s = crate::alerts::lifecycle::RESTORED_WAIT_MS / 1000;
    assert_eq!(go(&mut engine, &[], 10 + wait_s - 1), Vec::<String>::new());
    assert_eq!(
        go(&mut engine, &[], 10 + wait_s),
        [format!(r#"{} core-hot{{core="0"}} firing->resolved"#, 10 + wait_s)]
    );
}

#[test]
fn a_restart_keeps_firing_alerts_acks_silences_and_absence_clocks() {
    let mut engine = Engine::new(rules(TWO_CPUS));
    let go = |e: &mut Engine, v, at| eval(e, &Inputs { samples: &cores(v, at), ..Inputs::default() }, at);
    assert_eq!(
        go(&mut engine, [95.0, 95.0], 0),
        [r#"0 core-hot{core="0"} inactive->firing"#, r#"0 core-hot{core="1"} inactive->firing"#]
    );
    engine.ack(r#"core-hot{core="1"}"#, "ann", "on it", 1_000).unwrap();
    engine.silence(Labels::from([("rule".into(), "gone".into())]), 100_000, 1_000).unwrap();

    let (mut engine, orphans) = restart(&engine, TWO_CPUS, 10);
    assert!(orphans.is_empty());
    assert_eq!(go(&mut engine, [95.0, 95.0], 10), Vec::<String>::new(), "not sent again after the restart");
    assert_eq!(
        go(&mut engine, [95.0, 95.0], 20),
        [r#"20 core-hot{core="0"} firing->firing"#],
        "repeats keep their clock"
    );
    let alerts = engine.alerts(20_000);
    assert_eq!(alerts[1].ack.as_ref().map(|a| a.note.as_str()), Some("on it"));
    // The absence clock started at 0, not at the restart; the silence holds.
    assert_eq!(
        go(&mut engine, [50.0, 50.0], 30),
        [
            r#"30 core-hot{core="0"} firing->resolved"#,
            r#"30 core-hot{core="1"} acknowledged->resolved"#,
            "30 gone inactive->firing silenced",
        ]
    );
    assert_eq!(engine.silences().len(), 1);
    assert_eq!(engine.silence(Labels::from([("level".into(), "info".into())]), 200_000, 30_000).unwrap(), 2);
}

#[test]
fn a_rule_gone_after_a_restart_resolves_its_alerts() {
    let mut engine = Engine::new(rules(TWO_CPUS));
    eval(&mut engine, &Inputs { samples: &cores([95.0, 10.0], 0), ..Inputs::default() }, 0);
    let only_absence = &TWO_CPUS[TWO_CPUS.find("[[rule]]\nname = \"gone\"").unwrap()..];
    let (engine, orphans) = restart(&engine, only_absence, 5);
    assert_eq!(orphans, [r#"5 core-hot{core="0"} firing->resolved"#]);
    assert!(engine.alerts(5_000).is_empty());
}

#[test]
fn an_id_prefix_names_one_alert_or_says_which_it_could_be() {
    let mut engine = Engine::new(rules(TWO_CPUS));
    eval(&mut engine, &Inputs { samples: &cores([95.0, 95.0], 0), ..Inputs::default() }, 0);
    assert_eq!(
        engine.ack("core", "ann", "", 1).unwrap_err().to_string(),
        r#"'core' could be any of core-hot{core="0"}, core-hot{core="1"}; give more of the id"#
    );
    assert_eq!(engine.ack(r#"core-hot{core="1"#, "ann", "", 1).unwrap().id, r#"core-hot{core="1"}"#);
}

#[test]
fn a_failed_watch_job_fires_until_a_run_succeeds() {
    let mut engine = Engine::new(rules(
        "[[rule]]\nname = \"job\"\nlevel = \"critical\"\nkind = \"watch_failed\"\njob = \"build\"\n",
    ));
    let job = |name: &str, failed: bool, outcome: &str| JobInput {
        job: name.into(),
        project: "/p".into(),
        failed,
        outcome: outcome.into(),
    };
    let mut at = |jobs: &[JobInput], s: u64| {
        let out = engine.evaluate(&Inputs { jobs, ..Inputs::default() }, s * 1000);
        out.iter().map(|t| format!("{} {}", line(t), t.message)).collect::<Vec<_>>()
    };
    assert_eq!(
        at(&[job("build", true, "exit 3"), job("docs", true, "exit 1")], 0),
        [r#"0 job{job="build",project="/p"} inactive->firing watch job build failed: exit 3"#],
        "only the job the rule names"
    );
    assert!(at(&[job("build", true, "timed out after 10s")], 1).is_empty(), "still failing: no new alert");
    assert_eq!(
        at(&[job("build", false, "exit 0")], 2),
        [r#"2 job{job="build",project="/p"} firing->resolved watch job build failed: exit 0"#]
    );
}
