//! One task group of a system or sysbatch job: its allocations on nodes that are no longer
//! candidates stop, and every ready node gets one allocation of it, kept, updated in place,
//! replaced or placed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use caravan_schemas::allocation::{AllocMetrics, ClientStatus, DesiredStatus};
use caravan_schemas::job::TaskGroup;
use caravan_schemas::node::{NodeState, SchedulingEligibility};
use caravan_schemas::resources::{self, GroupAsk};
use caravan_schemas::{Allocation, Job, Node};

use crate::scheduler::DesiredUpdates;
use crate::scheduler::build::{self, EvalOutcome};
use crate::scheduler::context::EvalContext;
use crate::scheduler::reconcile::{PlaceRequest, reasons, tasks_updated};
use crate::scheduler::stack::SystemStack;

/// The allocations of `group` that hold their node, per node: those the servers still want
/// running, except, for a system job (not `sysbatch`), those that finished.
pub(super) fn allocs_by_node<'a>(
    group: &TaskGroup,
    allocs: &'a [Arc<Allocation>],
    sysbatch: bool,
) -> HashMap<&'a str, Vec<&'a Arc<Allocation>>> {
    let mut by_node: HashMap<&str, Vec<&Arc<Allocation>>> = HashMap::new();
    for alloc in allocs.iter().filter(|a| a.spec.group == group.name) {
        if alloc.is_server_terminal() {
            continue;
        }
        // A system allocation that finished is replaced; a sysbatch one is done.
        if alloc.is_client_terminal() && !sysbatch {
            continue;
        }
        by_node
            .entry(alloc.spec.node_name.as_str())
            .or_default()
            .push(alloc);
    }
    by_node
}

/// Why the allocations on `node`, no longer a candidate, stop, and whether they are lost (the
/// node is gone or down and cannot report their end); `None` when they stay (the node is
/// ready but ineligible, or initializing).
fn off_node_stop(node: Option<&Node>) -> Option<(&'static str, Option<ClientStatus>)> {
    let lost = Some(ClientStatus::Lost);
    match node {
        None => Some((reasons::LOST, lost)),
        Some(n) => match n.status.as_ref().map(|s| s.status) {
            Some(NodeState::Down | NodeState::Disconnected) => Some((reasons::LOST, lost)),
            _ if n.spec.drain.is_some() => Some((reasons::MIGRATING, None)),
            Some(NodeState::Ready)
                if n.spec.scheduling_eligibility == Some(SchedulingEligibility::Ineligible) =>
            {
                None
            }
            Some(NodeState::Initializing) => None,
            _ => Some((reasons::NOT_NEEDED, None)),
        },
    }
}

/// One pass over a task group: what it places with, and what it decided so far.
pub(super) struct GroupPass<'p> {
    job: &'p Arc<Job>,
    group: &'p TaskGroup,
    /// Version of the job.
    version: i64,
    /// Evaluation the plan is for.
    eval_name: String,
    /// What one allocation of the group asks.
    ask: GroupAsk,
    /// Destructive updates still allowed by `update.maxParallel`; `None` when unlimited.
    budget: Option<usize>,
    /// Current time, Unix seconds.
    now_unix: i64,
    updates: DesiredUpdates,
    /// Metrics of the first placement that failed; later failures are coalesced into it.
    failed: Option<AllocMetrics>,
}

impl<'p> GroupPass<'p> {
    /// A pass over `group` of `job` for the evaluation `eval_name`.
    pub(super) fn new(
        job: &'p Arc<Job>,
        group: &'p TaskGroup,
        eval_name: String,
        now_unix: i64,
    ) -> Self {
        Self {
            job,
            group,
            version: job.version(),
            eval_name,
            ask: GroupAsk::of(group),
            budget: group
                .update
                .as_ref()
                .and_then(|u| u.max_parallel)
                .filter(|n| *n > 0)
                .map(|n| n as usize),
            now_unix,
            updates: DesiredUpdates::default(),
            failed: None,
        }
    }

    /// Stops the allocations (`by_node`) on nodes that are not `ready` any more, by node name.
    pub(super) fn stop_off_nodes(
        &mut self,
        ctx: &mut EvalContext<'_>,
        by_node: &HashMap<&str, Vec<&Arc<Allocation>>>,
        ready: &[Arc<Node>],
    ) {
        let state = ctx.state();
        let ready_names: HashSet<&str> = ready.iter().map(|n| n.metadata.name()).collect();
        let mut off_nodes: Vec<&&str> = by_node
            .keys()
            .filter(|n| !ready_names.contains(**n))
            .collect();
        off_nodes.sort();
        for node_name in off_nodes {
            let why = off_node_stop(state.node(node_name).as_deref());
            for alloc in by_node.get(*node_name).into_iter().flatten() {
                // A draining node keeps a system allocation until the drainer marks it (it
                // moves system jobs last, or never with `ignoreSystemJobs`).
                let unmarked = why.is_some_and(|(w, _)| w == reasons::MIGRATING)
                    && !alloc.spec.should_migrate();
                match why {
                    Some((why, client_status)) if !unmarked && !alloc.is_client_terminal() => {
                        ctx.stop(alloc, DesiredStatus::Stop, why);
                        if let Some(status) = client_status {
                            ctx.plan.set_stop_client_status(
                                node_name,
                                alloc.metadata.name(),
                                status,
                            );
                        }
                        self.updates.stop += 1;
                    }
                    _ => self.updates.ignore += 1,
                }
            }
        }
    }

