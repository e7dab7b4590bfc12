//! A scheduler dry run, the pure core of a job plan (Nomad's `Job.Plan`): a [`MemState`] built
//! from a snapshot of nodes, the job and its allocations, the proposed job registered at its
//! next version, and the job type's scheduler run against it with a [`Planner`] that records
//! the plan and commits nothing.
//!
//! ```text
//! DryRunInput (current job, admitted proposed job, nodes, allocations, revision, now)
//!   ─▶ MemState ─▶ new_scheduler(eval type).process(job-register evaluation of the plan)
//!                     │ RecordingPlanner: every plan "fully committed", nothing written
//!                     ▼
//!   DryRunResult (version, annotations per group, failed placements, plan, created evals)
//! ```
//!
//! The API server's plan endpoint (`POST …/namespaces/{ns}/jobs/{name}/plan`) runs it on its
//! own state; no IO, no clock (the time comes in [`DryRunInput::now_unix`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use caravan_schemas::evaluation::{EvaluationState, EvaluationType, TriggeredBy};
use caravan_schemas::job::JobType;
use caravan_schemas::plan::{DesiredUpdates, Plan, PlanResult};
use caravan_schemas::{
    API_VERSION, AllocMetrics, Allocation, Evaluation, EvaluationSpec, EvaluationStatus, Job, Kind,
    Node, ObjectMeta,
};

use super::build::tainted_nodes;
use super::reconcile::AllocReconciler;
use super::{MemState, Planner, SchedError, SchedulerConfig, State, new_scheduler};
use crate::evaluator::deployment::{needs_deployment, new_deployment};

