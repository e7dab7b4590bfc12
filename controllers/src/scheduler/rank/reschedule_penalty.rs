//! [`ReschedulePenalty`]: avoid the nodes a rescheduled allocation already failed on.

/// Penalizes the previous nodes of a rescheduled allocation.
#[derive(Clone, Debug, Default)]
pub struct ReschedulePenalty {
    nodes: Vec<String>,
}

impl ReschedulePenalty {
    /// A scorer penalizing `nodes`.
    pub fn new(nodes: Vec<String>) -> Self {
        Self { nodes }
    }

    /// Whether there is anything to penalize.
    pub fn is_active(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// -1 for a penalized node, 0 otherwise (only -1 counts in the final score).
    pub fn score(&self, node: &str) -> f64 {
        if self.nodes.iter().any(|n| n == node) {
            -1.0
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_nodes_are_penalized() {
        let penalty = ReschedulePenalty::new(vec!["n1".into()]);
        assert_eq!(penalty.score("n1"), -1.0);
        assert_eq!(penalty.score("n2"), 0.0);
        assert!(!ReschedulePenalty::default().is_active());
    }
}
