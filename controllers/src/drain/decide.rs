//! What the drainer does next, decided from nodes, allocations and jobs at one instant. Pure.
//!
//! Nomad's rules: a service group moves at most `migrate.maxParallel` allocations at a time —
//! an allocation is marked for migration only while the group keeps `count - maxParallel`
//! healthy allocations elsewhere; batch allocations may finish until the deadline; system
//! allocations move last (or never with `ignoreSystemJobs`); at the deadline (immediately with
//! `force`) everything left is marked. A node whose allocations are all terminal on the client
//! has finished draining.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use caravan_schemas::allocation::{ClientStatus, TaskLifecycleState};
use caravan_schemas::duration::parse_duration;
use caravan_schemas::job::{JobType, TaskGroup, defaults};
use caravan_schemas::node::DrainStrategy;
use caravan_schemas::{Allocation, Job, Node};

use crate::scheduler::time::parse_rfc3339;

/// Drain deadline when the strategy does not name one (Nomad's `-deadline` default).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3600);

/// The drainer's next writes.
#[derive(Debug, Default, PartialEq)]
pub struct Decisions {
    /// Draining nodes without `startedAt`: stamp it (the deadline counts from it).
    pub stamp_start: Vec<String>,
    /// Allocations to mark `desiredTransition.migrate`, with the node they leave.
    pub migrate: Vec<Arc<Allocation>>,
    /// Nodes whose drain is complete: clear `spec.drain` (they stay ineligible).
    pub complete: Vec<String>,
}

/// How far a drain has gone by `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainClock {
    /// Unix seconds the drain started.
    pub started: i64,
    /// Unix seconds all remaining allocations are marked, `None` without a deadline.
    pub deadline: Option<i64>,
}

impl DrainClock {
    /// The clock of `strategy`; `now` stands in for a missing start.
    pub fn of(strategy: &DrainStrategy, now: i64) -> DrainClock {
        let started = strategy
            .started_at
            .as_deref()
            .and_then(parse_rfc3339)
            .unwrap_or(now);
        let deadline = if strategy.force.unwrap_or(false) {
            Some(started)
        } else {
            let length = strategy
                .deadline
                .as_deref()
                .and_then(|d| parse_duration(d).ok())
                .unwrap_or(DEFAULT_DEADLINE);
            // A zero deadline means none (Nomad's `-no-deadline`).
            (!length.is_zero()).then(|| {
                started.saturating_add(i64::try_from(length.as_secs()).unwrap_or(i64::MAX))
            })
        };
        DrainClock { started, deadline }
    }