    /// What a ready node with the group's `existing` allocations needs: extras stop, an
    /// allocation the node is no longer `feasible` for stops, a current or finished one stays,
    /// an outdated one is updated in place or (within the budget) replaced; a feasible node
    /// without one gets one. The placement to make, if any.
    pub(super) fn request_on(
        &mut self,
        ctx: &mut EvalContext<'_>,
        existing: Vec<&Arc<Allocation>>,
        feasible: bool,
    ) -> Option<PlaceRequest> {
        let mut existing = existing.into_iter();
        let Some(alloc) = existing.next() else {
            if !feasible {
                return None;
            }
            self.updates.place += 1;
            return Some(PlaceRequest {
                group: self.group.name.clone(),
                index: 0,
                previous: None,
                stop_previous: None,
                reschedule: false,
                canary: false,
            });
        };
        for extra in existing {
            ctx.stop(extra, DesiredStatus::Stop, reasons::NOT_NEEDED);
            self.updates.stop += 1;
        }
        if !feasible {
            if !alloc.is_client_terminal() {
                ctx.stop(alloc, DesiredStatus::Stop, reasons::NODE_INFEASIBLE);
                self.updates.stop += 1;
            }
            return None;
        }
        if alloc.spec.job_version == self.version || alloc.is_client_terminal() {
            self.updates.ignore += 1;
            return None;
        }
        let (job, group) = (self.job, self.group);
        let old = ctx.state().job_by_version(
            job.metadata.namespace(),
            job.metadata.name(),
            alloc.spec.job_version,
        );
        let in_place = old.as_deref().is_some_and(|old_job| {
            old_job
                .spec
                .groups
                .iter()
                .find(|g| g.name == group.name)
                .is_some_and(|old_group| !tasks_updated(old_job, old_group, job, group))
        });
        if in_place {
            ctx.update_in_place(build::in_place(alloc, job, &self.eval_name, None));
            self.updates.in_place_update += 1;
            return None;
        }
        if self.budget == Some(0) {
            self.updates.ignore += 1;
            return None;
        }
        if let Some(b) = self.budget.as_mut() {
            *b -= 1;
        }
        self.updates.destructive_update += 1;
        Some(PlaceRequest {
            group: group.name.clone(),
            index: 0,
            previous: Some(Arc::clone(alloc)),
            stop_previous: Some(reasons::UPDATING),
            reschedule: false,
            canary: false,
        })
    }

    /// Places `request` on `node`, stopping the allocation it replaces; when the node does not
    /// take it, the replaced allocation stays and the failure is counted in `outcome`.
    pub(super) fn place(
        &mut self,
        ctx: &mut EvalContext<'_>,
        stack: &mut SystemStack,
        node: &Arc<Node>,
        request: &PlaceRequest,
        outcome: &mut EvalOutcome,
    ) {
        if let Some(previous) = &request.previous {
            ctx.stop(previous, DesiredStatus::Stop, reasons::UPDATING);
        }
        match stack.select(ctx, self.group, node) {
            Some(ranked) => {
                let usage = ctx.usage(node);
                let allocated = resources::allocated_resources(
                    self.group,
                    &self.ask,
                    node,
                    &usage.capacity,
                    usage.free_cores(),
                    ranked.ports.clone(),
                );
                let alloc = build::new_alloc(
                    self.job,
                    &self.eval_name,
                    None,
                    request,
                    node,
                    allocated,
                    ctx.metrics.to_alloc_metrics(),
                    self.now_unix,
                );
                ctx.place(alloc, &ranked.ask);
            }
            None => {
                if let Some(previous) = &request.previous {
                    ctx.unstop(previous);
                }
                *outcome.queued.entry(self.group.name.clone()).or_default() += 1;
                match self.failed.as_mut() {
                    Some(metrics) => metrics.coalesced_failures += 1,
                    None => self.failed = Some(ctx.metrics.to_alloc_metrics()),
                }
            }
        }
    }

    /// Records the group's failed placements in `outcome`; the group's desired changes.
    pub(super) fn finish(self, outcome: &mut EvalOutcome) -> DesiredUpdates {
        if let Some(metrics) = self.failed {
            outcome
                .failed_group_allocs
                .insert(self.group.name.clone(), metrics);
        }
        self.updates
    }
}
