//! [`EvalContext`]: the plan being built and the proposed view of the cluster it implies
//! (Nomad's `EvalContext` and `ProposedAllocs`): per-node usage, the job's allocations per node,
//! and the metrics of the current selection.

use std::sync::Arc;

use caravan_schemas::allocation::DesiredStatus;
use caravan_schemas::{Allocation, Node};

use super::feasible::fit;
use super::hash::FastMap;
use super::metrics::MetricsRecorder;
use super::resources::{self, Comparable, Held};
use super::state::State;
use super::structs::Plan;
use super::util;

/// Capacity and proposed usage of one node.
#[derive(Clone, Debug, Default)]
pub struct NodeUsage {
    /// What the node offers allocations (total minus reserved).
    pub capacity: Comparable,
    /// What existing allocations (minus the plan's stops) and the plan's placements use, and
    /// the core ids they pinned.
    pub held: Held,
}

impl NodeUsage {
    /// The lowest core ids not in use.
    pub fn free_cores(&self) -> impl Iterator<Item = u32> + '_ {
        (0..).filter(|id| !self.held.core_ids.contains(id))
    }
}

/// One change of the job's allocation count on a node, for incremental property sets.
#[derive(Clone, Debug)]
pub struct AllocChange {
    /// Node of the allocation.
    pub node: String,
    /// Group of the allocation.
    pub group: String,
    /// +1 for a placement, -1 for a stop.
    pub delta: i64,
}

/// Proposed allocations of the job being scheduled, counted per node and group.
#[derive(Clone, Debug, Default)]
pub struct JobAllocs {
    per_node: FastMap<String, Vec<(String, u32)>>,
    /// Every change since the context was built; property sets replay it.
    pub changes: Vec<AllocChange>,
}

impl JobAllocs {
    fn apply(&mut self, node: &str, group: &str, delta: i64) {
        let groups = match self.per_node.get_mut(node) {
            Some(groups) => groups,
            None => self.per_node.entry(node.to_string()).or_default(),
        };
        match groups.iter_mut().find(|(g, _)| g == group) {
            Some((_, count)) => *count = count.saturating_add_signed(delta as i32),
            None if delta > 0 => groups.push((group.to_string(), delta as u32)),
            None => {}
        }
    }

    fn record(&mut self, node: &str, group: &str, delta: i64) {
        self.apply(node, group, delta);
        self.changes.push(AllocChange {
            node: node.to_string(),
            group: group.to_string(),
            delta,
        });
    }

    /// Allocations of `group` on `node`.
    pub fn count(&self, node: &str, group: &str) -> u32 {
        self.per_node
            .get(node)
            .and_then(|groups| groups.iter().find(|(g, _)| g == group))
            .map_or(0, |(_, c)| *c)
    }

    /// Nodes holding allocations of the job.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.per_node.keys().map(String::as_str)
    }

    /// Allocations of any group of the job on `node`.
    pub fn count_any(&self, node: &str) -> u32 {
        self.per_node
            .get(node)
            .map_or(0, |groups| groups.iter().map(|(_, c)| c).sum())
    }
}

/// The state of one plan computation.
pub struct EvalContext<'s> {
    state: &'s dyn State,
    /// The plan being built.
    pub plan: Plan,
    usage: FastMap<String, NodeUsage>,
    nodes: FastMap<String, Option<Arc<Node>>>,
    /// The job's proposed allocations.
    pub job_allocs: JobAllocs,
    /// Metrics of the current selection.
    pub metrics: MetricsRecorder,
}

impl<'s> EvalContext<'s> {
    /// A context for `plan` (already holding the reconciler's stops and in-place updates) over
    /// `state`, with `job_allocs` the job's current allocations.
    pub fn new(state: &'s dyn State, plan: Plan, job_allocs: &[Arc<Allocation>]) -> Self {
        let mut allocs = JobAllocs::default();
        for alloc in job_allocs {
            if util::is_terminal(alloc)
                || plan.stops(&alloc.spec.node_name, util::name(&alloc.metadata))
            {
                continue;
            }
            allocs.apply(&alloc.spec.node_name, &alloc.spec.group, 1);
        }
        Self {
            state,
            plan,
            usage: FastMap::default(),
            nodes: FastMap::default(),
            job_allocs: allocs,
            metrics: MetricsRecorder::default(),
        }
    }

    /// The snapshot.
    pub fn state(&self) -> &'s dyn State {
        self.state
    }

    /// A node by name, cached.
    pub fn node(&mut self, name: &str) -> Option<Arc<Node>> {
        if let Some(node) = self.nodes.get(name) {
            return node.clone();
        }
        let node = self.state.node(name);
        self.nodes.insert(name.to_string(), node.clone());
        node
    }

    /// Capacity and proposed usage of `node`, computed on first use.
    pub fn usage(&mut self, node: &Node) -> &NodeUsage {
        let name = util::name(&node.metadata);
        if !self.usage.contains_key(name) {
            let usage = match self.state.held_on_node(name) {
                Some(held) => fit::proposed_usage_from(node, held, &self.plan, |alloc| {
                    self.state.alloc_on_node(name, &self.plan.namespace, alloc)
                }),
                None => {
                    let existing = self.state.allocs_by_node(name);
                    fit::proposed_usage(node, &existing, &self.plan)
                }
            };
            self.usage.insert(name.to_string(), usage);
        }
        // Inserted just above when missing.
        &self.usage[name]
    }

    /// Adds a new allocation to the plan, holding `used` on its node.
    pub fn place(&mut self, alloc: Allocation, used: &Comparable) {
        if let Some(usage) = self.usage.get_mut(&alloc.spec.node_name) {
            usage.held.used.add(used);
            usage.held.core_ids.extend(resources::pinned_cores(&alloc));
        }
        self.job_allocs
            .record(&alloc.spec.node_name, &alloc.spec.group, 1);
        self.plan.append_alloc(alloc);
    }

    /// Adds an in-place update of an existing allocation (same node, same resources).
    pub fn update_in_place(&mut self, alloc: Allocation) {
        self.plan.append_alloc(alloc);
    }

    /// Stops `alloc` in the plan, freeing its resources in the proposed view.
    pub fn stop(&mut self, alloc: &Allocation, status: DesiredStatus, description: &str) {
        let node = alloc.spec.node_name.as_str();
        self.plan
            .append_stop(node, util::name(&alloc.metadata), status, description);
        if util::is_terminal(alloc) {
            return;
        }
        if let Some(usage) = self.usage.get_mut(node) {
            usage.held.remove(&Held::of(alloc));
        }
        self.job_allocs.record(node, &alloc.spec.group, -1);
    }

    /// Takes back a stop added by [`EvalContext::stop`], when its replacement failed.
    pub fn unstop(&mut self, alloc: &Allocation) {
        let node = alloc.spec.node_name.as_str();
        self.plan.pop_stop(node, util::name(&alloc.metadata));
        if util::is_terminal(alloc) {
            return;
        }
        if let Some(usage) = self.usage.get_mut(node) {
            usage.held.add(&Held::of(alloc));
        }
        self.job_allocs.record(node, &alloc.spec.group, 1);
    }

    /// Gives the plan back.
    pub fn into_plan(self) -> Plan {
        self.plan
    }
}
