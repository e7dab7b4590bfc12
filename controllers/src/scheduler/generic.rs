//! [`GenericScheduler`]: the service and batch scheduler (Nomad's `generic_sched.go`).
//!
//! reconcile → stops and in-place updates into the plan → one stack selection per placement,
//! against the plan's own view of node usage → submit → on a partial commit, refresh and retry
//! (5 attempts for services, 2 for batch) → blocked evaluation for what could not be placed.

use std::collections::BTreeMap;
use std::sync::Arc;

use caravan_schemas::allocation::{AllocMetrics, DesiredStatus};
use caravan_schemas::evaluation::{EvaluationState, TriggeredBy};
use caravan_schemas::resources::{self, GroupAsk};
use caravan_schemas::{Deployment, Evaluation, Job, deployment};

use super::Scheduler;
use super::build::{self, EvalOutcome};
use super::config::SchedulerConfig;
use super::context::EvalContext;
use super::feasible::ready::ready_nodes;
use super::reconcile::{AllocReconciler, ReconcileResults};
use super::stack::{GenericStack, SelectOptions};
use super::state::{Planner, State};
use super::{Plan, SchedError};

/// Schedules service ([`GenericScheduler::service`]) or batch ([`GenericScheduler::batch`])
/// jobs.
pub struct GenericScheduler<'a> {
    /// Batch jobs rather than services: the reconciler, the stack and the plan attempts differ.
    batch: bool,
    state: Arc<dyn State>,
    planner: &'a mut dyn Planner,
    config: SchedulerConfig,
}

/// A computed plan and what it could not do.
struct Computed {
    plan: Plan,
    job: Option<Arc<Job>>,
    outcome: EvalOutcome,
    reschedule_at: Option<i64>,
}

impl<'a> GenericScheduler<'a> {
    /// A service scheduler reading `state` and writing through `planner`.
    pub fn service(
        state: Arc<dyn State>,
        planner: &'a mut dyn Planner,
        config: SchedulerConfig,
    ) -> Self {
        Self::new(false, state, planner, config)
    }

    /// A batch scheduler reading `state` and writing through `planner`.
    pub fn batch(
        state: Arc<dyn State>,
        planner: &'a mut dyn Planner,
        config: SchedulerConfig,
    ) -> Self {
        Self::new(true, state, planner, config)
    }

    fn new(
        batch: bool,
        state: Arc<dyn State>,
        planner: &'a mut dyn Planner,
        config: SchedulerConfig,
    ) -> Self {
        Self {
            batch,
            state,
            planner,
            config,
        }
    }

    fn compute(&self, eval: &Evaluation) -> Computed {
        let state: &dyn State = self.state.as_ref();
        let namespace = eval.metadata.namespace();
        let job_name = eval.spec.job_name.as_str();
        let eval_name = eval.metadata.name();
        let job = state.job(namespace, job_name);
        let allocs = state.allocs_by_job(namespace, job_name);
        let tainted = build::tainted_nodes(state, &allocs);
        let versions = |version: i64| state.job_by_version(namespace, job_name, version);
        let deployment = job.as_deref().and_then(|j| {
            state.deployment(namespace, &deployment::name_for(job_name, j.version()))
        });
        let results = AllocReconciler {
            job: job.as_deref(),
            batch: self.batch,
            allocs: &allocs,
            tainted: &tainted,
            job_version: &versions,
            deployment: deployment.as_deref(),
            now_unix: self.config.now_unix,
        }
        .compute();

        let mut plan = Plan {
            eval_name: eval_name.to_string(),
            namespace: namespace.to_string(),
            job_name: job_name.to_string(),
            job_version: job.as_deref().map_or(eval.spec.job_version, Job::version),
            priority: job
                .as_deref()
                .map_or(eval.spec.priority.unwrap_or(50), Job::priority),
            annotations: results.desired_tg_updates.clone(),
            ..Plan::default()
        };
        for stop in &results.stop {
            let node = &stop.alloc.spec.node_name;
            let name = stop.alloc.metadata.name();
            plan.append_stop(node, name, DesiredStatus::Stop, stop.description);
            if let Some(status) = stop.client_status {
                plan.set_stop_client_status(node, name, status);
            }
        }
        let reschedule_at = results.reschedule_later.iter().map(|(_, at)| *at).min();
        let mut outcome = EvalOutcome::default();
        let Some(job) = job else {
            return Computed {
                plan,
                job: None,
                outcome,
                reschedule_at,
            };
        };
        for alloc in &results.inplace_update {
            let deployment = build::deployment_of(deployment.as_deref(), &alloc.spec.group);
            plan.append_alloc(build::in_place(alloc, &job, eval_name, deployment));
        }
        if results.place.is_empty() && results.destructive_update.is_empty() {
            return Computed {
                plan,
                job: Some(job),
                outcome,
                reschedule_at,
            };
        }
        let plan = self.place(
            eval,
            (&job, deployment.as_deref()),
            &allocs,
            plan,
            &results,
            &mut outcome,
        );
        Computed {
            plan,
            job: Some(job),
            outcome,
            reschedule_at,
        }
    }

