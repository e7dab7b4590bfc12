//! `JobPlan`: the answer of `POST /apis/caravan.dev/v1/namespaces/{namespace}/jobs/{name}/plan`
//! (Nomad's `Job.Plan`): what registering a Job would do, computed by the server with the real
//! scheduler on one snapshot of its state, nothing written.
//!
//! ```text
//! Job (body) ─▶ admission (as a dry-run server-side apply) ─▶ scheduler dry run ─▶ JobPlan
//!                                                                 {job, currentSpec, version,
//!                                                                  annotations, failedGroupAllocs,
//!                                                                  createdEvals, resourceVersion}
//! ```
//!
//! Every client (the CLI's `job plan`, `kubectl create --raw …/plan`, an operator's tool)
//! decodes this one type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plan::DesiredUpdates;
use crate::{API_VERSION, AllocMetrics, Evaluation, Job, JobSpec, ObjectMeta};

/// `kind` of a [`JobPlan`].
pub const KIND: &str = "JobPlan";

/// The last path segment of the plan endpoint, under a job: `…/jobs/{name}/plan`.
pub const SUBRESOURCE: &str = "plan";

/// What registering a job would do.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobPlan {
    /// `caravan.dev/v1`.
    pub api_version: String,
    /// `JobPlan`.
    pub kind: String,
    /// The planned job's name and namespace; `resourceVersion` is the store revision the plan
    /// was computed at (as a list's is the revision it was read at).
    pub metadata: ObjectMeta,
    /// The job as the server would store it: admitted, defaults applied, exactly what a
    /// dry-run server-side apply of the body returns.
    pub job: Job,
    /// The spec of the job as stored now; `null` when the job does not exist.
    pub current_spec: Option<JobSpec>,
    /// The version the job would get: the current one when the spec is unchanged, else the
    /// next (0 for a new job).
    pub version: i64,
    /// What the scheduler would do, per group (Nomad's `Annotations.DesiredTGUpdates`).
    #[serde(default)]
    pub annotations: BTreeMap<String, DesiredUpdates>,
    /// Placement metrics of the groups that could not be placed in full (Nomad's
    /// `FailedTGAllocs`).
    #[serde(default)]
    pub failed_group_allocs: BTreeMap<String, AllocMetrics>,
    /// Evaluations the scheduler would create: a blocked one for failed placements, the
    /// follow-up of a rolling update (`spec.waitUntil`).
    #[serde(default)]
    pub created_evals: Vec<Evaluation>,
}

impl JobPlan {
    /// A plan of `job` with its envelope set: `apiVersion`, `kind`, and the job's name and
    /// namespace with `revision` as `metadata.resourceVersion`.
    pub fn new(job: Job, revision: u64) -> JobPlan {
        JobPlan {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            metadata: ObjectMeta {
                name: job.metadata.name.clone(),
                namespace: job.metadata.namespace.clone(),
                resource_version: Some(revision.to_string()),
                ..ObjectMeta::default()
            },
            job,
            ..JobPlan::default()
        }
    }

    /// The store revision the plan was computed at; 0 when unknown.
    pub fn revision(&self) -> u64 {
        self.metadata
            .resource_version
            .as_deref()
            .and_then(|rv| rv.parse().ok())
            .unwrap_or(0)
    }

    /// Whether registering the job would create, stop, migrate, replace or reschedule an
    /// allocation (in-place updates and ignores change no allocation's life): Nomad's
    /// `job plan` exit code 1.
    pub fn changes_allocations(&self) -> bool {
        self.annotations
            .values()
            .any(|u| u.place + u.stop + u.migrate + u.destructive_update + u.reschedule > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::openapi_v3_document;
    use serde_json::Value;

    #[test]
    fn a_job_plan_is_camel_case_json_with_a_null_current_spec() {
        let mut job = Job::default();
        job.metadata.name = Some("web".into());
        job.metadata.namespace = Some("default".into());
        let mut plan = JobPlan::new(job, 42);
        plan.annotations.insert(
            "g".into(),
            DesiredUpdates {
                place: 2,
                ..DesiredUpdates::default()
            },
        );
        let value = serde_json::to_value(&plan).expect("serializes");
        assert_eq!(value["apiVersion"], API_VERSION);
        assert_eq!(value["kind"], "JobPlan");
        assert_eq!(value["metadata"]["name"], "web");
        assert_eq!(value["metadata"]["resourceVersion"], "42");
        assert_eq!(value["currentSpec"], Value::Null);
        assert_eq!(value["annotations"]["g"]["place"], 2);
        let back: JobPlan = serde_json::from_value(value).expect("decodes");
        assert_eq!(back, plan);
        assert_eq!(back.revision(), 42);
        assert!(back.changes_allocations());
    }

    #[test]
    fn the_plan_path_and_its_schemas_are_in_the_openapi_document() {
        let doc = openapi_v3_document();
        let (path, _) = crate::openapi::job_plan::openapi_path();
        let post = &doc["paths"][&path]["post"];
        assert_eq!(post["x-kubernetes-action"], "post", "{path} missing");
        for name in [
            KIND,
            "DesiredUpdates",
            "Job",
            "JobSpec",
            "AllocMetrics",
            "Evaluation",
        ] {
            assert!(
                doc["components"]["schemas"]
                    .get(format!("{}{name}", crate::openapi::COMPONENT_PREFIX))
                    .is_some(),
                "{name} missing"
            );
        }
    }
}
