//! Pure decisions of the evaluator.

use std::collections::BTreeSet;

use caravan_schemas::allocation::ClientStatus;
use caravan_schemas::evaluation::{EvaluationSpec, EvaluationType, TriggeredBy};
use caravan_schemas::job::JobType;
use caravan_schemas::node::{NodeState, SchedulingEligibility};
use caravan_schemas::{API_VERSION, Allocation, Evaluation, Job, Kind, Node, ObjectMeta};
use serde_json::{Value, json};

/// An evaluation to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalRequest {
    pub namespace: String,
    pub job_name: String,
    pub job_version: i64,
    pub job_type: EvaluationType,
    pub priority: i32,
    pub triggered_by: TriggeredBy,
    pub node_name: Option<String>,
}

/// The scheduler that handles a job type.
pub fn eval_type(t: JobType) -> EvaluationType {
    match t {
        JobType::Service => EvaluationType::Service,
        JobType::Batch => EvaluationType::Batch,
        JobType::System => EvaluationType::System,
        JobType::Sysbatch => EvaluationType::Sysbatch,
    }
}

fn request(job: &Job, triggered_by: TriggeredBy, node_name: Option<&str>) -> EvalRequest {
    EvalRequest {
        namespace: job.metadata.namespace().to_string(),
        job_name: job.metadata.name().to_owned(),
        job_version: job.version(),
        job_type: eval_type(job.spec.job_type()),
        priority: job.priority(),
        triggered_by,
        node_name: node_name.map(str::to_string),
    }
}

/// A job whose current spec has not been evaluated yet (its `status.version` lags the version
/// derived from `generation`) needs a `job-register` evaluation, or `job-deregister` when the
/// job is stopped.
pub fn job_needs_eval(job: &Job) -> Option<EvalRequest> {
    let version = job.version();
    let evaluated = job.status.as_ref().map(|s| s.version);
    if evaluated == Some(version) {
        return None;
    }
    let trigger = if job.spec.stop {
        TriggeredBy::JobDeregister
    } else {
        TriggeredBy::JobRegister
    };
    Some(request(job, trigger, None))
}

/// The status patch recording that `job`'s current version was evaluated.
pub fn job_version_patch(job: &Job) -> Value {
    json!({ "status": { "version": job.version() } })
}

/// A job that was deleted needs a `job-deregister` evaluation: its allocations are stopped.
pub fn deleted_job_eval(job: &Job) -> EvalRequest {
    request(job, TriggeredBy::JobDeregister, None)
}

/// The drainer marked allocations of `job` on `node` for migration: a `node-drain`
/// evaluation moves them.
pub fn drain_eval(job: &Job, node: &str) -> EvalRequest {
    request(job, TriggeredBy::NodeDrain, Some(node))
}

/// What the evaluator remembers of an allocation to tell what changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocView {
    pub client_status: Option<ClientStatus>,
    /// Stopped, or ended on its client: it no longer holds its node's capacity.
    pub terminal: bool,
}

impl AllocView {
    pub fn of(alloc: &Allocation) -> AllocView {
        AllocView {
            client_status: alloc.status.as_ref().map(|s| s.client_status),
            terminal: alloc.is_terminal(),
        }
    }
}

/// An allocation that failed or was lost needs an `alloc-failure` evaluation of its job, once:
/// when its client status changes to that.
pub fn alloc_needs_eval(
    old: Option<&AllocView>,
    new: &Allocation,
    job: Option<&Job>,
) -> Option<EvalRequest> {
    let failed =
        |s: Option<ClientStatus>| matches!(s, Some(ClientStatus::Failed | ClientStatus::Lost));
    let new_status = new.status.as_ref().map(|s| s.client_status);
    if !failed(new_status) || old.is_some_and(|o| failed(o.client_status)) {
        return None;
    }
    let job = job?;
    Some(request(
        job,
        TriggeredBy::AllocFailure,
        Some(new.spec.node_name.as_str()).filter(|n| !n.is_empty()),
    ))
}

/// What the evaluator remembers of a node to tell what changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    pub status: Option<NodeState>,
    pub eligible: bool,
    pub draining: bool,
}

impl NodeView {
    pub fn of(node: &Node) -> NodeView {
        NodeView {
            status: node.status.as_ref().map(|s| s.status),
            eligible: node.spec.scheduling_eligibility != Some(SchedulingEligibility::Ineligible),
            draining: node.spec.drain.is_some(),
        }
    }
}

/// Evaluations a node change needs: every job with allocations on the node (`node-update`, or
/// `node-drain` when a drain started), and every system or sysbatch job when the node became
/// able to run work (registered ready, back to ready, eligible again).
pub fn node_change_evals<'a>(
    old: Option<&NodeView>,
    node: &Node,
    jobs_on_node: impl IntoIterator<Item = &'a Job>,
    system_jobs: impl IntoIterator<Item = &'a Job>,
) -> Vec<EvalRequest> {
    let new = NodeView::of(node);
    if old == Some(&new) {
        return Vec::new();
    }
    let name = node.metadata.name.as_deref();
    let trigger = if new.draining && !old.is_some_and(|o| o.draining) {
        TriggeredBy::NodeDrain
    } else {
        TriggeredBy::NodeUpdate
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for job in jobs_on_node {
        let req = request(job, trigger, name);
        if seen.insert((req.namespace.clone(), req.job_name.clone())) {
            out.push(req);
        }
    }
    let can_run = new.status == Some(NodeState::Ready) && new.eligible && !new.draining;
    let could_run =
        old.is_some_and(|o| o.status == Some(NodeState::Ready) && o.eligible && !o.draining);
    if can_run && !could_run {
        for job in system_jobs {
            let req = request(job, TriggeredBy::NodeUpdate, name);
            if seen.insert((req.namespace.clone(), req.job_name.clone())) {
                out.push(req);
            }
        }
    }
    out
}

/// A name for a new evaluation: the job, the trigger and a unique suffix.
pub fn eval_name(req: &EvalRequest, unique: &str) -> String {
    let job: String = req.job_name.chars().take(40).collect();
    let suffix: String = unique
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(10)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("{job}-{suffix}")
}

/// The Evaluation object for a request (its status is written separately: creates ignore it).
pub fn new_evaluation(req: &EvalRequest, name: String) -> Evaluation {
    Evaluation {
        api_version: API_VERSION.into(),
        kind: Kind::Evaluation.name().into(),
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(req.namespace.clone()),
            labels: [("caravan.dev/job".to_string(), req.job_name.clone())].into(),
            ..ObjectMeta::default()
        },
        spec: EvaluationSpec {
            job_name: req.job_name.clone(),
            job_version: req.job_version,
            triggered_by: req.triggered_by,
            priority: Some(req.priority),
            r#type: Some(req.job_type),
            node_name: req.node_name.clone(),
            ..EvaluationSpec::default()
        },
        status: None,
    }
}