    fn place(
        &self,
        eval: &Evaluation,
        (job, deployment): (&Arc<Job>, Option<&Deployment>),
        allocs: &[Arc<caravan_schemas::Allocation>],
        plan: Plan,
        results: &ReconcileResults,
        outcome: &mut EvalOutcome,
    ) -> Plan {
        let state: &dyn State = self.state.as_ref();
        let eval_name = eval.metadata.name();
        let ready = ready_nodes(state, job);
        let mut ctx = EvalContext::new(state, plan, allocs);
        ctx.metrics.nodes_available = ready.available_by_dc;
        let mut stack = GenericStack::new(
            self.batch,
            &self.config,
            job.clone(),
            ready.nodes,
            eval_name,
            state.index(),
        );
        let mut failed: BTreeMap<String, AllocMetrics> = BTreeMap::new();
        for request in results.destructive_update.iter().chain(&results.place) {
            let Some(group) = job.spec.groups.iter().find(|g| g.name == request.group) else {
                continue;
            };
            if let Some(metrics) = failed.get_mut(&group.name) {
                metrics.coalesced_failures += 1;
                *outcome.queued.entry(group.name.clone()).or_default() += 1;
                continue;
            }
            let stop_previous = request.previous.as_ref().zip(request.stop_previous);
            if let Some((previous, why)) = stop_previous {
                ctx.stop(previous, DesiredStatus::Stop, why);
            }
            let sticky = group
                .ephemeral_disk
                .as_ref()
                .is_some_and(|d| d.sticky == Some(true) || d.migrate == Some(true));
            let options = SelectOptions {
                penalty_nodes: build::penalty_nodes(request),
                preferred_node: request
                    .previous
                    .as_ref()
                    .filter(|_| sticky)
                    .map(|p| p.spec.node_name.clone()),
            };
            match stack.select(&mut ctx, group, &options) {
                Some(ranked) => {
                    let ask = stack
                        .ask(&group.name)
                        .cloned()
                        .unwrap_or_else(|| GroupAsk::of(group));
                    let usage = ctx.usage(&ranked.node);
                    let allocated = resources::allocated_resources(
                        group,
                        &ask,
                        &ranked.node,
                        &usage.capacity,
                        usage.free_cores(),
                        ranked.ports.clone(),
                    );
                    let alloc = build::new_alloc(
                        job,
                        eval_name,
                        build::deployment_of(deployment, &group.name),
                        request,
                        &ranked.node,
                        allocated,
                        ctx.metrics.to_alloc_metrics(),
                        self.config.now_unix,
                    );
                    ctx.place(alloc, &ranked.ask);
                }
                None => {
                    if let Some((previous, _)) = stop_previous {
                        ctx.unstop(previous);
                    }
                    failed.insert(group.name.clone(), ctx.metrics.to_alloc_metrics());
                    *outcome.queued.entry(group.name.clone()).or_default() += 1;
                }
            }
        }
        outcome.failed_group_allocs = failed;
        ctx.into_plan()
    }

    fn max_attempts(&self) -> u32 {
        if self.batch {
            self.config.max_batch_plan_attempts
        } else {
            self.config.max_service_plan_attempts
        }
    }
}

impl Scheduler for GenericScheduler<'_> {
    fn process(&mut self, eval: &Evaluation) -> Result<(), SchedError> {
        let max = self.max_attempts().max(1);
        let mut last: Option<Computed> = None;
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
        let Some(mut computed) = last else {
            return Ok(());
        };
        let job = computed.job.clone();
        if !committed {
            let blocked = build::derived_eval(
                eval,
                job.as_deref(),
                "blocked",
                TriggeredBy::MaxPlanAttempts,
                EvaluationState::Blocked,
            );
            computed.outcome.blocked_eval = blocked.metadata.name.clone();
            self.planner.create_eval(blocked)?;
            let failed = build::finished_eval(
                eval,
                EvaluationState::Failed,
                Some(format!("maximum attempts reached ({max})")),
                &computed.outcome,
                self.state.as_ref(),
            );
            self.planner.update_eval(failed)?;
            return Err(SchedError::MaxPlanAttempts(max));
        }
        if let Some(at) = computed.reschedule_at {
            let followup = build::followup_eval(eval, job.as_deref(), at);
            computed.outcome.next_eval = followup.metadata.name.clone();
            self.planner.create_eval(followup)?;
        }
        // A blocked evaluation (or one unblocked and re-run) that still cannot place goes back
        // to blocked itself instead of spawning another one.
        let reblock = eval
            .status
            .as_ref()
            .is_some_and(|s| s.status == EvaluationState::Blocked)
            || eval.spec.triggered_by == TriggeredBy::QueuedAllocs;
        if !computed.outcome.failed_group_allocs.is_empty() {
            if reblock {
                let again = build::finished_eval(
                    eval,
                    EvaluationState::Blocked,
                    Some("still blocked: placements failed".into()),
                    &computed.outcome,
                    self.state.as_ref(),
                );
                return self.planner.update_eval(again);
            }
            let mut blocked = build::derived_eval(
                eval,
                job.as_deref(),
                "blocked",
                TriggeredBy::QueuedAllocs,
                EvaluationState::Blocked,
            );
            if let Some(status) = blocked.status.as_mut() {
                status.status_description = Some("created to place remaining allocations".into());
                status.failed_group_allocs = computed.outcome.failed_group_allocs.clone();
                // Capacity that appears after this snapshot unblocks it.
                status.snapshot_index = self.state.index();
            }
            computed.outcome.blocked_eval = blocked.metadata.name.clone();
            self.planner.create_eval(blocked)?;
        }
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
mod lost_props;
#[cfg(test)]
mod port_tests;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
