//! Construction of the objects a scheduler writes: new allocations, in-place updates, blocked
//! and follow-up evaluations, and the final status of the evaluation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use caravan_schemas::allocation::{
    AllocDeploymentStatus, AllocMetrics, AllocatedResources, ClientStatus, DesiredStatus,
    RescheduleEvent, RescheduleTracker,
};
use caravan_schemas::evaluation::{EvaluationState, TriggeredBy};
use caravan_schemas::naming::alloc_object_name;
use caravan_schemas::{
    API_VERSION, Allocation, AllocationSpec, AllocationStatus, Deployment, Evaluation,
    EvaluationSpec, EvaluationStatus, Job, Kind, Node, ObjectMeta,
};

use super::reconcile::PlaceRequest;
use super::reconcile::reschedule::delay_of;
use super::state::State;
use super::time::format_rfc3339;
use super::util;

/// The deployment that allocations of `group` placed or updated now belong to: the job's
/// current deployment while it is active and names the group.
pub fn deployment_of<'a>(deployment: Option<&'a Deployment>, group: &str) -> Option<&'a str> {
    deployment
        .filter(|d| d.is_active() && d.spec.groups.contains_key(group))
        .and_then(|d| d.metadata.name.as_deref())
}

/// A new allocation of `job` placed by `eval_name` on `node`, in `deployment` when given.
#[allow(clippy::too_many_arguments)]
pub fn new_alloc(
    job: &Job,
    eval_name: &str,
    deployment: Option<&str>,
    request: &PlaceRequest,
    node: &Node,
    resources: AllocatedResources,
    metrics: AllocMetrics,
    now_unix: i64,
) -> Allocation {
    let job_name = job.metadata.name();
    let previous = request.previous.as_deref();
    let previous_name = previous.map_or("", |p| p.metadata.name());
    let node_name = node.metadata.name();
    let name = alloc_object_name(
        job_name,
        &request.group,
        request.index,
        &[eval_name, previous_name, node_name],
    );
    let reschedule_tracker = match previous {
        Some(prev) if request.reschedule => {
            let mut tracker = prev
                .spec
                .reschedule_tracker
                .clone()
                .unwrap_or_else(RescheduleTracker::default);
            let policy = job
                .spec
                .groups
                .iter()
                .find(|g| g.name == request.group)
                .and_then(|g| g.reschedule.as_ref());
            let delay = delay_of(prev, policy, job.spec.job_type());
            tracker.events.push(RescheduleEvent {
                reschedule_time: format_rfc3339(now_unix),
                prev_alloc_name: previous_name.to_string(),
                prev_node_name: prev.spec.node_name.clone(),
                delay: Some(format!("{delay}s")),
            });
            Some(tracker)
        }
        _ => None,
    };
    Allocation {
        api_version: API_VERSION.to_string(),
        kind: Kind::Allocation.name().to_string(),
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(job.metadata.namespace().to_string()),
            ..ObjectMeta::default()
        },
        spec: AllocationSpec {
            job_name: job_name.to_string(),
            job_version: job.version(),
            group: request.group.clone(),
            node_name: node_name.to_string(),
            desired_status: Some(DesiredStatus::Run),
            previous_allocation: previous.map(|_| previous_name.to_string()),
            eval_name: Some(eval_name.to_string()),
            deployment_name: deployment.map(str::to_owned),
            allocated_resources: Some(resources),
            reschedule_tracker,
            ..AllocationSpec::default()
        },
        status: Some(AllocationStatus {
            client_status: ClientStatus::Pending,
            metrics: Some(Box::new(metrics)),
            deployment_status: request.canary.then(|| AllocDeploymentStatus {
                canary: true,
                ..AllocDeploymentStatus::default()
            }),
            ..AllocationStatus::default()
        }),
    }
}

/// `alloc` moved to the current version of `job` without restarting, into `deployment` when
/// given (it keeps the health it reported).
pub fn in_place(
    alloc: &Allocation,
    job: &Job,
    eval_name: &str,
    deployment: Option<&str>,
) -> Allocation {
    let mut updated = alloc.clone();
    updated.spec.job_version = job.version();
    updated.spec.eval_name = Some(eval_name.to_string());
    if let Some(deployment) = deployment {
        updated.spec.deployment_name = Some(deployment.to_owned());
    }
    updated
}

