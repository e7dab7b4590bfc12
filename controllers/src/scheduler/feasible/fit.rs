//! Resource fit (Nomad's `AllocsFit`): a node's capacity minus what its live allocations and
//! the plan hold, checked dimension by dimension. The plan applier uses the same functions.

use std::sync::Arc;

use caravan_schemas::{Allocation, Node};

use crate::scheduler::Plan;
use crate::scheduler::context::NodeUsage;
use crate::scheduler::resources::{self, Comparable, Held};
use crate::scheduler::util;

/// Capacity and usage of `node` if `plan` were applied: live `existing` allocations of the node
/// that the plan neither stops nor replaces, plus the plan's allocations for the node.
pub fn proposed_usage(node: &Node, existing: &[Arc<Allocation>], plan: &Plan) -> NodeUsage {
    let name = util::name(&node.metadata);
    let stops = plan.node_update.get(name);
    let placed = plan.node_allocation.get(name);
    let mut held = Held::default();
    for alloc in existing {
        if util::is_terminal(alloc) {
            continue;
        }
        let alloc_name = util::name(&alloc.metadata);
        let stopped = stops.is_some_and(|s| s.iter().any(|s| s.alloc_name == alloc_name));
        let replaced =
            placed.is_some_and(|p| p.iter().any(|a| util::name(&a.metadata) == alloc_name));
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
    let name = util::name(&node.metadata);
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
        .map(|alloc| util::name(&alloc.metadata));
    let mut seen: Vec<&str> = Vec::new();
    for alloc_name in stopped.chain(replaced) {
        if seen.contains(&alloc_name) {
            continue;
        }
        seen.push(alloc_name);
        if let Some(alloc) = existing(alloc_name)
            && !util::is_terminal(&alloc)
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
        if !util::is_terminal(alloc) {
            held.add(&Held::of(alloc));
        }
    }
    NodeUsage {
        capacity: resources::node_capacity(node),
        held,
        job: Vec::new(),
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

/// Whether the node's proposed usage fits its capacity (the plan applier's check).
pub fn usage_fits(usage: &NodeUsage) -> Result<(), &'static str> {
    usage
        .capacity
        .exceeded_by(&usage.held.used)
        .map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use caravan_schemas::allocation::DesiredStatus;
    use caravan_schemas::mock;

    use super::*;

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
    fn the_kept_sum_gives_the_same_usage_as_adding_up_the_node() {
        use crate::scheduler::state::{MemState, State};
        let job = mock::job("web");
        let node = mock::node("n1");
        let other = mock::node("n2");
        let mut state = MemState::new();
        let mut pinned = mock::allocation("a", &job, &node);
        if let Some(task) = pinned
            .spec
            .allocated_resources
            .as_mut()
            .and_then(|r| r.tasks.values_mut().next())
        {
            task.cores = vec![0, 1];
        }
        let mut done = mock::allocation("c", &job, &node);
        done.spec.desired_status = Some(DesiredStatus::Stop);
        for alloc in [
            pinned,
            mock::allocation("b", &job, &node),
            done,
            mock::allocation("elsewhere", &job, &other),
        ] {
            state.upsert_alloc(alloc);
        }
        let compare = |state: &MemState, plan: &Plan| {
            let summed = proposed_usage(&node, &state.allocs_by_node("n1"), plan);
            let kept = proposed_usage_from(&node, state.held_on_node("n1").unwrap(), plan, |n| {
                state.alloc_on_node("n1", &plan.namespace, n)
            });
            let sorted = |mut ids: Vec<u32>| {
                ids.sort_unstable();
                ids
            };
            assert_eq!(kept.held.used, summed.held.used);
            assert_eq!(kept.capacity, summed.capacity);
            assert_eq!(sorted(kept.held.core_ids), sorted(summed.held.core_ids));
            summed.held.used.cpu
        };
        let mut plan = Plan {
            namespace: "default".into(),
            ..Plan::default()
        };
        assert_eq!(compare(&state, &plan), 1000);
        // A stop, a replacement of an existing allocation, a new one, and a stop of the
        // replaced one too: each existing allocation is taken out once.
        plan.append_stop("n1", "a", DesiredStatus::Stop, "test");
        plan.append_stop("n1", "b", DesiredStatus::Stop, "test");
        plan.append_alloc(mock::allocation("b", &job, &node));
        plan.append_alloc(mock::allocation("d", &job, &node));
        assert_eq!(compare(&state, &plan), 1000);
        // Allocations that end or go away leave the sum.
        let mut ended = mock::allocation("b", &job, &node);
        ended.spec.desired_status = Some(DesiredStatus::Stop);
        state.upsert_alloc(ended);
        state.delete_alloc("default", "a");
        compare(&state, &Plan::default());
        assert_eq!(state.held_on_node("n1").unwrap(), Held::default());
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
            },
            job: Vec::new(),
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
                },
                job: Vec::new(),
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
            });
            assert_eq!(held.used.cpu, u64::MAX, "saturated, not wrapped");
            held.remove(&Held {
                used: huge.clone(),
                core_ids: Vec::new(),
            });
            let after = NodeUsage {
                held,
                ..usage.clone()
            };
            assert_eq!(usage_fits(&after), Err("cpu"), "capacity {capacity}");
        }
    }

    /// Two tasks of 2^63 MHz and MB each (a wrapping sum: 0) on a 3,992 MHz node.
    #[test]
    fn a_group_whose_tasks_overflow_is_placed_nowhere() {
        use caravan_schemas::job::Resources;

        use crate::scheduler::state::MemState;
        use crate::scheduler::testing::{
            Harness, eval_for, no_node_oversubscribed, node, service_job,
        };

        let mut small = node("node-0", "dc1");
        let resources = small
            .status
            .as_mut()
            .and_then(|s| s.resources.as_mut())
            .expect("resources");
        resources.cpu = 3992;
        let mut state = MemState::new();
        state.upsert_node(small);
        state.set_index(1);
        let mut harness = Harness::new(state);
        let mut job = service_job("huge", 1, 1 << 63, 1 << 63);
        let task = job.spec.groups[0].tasks[0].clone();
        job.spec.groups[0].tasks.push(caravan_schemas::job::Task {
            name: "twin".into(),
            resources: Some(Resources {
                cpu: Some(1 << 63),
                memory_mb: Some(1 << 63),
                ..Resources::default()
            }),
            ..task
        });
        harness.state.upsert_job(job.clone());
        harness.process(&eval_for("e1", &job)).expect("process");
        assert!(harness.live_allocs("default", "huge").is_empty());
        no_node_oversubscribed(&harness.state).expect("nothing oversubscribed");
    }
}
