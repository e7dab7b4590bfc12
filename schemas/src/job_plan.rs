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
use serde_json::{Map, Value, json};

use crate::openapi::COMPONENT_PREFIX;
use crate::plan::DesiredUpdates;
use crate::{API_VERSION, AllocMetrics, Evaluation, GROUP, Job, JobSpec, ObjectMeta, VERSION};

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

/// The OpenAPI 3.0 component schemas the plan path refers to: `JobPlan` and `DesiredUpdates`,
/// by their full component names.
pub fn openapi_components() -> Vec<(String, Value)> {
    let count = |description: &str| json!({"description": description, "type": "integer", "format": "int64"});
    let desired_updates = json!({
        "description": "Changes the scheduler wants for one group (Nomad's DesiredUpdates).",
        "type": "object",
        "properties": {
            "place": count("New allocations to place."),
            "stop": count("Allocations to stop."),
            "ignore": count("Allocations left alone."),
            "inPlaceUpdate": count("Allocations updated without restarting their tasks."),
            "destructiveUpdate": count("Allocations replaced because their tasks changed."),
            "migrate": count("Allocations moved off draining nodes."),
            "reschedule": count("Allocations replaced because their node was lost or they failed."),
        },
    });
    let job_plan = json!({
        "description": "What registering a Job would do, computed by the server's scheduler; nothing is written.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "job", "version"],
        "properties": {
            "apiVersion": {"description": "`caravan.dev/v1`.", "type": "string", "enum": [API_VERSION]},
            "kind": {"description": "`JobPlan`.", "type": "string", "enum": [KIND]},
            "metadata": {
                "description": "The planned job's name and namespace; resourceVersion is the revision the plan was computed at.",
                "allOf": [reference("ObjectMeta")],
            },
            "job": {
                "description": "The job as the server would store it: admitted, defaults applied.",
                "allOf": [reference("Job")],
            },
            "currentSpec": {
                "description": "The spec of the job as stored now; null when the job does not exist.",
                "nullable": true,
                "allOf": [reference("JobSpec")],
            },
            "version": count("The version the job would get."),
            "annotations": {
                "description": "What the scheduler would do, per group.",
                "type": "object",
                "additionalProperties": reference("DesiredUpdates"),
            },
            "failedGroupAllocs": {
                "description": "Placement metrics of the groups that could not be placed in full.",
                "type": "object",
                "additionalProperties": reference("AllocMetrics"),
            },
            "createdEvals": {
                "description": "Evaluations the scheduler would create (blocked, rolling-update follow-ups).",
                "type": "array",
                "items": reference("Evaluation"),
            },
        },
        "x-kubernetes-group-version-kind": [gvk()],
    });
    vec![
        (component(KIND), job_plan),
        (component("DesiredUpdates"), desired_updates),
    ]
}

/// The OpenAPI 3.0 path item of the plan endpoint, by its path.
pub fn openapi_path() -> (String, Value) {
    let query = |name: &str, description: &str| json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}});
    let content = |schema: Value| json!({"application/json": {"schema": schema.clone()}, "application/yaml": {"schema": schema}});
    let status = json!({"application/json": {"schema": reference("Status")}});
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({"description": "OK", "content": content(reference(KIND))}),
    );
    for (code, description) in [
        (
            "400",
            "BadRequest: the body is malformed or names another job or namespace",
        ),
        ("404", "NotFound: the namespace does not exist"),
        (
            "409",
            "Conflict: the job kept changing while the plan was computed",
        ),
        (
            "413",
            "RequestEntityTooLarge: the body or the admitted job is over its limit",
        ),
        (
            "415",
            "UnsupportedMediaType: the body is neither JSON nor YAML",
        ),
        (
            "422",
            "Invalid: every field of the job that breaks the schema or a semantic check",
        ),
        ("503", "ServiceUnavailable: no leader"),
    ] {
        responses.insert(
            code.into(),
            json!({"description": description, "content": status}),
        );
    }
    let post = json!({
        "operationId": "createCaravanDevV1NamespacedJobPlan",
        "description": "plan the specified Job: what registering it would do, computed by the scheduler on the server's state; nothing is written",
        "tags": ["caravanDev_v1"],
        "parameters": [
            query("pretty", "If 'true', then the output is pretty printed."),
            query("dryRun", "Accepted for symmetry with writes (All); a plan never persists anything."),
            query("fieldValidation", "How the server handles unknown or duplicate fields of the Job: Ignore, Warn or Strict (the default)."),
        ],
        "requestBody": {"required": true, "content": content(reference("Job"))},
        "responses": responses,
        "x-kubernetes-action": "post",
        "x-kubernetes-group-version-kind": gvk(),
    });
    let path =
        format!("/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/jobs/{{name}}/{SUBRESOURCE}");
    let item = json!({
        "post": post,
        "parameters": [
            {"name": "name", "in": "path", "required": true, "description": "name of the Job", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "namespace", "in": "path", "required": true, "description": "object name and auth scope, such as for teams and projects", "schema": {"type": "string", "uniqueItems": true}},
        ],
    });
    (path, item)
}

fn component(name: &str) -> String {
    format!("{COMPONENT_PREFIX}{name}")
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{}", component(name))})
}

fn gvk() -> Value {
    json!({"group": GROUP, "version": VERSION, "kind": KIND})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::openapi_v3_document;

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
        let (path, _) = openapi_path();
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
                doc["components"]["schemas"].get(component(name)).is_some(),
                "{name} missing"
            );
        }
    }
}
