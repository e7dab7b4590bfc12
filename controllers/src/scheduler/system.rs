//! [`SystemScheduler`]: the system and sysbatch scheduler (Nomad's `scheduler_system.go`): one
//! allocation of each group on every feasible node, placed on new nodes, stopped on nodes that
//! are gone, draining or no longer feasible, updated when the job changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use caravan_schemas::allocation::{AllocMetrics, DesiredStatus};
use caravan_schemas::evaluation::{EvaluationState, TriggeredBy};
use caravan_schemas::job::TaskGroup;
use caravan_schemas::node::{NodeState, SchedulingEligibility};
use caravan_schemas::{Allocation, Evaluation, Job, Node};

use super::build::{self, EvalOutcome};
use super::config::SchedulerConfig;
use super::context::EvalContext;
use super::feasible::ready::ready_nodes;
use super::reconcile::{PlaceRequest, reasons, tasks_updated};
use super::resources::{self, GroupAsk};
use super::stack::SystemStack;
use super::state::{Planner, State};
use super::{DesiredUpdates, Plan, SchedError};
use super::{Scheduler, util};

/// Schedules system (`sysbatch == false`) or sysbatch jobs.
pub struct SystemScheduler<'a> {
    sysbatch: bool,
    state: Arc<dyn State>,
    planner: &'a mut dyn Planner,
    config: SchedulerConfig,
}

struct Computed {
    plan: Plan,
    job: Option<Arc<Job>>,
    outcome: EvalOutcome,
}

impl<'a> SystemScheduler<'a> {
    /// A scheduler reading `state` and writing through `planner`.
    pub fn new(
        sysbatch: bool,
        state: Arc<dyn State>,
        planner: &'a mut dyn Planner,
        config: SchedulerConfig,
    ) -> Self {
        Self {
            sysbatch,
            state,
            planner,
            config,
        }
    }

