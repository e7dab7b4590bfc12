//! Max-score selection (Nomad's `MaxScoreIterator`) and the number of nodes to score.

use super::RankedNode;

/// The candidate with the highest final score; the first one wins ties.
pub fn max_score(candidates: Vec<RankedNode>) -> Option<RankedNode> {
    let mut best: Option<RankedNode> = None;
    for candidate in candidates {
        if best
            .as_ref()
            .is_none_or(|b| candidate.final_score() > b.final_score())
        {
            best = Some(candidate);
        }
    }
    best
}

/// Nodes scored per placement (Nomad's `GenericStack.SetNodes`): 2 for batch jobs, else
/// `max(2, ⌈log₂ nodes⌉)`.
pub fn base_limit(batch: bool, nodes: usize) -> usize {
    if batch || nodes < 2 {
        return 2;
    }
    let log = usize::BITS - (nodes - 1).leading_zeros();
    (log as usize).max(2)
}

/// The limit when a group has affinities or spreads: every feasible node up to
/// `max(count, node_limit)` (Nomad's `NodeLimitForFeasibilityChecks`).
pub fn affinity_limit(count: u32, node_limit: usize) -> usize {
    (count as usize).max(node_limit)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use caravan_schemas::mock;

    use super::*;
    use crate::scheduler::metrics::ScoreCard;

    #[test]
    fn limit_is_log2_of_nodes_for_services() {
        assert_eq!(base_limit(false, 1), 2);
        assert_eq!(base_limit(false, 4), 2);
        assert_eq!(base_limit(false, 5), 3);
        assert_eq!(base_limit(false, 1024), 10);
        assert_eq!(base_limit(false, 5000), 13);
        assert_eq!(base_limit(true, 5000), 2);
        assert_eq!(affinity_limit(3, 100), 100);
        assert_eq!(affinity_limit(300, 100), 300);
    }

    #[test]
    fn first_best_wins() {
        let ranked = |name: &str, score: f64| RankedNode {
            node: Arc::new(mock::node(name)),
            scores: ScoreCard {
                normalized: score,
                ..ScoreCard::default()
            },
            ask: Default::default(),
            ports: Vec::new(),
        };
        let best = max_score(vec![ranked("a", 0.1), ranked("b", 0.5), ranked("c", 0.5)]);
        assert_eq!(
            best.and_then(|b| b.node.metadata.name.clone()),
            Some("b".into())
        );
        assert!(max_score(Vec::new()).is_none());
    }
}
