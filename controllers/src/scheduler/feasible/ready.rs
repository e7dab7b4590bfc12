//! The candidate nodes of a job: ready, eligible, in one of its datacenters and in its node
//! pool (Nomad's `readyNodesInDCsAndPool`).

use std::collections::BTreeMap;
use std::sync::Arc;

use caravan_schemas::job::defaults;
use caravan_schemas::{Job, Node};

use super::{DatacenterChecker, FeasibilityChecker, NodePoolChecker, NodeStatusChecker};
use crate::scheduler::state::State;

/// The nodes a job may be placed on.
#[derive(Clone, Debug, Default)]
pub struct ReadyNodes {
    /// Ready, eligible nodes in the job's datacenters and pool, ordered by name.
    pub nodes: Vec<Arc<Node>>,
    /// How many of them each datacenter has.
    pub available_by_dc: BTreeMap<String, u64>,
}

/// Selects the nodes of `state` that `job` may be placed on.
pub fn ready_nodes(state: &dyn State, job: &Job) -> ReadyNodes {
    let datacenters = DatacenterChecker::new(&job.spec.datacenters);
    let pool = NodePoolChecker::new(job.spec.node_pool.as_deref().unwrap_or(defaults::NODE_POOL));
    let mut ready = ReadyNodes::default();
    for node in state.nodes() {
        if NodeStatusChecker.check(&node).is_err()
            || pool.check(&node).is_err()
            || datacenters.check(&node).is_err()
        {
            continue;
        }
        let dc = node.datacenter();
        match ready.available_by_dc.get_mut(dc) {
            Some(count) => *count += 1,
            None => {
                ready.available_by_dc.insert(dc.to_string(), 1);
            }
        }
        ready.nodes.push(node);
    }
    ready
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;
    use caravan_schemas::node::NodeState;

    use super::*;
    use crate::scheduler::state::MemState;

    #[test]
    fn ready_nodes_filters_status_pool_and_datacenter() {
        let mut state = MemState::new();
        state.upsert_node(mock::node("a"));
        let mut down = mock::node("b");
        down.status.get_or_insert_default().status = NodeState::Down;
        state.upsert_node(down);
        let mut other_dc = mock::node("c");
        other_dc.spec.datacenter = Some("dc2".into());
        state.upsert_node(other_dc);
        let mut other_pool = mock::node("d");
        other_pool.spec.node_pool = Some("gpu".into());
        state.upsert_node(other_pool);

        let job = mock::job("web");
        let ready = ready_nodes(&state, &job);
        let names: Vec<_> = ready.nodes.iter().map(|n| n.metadata.name()).collect();
        assert_eq!(names, ["a"]);
        assert_eq!(ready.available_by_dc.get("dc1"), Some(&1));
    }
}