    pub fn reached(&self, now: i64) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

fn seconds(raw: Option<&str>, default: &str) -> i64 {
    raw.and_then(|d| parse_duration(d).ok())
        .or_else(|| parse_duration(default).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whether `alloc` counts as healthy for migration: the health its client or deployment
/// reported, or else running with every task up for the group's `migrate.minHealthyTime`.
pub fn is_healthy(alloc: &Allocation, group: &TaskGroup, now: i64) -> bool {
    if alloc.is_server_terminal() || alloc.is_client_terminal() {
        return false;
    }
    let Some(status) = alloc.status.as_ref() else {
        return false;
    };
    if let Some(healthy) = status.deployment_status.as_ref().and_then(|d| d.healthy) {
        return healthy;
    }
    if status.client_status != ClientStatus::Running || status.task_states.is_empty() {
        return false;
    }
    let default = defaults::migrate_strategy();
    let min_healthy = seconds(
        group
            .migrate
            .as_ref()
            .and_then(|m| m.min_healthy_time.as_deref()),
        default.min_healthy_time.as_deref().unwrap_or("10s"),
    );
    status.task_states.values().all(|task| match task.state {
        TaskLifecycleState::Running => task
            .started_at
            .as_deref()
            .and_then(parse_rfc3339)
            .is_some_and(|at| now - at >= min_healthy),
        // A finished prestart or poststart task that did not fail.
        TaskLifecycleState::Dead => !task.failed,
        _ => false,
    })
}

/// A draining node's remaining allocations: of other jobs, then of system jobs.
type OnNode<'a> = (Vec<&'a Arc<Allocation>>, Vec<&'a Arc<Allocation>>);

/// Finds a job by namespace and name.
pub type JobLookup<'a> = dyn Fn(&str, &str) -> Option<Arc<Job>> + 'a;

fn is_system(job: Option<&Job>) -> bool {
    job.is_some_and(|j| matches!(j.spec.job_type(), JobType::System | JobType::Sysbatch))
}

/// Decides the drainer's next writes. `allocs` is every allocation the servers know; `now` is
/// Unix seconds.
pub fn decide(
    nodes: &[Arc<Node>],
    allocs: &[Arc<Allocation>],
    job: &JobLookup<'_>,
    now: i64,
) -> Decisions {
    let mut out = Decisions::default();
    let draining: BTreeMap<&str, (&DrainStrategy, DrainClock)> = nodes
        .iter()
        .filter_map(|n| {
            let strategy = n.spec.drain.as_ref()?;
            let name = n.metadata.name();
            if strategy.started_at.is_none() {
                out.stamp_start.push(name.to_string());
            }
            Some((name, (strategy, DrainClock::of(strategy, now))))
        })
        .collect();
    if draining.is_empty() {
        return out;
    }

    // Allocations still on each draining node (not terminal on the client), split into the
    // ones system jobs own and the others.
    let mut remaining: BTreeMap<&str, OnNode<'_>> =
        draining.keys().map(|n| (*n, Default::default())).collect();
    // Every live allocation of a group that has some on a draining node.
    type GroupKey<'a> = (&'a str, &'a str, &'a str);
    let mut touched: BTreeSet<GroupKey<'_>> = BTreeSet::new();
    let mut jobs: BTreeMap<(String, String), Option<Arc<Job>>> = BTreeMap::new();
    let mut job_of = |a: &Allocation| -> Option<Arc<Job>> {
        let ns = a.metadata.namespace();
        jobs.entry((ns.to_string(), a.spec.job_name.clone()))
            .or_insert_with(|| job(ns, &a.spec.job_name))
            .clone()
    };
    for alloc in allocs {
        let Some(lists) = remaining.get_mut(alloc.spec.node_name.as_str()) else {
            continue;
        };
        if alloc.is_client_terminal() {
            continue;
        }
        let j = job_of(alloc);
        if is_system(j.as_deref()) {
            lists.1.push(alloc);
        } else {
            lists.0.push(alloc);
            touched.insert((
                alloc.metadata.namespace(),
                alloc.spec.job_name.as_str(),
                alloc.spec.group.as_str(),
            ));
        }
    }
    let markable = |a: &Allocation| !a.is_server_terminal() && !a.spec.should_migrate();

    // Service groups: how many of each may move now.
    let mut budget: BTreeMap<GroupKey<'_>, i64> = BTreeMap::new();
    let mut groups: BTreeMap<GroupKey<'_>, (Arc<Job>, usize)> = BTreeMap::new();
    for key in &touched {
        let Some(j) = job(key.0, key.1) else { continue };
        if j.spec.stop || j.spec.job_type() != JobType::Service {
            continue;
        }
        let Some(index) = j.spec.groups.iter().position(|g| g.name == key.2) else {
            continue;
        };
        groups.insert(*key, (j, index));
    }
    for alloc in allocs {
        let key = (
            alloc.metadata.namespace(),
            alloc.spec.job_name.as_str(),
            alloc.spec.group.as_str(),
        );
        let Some((j, index)) = groups.get(&key) else {
            continue;
        };
        let leaving =
            draining.contains_key(alloc.spec.node_name.as_str()) && alloc.spec.should_migrate();
        if !leaving && is_healthy(alloc, &j.spec.groups[*index], now) {
            *budget.entry(key).or_default() += 1;
        }
    }
    for (key, (j, index)) in &groups {
        let group = &j.spec.groups[*index];
        let count = i64::from(group.count.unwrap_or(1));
        let max_parallel = group
            .migrate
            .as_ref()
            .and_then(|m| m.max_parallel)
            .map_or(1, |n| i64::from(n.max(1)));
        let healthy = budget.get(key).copied().unwrap_or(0);
        budget.insert(*key, healthy - (count - max_parallel));
    }

    for (node, (strategy, clock)) in &draining {
        let (others, system) = &remaining[node];
        let deadline = clock.reached(now);
        let mut left = others.len();
        for alloc in others {
            if !markable(alloc) {
                continue;
            }
            let key = (
                alloc.metadata.namespace(),
                alloc.spec.job_name.as_str(),
                alloc.spec.group.as_str(),
            );
            let allowed = deadline
                || budget.get_mut(&key).is_some_and(|b| {
                    let ok = *b > 0;
                    *b -= i64::from(ok);
                    ok
                });
            if allowed {
                out.migrate.push((*alloc).clone());
            }
        }
        let ignore_system = strategy.ignore_system_jobs.unwrap_or(false);
        if !ignore_system {
            if others.is_empty() || deadline {
                out.migrate
                    .extend(system.iter().filter(|a| markable(a)).map(|a| (*a).clone()));
            }
            left += system.len();
        }
        if left == 0 {
            out.complete.push(node.to_string());
        }
    }
    out
}
