//! The job plan endpoint through the whole router: admission errors, a new job's placements,
//! nothing written.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, header};
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt as _;

use super::*;
use crate::http::path::PREFIX;
use crate::raft::{ReplicatedStore, StoreConfig};

const V1: &str = "/apis/caravan.dev/v1";

/// A one-server store with the `default` namespace, and the API context over it.
async fn server() -> (TempDir, Arc<ApiContext>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = StoreConfig::new(dir.path().join("raft"), "127.0.0.1:0".into());
    let store = ReplicatedStore::open(config).await.expect("store opens");
    let ctx = Arc::new(ApiContext::new(store, Default::default()));
    let ns = json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": "default"}});
    let (code, body) = send(
        &ctx,
        "POST",
        &format!("{V1}/namespaces"),
        JSON,
        &ns.to_string(),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    (dir, ctx)
}

const JSON: &str = "application/json";

async fn send(
    ctx: &Arc<ApiContext>,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_owned()))
        .expect("request");
    let resp = crate::http::router(ctx.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let code = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn plan_path(ns: &str, name: &str) -> String {
    format!("{V1}/namespaces/{ns}/jobs/{name}/plan")
}

/// A service job of `count` allocations, no priority (admission defaults it to 50).
fn job(name: &str, count: u32) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name},
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

async fn plan_of(ctx: &Arc<ApiContext>, body: &Value) -> (u16, Value) {
    send(
        ctx,
        "POST",
        &plan_path("default", "web"),
        JSON,
        &body.to_string(),
    )
    .await
}

fn revision(ctx: &ApiContext) -> u64 {
    ctx.store.state().revision()
}

async fn count(ctx: &Arc<ApiContext>, plural: &str) -> usize {
    let (code, list) = send(
        ctx,
        "GET",
        &format!("{V1}/namespaces/default/{plural}"),
        JSON,
        "",
    )
    .await;
    assert_eq!(code, 200, "{list}");
    list["items"].as_array().map_or(0, Vec::len)
}

#[test]
fn only_job_plan_paths_match() {
    assert_eq!(
        JobPlanPath::parse(&format!("{PREFIX}namespaces/default/jobs/web/plan")),
        Some(JobPlanPath {
            namespace: "default".to_owned(),
            job: "web".to_owned(),
        })
    );
    for other in [
        "namespaces/default/jobs/web",
        "namespaces/default/jobs/web/status",
        "namespaces/default/evaluations/web/plan",
        "namespaces//jobs/web/plan",
        "namespaces/default/jobs//plan",
        "jobs/web/plan",
    ] {
        assert_eq!(
            JobPlanPath::parse(&format!("{PREFIX}{other}")),
            None,
            "{other}"
        );
    }
}

