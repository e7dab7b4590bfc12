//! [`NodeStatusChecker`]: the node is ready, eligible and not draining.

use caravan_schemas::Node;
use caravan_schemas::fit;

use super::FeasibilityChecker;

/// Keeps nodes that accept new allocations ([`fit::closed_reason`], the plan applier's check).
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeStatusChecker;

impl FeasibilityChecker for NodeStatusChecker {
    fn check(&self, node: &Node) -> Result<(), &str> {
        fit::closed_reason(node).map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;
    use caravan_schemas::node::{DrainStrategy, NodeState, SchedulingEligibility};

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
