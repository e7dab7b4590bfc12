//! [`SystemScheduler`]: the system and sysbatch scheduler (Nomad's `scheduler_system.go`): one
//! allocation of each group on every feasible node, placed on new nodes, stopped on nodes that
//! are gone, draining or no longer feasible, updated when the job changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use caravan_schemas::allocation::DesiredStatus;
use caravan_schemas::evaluation::{EvaluationState, TriggeredBy};
use caravan_schemas::job::TaskGroup;
use caravan_schemas::{Allocation, Evaluation, Job, Node};

use self::group::{GroupPass, allocs_by_node};
use super::Scheduler;
use super::build::{self, EvalOutcome};
use super::config::SchedulerConfig;
use super::context::EvalContext;
use super::feasible::ready::ready_nodes;
use super::reconcile::reasons;
use super::stack::SystemStack;
use super::state::{Planner, State};
use super::{DesiredUpdates, Plan, SchedError};

/// Schedules system ([`SystemScheduler::system`]) or sysbatch ([`SystemScheduler::sysbatch`])
/// jobs.
pub struct SystemScheduler<'a> {
    /// Sysbatch semantics: an allocation that finished is done, not replaced.
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
    /// A system scheduler reading `state` and writing through `planner`.
    pub fn system(
        state: Arc<dyn State>,
        planner: &'a mut dyn Planner,
        config: SchedulerConfig,
    ) -> Self {
        Self::new(false, state, planner, config)
    }

    /// A sysbatch scheduler reading `state` and writing through `planner`.
    pub fn sysbatch(
        state: Arc<dyn State>,
        planner: &'a mut dyn Planner,
        config: SchedulerConfig,
    ) -> Self {
        Self::new(true, state, planner, config)
    }

    fn new(
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
        let namespace = eval.metadata.namespace();
        let job_name = eval.spec.job_name.as_str();
        let eval_name = eval.metadata.name();
        let job = state.job(namespace, job_name).filter(|j| !j.spec.stop);
        let allocs = state.allocs_by_job(namespace, job_name);
        let plan = Plan {
            eval_name: eval_name.to_string(),
            namespace: namespace.to_string(),
            job_name: job_name.to_string(),
            job_version: job.as_deref().map_or(eval.spec.job_version, Job::version),
            priority: job
                .as_deref()
                .map_or(eval.spec.priority.unwrap_or(50), Job::priority),
            ..Plan::default()
        };
        let mut ctx = EvalContext::new(state, plan, &allocs);
        let mut outcome = EvalOutcome::default();
        let Some(job) = job else {
            let mut updates: BTreeMap<String, DesiredUpdates> = BTreeMap::new();
            for alloc in allocs.iter().filter(|a| !a.is_terminal()) {
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
        for alloc in allocs.iter().filter(|a| !a.is_terminal()) {
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

    /// One group of the job: its allocations on nodes that are no longer candidates stop, and
    /// every ready node gets one allocation of it (see [`GroupPass`]).
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
        let by_node = allocs_by_node(group, allocs, self.sysbatch);
        let eval_name = ctx.plan.eval_name.clone();
        let mut pass = GroupPass::new(job, group, eval_name, self.config.now_unix);

        // Allocations on nodes that are no longer candidates.
        pass.stop_off_nodes(ctx, &by_node, ready);

        // One allocation on every ready node.
        for node in ready {
            let existing = by_node
                .get(node.metadata.name())
                .cloned()
                .unwrap_or_default();
            let feasible = stack.statically_feasible(group, node);
            if let Some(request) = pass.request_on(ctx, existing, feasible) {
                pass.place(ctx, stack, node, &request, outcome);
            }
        }
        pass.finish(outcome)
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

mod group;
#[cfg(test)]
mod tests;
