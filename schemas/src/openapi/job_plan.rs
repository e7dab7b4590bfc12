//! The OpenAPI 3.0 parts of the job plan endpoint: its path item and the `JobPlan` and
//! `DesiredUpdates` schemas it refers to.

use serde_json::{Map, Value, json};

use super::COMPONENT_PREFIX;
use crate::job_plan::{KIND, SUBRESOURCE};
use crate::{API_VERSION, GROUP, VERSION};

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
            "canary": count("Canaries placed beside the allocations they will replace once promoted."),
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
