//! Planning a job (Nomad's `Job.Plan`): what registering a Job would do, computed with the
//! real scheduler on one snapshot of the state, nothing written. A service call on typed
//! arguments like those of `api/` (no HTTP): the endpoint
//! (`POST …/namespaces/{ns}/jobs/{name}/plan`, `http/job_plan.rs`) and any in-process caller
//! come here.
//!
//! ```text
//! plan_job(namespace, name, body, options)
//!   ─▶ a Job of that name and namespace? (400) ─▶ namespace exists? (404)
//!   ─▶ admission: api::patch(Apply, dryRun) — what `caravan job run` would store (422, 413…)
//!   ─▶ snapshot(): revision, current job, nodes, the job's allocations (one read lock, O(1) copies)
//!   ─▶ plan() on a blocking thread: the job admission started from still stored? (else admit
//!      again, a few times) ─▶ typed objects ─▶ controllers' scheduler dry_run ─▶ JobPlan
//! ```
//!
//! [`snapshot`] and [`plan`] are pure but for the state read: no clock (the time comes in
//! [`PlanRequest`]), no writes.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use caravan_controllers::scheduler::SchedError;
use caravan_controllers::scheduler::dry_run::{DryRunInput, dry_run};
use caravan_schemas::job_plan::JobPlan;
use caravan_schemas::{Allocation, Job, Kind, Node};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{self, Patch, Subresource, WriteOptions, prepare};
use crate::context::ApiContext;
use crate::store::state::Objects;
use crate::store::{ObjectKey, State, StoredObject};

/// How many times the body is admitted again when the job changed under the plan.
const MAX_ATTEMPTS: usize = 4;

/// What planning a job answers.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: JobPlan,
    /// Admission's warnings (unknown fields dropped, with `fieldValidation` Warn).
    pub warnings: Vec<String>,
}

/// Plans `body`, a Job, as job `name` of `namespace`: admits it as a dry-run server-side apply
/// does (`options.dry_run` is implied), then runs the scheduler on one snapshot of the state.
/// Writes nothing.
///
/// Errors: 400 `BadRequest` for a body that is not a Job or names another job or namespace,
/// 404 `NotFound` for a missing namespace, admission's (422 `Invalid` with every failing
/// field, 413…), 409 `Conflict` when the job kept changing under the plan.
pub async fn plan_job(
    ctx: &ApiContext,
    namespace: &str,
    name: &str,
    body: Value,
    options: &WriteOptions,
) -> Result<Planned, api::Error> {
    let body = job_body(body, namespace, name)?;
    check_namespace(&ctx.store.state(), namespace).map_err(|e| service_error(e, name))?;
    let admission = WriteOptions {
        dry_run: true,
        ..options.clone()
    };
    for _ in 0..MAX_ATTEMPTS {
        let patch = Patch::Apply(body.clone());
        let outcome = api::patch(
            ctx,
            Kind::Job,
            namespace,
            name,
            Subresource::Main,
            patch,
            &admission,
        )
        .await?;
        let warnings = outcome.warnings.clone();
        let proposed: Job = serde_json::from_value(outcome.into_value()).map_err(|e| {
            api::Error::Internal(format!("admission returned an undecodable Job: {e}"))
        })?;
        let snapshot =
            snapshot(&ctx.store.state(), namespace, name).map_err(|e| service_error(e, name))?;
        let request = PlanRequest {
            proposed,
            now_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        };
        // Decoding every node and scheduling are CPU work: off the async runtime.
        let planned = tokio::task::spawn_blocking(move || plan(snapshot, request))
            .await
            .map_err(|e| api::Error::Internal(format!("the plan did not finish: {e}")))?;
        match planned {
            Ok(plan) => return Ok(Planned { plan, warnings }),
            Err(JobPlanError::Changed(_)) => continue,
            Err(e) => return Err(service_error(e, name)),
        }
    }
    Err(api::Error::conflict(Kind::Job, name))
}

/// The body as a Job of `namespace`/`name`: `apiVersion` and `kind` must be a Job's, a name or
/// namespace other than these is refused (400); missing ones are filled in.
fn job_body(mut body: Value, namespace: &str, name: &str) -> Result<Value, api::Error> {
    prepare::check_type_meta(Kind::Job, &body)?;
    prepare::reconcile_namespace(Kind::Job, &mut body, Some(namespace))?;
    let named = prepare::name_of(&body);
    if named.is_empty() {
        body["metadata"]["name"] = Value::String(name.to_owned());
    } else if named != name {
        return Err(api::Error::BadRequest(format!(
            "the name of the object ({named}) does not match the name on the URL ({name})"
        )));
    }
    Ok(body)
}