#[tokio::test]
async fn a_plan_of_a_new_job_places_its_allocations_and_writes_nothing() {
    let (_dir, ctx) = server().await;
    let before = revision(&ctx);
    let (code, plan) = plan_of(&ctx, &job("web", 3)).await;
    assert_eq!(code, 200, "{plan}");
    assert_eq!(plan["apiVersion"], "caravan.dev/v1");
    assert_eq!(plan["kind"], "JobPlan");
    assert_eq!(plan["metadata"]["name"], "web");
    assert_eq!(plan["metadata"]["namespace"], "default");
    assert_eq!(plan["metadata"]["resourceVersion"], before.to_string());
    assert_eq!(plan["currentSpec"], Value::Null);
    assert_eq!(plan["version"], 0);
    // Admitted: defaults applied, as the stored job would have them.
    assert_eq!(plan["job"]["spec"]["priority"], 50, "{plan}");
    assert_eq!(plan["annotations"]["g"]["place"], 3, "{plan}");
    // No node: every placement fails, with its metrics, and a blocked evaluation follows.
    assert!(plan["failedGroupAllocs"]["g"].is_object(), "{plan}");
    let typed: caravan_schemas::job_plan::JobPlan =
        serde_json::from_value(plan).expect("a JobPlan");
    assert!(typed.changes_allocations());

    assert_eq!(revision(&ctx), before, "the plan wrote");
    let (code, _) = send(
        &ctx,
        "GET",
        &format!("{V1}/namespaces/default/jobs/web"),
        JSON,
        "",
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(count(&ctx, "evaluations").await, 0);
    assert_eq!(count(&ctx, "allocations").await, 0);
}

#[tokio::test]
async fn an_invalid_job_is_422_with_every_failing_field() {
    let (_dir, ctx) = server().await;
    let mut bad = job("web", 1);
    bad["spec"]["priority"] = "high".into();
    bad["spec"]["groups"][0]["count"] = "two".into();
    let (code, status) = plan_of(&ctx, &bad).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Invalid");
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(fields.contains(&"spec.priority"), "{status}");
    assert!(fields.contains(&"spec.groups[0].count"), "{status}");
}

#[tokio::test]
async fn a_changed_job_is_planned_against_the_stored_one_at_its_next_version() {
    let (_dir, ctx) = server().await;
    let (code, body) = send(
        &ctx,
        "POST",
        &format!("{V1}/namespaces/default/jobs"),
        JSON,
        &job("web", 1).to_string(),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let stored = body;

    // The same job changes nothing: same version.
    let (code, same) = plan_of(&ctx, &job("web", 1)).await;
    assert_eq!(code, 200, "{same}");
    assert_eq!(same["version"], 0);
    assert_eq!(same["currentSpec"], stored["spec"]);

    let (code, plan) = plan_of(&ctx, &job("web", 2)).await;
    assert_eq!(code, 200, "{plan}");
    assert_eq!(plan["currentSpec"]["groups"][0]["count"], 1);
    assert_eq!(plan["job"]["spec"]["groups"][0]["count"], 2);
    assert_eq!(plan["version"], 1);
    // The stored job is untouched.
    let (_, after) = send(
        &ctx,
        "GET",
        &format!("{V1}/namespaces/default/jobs/web"),
        JSON,
        "",
    )
    .await;
    assert_eq!(after, stored);
}

#[tokio::test]
async fn a_yaml_body_is_planned() {
    let (_dir, ctx) = server().await;
    let yaml = yaml_serde::to_string(&job("web", 2)).expect("yaml");
    let (code, plan) = send(
        &ctx,
        "POST",
        &plan_path("default", "web"),
        "application/yaml",
        &yaml,
    )
    .await;
    assert_eq!(code, 200, "{plan}");
    assert_eq!(plan["annotations"]["g"]["place"], 2, "{plan}");
}

#[tokio::test]
async fn the_body_must_be_a_job_of_the_path() {
    let (_dir, ctx) = server().await;
    let (code, status) = send(
        &ctx,
        "POST",
        &plan_path("default", "other"),
        JSON,
        &job("web", 1).to_string(),
    )
    .await;
    assert_eq!(
        (code, &status["reason"]),
        (400, &json!("BadRequest")),
        "{status}"
    );

    let mut elsewhere = job("web", 1);
    elsewhere["metadata"]["namespace"] = "prod".into();
    let (code, status) = plan_of(&ctx, &elsewhere).await;
    assert_eq!(code, 400, "{status}");

    let mut node = job("web", 1);
    node["kind"] = "Node".into();
    let (code, status) = plan_of(&ctx, &node).await;
    assert_eq!(code, 400, "{status}");

    let (code, status) = send(&ctx, "POST", &plan_path("default", "web"), JSON, "{").await;
    assert_eq!(code, 400, "{status}");

    let (code, status) = send(&ctx, "GET", &plan_path("default", "web"), JSON, "").await;
    assert_eq!(code, 405, "{status}");
}

#[tokio::test]
async fn a_plan_in_a_missing_namespace_is_404() {
    let (_dir, ctx) = server().await;
    let (code, status) = send(
        &ctx,
        "POST",
        &plan_path("prod", "web"),
        JSON,
        &job("web", 1).to_string(),
    )
    .await;
    assert_eq!(code, 404, "{status}");
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["details"]["kind"], "namespaces", "{status}");
}