/// What the plan is computed from.
#[derive(Debug, Clone, Default)]
pub struct DryRunInput {
    /// The job as stored, if it exists.
    pub current: Option<Job>,
    /// The job as the server would store it (admitted, defaults applied).
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
        return proposed.version();
    };
    let (now, next) = (current.version(), proposed.version());
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
    let changed = input
        .current
        .as_ref()
        .is_none_or(|c| c.version() != version);
    if let Some(current) = input.current {
        state.upsert_job(current);
    }
    let mut job = input.proposed;
    set_version(&mut job, version);
    let namespace = job.metadata.namespace().to_string();
    let name = job.metadata.name().to_string();
    state.upsert_job(job.clone());
    for alloc in input.allocs {
        state.upsert_alloc(alloc);
    }
    // A new version would get its deployment (canaries, pacing) before it is scheduled.
    if changed && needs_deployment(&job) {
        let allocs = state.allocs_by_job(&namespace, &name);
        let versions = |v: i64| state.job_by_version(&namespace, &name, v);
        let deployment = new_deployment(&job, &allocs, &versions, input.now_unix);
        state.upsert_deployment(deployment);
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
    let name = job.metadata.name().to_string();
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
            deployment: None,
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
        if !alloc.is_terminal() {
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
mod tests {
    //! Objects in, scheduler annotations out, no server.

    use super::*;
    use crate::scheduler::testing::{Harness, cluster, eval_for, service_job};

    /// A cluster of `nodes` nodes running `job` as the scheduler placed it.
    fn running(nodes: usize, job: &Job) -> (Vec<Node>, Vec<Allocation>) {
        let mut harness = Harness::new(cluster(nodes, &["dc1"]));
        harness.state.upsert_job(job.clone());
        harness.process(&eval_for("initial", job)).unwrap();
        let nodes = harness
            .state
            .nodes()
            .iter()
            .map(|n| (**n).clone())
            .collect();
        let allocs = harness
            .state
            .allocs()
            .iter()
            .map(|a| (**a).clone())
            .collect();
        (nodes, allocs)
    }

    fn input(
        current: Option<&Job>,
        proposed: &Job,
        nodes: Vec<Node>,
        allocs: Vec<Allocation>,
    ) -> DryRunInput {
        DryRunInput {
            current: current.cloned(),
            proposed: proposed.clone(),
            nodes,
            allocs,
            index: 10,
            now_unix: 1_800_000_000,
        }
    }

    fn updates(result: &DryRunResult) -> DesiredUpdates {
        result.annotations.get("web").copied().unwrap_or_default()
    }

    #[test]
    fn a_new_job_places_every_allocation() {
        let job = service_job("web", 3, 100, 64);
        let (nodes, _) = running(3, &service_job("other", 0, 100, 64));
        let result = dry_run(input(None, &job, nodes, Vec::new())).unwrap();
        assert_eq!(result.version, 0);
        assert_eq!(
            updates(&result),
            DesiredUpdates {
                place: 3,
                ..DesiredUpdates::default()
            }
        );
        assert!(result.failed.is_empty());
        assert_eq!(result.plan.map(|p| p.placed_count()), Some(3));
    }

    #[test]
    fn an_unchanged_job_ignores_its_allocations_and_keeps_its_version() {
        let job = service_job("web", 3, 100, 64);
        let (nodes, allocs) = running(3, &job);
        let result = dry_run(input(Some(&job), &job, nodes, allocs)).unwrap();
        assert_eq!(result.version, 0);
        assert_eq!(
            updates(&result),
            DesiredUpdates {
                ignore: 3,
                ..DesiredUpdates::default()
            }
        );
        assert!(result.plan.is_none());
    }

    #[test]
    fn scaling_up_creates_the_difference_at_the_next_version() {
        let job = service_job("web", 3, 100, 64);
        let (nodes, allocs) = running(3, &job);
        let mut bigger = job.clone();
        bigger.spec.groups[0].count = Some(4);
        let result = dry_run(input(Some(&job), &bigger, nodes, allocs)).unwrap();
        assert_eq!(result.version, 1);
        let got = updates(&result);
        assert_eq!(got.place, 1, "{got:?}");
        assert_eq!(got.place + got.ignore + got.in_place_update, 4, "{got:?}");
    }

    #[test]
    fn a_changed_task_replaces_allocations() {
        let mut job = service_job("web", 2, 100, 64);
        let (nodes, allocs) = running(2, &job);
        let mut changed = job.clone();
        changed.spec.groups[0].tasks[0]
            .env
            .insert("NEW".into(), "1".into());
        // Without an update block every allocation is replaced at once, as in Nomad.
        let result = dry_run(input(Some(&job), &changed, nodes.clone(), allocs.clone())).unwrap();
        let got = updates(&result);
        assert_eq!((got.destructive_update, got.ignore), (2, 0), "{got:?}");
        assert_eq!(result.version, 1);
        // The update strategy's maxParallel (1) limits replacements per evaluation.
        job.spec.groups[0].update = Some(caravan_schemas::job::defaults::update_strategy());
        changed.spec.groups[0].update = job.spec.groups[0].update.clone();
        let result = dry_run(input(Some(&job), &changed, nodes.clone(), allocs.clone())).unwrap();
        let got = updates(&result);
        assert_eq!((got.destructive_update, got.ignore), (1, 1), "{got:?}");
        // With a canary, the plan places it beside the old allocations and replaces none.
        if let Some(update) = changed.spec.groups[0].update.as_mut() {
            update.canary = Some(1);
        }
        let result = dry_run(input(Some(&job), &changed, nodes, allocs)).unwrap();
        let got = updates(&result);
        assert_eq!(
            (got.canary, got.destructive_update, got.ignore),
            (1, 0, 2),
            "{got:?}"
        );
        let plan = result.plan.expect("the canary's plan");
        let canary = plan
            .node_allocation
            .values()
            .flatten()
            .next()
            .expect("a canary");
        assert!(
            canary
                .status
                .as_ref()
                .and_then(|s| s.deployment_status.as_ref())
                .is_some_and(|d| d.canary)
        );
        assert_eq!(canary.spec.deployment_name.as_deref(), Some("web-v1"));
    }

    #[test]
    fn placements_that_do_not_fit_are_reported_with_their_metrics() {
        let job = service_job("web", 2, 100, 1_000_000);
        let (nodes, _) = running(2, &service_job("other", 0, 100, 64));
        let result = dry_run(input(None, &job, nodes, Vec::new())).unwrap();
        assert_eq!(updates(&result).place, 2);
        let metrics = result.failed.get("web").expect("the group failed");
        assert_eq!(metrics.coalesced_failures, 1);
        assert_eq!(metrics.nodes_exhausted, 2);
        assert_eq!(metrics.dimension_exhausted.get("memory"), Some(&2));
        assert!(result.plan.is_none());
    }

    #[test]
    fn versions_follow_spec_changes() {
        let mut job = service_job("web", 1, 100, 64);
        job.status.get_or_insert_default().version = 4;
        let mut same = job.clone();
        same.status = None;
        assert_eq!(next_version(Some(&job), &same), 4);
        let mut changed = same.clone();
        changed.spec.priority = Some(70);
        assert_eq!(next_version(Some(&job), &changed), 5);
        changed.status.get_or_insert_default().version = 5;
        assert_eq!(next_version(Some(&job), &changed), 5);
        assert_eq!(next_version(None, &same), 0);
    }
}
