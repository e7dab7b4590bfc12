//! The observed status of a job: per-group allocation counts, `pending`/`running`/`dead`
//! (Nomad's `getJobStatus` in `nomad/state/state_store.go`) and a `Running` condition, computed
//! from the job's allocations and evaluations. Pure: the job status controller reads, calls
//! [`summarize`], and writes [`status_patch`] only when something changed.

mod merge;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::condition::ConditionStatus;
use caravan_schemas::evaluation::EvaluationState;
use caravan_schemas::job::{GroupSummary, JobState, JobType};
use caravan_schemas::{Allocation, Condition, Evaluation, Job, JobStatus};
use serde_json::{Value, json};

pub use merge::merge_patch_diff;

/// Type of the condition [`summarize`] maintains.
pub const RUNNING_CONDITION: &str = "Running";

/// Why a job is in its state; the `reason` of the `Running` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateReason {
    /// A system, periodic or parameterized job: running until stopped.
    AlwaysRunning,
    /// At least one allocation is not terminal.
    AllocationsActive,
    /// An evaluation is pending or blocked.
    EvaluationsPending,
    /// Nothing was evaluated yet.
    AwaitingEvaluation,
    /// The job was stopped or is being deleted, and nothing runs any more.
    Stopped,
    /// Every allocation is terminal and no work is left.
    Finished,
}

impl StateReason {
    /// The reason in CamelCase, as written in the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            StateReason::AlwaysRunning => "AlwaysRunning",
            StateReason::AllocationsActive => "AllocationsActive",
            StateReason::EvaluationsPending => "EvaluationsPending",
            StateReason::AwaitingEvaluation => "AwaitingEvaluation",
            StateReason::Stopped => "Stopped",
            StateReason::Finished => "Finished",
        }
    }

    fn message(self) -> &'static str {
        match self {
            StateReason::AlwaysRunning => {
                "system, periodic and parameterized jobs run until stopped"
            }
            StateReason::AllocationsActive => "allocations are placed or running",
            StateReason::EvaluationsPending => "evaluations are pending or blocked",
            StateReason::AwaitingEvaluation => "the job has not been evaluated yet",
            StateReason::Stopped => "the job was stopped",
            StateReason::Finished => "every allocation is terminal and no work is left",
        }
    }
}

fn eval_state(eval: &Evaluation) -> EvaluationState {
    eval.status
        .as_ref()
        .map_or(EvaluationState::Pending, |s| s.status)
}

fn is_terminal_eval(eval: &Evaluation) -> bool {
    matches!(
        eval_state(eval),
        EvaluationState::Complete | EvaluationState::Failed | EvaluationState::Canceled
    )
}

fn resource_version(meta: &caravan_schemas::ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_default()
}

fn belongs<'a>(job: &'a Job) -> impl Fn(&caravan_schemas::ObjectMeta, &str) -> bool + 'a {
    move |meta, job_name| {
        job_name == job.metadata.name() && meta.namespace() == job.metadata.namespace()
    }
}

/// The state of a job and why (Nomad's `getJobStatus`, without deployments).
///
/// - system, periodic and parameterized jobs are `running` until stopped, then `dead`;
/// - any non-terminal allocation (desired `run`, not complete/failed/lost) → `running`, even
///   when the job is stopped: it is `dead` once the stops are committed;
/// - any pending or blocked evaluation → `pending`;
/// - evaluated (or stopped, or being deleted) with nothing left → `dead`;
/// - nothing evaluated yet → `pending`.
pub fn job_state(
    job: &Job,
    allocs: &[Arc<Allocation>],
    evals: &[Arc<Evaluation>],
) -> (JobState, StateReason) {
    let belongs = belongs(job);
    let stopped = job.spec.stop || job.metadata.deletion_timestamp.is_some();
    let always_running = job.spec.job_type() == JobType::System
        || job.spec.periodic.is_some()
        || job.spec.parameterized.is_some();
    if always_running {
        return if stopped {
            (JobState::Dead, StateReason::Stopped)
        } else {
            (JobState::Running, StateReason::AlwaysRunning)
        };
    }
    let mut allocs = allocs
        .iter()
        .filter(|a| belongs(&a.metadata, &a.spec.job_name));
    if allocs.any(|a| !a.is_terminal()) {
        return (JobState::Running, StateReason::AllocationsActive);
    }
    let mut has_eval = false;
    for eval in evals
        .iter()
        .filter(|e| belongs(&e.metadata, &e.spec.job_name))
    {
        if !is_terminal_eval(eval) {
            return (JobState::Pending, StateReason::EvaluationsPending);
        }
        has_eval = true;
    }
    match (stopped, has_eval) {
        (true, _) => (JobState::Dead, StateReason::Stopped),
        (false, true) => (JobState::Dead, StateReason::Finished),
        (false, false) => (JobState::Pending, StateReason::AwaitingEvaluation),
    }
}

