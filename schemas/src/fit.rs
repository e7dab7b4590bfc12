//! Resource fit (Nomad's `AllocsFit`): a node's capacity minus what its live allocations and
//! the plan hold, checked dimension by dimension, and whether a node takes new allocations at
//! all. The scheduler places against these; the API server's plan applier re-checks every node
//! a plan places on with the same functions.

use std::sync::Arc;

use crate::node::{NodeState, SchedulingEligibility};
use crate::plan::Plan;
use crate::resources::{self, Comparable, Held};
use crate::{Allocation, Node};

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

/// Why `node` takes no new allocations, if it does not: it is not ready, not eligible for
/// scheduling, or draining.
pub fn closed_reason(node: &Node) -> Option<&'static str> {
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

/// Capacity and usage of `node` if `plan` were applied: live `existing` allocations of the node
/// that the plan neither stops nor replaces, plus the plan's allocations for the node.
pub fn proposed_usage(node: &Node, existing: &[Arc<Allocation>], plan: &Plan) -> NodeUsage {
    let name = node.metadata.name();
    let stops = plan.node_update.get(name);
    let placed = plan.node_allocation.get(name);
    let mut held = Held::default();
    for alloc in existing {
        if alloc.is_terminal() {
            continue;
        }
        let alloc_name = alloc.metadata.name();
        let stopped = stops.is_some_and(|s| s.iter().any(|s| s.alloc_name == alloc_name));
        let replaced = placed.is_some_and(|p| p.iter().any(|a| a.metadata.name() == alloc_name));
        if !stopped && !replaced {
            held.add(&Held::of(alloc));
        }
    }
    with_placements(node, held, placed)
}

/// [`proposed_usage`] for a state that keeps what each node's live allocations hold together
/// (`held`): only the existing allocations the plan stops or replaces are looked up
/// (`existing`, by name in the plan's namespace), instead of every allocation of the node.
pub fn proposed_usage_from(
    node: &Node,
    mut held: Held,
    plan: &Plan,
    existing: impl Fn(&str) -> Option<Arc<Allocation>>,
) -> NodeUsage {
    let name = node.metadata.name();
    let placed = plan.node_allocation.get(name);
    let stopped = plan
        .node_update
        .get(name)
        .into_iter()
        .flatten()
        .map(|stop| stop.alloc_name.as_str());
    let replaced = placed
        .into_iter()
        .flatten()
        .map(|alloc| alloc.metadata.name());
    let mut seen: Vec<&str> = Vec::new();
    for alloc_name in stopped.chain(replaced) {
        if seen.contains(&alloc_name) {
            continue;
        }
        seen.push(alloc_name);
        if let Some(alloc) = existing(alloc_name)
            && !alloc.is_terminal()
        {
            held.remove(&Held::of(&alloc));
        }
    }
    with_placements(node, held, placed)
}

/// The node's usage: `held` by the existing allocations the plan keeps, plus the plan's
/// placements on it.
fn with_placements(node: &Node, mut held: Held, placed: Option<&Vec<Allocation>>) -> NodeUsage {
    for alloc in placed.into_iter().flatten() {
        if !alloc.is_terminal() {
            held.add(&Held::of(alloc));
        }
    }
    NodeUsage {
        capacity: resources::node_capacity(node),
        held,
    }
}

/// Checks that `ask` fits on a node with `usage`; the exhausted dimension otherwise. On
/// success returns the utilization after placing `ask`.
pub fn fits(usage: &NodeUsage, ask: &Comparable) -> Result<Comparable, &'static str> {
    let mut after = usage.held.used.clone();
    after.add(ask);
    match usage.capacity.exceeded_by(&after) {
        Some(dimension) => Err(dimension),
        None => Ok(after),
    }
}

