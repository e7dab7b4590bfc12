//! [`NodeStatusChecker`]: the node is ready, eligible and not draining.

use caravan_schemas::Node;
use caravan_schemas::node::{NodeState, SchedulingEligibility};

use super::FeasibilityChecker;

/// Keeps nodes that accept new allocations.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeStatusChecker;

impl NodeStatusChecker {
    /// Why `node` takes no new allocations, if it does not.
    pub fn reason(node: &Node) -> Option<&'static str> {
        let ready = node
            .status
            .as_ref()
            .is_some_and(|s| s.status == NodeState::Ready);
        if !ready {
            return Some("node not ready");
        }
        if node.spec.scheduling_eligibility == Some(SchedulingEligibility::Ineligible) {
            return Some("node ineligible");
        }
        if node.spec.drain.is_some() {
            return Some("node draining");
        }
        None
    }
}

impl FeasibilityChecker for NodeStatusChecker {
    fn check(&self, node: &Node) -> Result<(), &str> {
        Self::reason(node).map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;
    use caravan_schemas::node::DrainStrategy;

    use super::*;

    #[test]
    fn only_ready_eligible_undrained_nodes_pass() {
        let node = mock::node("n1");
        assert!(NodeStatusChecker.check(&node).is_ok());

        let mut down = node.clone();
        down.status.get_or_insert_default().status = NodeState::Down;
        assert_eq!(NodeStatusChecker.check(&down), Err("node not ready"));

        let mut ineligible = node.clone();
        ineligible.spec.scheduling_eligibility = Some(SchedulingEligibility::Ineligible);
        assert_eq!(NodeStatusChecker.check(&ineligible), Err("node ineligible"));

        let mut draining = node;
        draining.spec.drain = Some(DrainStrategy::default());
        assert_eq!(NodeStatusChecker.check(&draining), Err("node draining"));
    }
}