/// The service error of a plan that failed.
fn service_error(err: JobPlanError, job: &str) -> api::Error {
    match err {
        JobPlanError::NamespaceNotFound(name) => api::Error::NotFound {
            kind: Kind::Namespace,
            name,
        },
        JobPlanError::Changed(_) => api::Error::conflict(Kind::Job, job),
        e @ (JobPlanError::Undecodable { .. } | JobPlanError::Scheduler(_)) => {
            api::Error::Internal(e.to_string())
        }
    }
}

/// What a plan is computed from, read at one revision.
#[derive(Debug, Clone)]
pub struct PlanSnapshot {
    /// The revision the state was read at.
    pub revision: u64,
    /// The job as stored, if it exists.
    pub current: Option<Arc<StoredObject>>,
    /// Every node (an O(1) copy of the state's map).
    pub nodes: Objects,
    /// Every allocation of the job.
    pub allocs: Vec<Arc<StoredObject>>,
}

/// The plan asked for.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The job as admission returned it: the body applied over the stored job (whose
    /// `metadata.resourceVersion` it then carries) or admitted as a new one (none).
    pub proposed: Job,
    /// Current time, Unix seconds.
    pub now_unix: i64,
}

/// Why no plan was computed.
#[derive(Debug, thiserror::Error)]
pub enum JobPlanError {
    /// The job's namespace does not exist.
    #[error("namespace {0:?} not found")]
    NamespaceNotFound(String),
    /// The stored job changed between admission and the snapshot: admit again.
    #[error("job {0:?} changed while it was planned")]
    Changed(String),
    /// A stored object does not decode as its kind.
    #[error("the stored {kind} {name:?} does not decode: {error}")]
    Undecodable {
        kind: Kind,
        name: String,
        error: String,
    },
    /// The scheduler failed (not a placement failure: those are in the plan).
    #[error("the scheduler failed: {0}")]
    Scheduler(#[from] SchedError),
}

/// [`JobPlanError::NamespaceNotFound`] unless `namespace` exists.
pub fn check_namespace(state: &State, namespace: &str) -> Result<(), JobPlanError> {
    let key = ObjectKey {
        kind: Kind::Namespace,
        namespace: String::new(),
        name: namespace.to_owned(),
    };
    match state.get(&key) {
        Some(_) => Ok(()),
        None => Err(JobPlanError::NamespaceNotFound(namespace.to_owned())),
    }
}

/// Reads what planning job `namespace`/`name` needs, at one revision. Only reference counts
/// and O(1) map copies are taken: the caller holds the state's read lock for no longer.
pub fn snapshot(state: &State, namespace: &str, name: &str) -> Result<PlanSnapshot, JobPlanError> {
    check_namespace(state, namespace)?;
    let job_key = ObjectKey {
        kind: Kind::Job,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    };
    let allocs = state
        .list_by_field(Kind::Allocation, "spec.jobName", name, Some(namespace))
        .unwrap_or_else(|| {
            state
                .list(Kind::Allocation, Some(namespace), None)
                .filter(|a| {
                    a.fields
                        .iter()
                        .any(|(field, value)| *field == "spec.jobName" && value == name)
                })
                .cloned()
                .collect()
        });
    Ok(PlanSnapshot {
        revision: state.revision(),
        current: state.get(&job_key),
        nodes: state.objects_of(Kind::Node),
        allocs,
    })
}

/// Plans `request.proposed` on `snapshot`: runs the job type's scheduler as if the job had
/// been registered at the snapshot's revision and reports what it would do.
///
/// [`JobPlanError::Changed`] when the stored job is not the one admission started from (it
/// was created, changed or deleted since): the caller admits the body again.
pub fn plan(snapshot: PlanSnapshot, request: PlanRequest) -> Result<JobPlan, JobPlanError> {
    let proposed = request.proposed;
    let name = proposed.metadata.name().to_owned();
    let admitted_over = proposed
        .metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse::<u64>().ok());
    let stored = snapshot.current.as_ref().map(|c| c.resource_version);
    if admitted_over != stored {
        return Err(JobPlanError::Changed(name));
    }
    let current: Option<Job> = snapshot.current.as_deref().map(decode).transpose()?;
    let nodes: Vec<Node> = snapshot
        .nodes
        .values()
        .map(|n| decode(n))
        .collect::<Result<_, _>>()?;
    let allocs: Vec<Allocation> = snapshot
        .allocs
        .iter()
        .map(|a| decode(a))
        .collect::<Result<_, _>>()?;
    let current_spec = current.as_ref().map(|c| c.spec.clone());
    let result = dry_run(DryRunInput {
        current,
        proposed: proposed.clone(),
        nodes,
        allocs,
        index: snapshot.revision,
        now_unix: request.now_unix,
    })?;
    let mut plan = JobPlan::new(proposed, snapshot.revision);
    plan.current_spec = current_spec;
    plan.version = result.version;
    plan.annotations = result.annotations;
    plan.failed_group_allocs = result.failed;
    plan.created_evals = result.created_evals;
    Ok(plan)
}

