//! The pure core of `caravan job plan`: a [`MemState`] built from the objects read from the
//! server, the proposed job at its next version, and the job type's scheduler run against it
//! with a [`Planner`] that records the plan and commits nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use caravan_controllers::scheduler::build::tainted_nodes;
use caravan_controllers::scheduler::reconcile::AllocReconciler;
use caravan_controllers::scheduler::util::{is_terminal, job_version};
use caravan_controllers::scheduler::{
    DesiredUpdates, MemState, Plan, PlanResult, Planner, SchedError, SchedulerConfig, State,
    new_scheduler,
};
use caravan_schemas::evaluation::{EvaluationState, EvaluationType, TriggeredBy};
use caravan_schemas::job::JobType;
use caravan_schemas::{
    API_VERSION, AllocMetrics, Allocation, Evaluation, EvaluationSpec, EvaluationStatus, Job, Kind,
    Node, ObjectMeta,
};

/// What the plan is computed from.
#[derive(Debug, Clone, Default)]
pub struct DryRunInput {
    /// The job as stored, if it exists.
    pub current: Option<Job>,
    /// The job as the server would store it (admitted with `dryRun=All`).
    pub proposed: Job,
    pub nodes: Vec<Node>,
    /// Every allocation of the job.
    pub allocs: Vec<Allocation>,
    /// Store revision the objects were read at.
    pub index: u64,
    /// Current time, Unix seconds.
    pub now_unix: i64,
}

/// What the scheduler would do.
#[derive(Debug, Clone, Default)]
pub struct DryRunResult {
    /// Version the proposed job would get.
    pub version: i64,
    /// Changes per group.
    pub annotations: BTreeMap<String, DesiredUpdates>,
    /// Placement metrics of groups that could not be placed in full.
    pub failed: BTreeMap<String, AllocMetrics>,
    /// The last plan submitted; `None` when there was nothing to write.
    pub plan: Option<Plan>,
    /// Evaluations the scheduler would create (blocked, follow-ups).
    pub created_evals: Vec<Evaluation>,
}

/// Records plans and evaluations; answers every plan as fully committed.
#[derive(Debug, Default)]
pub struct RecordingPlanner {
    pub index: u64,
    pub plans: Vec<Plan>,
    pub updated_evals: Vec<Evaluation>,
    pub created_evals: Vec<Evaluation>,
}

impl Planner for RecordingPlanner {
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), SchedError> {
        let result = PlanResult {
            node_update: plan.node_update.clone(),
            node_allocation: plan.allocation_names(),
            refresh_index: 0,
            alloc_index: self.index + 1,
        };
        self.plans.push(plan);
        Ok((result, None))
    }

    fn update_eval(&mut self, eval: Evaluation) -> Result<(), SchedError> {
        self.updated_evals.push(eval);
        Ok(())
    }

    fn create_eval(&mut self, eval: Evaluation) -> Result<(), SchedError> {
        self.created_evals.push(eval);
        Ok(())
    }
}

/// The version the server gives `proposed`: the one the server already set when it bumped
/// it (the dry-run admission bumps `generation` on a spec change), else the current one when
/// the spec is unchanged and the next one when it changed.
pub fn next_version(current: Option<&Job>, proposed: &Job) -> i64 {
    let Some(current) = current else {
        return job_version(proposed);
    };
    let (now, next) = (job_version(current), job_version(proposed));
    if next > now {
        next
    } else if current.spec == proposed.spec {
        now
    } else {
        now + 1
    }
}

/// Sets a job's version the way the server records it: `status.version`, and `generation`
/// (version + 1) when the object carries one.
pub fn set_version(job: &mut Job, version: i64) {
    job.status.get_or_insert_default().version = version;
    if job.metadata.generation.is_some() {
        job.metadata.generation = Some(version + 1);
    }
}

/// The evaluation type that schedules a job type.
pub fn eval_type(job_type: JobType) -> EvaluationType {
    match job_type {
        JobType::Service => EvaluationType::Service,
        JobType::Batch => EvaluationType::Batch,
        JobType::System => EvaluationType::System,
        JobType::Sysbatch => EvaluationType::Sysbatch,
    }
}

