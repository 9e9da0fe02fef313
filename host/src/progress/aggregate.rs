//! A parent's progress and status, computed from its children. Pure, so the
//! same rules hold wherever a parent is recomputed.
//!
//! **Progress** is the weighted mean of the children's progress. The weights are
//! the children's totals when every child has a finite total above 0 (units are
//! then comparable: 900 of 1000 files and 0 of 10 files is 89%, not 45%);
//! otherwise their `weight`s when every child has a finite one of at least 0 and
//! not all of them are 0; otherwise all children weigh the same. Mixing the two
//! sources would compare units with weights, so a single child without a total
//! sends the whole parent to the next rule. The policy does not change progress:
//! a failed child counts with the progress it reached.
//!
//! **Status** depends on the [`FailurePolicy`]; see its variants. While some child
//! is not finished, the parent is running if any child runs; else paused if any
//! child is paused; else (every unfinished child pending) pending if no child has
//! finished yet, and running if some have (the pipeline is between steps).

use serde::{Deserialize, Serialize};

use super::exact::Exact;
use super::node::{Node, Status};

/// How a failed child affects its parent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// The parent fails as soon as any child fails. Otherwise it completes when
    /// every child completed, and is cancelled when all are finished and some
    /// were cancelled.
    #[default]
    FailFast,
    /// The parent keeps going while any child is unfinished; once all are
    /// finished it is failed if any failed, else completed if all completed,
    /// else cancelled.
    Continue,
}

impl FailurePolicy {
    pub const ALL: [FailurePolicy; 2] = [FailurePolicy::FailFast, FailurePolicy::Continue];

    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::FailFast => "fail-fast",
            FailurePolicy::Continue => "continue",
        }
    }
}

/// A parent's computed state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub progress: f64,
    pub status: Status,
}

/// The parent's progress and status; no children means pending at 0.
pub fn aggregate(children: &[Node], policy: FailurePolicy) -> Aggregate {
    let mut summary = Children::default();
    for child in children {
        summary.add(child);
    }
    summary.aggregate(policy)
}

/// What a parent keeps of its direct children: enough to aggregate them
/// without reading them, changed child by child ([`Children::add`],
/// [`Children::remove`]), so an update costs the same under 20,000 siblings as
/// under 10. The sums are exact ([`Exact`]), so a summary kept up to date
/// this way equals, field for field, one made afresh from the children.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Children {
    count: u64,
    /// How many children are in each status, in [`Status::ALL`]'s order.
    statuses: [u64; 6],
    /// Children with a usable total (finite, above 0), the sum of those
    /// totals, and of total × progress.
    with_total: u64,
    totals: Exact,
    totals_done: Exact,
    /// Children with a usable weight (finite, at least 0), how many of those
    /// are above 0, the sum of the weights, and of weight × progress.
    with_weight: u64,
    with_positive_weight: u64,
    weights: Exact,
    weights_done: Exact,
    /// The sum of the children's progress.
    progress: Exact,
}

impl Children {
    /// How many children are counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn add(&mut self, child: &Node) {
        self.count_in(child, 1);
    }

    /// Takes back what [`Children::add`] added for a child in this state.
    pub fn remove(&mut self, child: &Node) {
        self.count_in(child, -1);
    }

    fn count_in(&mut self, child: &Node, sign: i8) {
        let step = |n: &mut u64| *n = if sign > 0 { *n + 1 } else { n.saturating_sub(1) };
        step(&mut self.count);
        step(&mut self.statuses[status_index(child.status)]);
        let progress = if child.progress.is_nan() { 0.0 } else { child.progress.clamp(0.0, 1.0) };
        self.progress.add(&Exact::of(progress), sign);
        if let Some(total) = child.total.filter(|t| t.is_finite() && *t > 0.0) {
            step(&mut self.with_total);
            self.totals.add(&Exact::of(total), sign);
            self.totals_done.add(&Exact::product(total, progress), sign);
        }
        if let Some(weight) = child.weight.filter(|w| w.is_finite() && *w >= 0.0) {
            step(&mut self.with_weight);
            if weight > 0.0 {
                step(&mut self.with_positive_weight);
            }
            self.weights.add(&Exact::of(weight), sign);
            self.weights_done.add(&Exact::product(weight, progress), sign);
        }
    }

    /// The parent's progress and status under `policy`; no children means
    /// pending at 0.
    pub fn aggregate(&self, policy: FailurePolicy) -> Aggregate {
        if self.count == 0 {
            return Aggregate { progress: 0.0, status: Status::Pending };
        }
        let progress = if self.with_total == self.count {
            self.totals_done.ratio(&self.totals)
        } else if self.with_weight == self.count && self.with_positive_weight > 0 {
            self.weights_done.ratio(&self.weights)
        } else {
            self.progress.ratio(&Exact::of(self.count as f64))
        };
        Aggregate { progress: progress.clamp(0.0, 1.0), status: self.status(policy) }
    }

    fn status(&self, policy: FailurePolicy) -> Status {
        let n = |s: Status| self.statuses[status_index(s)];
        let finished = n(Status::Completed) + n(Status::Failed) + n(Status::Cancelled);
        if policy == FailurePolicy::FailFast && n(Status::Failed) > 0 {
            return Status::Failed;
        }
        if finished < self.count {
            return if n(Status::Running) > 0 {
                Status::Running
            } else if n(Status::Paused) > 0 {
                Status::Paused
            } else if finished > 0 {
                Status::Running
            } else {
                Status::Pending
            };
        }
        if n(Status::Failed) > 0 {
            Status::Failed
        } else if n(Status::Completed) == self.count {
            Status::Completed
        } else {
            Status::Cancelled
        }
    }
}

