//! A parent's progress is the weighted sum of its children's progress, each child
//! weighted by its phase name: building usually takes longer than setting up, so a
//! finished `build` moves the parent further than a finished `init`.
//!
//! A child's weight is, in order: the weight configured for its name (compared
//! case-insensitively), else its own `weight` field when the reporter set one
//! (ignored when negative or not a number), else `default_weight`. Weights are
//! normalised over the children present, so they need not add up to 100. A
//! completed child counts as fully done; other children count with their
//! `progress`, clamped to 0..1. When every child weighs 0 they count equally, and
//! a parent without children keeps its own progress.
//!
//! The ETA is `elapsed * (1 - p) / p`, with `elapsed` the seconds from the parent's
//! `started_ms` to its `updated_ms`: none before any progress or when the start is
//! unknown, 0 once the parent is done.
//!
//! # Configuration (`weighted-phases.toml`)
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `default_weight` | `10` | weight of a child with no configured and no own weight |
//! | `[weights]` | `init = 5`, `setup = 15`, `build = 40`, `test = 30`, `cleanup = 10` | weight per phase name, case-insensitive; entries add to or override the defaults |
//!
//! Weights must be zero or more.
//!
//! ```toml
//! default_weight = 10
//!
//! [weights]
//! build = 60
//! test = 20
//! deploy = 10
//! ```
//!
//! # Capabilities
//!
//! None.

use std::collections::BTreeMap;

use monitor_sdk::config::Deserialize;
use monitor_sdk::{NodeStatus, Plugin, ProgressCalculator, ProgressEstimate, ProgressNode};

const DEFAULT_WEIGHTS: [(&str, f64); 5] =
    [("init", 5.0), ("setup", 15.0), ("build", 40.0), ("test", 30.0), ("cleanup", 10.0)];
const DEFAULT_WEIGHT: f64 = 10.0;

#[derive(Debug, Clone, PartialEq)]
struct Weights {
    /// Keyed by lowercase phase name.
    by_name: BTreeMap<String, f64>,
    default_weight: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            by_name: DEFAULT_WEIGHTS.iter().map(|(name, w)| (name.to_string(), *w)).collect(),
            default_weight: DEFAULT_WEIGHT,
        }
    }
}

#[derive(Default)]
struct WeightedPhases {
    weights: Weights,
}

impl Plugin for WeightedPhases {
    const SUMMARY: &'static str = "a parent's progress is the weighted sum of its children's, weighted by phase name";

    fn configure(&mut self, config: &str) -> Result<(), String> {
        self.weights = Weights::parse(config)?;
        Ok(())
    }
}

impl ProgressCalculator for WeightedPhases {
    fn compute(&mut self, parent: &ProgressNode, children: &[ProgressNode]) -> Result<ProgressEstimate, String> {
        Ok(estimate(&self.weights, parent, children))
    }
}

monitor_sdk::export_progress_calculator!(WeightedPhases);

#[derive(Deserialize)]
#[serde(crate = "monitor_sdk::config::serde", deny_unknown_fields)]
struct RawConfig {
    default_weight: Option<f64>,
    weights: Option<BTreeMap<String, f64>>,
}

fn check_weight(field: &str, weight: f64) -> Result<f64, String> {
    if weight.is_finite() && weight >= 0.0 {
        Ok(weight)
    } else {
        Err(format!("{field} = {weight}: a weight must be a number, zero or more"))
    }
}

impl Weights {
    fn parse(text: &str) -> Result<Weights, String> {
        let raw: RawConfig = monitor_sdk::config::from_toml(text)?;
        let mut weights = Weights::default();
        if let Some(w) = raw.default_weight {
            weights.default_weight = check_weight("default_weight", w)?;
        }
        // Names differing only in case are the same phase: reject both spellings.
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (name, w) in raw.weights.unwrap_or_default() {
            let key = name.trim().to_lowercase();
            if let Some(other) = seen.insert(key.clone(), name.clone()) {
                return Err(format!(
                    "weights: `{other}` and `{name}` name the same phase (names are case-insensitive)"
                ));
            }
            let w = check_weight(&format!("weights.{name}"), w)?;
            weights.by_name.insert(key, w);
        }
        Ok(weights)
    }

    fn of(&self, child: &ProgressNode) -> f64 {
        if let Some(w) = self.by_name.get(&child.name.trim().to_lowercase()) {
            return *w;
        }
        match child.weight {
            Some(w) if w.is_finite() && w >= 0.0 => w,
            _ => self.default_weight,
        }
    }
}

