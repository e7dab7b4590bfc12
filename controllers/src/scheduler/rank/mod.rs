//! Ranking: scores for the feasible nodes (Nomad's `rank.go`, `spread.go`, `select.go`).
//!
//! Each scorer adds a score in about [-1, 1]; [`normalize`] averages them into the node's final
//! score; [`limit`] bounds how many nodes are scored and [`select`] takes the best.

pub mod bin_pack;
pub mod job_anti_affinity;
pub mod limit;
pub mod node_affinity;
pub mod normalize;
pub mod reschedule_penalty;
pub mod select;
pub mod spread;

pub use bin_pack::BinPackIterator;
pub use job_anti_affinity::JobAntiAffinity;
pub use limit::LimitIterator;
pub use node_affinity::NodeAffinity;
pub use reschedule_penalty::ReschedulePenalty;
pub use spread::SpreadScorer;

use std::sync::Arc;

use caravan_schemas::Node;
use caravan_schemas::allocation::AllocatedPort;
use caravan_schemas::resources::Comparable;

use super::metrics::ScoreCard;

/// A feasible node with its scores (Nomad's `RankedNode`).
#[derive(Clone, Debug)]
pub struct RankedNode {
    /// The node.
    pub node: Arc<Node>,
    /// Scores per scorer and the normalized final score.
    pub scores: ScoreCard,
    /// What the placement holds on this node.
    pub ask: Comparable,
    /// Host ports assigned to the placement on this node.
    pub ports: Vec<AllocatedPort>,
}

impl RankedNode {
    /// The final (normalized) score.
    pub fn final_score(&self) -> f64 {
        self.scores.normalized
    }
}
