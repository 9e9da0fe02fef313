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

use super::node::{Node, Status};

/// How a failed child affects its parent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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

/// A parent's computed state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub progress: f64,
    pub status: Status,
}

/// The parent's progress and status; no children means pending at 0.
pub fn aggregate(children: &[Node], policy: FailurePolicy) -> Aggregate {
    if children.is_empty() {
        return Aggregate { progress: 0.0, status: Status::Pending };
    }
    Aggregate { progress: progress(children), status: status(children, policy) }
}

fn progress(children: &[Node]) -> f64 {
    let totals: Option<Vec<f64>> = children.iter().map(|c| c.total.filter(|t| t.is_finite() && *t > 0.0)).collect();
    let weights: Option<Vec<f64>> = children
        .iter()
        .map(|c| c.weight.filter(|w| w.is_finite() && *w >= 0.0))
        .collect::<Option<Vec<f64>>>()
        .filter(|ws| ws.iter().any(|w| *w > 0.0));
    let weights = totals.or(weights).unwrap_or_else(|| vec![1.0; children.len()]);
    // Scale by the largest weight so that sums of huge totals cannot overflow.
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

fn status(children: &[Node], policy: FailurePolicy) -> Status {
    let any = |s: Status| children.iter().any(|c| c.status == s);
    let all_finished = children.iter().all(|c| c.status.is_terminal());
    if policy == FailurePolicy::FailFast && any(Status::Failed) {
        return Status::Failed;
    }
    if !all_finished {
        return if any(Status::Running) {
            Status::Running
        } else if any(Status::Paused) {
            Status::Paused
        } else if children.iter().any(|c| c.status.is_terminal()) {
            Status::Running
        } else {
            Status::Pending
        };
    }
    if any(Status::Failed) {
        Status::Failed
    } else if children.iter().all(|c| c.status == Status::Completed) {
        Status::Completed
    } else {
        Status::Cancelled
    }
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

    proptest! {
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
