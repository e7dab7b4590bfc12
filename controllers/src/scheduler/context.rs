//! [`EvalContext`]: the plan being built and the proposed view of the cluster it implies
//! (Nomad's `EvalContext` and `ProposedAllocs`): per-node usage, the job's allocations per node,
//! and the metrics of the current selection.

use std::sync::Arc;

use caravan_schemas::allocation::DesiredStatus;
use caravan_schemas::fit::{self, NodeUsage};
use caravan_schemas::ports::HostPort;
use caravan_schemas::resources::{self, Comparable, Held};
use caravan_schemas::stable_hash::stable_hash;
use caravan_schemas::{Allocation, Node};

use super::Plan;
use super::hash::{FastMap, FastSet};
use super::metrics::MetricsRecorder;
use super::state::State;

/// One node in the proposed view: its capacity and proposed usage, and the job's proposed
/// allocations on it.
#[derive(Clone, Debug, Default)]
pub struct ProposedNode {
    /// Capacity and proposed usage of the node.
    pub usage: NodeUsage,
    /// The job's proposed allocations on the node per group, as [`JobAllocs`] counts them:
    /// kept here too so that scoring a node looked at before needs no lookup by name.
    pub job: Vec<(String, u32)>,
}

impl ProposedNode {
    /// The job's proposed allocations of `group` on the node.
    pub fn job_count(&self, group: &str) -> u32 {
        self.job
            .iter()
            .find(|(g, _)| g == group)
            .map_or(0, |(_, c)| *c)
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
    /// Every change since the first property set asked for them ([`JobAllocs::track_changes`]);
    /// property sets replay them.
    pub changes: Vec<AllocChange>,
    tracking: bool,
}

/// Adds `delta` to the count of `group` in `groups`.
fn count_in(groups: &mut Vec<(String, u32)>, group: &str, delta: i64) {
    match groups.iter_mut().find(|(g, _)| g == group) {
        Some((_, count)) => *count = count.saturating_add_signed(delta as i32),
        None if delta > 0 => groups.push((group.to_string(), delta as u32)),
        None => {}
    }
}

impl JobAllocs {
    fn apply(&mut self, node: &str, group: &str, delta: i64) {
        let groups = match self.per_node.get_mut(node) {
            Some(groups) => groups,
            None => self.per_node.entry(node.to_string()).or_default(),
        };
        count_in(groups, group, delta);
    }

    /// The allocations per group on `node`.
    fn groups_on(&self, node: &str) -> &[(String, u32)] {
        self.per_node.get(node).map_or(&[], Vec::as_slice)
    }

    /// Starts recording changes in [`JobAllocs::changes`]; a property set counts what is
    /// proposed when it is built and replays what changed since.
    pub fn track_changes(&mut self) {
        self.tracking = true;
    }