/// Whether the node's proposed usage fits its capacity, and no host port is held twice (the
/// plan applier's check).
pub fn usage_fits(usage: &NodeUsage) -> Result<(), &'static str> {
    if let Some(dimension) = usage.capacity.exceeded_by(&usage.held.used) {
        return Err(dimension);
    }
    let ports = &usage.held.ports;
    let twice = ports
        .iter()
        .enumerate()
        .any(|(i, port)| ports[i + 1..].contains(port));
    if twice {
        return Err(crate::ports::PORT_COLLISION);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocation::DesiredStatus;
    use crate::mock;
    use crate::node::DrainStrategy;

    #[test]
    fn proposed_usage_counts_live_allocs_minus_stops_plus_placements() {
        let job = mock::job("web");
        let node = mock::node("n1");
        let a = Arc::new(mock::allocation("a", &job, &node));
        let b = Arc::new(mock::allocation("b", &job, &node));
        let mut done = mock::allocation("c", &job, &node);
        done.spec.desired_status = Some(DesiredStatus::Stop);
        let existing = vec![a, b.clone(), Arc::new(done)];

        let mut plan = Plan::default();
        let usage = proposed_usage(&node, &existing, &plan);
        assert_eq!(usage.held.used.cpu, 1000);

        plan.append_stop("n1", "b", DesiredStatus::Stop, "test");
        plan.append_alloc(mock::allocation("d", &job, &node));
        plan.append_alloc(mock::allocation("e", &job, &node));
        let usage = proposed_usage(&node, &existing, &plan);
        assert_eq!(usage.held.used.cpu, 1500);
        assert_eq!(usage.held.used.memory_mb, 3 * 256);
    }

    #[test]
    fn fit_names_the_exhausted_dimension() {
        let usage = NodeUsage {
            capacity: Comparable {
                cpu: 1000,
                memory_mb: 1000,
                disk_mb: 1000,
                ..Comparable::default()
            },
            held: Held {
                used: Comparable {
                    cpu: 900,
                    ..Comparable::default()
                },
                core_ids: Vec::new(),
                ports: Vec::new(),
            },
        };
        let ask = Comparable {
            cpu: 200,
            ..Comparable::default()
        };
        assert_eq!(fits(&usage, &ask), Err("cpu"));
        let small = Comparable {
            cpu: 100,
            memory_mb: 10,
            ..Comparable::default()
        };
        assert_eq!(fits(&usage, &small).map(|u| u.cpu), Ok(1000));
        assert!(usage_fits(&usage).is_ok());
    }

    /// Amounts that got past admission (or came from before it checked them) add up to more
    /// than fits in a `u64`: the sum saturates and never fits, even on a node that claims
    /// every MHz there is, and taking an allocation back out does not make it fit again.
    #[test]
    fn sums_that_overflow_never_fit() {
        let huge = Comparable {
            cpu: 1 << 63,
            memory_mb: 1 << 63,
            ..Comparable::default()
        };
        for capacity in [3992, u64::MAX] {
            let usage = NodeUsage {
                capacity: Comparable {
                    cpu: capacity,
                    memory_mb: capacity,
                    disk_mb: capacity,
                    ..Comparable::default()
                },
                held: Held {
                    used: huge.clone(),
                    core_ids: Vec::new(),
                    ports: Vec::new(),
                },
            };
            assert_eq!(fits(&usage, &huge), Err("cpu"), "capacity {capacity}");
            let max = Comparable {
                disk_mb: u64::MAX,
                ..Comparable::default()
            };
            assert!(fits(&usage, &max).is_err(), "capacity {capacity}");

            let mut held = usage.held.clone();
            held.add(&Held {
                used: huge.clone(),
                core_ids: Vec::new(),
                ports: Vec::new(),
            });
            assert_eq!(held.used.cpu, u64::MAX, "saturated, not wrapped");
            held.remove(&Held {
                used: huge.clone(),
                core_ids: Vec::new(),
                ports: Vec::new(),
            });
            let after = NodeUsage {
                held,
                ..usage.clone()
            };
            assert_eq!(usage_fits(&after), Err("cpu"), "capacity {capacity}");
        }
    }

    #[test]
    fn free_cores_are_the_lowest_ids_not_pinned() {
        let usage = NodeUsage {
            held: Held {
                used: Comparable::default(),
                core_ids: vec![0, 2],
                ports: Vec::new(),
            },
            ..NodeUsage::default()
        };
        assert_eq!(usage.free_cores().take(3).collect::<Vec<_>>(), [1, 3, 4]);
    }

    #[test]
    fn only_ready_eligible_undrained_nodes_are_open() {
        let node = mock::node("n1");
        assert_eq!(closed_reason(&node), None);

        let mut down = node.clone();
        down.status.get_or_insert_default().status = NodeState::Down;
        assert_eq!(closed_reason(&down), Some("node not ready"));

        let mut ineligible = node.clone();
        ineligible.spec.scheduling_eligibility = Some(SchedulingEligibility::Ineligible);
        assert_eq!(closed_reason(&ineligible), Some("node ineligible"));

        let mut draining = node;
        draining.spec.drain = Some(DrainStrategy::default());
        assert_eq!(closed_reason(&draining), Some("node draining"));
    }
}