fn decode<T: DeserializeOwned>(object: &StoredObject) -> Result<T, JobPlanError> {
    serde_json::from_slice(&object.json).map_err(|e| JobPlanError::Undecodable {
        kind: object.key.kind,
        name: object.key.name.clone(),
        error: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use caravan_schemas::plan::DesiredUpdates;
    use serde_json::{Value, json};

    use super::*;
    use crate::store::{ObjectJson, Op, Precondition};

    fn put(state: &mut State, index: u64, kind: Kind, object: Value) {
        let applied = state.apply(
            index,
            vec![Op::Put {
                kind,
                object: ObjectJson::from_value(object),
                expect: Precondition::Absent,
                version: None,
            }],
        );
        assert!(applied.results[0].is_ok(), "{:?}", applied.results);
    }

    fn job(count: u32) -> Value {
        json!({
            "apiVersion": "caravan.dev/v1",
            "kind": "Job",
            "metadata": {"name": "web", "namespace": "default", "generation": 1},
            "spec": {
                "datacenters": ["dc1"],
                "groups": [{
                    "name": "g",
                    "count": count,
                    "tasks": [{"name": "t", "driver": "mock", "resources": {"cpu": 100, "memoryMB": 64}}]
                }]
            }
        })
    }

    fn node(name: &str) -> Value {
        serde_json::to_value(caravan_schemas::mock::node(name)).expect("a node")
    }

    fn state_with_nodes(nodes: usize) -> State {
        let mut state = State::default();
        let ns = json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": "default"}});
        put(&mut state, 1, Kind::Namespace, ns);
        for i in 0..nodes {
            put(&mut state, 2 + i as u64, Kind::Node, node(&format!("n{i}")));
        }
        state
    }

    fn proposed(value: Value) -> Job {
        serde_json::from_value(value).expect("a Job")
    }

    fn request(job: Job) -> PlanRequest {
        PlanRequest {
            proposed: job,
            now_unix: 1_800_000_000,
        }
    }

    #[test]
    fn a_new_job_plans_its_placements_at_the_snapshot_revision() {
        let state = state_with_nodes(2);
        let snapshot = snapshot(&state, "default", "web").expect("snapshot");
        assert_eq!(snapshot.revision, 3);
        let plan = plan(snapshot, request(proposed(job(3)))).expect("plan");
        assert_eq!(plan.kind, "JobPlan");
        assert_eq!(plan.revision(), 3);
        assert_eq!(plan.current_spec, None);
        assert_eq!(plan.version, 0);
        assert_eq!(
            plan.annotations.get("g"),
            Some(&DesiredUpdates {
                place: 3,
                ..DesiredUpdates::default()
            }),
            "{plan:?}"
        );
        assert!(plan.changes_allocations());
    }

    #[test]
    fn a_missing_namespace_is_reported() {
        let state = State::default();
        assert!(matches!(
            snapshot(&state, "prod", "web"),
            Err(JobPlanError::NamespaceNotFound(ns)) if ns == "prod"
        ));
    }

    #[test]
    fn a_job_changed_since_admission_is_refused() {
        let mut state = state_with_nodes(1);
        put(&mut state, 10, Kind::Job, job(1));
        assert_eq!(state.revision(), 10);
        // Admitted as new, but the job exists now.
        let snap = snapshot(&state, "default", "web").expect("snapshot");
        assert!(matches!(
            plan(snap, request(proposed(job(2)))),
            Err(JobPlanError::Changed(_))
        ));
        // Admitted over revision 10: the stored one.
        let mut over = proposed(job(2));
        over.metadata.resource_version = Some("10".into());
        let snap = snapshot(&state, "default", "web").expect("snapshot");
        let plan = plan(snap, request(over)).expect("plan");
        assert!(plan.current_spec.is_some());
    }
}