    fn record(&mut self, node: &str, group: &str, delta: i64) {
        self.apply(node, group, delta);
        if !self.tracking {
            return;
        }
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
        self.per_node.get(node).map_or(0, |groups| {
            groups
                .iter()
                .fold(0u32, |sum, (_, c)| sum.saturating_add(*c))
        })
    }
}

/// Marks a stack slot whose node's usage is not computed yet.
const NO_USAGE: u32 = u32::MAX;

/// The state of one plan computation.
pub struct EvalContext<'s> {
    state: &'s dyn State,
    /// The plan being built.
    pub plan: Plan,
    /// Every node looked at so far, found by node name or by the node's slot in the stack's
    /// node list (the hot path, no hashing).
    usages: Vec<ProposedNode>,
    usage_by_name: FastMap<String, u32>,
    usage_by_slot: Vec<u32>,
    /// Nodes the plan stops, updates or places allocations on: only their usage needs the
    /// plan looked at.
    planned: FastSet<String>,
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
            if alloc.is_terminal() || plan.stops(&alloc.spec.node_name, alloc.metadata.name()) {
                continue;
            }
            allocs.apply(&alloc.spec.node_name, &alloc.spec.group, 1);
        }
        let planned = plan
            .node_update
            .keys()
            .chain(plan.node_allocation.keys())
            .cloned()
            .collect();
        Self {
            state,
            plan,
            planned,
            usages: Vec::new(),
            usage_by_name: FastMap::default(),
            usage_by_slot: Vec::new(),
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

    /// Prepares the slot index for a stack of `nodes` nodes (see [`EvalContext::proposed`]).
    pub fn index_slots(&mut self, nodes: usize) {
        if self.usage_by_slot.len() != nodes {
            self.usage_by_slot = vec![NO_USAGE; nodes];
            self.usage_by_name
                .reserve(nodes.saturating_sub(self.usage_by_name.len()));
            self.usages.reserve(nodes.saturating_sub(self.usages.len()));
        }
    }

    /// Capacity and proposed usage of `node`, computed on first use.
    pub fn usage(&mut self, node: &Node) -> &NodeUsage {
        &self.proposed(None, node).usage
    }

    /// [`EvalContext::usage`] of `node` with the job's allocations on it; `slot` is the node's
    /// place in the stack's node list (after [`EvalContext::index_slots`]), where it is found
    /// again without hashing its name.
    pub fn proposed(&mut self, slot: Option<usize>, node: &Node) -> &ProposedNode {
        if let Some(&at) = slot.and_then(|s| self.usage_by_slot.get(s))
            && at != NO_USAGE
        {
            return &self.usages[at as usize];
        }
        let name = node.metadata.name();
        let at = match self.usage_by_name.get(name) {
            Some(&at) => at,
            None => {
                let usage = match self.state.held_on_node(name) {
                    Some(held) if !self.planned.contains(name) => NodeUsage {
                        capacity: resources::node_capacity(node),
                        held,
                    },
                    Some(held) => fit::proposed_usage_from(node, held, &self.plan, |alloc| {
                        self.state.alloc_on_node(name, &self.plan.namespace, alloc)
                    }),
                    None => {
                        let existing = self.state.allocs_by_node(name);
                        fit::proposed_usage(node, &existing, &self.plan)
                    }
                };
                let job = self.job_allocs.groups_on(name).to_vec();
                let at = u32::try_from(self.usages.len()).unwrap_or(NO_USAGE - 1);
                self.usages.push(ProposedNode { usage, job });
                self.usage_by_name.insert(name.to_string(), at);
                at
            }
        };
        if let Some(entry) = slot.and_then(|s| self.usage_by_slot.get_mut(s)) {
            *entry = at;
        }
        &self.usages[at as usize]
    }

    fn mark_planned(&mut self, node: &str) {
        if !self.planned.contains(node) {
            self.planned.insert(node.to_string());
        }
    }

    /// One allocation of `group` more (`delta` 1) or fewer (-1) on `node`: `held` updates what
    /// the node's usage holds, when the node was looked at already, and the job's counts move
    /// in the usage and in [`JobAllocs`] together.
    fn change(&mut self, node: &str, group: &str, delta: i64, held: impl FnOnce(&mut Held)) {
        if let Some(&at) = self.usage_by_name.get(node)
            && let Some(proposed) = self.usages.get_mut(at as usize)
        {
            held(&mut proposed.usage.held);
            count_in(&mut proposed.job, group, delta);
        }
        self.job_allocs.record(node, group, delta);
    }

    /// Where dynamic ports on `node` start being looked for in this evaluation: different
    /// for each evaluation and node, so that schedulers working at once rarely pick one port.
    pub fn port_seed(&self, node: &str) -> u64 {
        stable_hash([self.plan.eval_name.as_str(), node])
    }

    /// Adds a new allocation to the plan, holding `used` on its node.
    pub fn place(&mut self, alloc: Allocation, used: &Comparable) {
        self.mark_planned(&alloc.spec.node_name);
        self.change(&alloc.spec.node_name, &alloc.spec.group, 1, |held| {
            held.used.add(used);
            held.core_ids.extend(resources::pinned_cores(&alloc));
            held.ports.extend(HostPort::of_alloc(&alloc));
        });
        self.plan.append_alloc(alloc);
    }

    /// Adds an in-place update of an existing allocation (same node, same resources).
    pub fn update_in_place(&mut self, alloc: Allocation) {
        self.mark_planned(&alloc.spec.node_name);
        self.plan.append_alloc(alloc);
    }

    /// Stops `alloc` in the plan, freeing its resources in the proposed view.
    pub fn stop(&mut self, alloc: &Allocation, status: DesiredStatus, description: &str) {
        let node = alloc.spec.node_name.as_str();
        self.mark_planned(node);
        self.plan
            .append_stop(node, alloc.metadata.name(), status, description);
        if alloc.is_terminal() {
            return;
        }
        self.change(node, &alloc.spec.group, -1, |held| {
            held.remove(&Held::of(alloc))
        });
    }

    /// Takes back a stop added by [`EvalContext::stop`], when its replacement failed.
    pub fn unstop(&mut self, alloc: &Allocation) {
        let node = alloc.spec.node_name.as_str();
        self.plan.pop_stop(node, alloc.metadata.name());
        if alloc.is_terminal() {
            return;
        }
        self.change(node, &alloc.spec.group, 1, |held| {
            held.add(&Held::of(alloc))
        });
    }

    /// Gives the plan back.
    pub fn into_plan(self) -> Plan {
        self.plan
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;

    use super::*;
    use crate::scheduler::state::MemState;

    fn used(ctx: &mut EvalContext<'_>, slot: Option<usize>, node: &Node) -> u64 {
        ctx.proposed(slot, node).usage.held.used.cpu
    }

    #[test]
    fn usage_by_slot_and_by_name_is_one_view_of_the_plan() {
        let job = mock::job("web");
        let (a, b, c) = (mock::node("a"), mock::node("b"), mock::node("c"));
        let mut state = MemState::new();
        for node in [&a, &b, &c] {
            state.upsert_node(node.clone());
        }
        let on_a = mock::allocation("on-a", &job, &a);
        let on_b = mock::allocation("on-b", &job, &b);
        let cpu = resources::alloc_usage(&on_a).cpu;
        assert!(cpu > 0);
        state.upsert_alloc(on_a.clone());
        state.upsert_alloc(on_b.clone());

        // The reconciler stopped the allocation on `a` before placement began.
        let mut plan = Plan {
            namespace: "default".into(),
            ..Plan::default()
        };
        plan.append_stop("a", "on-a", DesiredStatus::Stop, "update");
        let live = [Arc::new(on_a.clone()), Arc::new(on_b.clone())];
        let mut ctx = EvalContext::new(&state, plan, &live);
        ctx.index_slots(3);
        assert_eq!(
            used(&mut ctx, Some(0), &a),
            0,
            "a stop in the plan frees its share"
        );
        assert_eq!(used(&mut ctx, Some(1), &b), cpu);

        // A stop through the context before the node was looked at counts too.
        let group = on_b.spec.group.clone();
        assert_eq!(ctx.proposed(Some(1), &b).job_count(&group), 1);
        ctx.stop(&on_b, DesiredStatus::Stop, "update");
        assert_eq!(used(&mut ctx, None, &b), 0);
        assert_eq!(used(&mut ctx, Some(1), &b), 0);
        assert_eq!(ctx.proposed(Some(1), &b).job_count(&group), 0);
        assert_eq!(
            ctx.proposed(Some(0), &a).job_count(&group),
            0,
            "stopped by the plan"
        );
        ctx.unstop(&on_b);
        assert_eq!(ctx.proposed(Some(1), &b).job_count(&group), 1);
        assert_eq!(ctx.job_allocs.count("b", &group), 1);
        ctx.stop(&on_b, DesiredStatus::Stop, "update");

        // A placement is seen through the slot as well as through the name.
        assert_eq!(used(&mut ctx, Some(2), &c), 0);
        let placed = mock::allocation("placed", &job, &c);
        ctx.place(placed.clone(), &resources::alloc_usage(&placed));
        assert_eq!(used(&mut ctx, Some(2), &c), cpu);
        assert_eq!(used(&mut ctx, None, &c), cpu);
        assert_eq!(ctx.proposed(Some(2), &c).job_count(&group), 1);
        assert_eq!(ctx.job_allocs.count("c", &group), 1);
        assert_eq!(
            ctx.proposed(Some(2), &c).usage.capacity,
            resources::node_capacity(&c)
        );
    }

    #[test]
    fn changes_are_recorded_once_a_property_set_asks() {
        let state = MemState::new();
        let mut ctx = EvalContext::new(&state, Plan::default(), &[]);
        let job = mock::job("web");
        let node = mock::node("a");
        let first = mock::allocation("first", &job, &node);
        ctx.place(first.clone(), &resources::alloc_usage(&first));
        assert!(ctx.job_allocs.changes.is_empty());
        ctx.job_allocs.track_changes();
        let second = mock::allocation("second", &job, &node);
        ctx.place(second.clone(), &resources::alloc_usage(&second));
        assert_eq!(ctx.job_allocs.changes.len(), 1);
        assert_eq!(ctx.job_allocs.count("a", &first.spec.group), 2);
    }
}