/// Runs the scheduler on a snapshot of `input` with the proposed job registered.
pub fn dry_run(input: DryRunInput) -> Result<DryRunResult, SchedError> {
    let version = next_version(input.current.as_ref(), &input.proposed);
    let mut state = MemState::new();
    state.set_index(input.index);
    for node in input.nodes {
        state.upsert_node(node);
    }
    if let Some(current) = input.current {
        state.upsert_job(current);
    }
    let mut job = input.proposed;
    set_version(&mut job, version);
    let namespace = job
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = job.metadata.name.clone().unwrap_or_default();
    state.upsert_job(job.clone());
    for alloc in input.allocs {
        state.upsert_alloc(alloc);
    }

    let eval = plan_eval(&job, version);
    let kind = eval.spec.r#type.unwrap_or_default();
    let state: Arc<dyn State> = Arc::new(state);
    let mut planner = RecordingPlanner {
        index: input.index,
        ..RecordingPlanner::default()
    };
    let config = SchedulerConfig {
        now_unix: input.now_unix,
        ..SchedulerConfig::default()
    };
    {
        let Some(mut scheduler) = new_scheduler(kind, state.clone(), &mut planner, config) else {
            return Err(SchedError::InvalidEval {
                eval: name,
                reason: "no scheduler for this job type".into(),
            });
        };
        match scheduler.process(&eval) {
            Ok(()) | Err(SchedError::MaxPlanAttempts(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let status = planner.updated_evals.last().and_then(|e| e.status.clone());
    let plan = planner.plans.pop();
    let annotations = match &plan {
        Some(plan) => plan.annotations.clone(),
        None => unchanged_annotations(
            state.as_ref(),
            &job,
            &namespace,
            &name,
            input.now_unix,
            status.as_ref(),
        ),
    };
    Ok(DryRunResult {
        version,
        annotations,
        failed: status.map(|s| s.failed_group_allocs).unwrap_or_default(),
        plan,
        created_evals: planner.created_evals,
    })
}

/// A pending `job-register` evaluation of the proposed job, named for the plan.
fn plan_eval(job: &Job, version: i64) -> Evaluation {
    let name = job.metadata.name.clone().unwrap_or_default();
    Evaluation {
        api_version: API_VERSION.into(),
        kind: Kind::Evaluation.name().into(),
        metadata: ObjectMeta {
            name: Some(format!("{name}-plan")),
            namespace: job.metadata.namespace.clone(),
            ..ObjectMeta::default()
        },
        spec: EvaluationSpec {
            job_name: name,
            job_version: version,
            triggered_by: TriggeredBy::JobRegister,
            priority: job.spec.priority,
            r#type: Some(eval_type(job.spec.job_type())),
            ..EvaluationSpec::default()
        },
        status: Some(EvaluationStatus {
            status: EvaluationState::Pending,
            ..EvaluationStatus::default()
        }),
    }
}

/// Annotations when the scheduler submitted no plan (nothing to write, or every placement
/// failed): the reconciler's own for service and batch jobs; for system jobs every live
/// allocation is ignored and the queued ones are to be created.
fn unchanged_annotations(
    state: &dyn State,
    job: &Job,
    namespace: &str,
    name: &str,
    now_unix: i64,
    status: Option<&EvaluationStatus>,
) -> BTreeMap<String, DesiredUpdates> {
    let allocs = state.allocs_by_job(namespace, name);
    let job_type = job.spec.job_type();
    if matches!(job_type, JobType::Service | JobType::Batch) {
        let tainted = tainted_nodes(state, &allocs);
        let versions = |version: i64| state.job_by_version(namespace, name, version);
        return AllocReconciler {
            job: Some(job),
            batch: job_type == JobType::Batch,
            allocs: &allocs,
            tainted: &tainted,
            job_version: &versions,
            now_unix,
        }
        .compute()
        .desired_tg_updates;
    }
    let mut annotations: BTreeMap<String, DesiredUpdates> = job
        .spec
        .groups
        .iter()
        .map(|g| (g.name.clone(), DesiredUpdates::default()))
        .collect();
    for alloc in &allocs {
        if !is_terminal(alloc) {
            annotations
                .entry(alloc.spec.group.clone())
                .or_default()
                .ignore += 1;
        }
    }
    for (group, queued) in status.map(|s| &s.queued_allocations).into_iter().flatten() {
        annotations.entry(group.clone()).or_default().place += queued;
    }
    annotations
}

#[cfg(test)]
#[path = "dryrun_tests.rs"]
mod tests;