/// Allocations still to place per group, from the latest evaluation a scheduler processed
/// (`snapshotIndex` set; groups it does not list have none queued).
fn queued(job: &Job, evals: &[Arc<Evaluation>]) -> BTreeMap<String, u64> {
    let belongs = belongs(job);
    evals
        .iter()
        .filter(|e| belongs(&e.metadata, &e.spec.job_name))
        .filter(|e| eval_state(e) != EvaluationState::Canceled)
        .filter_map(|e| {
            let status = e.status.as_ref().filter(|s| s.snapshot_index > 0)?;
            Some((
                (resource_version(&e.metadata), status.snapshot_index),
                status,
            ))
        })
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, status)| status.queued_allocations.clone())
        .unwrap_or_default()
}

/// Per-group counts: queued from the latest processed evaluation, the others by client status
/// (`starting` counts pending allocations the servers still want running).
pub fn group_summaries(
    job: &Job,
    allocs: &[Arc<Allocation>],
    evals: &[Arc<Evaluation>],
) -> BTreeMap<String, GroupSummary> {
    let belongs = belongs(job);
    let queued = queued(job, evals);
    let mut summary: BTreeMap<String, GroupSummary> = job
        .spec
        .groups
        .iter()
        .map(|g| {
            let queued = queued.get(&g.name).copied().unwrap_or_default();
            let group = GroupSummary {
                queued: u32::try_from(queued).unwrap_or(u32::MAX),
                ..GroupSummary::default()
            };
            (g.name.clone(), group)
        })
        .collect();
    for alloc in allocs
        .iter()
        .filter(|a| belongs(&a.metadata, &a.spec.job_name))
    {
        let Some(group) = summary.get_mut(&alloc.spec.group) else {
            continue;
        };
        let counter = match alloc.client_status() {
            ClientStatus::Pending if alloc.desired_status() == DesiredStatus::Run => {
                &mut group.starting
            }
            ClientStatus::Pending => continue,
            ClientStatus::Running => &mut group.running,
            ClientStatus::Complete => &mut group.complete,
            ClientStatus::Failed => &mut group.failed,
            ClientStatus::Lost => &mut group.lost,
            ClientStatus::Unknown => &mut group.unknown,
        };
        *counter = counter.saturating_add(1);
    }
    summary
}

/// The job's status: its state, group summaries and `Running` condition. Fields the API server
/// owns (`version`, `stable`, `submitTime`) are kept from `job.status`. The condition keeps its
/// `lastTransitionTime` while its status holds; a transition leaves it unset (see
/// [`summarize_at`]).
pub fn summarize(job: &Job, allocs: &[Arc<Allocation>], evals: &[Arc<Evaluation>]) -> JobStatus {
    summarize_at(job, allocs, evals, None)
}

/// [`summarize`], stamping a transition of the condition with `now` (RFC 3339).
pub fn summarize_at(
    job: &Job,
    allocs: &[Arc<Allocation>],
    evals: &[Arc<Evaluation>],
    now: Option<&str>,
) -> JobStatus {
    let old = job.status.clone().unwrap_or_default();
    let (state, reason) = job_state(job, allocs, evals);
    let condition_status = if state == JobState::Running {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    let previous = old
        .conditions
        .iter()
        .find(|c| c.r#type == RUNNING_CONDITION);
    let last_transition_time = match previous {
        Some(c) if c.status == condition_status => c.last_transition_time.clone(),
        _ => now.map(str::to_string),
    };
    let mut conditions: Vec<Condition> = old
        .conditions
        .iter()
        .filter(|c| c.r#type != RUNNING_CONDITION)
        .cloned()
        .collect();
    conditions.push(Condition {
        r#type: RUNNING_CONDITION.to_string(),
        status: condition_status,
        reason: reason.as_str().to_string(),
        message: reason.message().to_string(),
        last_transition_time,
    });
    JobStatus {
        status: state,
        summary: group_summaries(job, allocs, evals),
        conditions,
        ..old
    }
}

/// The merge patch of the status subresource (`{"status": …}`) turning `old` into `new`, or
/// `None` when nothing changed.
pub fn status_patch(old: &Option<JobStatus>, new: &JobStatus) -> Option<Value> {
    let old = serde_json::to_value(old.clone().unwrap_or_default()).ok()?;
    let new = serde_json::to_value(new).ok()?;
    if old == new {
        return None;
    }
    let diff = merge_patch_diff(&old, &new)?;
    Some(json!({ "status": diff }))
}
