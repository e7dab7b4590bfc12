//! [`MetricsRecorder`]: placement metrics of one selection (Nomad's `AllocMetric`), recorded
//! cheaply while nodes are visited and turned into the API's [`AllocMetrics`] at the end.

use std::collections::BTreeMap;
use std::sync::Arc;

use caravan_schemas::Node;
use caravan_schemas::allocation::{AllocMetrics, NodeScore, ScorerScores};

/// Node scores kept per placement (Nomad's `MaxRetainedNodeScores`).
pub const MAX_RETAINED_SCORES: usize = 5;

/// The scorers, in the order their scores are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scorer {
    /// Bin packing (or spread) fit.
    Binpack = 0,
    /// Penalty for allocations of the same job and group on the node.
    JobAntiAffinity = 1,
    /// Penalty for the node a rescheduled allocation failed on.
    ReschedulePenalty = 2,
    /// Node affinities.
    NodeAffinity = 3,
    /// Spread targets.
    Spread = 4,
}

impl Scorer {
    /// Every scorer.
    pub const ALL: [Scorer; 5] = [
        Scorer::Binpack,
        Scorer::JobAntiAffinity,
        Scorer::ReschedulePenalty,
        Scorer::NodeAffinity,
        Scorer::Spread,
    ];

    /// Name used in metrics, as in Nomad.
    pub fn name(self) -> &'static str {
        match self {
            Scorer::Binpack => "binpack",
            Scorer::JobAntiAffinity => "job-anti-affinity",
            Scorer::ReschedulePenalty => "node-reschedule-penalty",
            Scorer::NodeAffinity => "node-affinity",
            Scorer::Spread => "allocation-spread",
        }
    }
}

/// Scores of one node for one placement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScoreCard {
    /// Score per scorer, `None` when the scorer did not report.
    pub parts: [Option<f64>; 5],
    /// Average of the scores that count (Nomad's `FinalScore`).
    pub normalized: f64,
}

impl ScoreCard {
    /// Records the score of `scorer`.
    pub fn set(&mut self, scorer: Scorer, score: f64) {
        self.parts[scorer as usize] = Some(score);
    }

    /// The score of `scorer`.
    pub fn get(&self, scorer: Scorer) -> Option<f64> {
        self.parts[scorer as usize]
    }
}

/// Collects what happened while selecting a node for one placement.
#[derive(Clone, Debug, Default)]
pub struct MetricsRecorder {
    /// Ready nodes per datacenter, set once per evaluation.
    pub nodes_available: BTreeMap<String, u64>,
    nodes_evaluated: u64,
    nodes_filtered: u64,
    class_filtered: BTreeMap<String, u64>,
    constraint_filtered: BTreeMap<String, u64>,
    nodes_exhausted: u64,
    class_exhausted: BTreeMap<String, u64>,
    dimension_exhausted: BTreeMap<String, u64>,
    top: Vec<(Arc<Node>, ScoreCard)>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

impl MetricsRecorder {
    /// Clears everything but `nodes_available`, before a new selection.
    pub fn reset(&mut self) {
        self.nodes_evaluated = 0;
        self.nodes_filtered = 0;
        self.class_filtered.clear();
        self.constraint_filtered.clear();
        self.nodes_exhausted = 0;
        self.class_exhausted.clear();
        self.dimension_exhausted.clear();
        self.top.clear();
    }

    /// A node was looked at.
    pub fn evaluate_node(&mut self) {
        self.nodes_evaluated += 1;
    }

    /// A node was filtered out by `reason` (a constraint, `missing drivers`, …).
    pub fn filter_node(&mut self, node: &Node, reason: &str) {
        self.nodes_filtered += 1;
        let class = node.class();
        if !class.is_empty() {
            bump(&mut self.class_filtered, class);
        }
        if !reason.is_empty() {
            bump(&mut self.constraint_filtered, reason);
        }
    }

    /// A node lacked resources in `dimension` (`cpu`, `memory`, …).
    pub fn exhausted_node(&mut self, node: &Node, dimension: &str) {
        self.nodes_exhausted += 1;
        let class = node.class();
        if !class.is_empty() {
            bump(&mut self.class_exhausted, class);
        }
        if !dimension.is_empty() {
            bump(&mut self.dimension_exhausted, dimension);
        }
    }

    /// A node was scored; the best [`MAX_RETAINED_SCORES`] are kept.
    pub fn score_node(&mut self, node: &Arc<Node>, card: &ScoreCard) {
        if self.top.len() == MAX_RETAINED_SCORES
            && self
                .top
                .last()
                .is_some_and(|(_, worst)| worst.normalized >= card.normalized)
        {
            return;
        }
        let at = self
            .top
            .iter()
            .position(|(_, c)| c.normalized < card.normalized)
            .unwrap_or(self.top.len());
        self.top.insert(at, (node.clone(), card.clone()));
        self.top.truncate(MAX_RETAINED_SCORES);
    }

    /// Nodes examined so far.
    pub fn nodes_evaluated(&self) -> u64 {
        self.nodes_evaluated
    }

    /// The metrics in API form.
    pub fn to_alloc_metrics(&self) -> AllocMetrics {
        let scores = self
            .top
            .iter()
            .map(|(node, card)| NodeScore {
                node_name: node.metadata.name().to_string(),
                scores: ScorerScores {
                    binpack: card.get(Scorer::Binpack),
                    job_anti_affinity: card.get(Scorer::JobAntiAffinity),
                    node_reschedule_penalty: card.get(Scorer::ReschedulePenalty),
                    node_affinity: card.get(Scorer::NodeAffinity),
                    allocation_spread: card.get(Scorer::Spread),
                },
                norm_score: card.normalized,
            })
            .collect();
        AllocMetrics {
            nodes_evaluated: self.nodes_evaluated,
            nodes_filtered: self.nodes_filtered,
            nodes_available: self.nodes_available.clone(),
            class_filtered: self.class_filtered.clone(),
            constraint_filtered: self.constraint_filtered.clone(),
            nodes_exhausted: self.nodes_exhausted,
            class_exhausted: self.class_exhausted.clone(),
            dimension_exhausted: self.dimension_exhausted.clone(),
            quota_exhausted: Vec::new(),
            scores,
            allocation_time: None,
            coalesced_failures: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;

    use super::*;

    #[test]
    fn recorder_keeps_the_best_scores_and_names_reasons() {
        let mut recorder = MetricsRecorder::default();
        for i in 0..8 {
            let node = Arc::new(mock::node(&format!("n{i}")));
            recorder.evaluate_node();
            let mut card = ScoreCard::default();
            card.set(Scorer::Binpack, f64::from(i) / 10.0);
            card.normalized = f64::from(i) / 10.0;
            recorder.score_node(&node, &card);
        }
        let node = mock::node("x");
        recorder.filter_node(&node, "missing drivers");
        recorder.exhausted_node(&node, "memory");
        let metrics = recorder.to_alloc_metrics();
        assert_eq!(metrics.nodes_evaluated, 8);
        assert_eq!(metrics.scores.len(), MAX_RETAINED_SCORES);
        assert_eq!(metrics.scores[0].node_name, "n7");
        assert_eq!(metrics.scores[0].scores.get("binpack"), Some(0.7));
        assert_eq!(metrics.constraint_filtered.get("missing drivers"), Some(&1));
        assert_eq!(metrics.dimension_exhausted.get("memory"), Some(&1));
        assert_eq!(metrics.class_filtered.get("linux-medium-pci"), Some(&1));
    }
}