    fn compute(&self, eval: &Evaluation) -> Computed {
        let state: &dyn State = self.state.as_ref();
        let namespace = util::namespace(&eval.metadata);
        let job_name = eval.spec.job_name.as_str();
        let eval_name = util::name(&eval.metadata);
        let job = state.job(namespace, job_name).filter(|j| !j.spec.stop);
        let allocs = state.allocs_by_job(namespace, job_name);
        let plan = Plan {
            eval_name: eval_name.to_string(),
            namespace: namespace.to_string(),
            job_name: job_name.to_string(),
            job_version: job
                .as_deref()
                .map_or(eval.spec.job_version, util::job_version),
            priority: job
                .as_deref()
                .map_or(eval.spec.priority.unwrap_or(50), util::job_priority),
            ..Plan::default()
        };
        let mut ctx = EvalContext::new(state, plan, &allocs);
        let mut outcome = EvalOutcome::default();
        let Some(job) = job else {
            let mut updates: BTreeMap<String, DesiredUpdates> = BTreeMap::new();
            for alloc in allocs.iter().filter(|a| !util::is_terminal(a)) {
                ctx.stop(alloc, DesiredStatus::Stop, reasons::JOB_STOPPED);
                updates.entry(alloc.spec.group.clone()).or_default().stop += 1;
            }
            let mut plan = ctx.into_plan();
            plan.annotations = updates;
            return Computed {
                plan,
                job: None,
                outcome,
            };
        };
        let ready = ready_nodes(state, &job);
        ctx.metrics.nodes_available = ready.available_by_dc.clone();
        let mut stack = SystemStack::new(&self.config, job.clone());
        let mut annotations = BTreeMap::new();
        for group in &job.spec.groups {
            let updates = self.reconcile_group(
                &mut ctx,
                &mut stack,
                &job,
                group,
                &allocs,
                &ready.nodes,
                &mut outcome,
            );
            annotations.insert(group.name.clone(), updates);
        }
        // Groups removed from the job.
        for alloc in allocs.iter().filter(|a| !util::is_terminal(a)) {
            if !job.spec.groups.iter().any(|g| g.name == alloc.spec.group) {
                ctx.stop(alloc, DesiredStatus::Stop, reasons::NOT_NEEDED);
                let entry: &mut DesiredUpdates =
                    annotations.entry(alloc.spec.group.clone()).or_default();
                entry.stop += 1;
            }
        }
        let mut plan = ctx.into_plan();
        plan.annotations = annotations;
        Computed {
            plan,
            job: Some(job),
            outcome,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reconcile_group(
        &self,
        ctx: &mut EvalContext<'_>,
        stack: &mut SystemStack,
        job: &Arc<Job>,
        group: &TaskGroup,
        allocs: &[Arc<Allocation>],
        ready: &[Arc<Node>],
        outcome: &mut EvalOutcome,
    ) -> DesiredUpdates {
        let state = ctx.state();
        let eval_name = ctx.plan.eval_name.clone();
        let version = util::job_version(job);
        let mut updates = DesiredUpdates::default();
        let mut budget = group
            .update
            .as_ref()
            .and_then(|u| u.max_parallel)
            .filter(|n| *n > 0)
            .map(|n| n as usize);
        let mut by_node: HashMap<&str, Vec<&Arc<Allocation>>> = HashMap::new();
        for alloc in allocs.iter().filter(|a| a.spec.group == group.name) {
            if util::is_server_terminal(alloc) {
                continue;
            }
            // A system allocation that finished is replaced; a sysbatch one is done.
            if util::is_client_terminal(alloc) && !self.sysbatch {
                continue;
            }
            by_node
                .entry(alloc.spec.node_name.as_str())
                .or_default()
                .push(alloc);
        }
        let ready_names: HashMap<&str, &Arc<Node>> =
            ready.iter().map(|n| (util::name(&n.metadata), n)).collect();

        // Allocations on nodes that are no longer candidates.
        let mut off_nodes: Vec<&&str> = by_node
            .keys()
            .filter(|n| !ready_names.contains_key(**n))
            .collect();
        off_nodes.sort();
        for node_name in off_nodes {
            let node = state.node(node_name);
            // Why the node's allocations stop, and whether they are lost (the node is gone or
            // down and cannot report their end).
            let lost = Some(caravan_schemas::allocation::ClientStatus::Lost);
            let why = match node.as_deref() {
                None => Some((reasons::LOST, lost)),
                Some(n) => match n.status.as_ref().map(|s| s.status) {
                    Some(NodeState::Down | NodeState::Disconnected) => Some((reasons::LOST, lost)),
                    _ if n.spec.drain.is_some() => Some((reasons::MIGRATING, None)),
                    Some(NodeState::Ready)
                        if n.spec.scheduling_eligibility
                            == Some(SchedulingEligibility::Ineligible) =>
                    {
                        None
                    }
                    Some(NodeState::Initializing) => None,
                    _ => Some((reasons::NOT_NEEDED, None)),
                },
            };
            for alloc in by_node.get(*node_name).into_iter().flatten() {
                // A draining node keeps a system allocation until the drainer marks it (it
                // moves system jobs last, or never with `ignoreSystemJobs`).
                let unmarked = why.is_some_and(|(w, _)| w == reasons::MIGRATING)
                    && !alloc.spec.should_migrate();
                match why {
                    Some((why, client_status)) if !unmarked && !util::is_client_terminal(alloc) => {
                        ctx.stop(alloc, DesiredStatus::Stop, why);
                        if let Some(status) = client_status {
                            ctx.plan.set_stop_client_status(
                                node_name,
                                util::name(&alloc.metadata),
                                status,
                            );
                        }
                        updates.stop += 1;
                    }
                    _ => updates.ignore += 1,
                }
            }
        }

        let ask = GroupAsk::of(group);
        let mut failed: Option<AllocMetrics> = None;
        for node in ready {
            let node_name = util::name(&node.metadata);
            let existing = by_node.get(node_name).cloned().unwrap_or_default();
            let feasible = stack.statically_feasible(group, node);
            let mut existing = existing.into_iter();
            let request = match existing.next() {
                Some(alloc) => {
                    for extra in existing {
                        ctx.stop(extra, DesiredStatus::Stop, reasons::NOT_NEEDED);
                        updates.stop += 1;
                    }
                    if !feasible {
                        if !util::is_client_terminal(alloc) {
                            ctx.stop(alloc, DesiredStatus::Stop, reasons::NODE_INFEASIBLE);
                            updates.stop += 1;
                        }
                        continue;
                    }
                    if alloc.spec.job_version == version || util::is_client_terminal(alloc) {
                        updates.ignore += 1;
                        continue;
                    }
                    let old = state.job_by_version(
                        util::namespace(&job.metadata),
                        util::name(&job.metadata),
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
                        ctx.update_in_place(build::in_place(alloc, job, &eval_name));
                        updates.in_place_update += 1;
                        continue;
                    }
                    if budget == Some(0) {
                        updates.ignore += 1;
                        continue;
                    }
                    if let Some(b) = budget.as_mut() {
                        *b -= 1;
                    }
                    updates.destructive_update += 1;
                    PlaceRequest {
                        group: group.name.clone(),
                        index: 0,
                        previous: Some(Arc::clone(alloc)),
                        stop_previous: Some(reasons::UPDATING),
                        reschedule: false,
                    }
                }
                None if feasible => {
                    updates.place += 1;
                    PlaceRequest {
                        group: group.name.clone(),
                        index: 0,
                        previous: None,
                        stop_previous: None,
                        reschedule: false,
                    }
                }
                None => continue,
            };
            if let Some(previous) = &request.previous {
                ctx.stop(previous, DesiredStatus::Stop, reasons::UPDATING);
            }
            match stack.select(ctx, group, node) {
                Some(ranked) => {
                    let usage = ctx.usage(node);
                    let allocated = resources::allocated_resources(
                        group,
                        &ask,
                        node,
                        &usage.capacity,
                        usage.free_cores(),
                    );
                    let alloc = build::new_alloc(
                        job,
                        &eval_name,
                        &request,
                        node,
                        allocated,
                        ctx.metrics.to_alloc_metrics(),
                        self.config.now_unix,
                    );
                    ctx.place(alloc, &ranked.ask);
                }
                None => {
                    if let Some(previous) = &request.previous {
                        ctx.unstop(previous);
                    }
                    *outcome.queued.entry(group.name.clone()).or_default() += 1;
                    match failed.as_mut() {
                        Some(metrics) => metrics.coalesced_failures += 1,
                        None => failed = Some(ctx.metrics.to_alloc_metrics()),
                    }
                }
            }
        }
        if let Some(metrics) = failed {
            outcome
                .failed_group_allocs
                .insert(group.name.clone(), metrics);
        }
        updates
    }
}

impl Scheduler for SystemScheduler<'_> {
    fn process(&mut self, eval: &Evaluation) -> Result<(), SchedError> {
        let max = self.config.max_service_plan_attempts.max(1);
        let mut last = None;
        let mut committed = false;
        for _ in 0..max {
            let computed = self.compute(eval);
            if computed.plan.is_no_op() {
                last = Some(computed);
                committed = true;
                break;
            }
            let mut computed = computed;
            let plan = std::mem::take(&mut computed.plan);
            let (stops, placed) = plan.counts();
            let (result, refreshed) = self.planner.submit_plan(plan)?;
            let full = result.refresh_index == 0 && result.counts() == (stops, placed);
            last = Some(computed);
            if full {
                committed = true;
                break;
            }
            if let Some(state) = refreshed {
                self.state = state;
            }
        }
        let Some(computed) = last else {
            return Ok(());
        };
        if !committed {
            let mut outcome = computed.outcome;
            let blocked = build::derived_eval(
                eval,
                computed.job.as_deref(),
                "blocked",
                TriggeredBy::MaxPlanAttempts,
                EvaluationState::Blocked,
            );
            outcome.blocked_eval = blocked.metadata.name.clone();
            self.planner.create_eval(blocked)?;
            let failed = build::finished_eval(
                eval,
                EvaluationState::Failed,
                Some(format!("maximum attempts reached ({max})")),
                &outcome,
                self.state.as_ref(),
            );
            self.planner.update_eval(failed)?;
            return Err(SchedError::MaxPlanAttempts(max));
        }
        // Like Nomad, system placements that do not fit are reported, not blocked: a node
        // update or freed capacity triggers the next evaluation.
        let done = build::finished_eval(
            eval,
            EvaluationState::Complete,
            None,
            &computed.outcome,
            self.state.as_ref(),
        );
        self.planner.update_eval(done)
    }
}

#[cfg(test)]
mod tests;