fn clamp01(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

fn child_progress(child: &ProgressNode) -> f64 {
    if child.status == NodeStatus::Completed { 1.0 } else { clamp01(child.progress) }
}

fn estimate(weights: &Weights, parent: &ProgressNode, children: &[ProgressNode]) -> ProgressEstimate {
    let progress = if children.is_empty() {
        if parent.status == NodeStatus::Completed { 1.0 } else { clamp01(parent.progress) }
    } else {
        let total: f64 = children.iter().map(|c| weights.of(c)).sum();
        if total > 0.0 {
            let weighted: f64 = children.iter().map(|c| weights.of(c) * child_progress(c)).sum();
            clamp01(weighted / total)
        } else {
            clamp01(children.iter().map(child_progress).sum::<f64>() / children.len() as f64)
        }
    };
    ProgressEstimate { progress, eta_secs: eta(parent, progress) }
}

fn eta(parent: &ProgressNode, progress: f64) -> Option<f64> {
    if progress >= 1.0 {
        return Some(0.0);
    }
    let started = parent.started_ms?;
    if progress <= 0.0 || parent.updated_ms <= started {
        return None;
    }
    let elapsed = (parent.updated_ms - started) as f64 / 1000.0;
    Some(elapsed * (1.0 - progress) / progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, progress: f64) -> ProgressNode {
        monitor_sdk::testing::node(&format!("run/{name}"), NodeStatus::Running, progress)
    }

    fn parent() -> ProgressNode {
        ProgressNode { id: "run".into(), name: "run".into(), ..node("run", 0.0) }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn default_weights_are_normalised_over_present_children() {
        let w = Weights::default();
        // BUILD 40 done, TEST 30 half done: (40 + 15) / 70.
        let est = estimate(&w, &parent(), &[node("BUILD", 1.0), node("test", 0.5)]);
        assert!(close(est.progress, 55.0 / 70.0), "{}", est.progress);

        let all = [node("init", 1.0), node("Setup", 1.0), node("build", 0.5), node("test", 0.0), node("cleanup", 0.0)];
        let est = estimate(&w, &parent(), &all);
        assert!(close(est.progress, 0.40), "{}", est.progress);
    }

    #[test]
    fn unknown_names_use_own_weight_then_default() {
        let w = Weights::default();
        let mut own = node("download", 1.0);
        own.weight = Some(30.0);
        let fallback = node("unpack", 0.0); // default_weight 10
        let est = estimate(&w, &parent(), &[own, fallback]);
        assert!(close(est.progress, 0.75), "{}", est.progress);

        // A configured name wins over the child's own weight.
        let mut build = node("build", 1.0);
        build.weight = Some(0.0);
        let est = estimate(&w, &parent(), &[build, node("x", 0.0)]);
        assert!(close(est.progress, 0.8), "{}", est.progress);

        // A negative own weight is ignored.
        let mut bad = node("x", 1.0);
        bad.weight = Some(-5.0);
        let est = estimate(&w, &parent(), &[bad, node("y", 0.0)]);
        assert!(close(est.progress, 0.5), "{}", est.progress);
    }

    #[test]
    fn completed_children_count_fully_and_progress_is_clamped() {
        let w = Weights::default();
        let mut done = node("build", 0.2);
        done.status = NodeStatus::Completed;
        let est = estimate(&w, &parent(), &[done, node("test", 7.0)]);
        assert_eq!(est.progress, 1.0);

        let est = estimate(&w, &parent(), &[node("build", -3.0), node("test", f64::NAN)]);
        assert_eq!(est.progress, 0.0);
    }

    #[test]
    fn zero_total_weight_and_no_children() {
        let w = Weights::parse("default_weight = 0").unwrap();
        let est = estimate(&w, &parent(), &[node("a", 1.0), node("b", 0.0)]);
        assert!(close(est.progress, 0.5));

        let mut p = parent();
        p.progress = 0.3;
        assert!(close(estimate(&w, &p, &[]).progress, 0.3));
        p.status = NodeStatus::Completed;
        assert_eq!(estimate(&w, &p, &[]).progress, 1.0);
    }

    #[test]
    fn eta_from_elapsed_time() {
        let mut p = parent();
        p.started_ms = Some(10_000);
        p.updated_ms = 70_000; // 60 s elapsed
        assert_eq!(eta(&p, 0.25), Some(180.0));
        assert_eq!(eta(&p, 1.0), Some(0.0));
        assert_eq!(eta(&p, 0.0), None);
        p.updated_ms = 5_000;
        assert_eq!(eta(&p, 0.5), None);
        p.started_ms = None;
        assert_eq!(eta(&p, 0.5), None);
        assert_eq!(eta(&p, 1.0), Some(0.0));

        let mut p = parent();
        p.started_ms = Some(0);
        p.updated_ms = 40_000;
        let est = estimate(&Weights::default(), &p, &[node("build", 1.0), node("test", 0.0), node("cleanup", 0.0)]);
        // p = 40/80 = 0.5, eta = 40 s.
        assert!(close(est.progress, 0.5));
        assert_eq!(est.eta_secs, Some(40.0));
    }

    #[test]
    fn config_overrides_and_extends_case_insensitively() {
        let w = Weights::parse("default_weight = 2.5\n[weights]\nBuild = 60\ndeploy = 7\n").unwrap();
        assert_eq!(w.default_weight, 2.5);
        assert_eq!(w.by_name["build"], 60.0);
        assert_eq!(w.by_name["deploy"], 7.0);
        assert_eq!(w.by_name["init"], 5.0);
        assert_eq!(w.of(&node("DEPLOY", 0.0)), 7.0);
        assert_eq!(w.of(&node("other", 0.0)), 2.5);
        assert_eq!(Weights::parse("").unwrap(), Weights::default());
    }

    #[test]
    fn config_errors() {
        let e = Weights::parse("[weights]\nbuild = -1").unwrap_err();
        assert!(e.contains("weights.build = -1"), "{e}");
        let e = Weights::parse("default_weight = -0.5").unwrap_err();
        assert!(e.contains("default_weight"), "{e}");
        let e = Weights::parse("[weights]\nbuild = nan").unwrap_err();
        assert!(e.contains("weights.build"), "{e}");
        let e = Weights::parse("[weights]\nBuild = 1\nBUILD = 2").unwrap_err();
        assert!(e.contains("same phase"), "{e}");
        assert!(Weights::parse("[weights]\nbuild = \"big\"").is_err());
        assert!(Weights::parse("weight = 3").is_err());
    }
}