/// Nodes penalized for a rescheduled allocation: where it and its predecessors failed.
pub fn penalty_nodes(request: &PlaceRequest) -> Vec<String> {
    let Some(prev) = request.previous.as_deref().filter(|_| request.reschedule) else {
        return Vec::new();
    };
    let mut nodes = vec![prev.spec.node_name.clone()];
    if let Some(tracker) = &prev.spec.reschedule_tracker {
        nodes.extend(tracker.events.iter().map(|e| e.prev_node_name.clone()));
    }
    nodes
}

/// An evaluation derived from `eval` with a deterministic name.
pub fn derived_eval(
    eval: &Evaluation,
    job: Option<&Job>,
    suffix: &str,
    triggered_by: TriggeredBy,
    status: EvaluationState,
) -> Evaluation {
    let eval_name = eval.metadata.name();
    let hash = util::stable_hash([eval_name, suffix]);
    let base = eval.spec.job_name.as_str();
    let base = &base[..base.len().min(200)];
    Evaluation {
        api_version: API_VERSION.to_string(),
        kind: Kind::Evaluation.name().to_string(),
        metadata: ObjectMeta {
            name: Some(format!(
                "{}-{suffix}-{:08x}",
                base.trim_end_matches('-'),
                hash as u32
            )),
            namespace: Some(eval.metadata.namespace().to_string()),
            ..ObjectMeta::default()
        },
        spec: EvaluationSpec {
            job_name: eval.spec.job_name.clone(),
            job_version: job.map_or(eval.spec.job_version, Job::version),
            triggered_by,
            priority: job.map(Job::priority).or(eval.spec.priority),
            r#type: eval.spec.r#type,
            previous_eval: Some(eval_name.to_string()),
            ..EvaluationSpec::default()
        },
        status: Some(EvaluationStatus {
            status,
            ..EvaluationStatus::default()
        }),
    }
}

/// A follow-up evaluation that runs at `wait_until` (delayed reschedules).
pub fn followup_eval(eval: &Evaluation, job: Option<&Job>, wait_until: i64) -> Evaluation {
    let mut followup = derived_eval(
        eval,
        job,
        "followup",
        TriggeredBy::AllocFailure,
        EvaluationState::Pending,
    );
    followup.spec.wait_until = Some(format_rfc3339(wait_until));
    followup
}

/// Outcome of a scheduler run, folded into the evaluation's status.
#[derive(Clone, Debug, Default)]
pub struct EvalOutcome {
    /// Placement metrics of groups that could not be placed in full.
    pub failed_group_allocs: BTreeMap<String, AllocMetrics>,
    /// Placements still to make, per group.
    pub queued: BTreeMap<String, u64>,
    /// Blocked evaluation created.
    pub blocked_eval: Option<String>,
    /// Follow-up evaluation created.
    pub next_eval: Option<String>,
}

/// `eval` with status `status` and the outcome.
pub fn finished_eval(
    eval: &Evaluation,
    status: EvaluationState,
    description: Option<String>,
    outcome: &EvalOutcome,
    state: &dyn State,
) -> Evaluation {
    let mut updated = eval.clone();
    let current = updated.status.get_or_insert_default();
    current.status = status;
    current.status_description = description;
    current.failed_group_allocs = outcome.failed_group_allocs.clone();
    current.queued_allocations = outcome.queued.clone();
    if outcome.blocked_eval.is_some() {
        current.blocked_eval = outcome.blocked_eval.clone();
    }
    if outcome.next_eval.is_some() {
        current.next_eval = outcome.next_eval.clone();
    }
    current.snapshot_index = state.index();
    updated
}

/// Node taints of the nodes holding live allocations.
pub fn tainted_nodes(
    state: &dyn State,
    allocs: &[Arc<Allocation>],
) -> HashMap<String, super::reconcile::NodeTaint> {
    use caravan_schemas::node::NodeState;

    use super::reconcile::NodeTaint;
    let mut tainted = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for alloc in allocs {
        if alloc.is_terminal() || !seen.insert(alloc.spec.node_name.as_str()) {
            continue;
        }
        let taint = match state.node(&alloc.spec.node_name) {
            None => Some(NodeTaint::Down),
            Some(node) => match node.status.as_ref().map(|s| s.status) {
                Some(NodeState::Down | NodeState::Disconnected) => Some(NodeTaint::Down),
                _ if node.spec.drain.is_some() => Some(NodeTaint::Draining),
                _ => None,
            },
        };
        if let Some(taint) = taint {
            tainted.insert(alloc.spec.node_name.clone(), taint);
        }
    }
    tainted
}
