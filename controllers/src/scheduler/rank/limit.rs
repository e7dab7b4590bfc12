//! [`LimitIterator`]: stop after `limit` ranked nodes, skipping up to `max_skip` nodes whose
//! score is at or below a threshold (they are used only if nothing better turns up), as Nomad's
//! `LimitIterator`.

use super::RankedNode;

/// Nodes with a final score at or below this are skipped when possible.
pub const SKIP_SCORE_THRESHOLD: f64 = 0.0;
/// Most nodes skipped per selection.
pub const MAX_SKIP: usize = 3;

/// Collects at most `limit` candidates.
#[derive(Debug)]
pub struct LimitIterator {
    limit: usize,
    accepted: Vec<RankedNode>,
    skipped: Vec<RankedNode>,
}

impl LimitIterator {
    /// A limit of `limit` (at least 1) nodes.
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            // Bounded by the limit on the hot path; large limits (affinities, spreads) grow.
            accepted: Vec::with_capacity(limit.min(64)),
            skipped: Vec::with_capacity(MAX_SKIP),
        }
    }

    /// Offers a ranked node.
    pub fn offer(&mut self, option: RankedNode) {
        if self.skipped.len() < MAX_SKIP && option.final_score() <= SKIP_SCORE_THRESHOLD {
            self.skipped.push(option);
        } else {
            self.accepted.push(option);
        }
    }

    /// Whether `limit` nodes were accepted: the source need not be read further.
    pub fn is_full(&self) -> bool {
        self.accepted.len() >= self.limit
    }

    /// The candidates: accepted nodes, topped up with skipped ones up to the limit.
    pub fn finish(mut self) -> Vec<RankedNode> {
        let room = self.limit.saturating_sub(self.accepted.len());
        self.accepted.extend(self.skipped.into_iter().take(room));
        self.accepted
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use caravan_schemas::mock;

    use super::*;
    use crate::scheduler::metrics::ScoreCard;

    fn ranked(name: &str, score: f64) -> RankedNode {
        RankedNode {
            node: Arc::new(mock::node(name)),
            scores: ScoreCard {
                normalized: score,
                ..ScoreCard::default()
            },
            ask: Default::default(),
            ports: Vec::new(),
        }
    }

    fn names(nodes: &[RankedNode]) -> Vec<String> {
        nodes
            .iter()
            .map(|n| n.node.metadata.name().to_owned())
            .collect()
    }

    #[test]
    fn low_scores_are_skipped_then_used_as_fallback() {
        let mut limit = LimitIterator::new(2);
        limit.offer(ranked("a", -0.5));
        limit.offer(ranked("b", 0.4));
        assert!(!limit.is_full());
        limit.offer(ranked("c", 0.3));
        assert!(limit.is_full());
        assert_eq!(names(&limit.finish()), ["b", "c"]);

        let mut limit = LimitIterator::new(2);
        limit.offer(ranked("a", -0.5));
        limit.offer(ranked("b", 0.4));
        assert_eq!(names(&limit.finish()), ["b", "a"]);
    }

    #[test]
    fn at_most_max_skip_nodes_are_skipped() {
        let mut limit = LimitIterator::new(1);
        for name in ["a", "b", "c"] {
            limit.offer(ranked(name, 0.0));
        }
        assert!(!limit.is_full());
        limit.offer(ranked("d", 0.0));
        assert!(limit.is_full());
        assert_eq!(names(&limit.finish()), ["d"]);
    }
}