fn status_index(status: Status) -> usize {
    Status::ALL.iter().position(|s| *s == status).expect("every status is in ALL")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::progress::path::NodePath;

    fn child(status: Status, progress: f64, total: Option<f64>, weight: Option<f64>) -> Node {
        let mut node = Node::new(NodePath::parse("run/child").unwrap(), 0);
        node.status = status;
        node.progress = progress;
        node.total = total;
        node.weight = weight;
        node
    }

    fn at(status: Status, progress: f64) -> Node {
        child(status, progress, None, None)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn statuses(list: &[Status], policy: FailurePolicy) -> Status {
        let children: Vec<Node> = list.iter().map(|s| at(*s, 0.0)).collect();
        aggregate(&children, policy).status
    }

    #[test]
    fn no_children_is_pending_at_zero() {
        assert_eq!(aggregate(&[], FailurePolicy::FailFast), Aggregate { progress: 0.0, status: Status::Pending });
    }

    #[test]
    fn weights_by_totals_then_weights_then_equally() {
        use Status::Running as R;
        let by_total = [child(R, 0.9, Some(1000.0), Some(1.0)), child(R, 0.0, Some(10.0), Some(100.0))];
        assert!(close(aggregate(&by_total, FailurePolicy::FailFast).progress, 900.0 / 1010.0));
        let by_weight = [child(R, 1.0, Some(1000.0), Some(3.0)), child(R, 0.0, None, Some(1.0))];
        assert!(close(aggregate(&by_weight, FailurePolicy::FailFast).progress, 0.75));
        let zero_total = [child(R, 1.0, Some(0.0), Some(1.0)), child(R, 0.0, Some(5.0), Some(3.0))];
        assert!(close(aggregate(&zero_total, FailurePolicy::FailFast).progress, 0.25), "a zero total is no total");
        let equal = [child(R, 1.0, Some(1000.0), Some(3.0)), child(R, 0.0, None, None)];
        assert_eq!(aggregate(&equal, FailurePolicy::FailFast).progress, 0.5);
        let all_zero_weights = [child(R, 1.0, None, Some(0.0)), child(R, 0.0, None, Some(0.0))];
        assert_eq!(aggregate(&all_zero_weights, FailurePolicy::FailFast).progress, 0.5);
        let some_zero_weight = [child(R, 1.0, None, Some(0.0)), child(R, 0.5, None, Some(2.0))];
        assert_eq!(aggregate(&some_zero_weight, FailurePolicy::FailFast).progress, 0.5);
    }

    #[test]
    fn huge_totals_and_bad_child_progress_stay_in_range() {
        use Status::Running as R;
        let huge = [child(R, 1.0, Some(f64::MAX), None), child(R, 1.0, Some(f64::MAX), None)];
        assert_eq!(aggregate(&huge, FailurePolicy::FailFast).progress, 1.0);
        let odd = [at(R, f64::NAN), at(R, 7.0), at(R, -3.0), at(R, 0.5)];
        assert_eq!(aggregate(&odd, FailurePolicy::FailFast).progress, 0.375);
    }

    #[test]
    fn fail_fast_statuses() {
        use FailurePolicy::FailFast as F;
        use Status::*;
        assert_eq!(statuses(&[Running, Failed, Pending], F), Failed);
        assert_eq!(statuses(&[Completed, Completed], F), Completed);
        assert_eq!(statuses(&[Completed, Cancelled], F), Cancelled);
        assert_eq!(statuses(&[Completed, Cancelled, Pending], F), Running);
        assert_eq!(statuses(&[Paused, Running], F), Running);
        assert_eq!(statuses(&[Paused, Completed, Paused], F), Paused);
        assert_eq!(statuses(&[Paused, Pending], F), Paused);
        assert_eq!(statuses(&[Pending, Pending], F), Pending);
        assert_eq!(statuses(&[Completed, Pending], F), Running, "between steps");
    }

    #[test]
    fn continue_statuses() {
        use FailurePolicy::Continue as C;
        use Status::*;
        assert_eq!(statuses(&[Failed, Running], C), Running);
        assert_eq!(statuses(&[Failed, Pending], C), Running);
        assert_eq!(statuses(&[Failed, Paused], C), Paused);
        assert_eq!(statuses(&[Failed, Completed, Cancelled], C), Failed);
        assert_eq!(statuses(&[Completed, Cancelled], C), Cancelled);
        assert_eq!(statuses(&[Completed, Completed], C), Completed);
        assert_eq!(statuses(&[Pending], C), Pending);
    }

    #[test]
    fn policy_serialises_kebab_case_and_defaults_to_fail_fast() {
        assert_eq!(FailurePolicy::default(), FailurePolicy::FailFast);
        assert_eq!(serde_json::to_string(&FailurePolicy::FailFast).unwrap(), "\"fail-fast\"");
        assert_eq!(serde_json::from_str::<FailurePolicy>("\"continue\"").unwrap(), FailurePolicy::Continue);
    }

    fn any_child() -> impl Strategy<Value = Node> {
        let amount = prop_oneof![Just(0.0), 0.0..10.0f64, 1e300..f64::MAX, Just(f64::MAX)];
        (0..Status::ALL.len(), 0.0..=1.0f64, proptest::option::of(amount.clone()), proptest::option::of(amount))
            .prop_map(|(status, progress, total, weight)| child(Status::ALL[status], progress, total, weight))
    }

    /// The floating-point aggregation the exact sums replaced, kept as the
    /// model they are checked against.
    fn reference_progress(children: &[Node]) -> f64 {
        let totals: Option<Vec<f64>> = children.iter().map(|c| c.total.filter(|t| t.is_finite() && *t > 0.0)).collect();
        let weights: Option<Vec<f64>> = children
            .iter()
            .map(|c| c.weight.filter(|w| w.is_finite() && *w >= 0.0))
            .collect::<Option<Vec<f64>>>()
            .filter(|ws| ws.iter().any(|w| *w > 0.0));
        let weights = totals.or(weights).unwrap_or_else(|| vec![1.0; children.len()]);
        let max = weights.iter().copied().fold(0.0, f64::max);
        let (mut sum, mut weighted) = (0.0, 0.0);
        for (child, weight) in children.iter().zip(weights) {
            let share = weight / max;
            let progress = if child.progress.is_nan() { 0.0 } else { child.progress.clamp(0.0, 1.0) };
            sum += share;
            weighted += share * progress;
        }
        (weighted / sum).clamp(0.0, 1.0)
    }

    proptest! {
        #[test]
        fn exact_sums_agree_with_floating_point(children in proptest::collection::vec(any_child(), 1..40)) {
            let got = aggregate(&children, FailurePolicy::FailFast).progress;
            let model = reference_progress(&children);
            prop_assert!((got - model).abs() < 1e-9, "exact {got}, floating point {model}");
        }

        #[test]
        fn a_summary_kept_child_by_child_equals_one_made_afresh(
            first in proptest::collection::vec(any_child(), 0..20),
            changes in proptest::collection::vec((any::<prop::sample::Index>(), any_child()), 0..30),
            continue_policy in any::<bool>(),
        ) {
            let mut children = first.clone();
            let mut kept = Children::default();
            for child in &first {
                kept.add(child);
            }
            for (index, replacement) in changes {
                if children.is_empty() {
                    kept.add(&replacement);
                    children.push(replacement);
                    continue;
                }
                let i = index.index(children.len());
                kept.remove(&children[i]);
                kept.add(&replacement);
                children[i] = replacement;
            }
            let mut fresh = Children::default();
            for child in children.iter().rev() {
                fresh.add(child);
            }
            prop_assert_eq!(&kept, &fresh);
            let policy = if continue_policy { FailurePolicy::Continue } else { FailurePolicy::FailFast };
            prop_assert_eq!(kept.aggregate(policy), aggregate(&children, policy));
        }

        #[test]
        fn aggregate_invariants(
            children in proptest::collection::vec(any_child(), 1..12),
            seed in any::<u64>(),
            continue_policy in any::<bool>(),
        ) {
            let policy = if continue_policy { FailurePolicy::Continue } else { FailurePolicy::FailFast };
            let got = aggregate(&children, policy);
            prop_assert!((0.0..=1.0).contains(&got.progress), "progress {}", got.progress);

            let all_completed = children.iter().all(|c| c.status == Status::Completed);
            let any_failed = children.iter().any(|c| c.status == Status::Failed);
            prop_assert_eq!(got.status == Status::Completed, all_completed);
            if policy == FailurePolicy::FailFast && any_failed {
                prop_assert_eq!(got.status, Status::Failed);
            }
            if got.status.is_terminal() && policy == FailurePolicy::Continue {
                prop_assert!(children.iter().all(|c| c.status.is_terminal()));
            }

            // The same children in another order aggregate the same.
            let mut shuffled = children.clone();
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let again = aggregate(&shuffled, policy);
            prop_assert_eq!(again.status, got.status);
            prop_assert!((again.progress - got.progress).abs() < 1e-9, "{} vs {}", again.progress, got.progress);
        }
    }
}
