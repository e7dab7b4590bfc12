use std::sync::Arc;

use caravan_schemas::Kind;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::*;
use crate::http::context::{ApiConfig, ApiContext};
use crate::raft::{Store, StoreConfig};

/// A one-server store in a temporary directory with the `default` namespace, and the API
/// context over it; the watch cache keeps `cache_size` events per kind.
pub(crate) async fn context(cache_size: usize) -> (TempDir, Arc<ApiContext>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = StoreConfig::new(dir.path().join("raft"), "127.0.0.1:0".into());
    config.watch_cache_size = cache_size;
    let store = Store::open(config).await.expect("store opens");
    let ctx = Arc::new(ApiContext::new(store, ApiConfig::default()));
    let ns = json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": "default"}});
    create_value(&ctx, Kind::Namespace, None, &Query::default(), ns)
        .await
        .expect("the default namespace");
    (dir, ctx)
}

/// A small valid Job.
pub(crate) fn job(name: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"groups": [{"name": "g", "tasks": [{"name": "t", "driver": "mock"}]}]}
    })
}

pub(crate) async fn create_job(ctx: &ApiContext, job: Value) -> Arc<StoredObject> {
    let created = create_value(ctx, Kind::Job, Some("default"), &Query::default(), job)
        .await
        .expect("the job is created");
    match created.object {
        crate::http::Payload::Stored(object) => object,
        other => panic!("{other:?}"),
    }
}

fn job_path(name: &str) -> ResourcePath {
    ResourcePath {
        kind: Kind::Job,
        namespace: Some("default".into()),
        name: Some(name.into()),
        status: false,
    }
}

fn query(raw: &str) -> Query {
    Query::parse(Some(raw)).expect("query")
}

fn stored(ctx: &ApiContext, name: &str) -> Arc<StoredObject> {
    current(ctx, &key_of(&job_path(name))).expect("stored")
}

async fn patch_json(
    ctx: &ApiContext,
    name: &str,
    raw_query: &str,
    patch: Value,
) -> Result<Outcome, ApiError> {
    let body = Bytes::from(patch.to_string());
    super::patch(
        ctx,
        &job_path(name),
        &query(raw_query),
        "application/json-patch+json",
        &body,
    )
    .await
}

async fn merge(ctx: &ApiContext, path: &ResourcePath, patch: Value) -> Result<Outcome, ApiError> {
    let body = Bytes::from(patch.to_string());
    super::patch(
        ctx,
        path,
        &Query::default(),
        "application/merge-patch+json",
        &body,
    )
    .await
}

fn assert_too_large(result: Result<Outcome, ApiError>) -> String {
    match result {
        Err(
            e @ ApiError::TooLarge {
                message: Some(_), ..
            },
        ) => {
            let status = e.to_status();
            assert_eq!(
                (status.code, status.reason.as_str()),
                (413, "RequestEntityTooLarge")
            );
            status.message
        }
        other => panic!("expected a 413, got {other:?}"),
    }
}

fn assert_immutable(result: Result<Outcome, ApiError>, field: &str) {
    match result {
        Err(ApiError::Invalid { causes, .. }) => {
            assert_eq!(causes.len(), 1, "{causes:?}");
            assert_eq!(causes[0].field, field);
            assert!(
                causes[0].message.contains("field is immutable"),
                "{causes:?}"
            );
        }
        other => panic!("expected a 422 on {field}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_json_patch_that_grows_the_object_past_the_limit_is_refused() {
    let (_dir, ctx) = context(100).await;
    let mut grow = job("grow");
    grow["spec"]["groups"][0]["tasks"][0]["config"] = json!({"command": "/bin/true"});
    let before = create_job(&ctx, grow).await;
    // 18 copies of /spec into itself: 1,288 bytes of patch, 180 MB of object before the fix.
    let copies: Vec<Value> = (0..18)
        .map(|i| json!({"op": "copy", "from": "/spec", "path": format!("/spec/groups/0/tasks/0/config/x{i}")}))
        .collect();
    for raw_query in ["dryRun=All", ""] {
        let msg = assert_too_large(patch_json(&ctx, "grow", raw_query, json!(copies)).await);
        assert!(msg.contains("JSON patch would make"), "{msg}");
    }
    assert_eq!(
        stored(&ctx, "grow").resource_version,
        before.resource_version
    );
    // A few copies stay under the limit and are applied.
    let outcome = patch_json(&ctx, "grow", "", json!(copies[..3]))
        .await
        .unwrap();
    assert_eq!(outcome.code, 200);
    assert!(stored(&ctx, "grow").json.len() > 4 * before.json.len());
}

#[tokio::test]
async fn a_json_patch_of_too_many_operations_is_refused() {
    let (_dir, ctx) = context(100).await;
    create_job(&ctx, job("ops")).await;
    let test = json!({"op": "test", "path": "/kind", "value": "Job"});
    let ops = vec![test; MAX_JSON_PATCH_OPS + 1];
    let msg = assert_too_large(patch_json(&ctx, "ops", "", json!(ops)).await);
    assert!(
        msg.contains("maximum operations in a JSON patch is 10000, got 10001"),
        "{msg}"
    );
    let ops = vec![json!({"op": "test", "path": "/kind", "value": "Job"}); MAX_JSON_PATCH_OPS];
    assert!(patch_json(&ctx, "ops", "", json!(ops)).await.is_ok());
}

#[tokio::test]
async fn no_write_stores_an_object_past_the_limit() {
    let (_dir, ctx) = context(100).await;
    let big = "x".repeat(MAX_OBJECT_BYTES);
    // Create (and a dry-run create).
    let mut huge = job("huge");
    huge["spec"]["groups"][0]["tasks"][0]["config"] = json!({"blob": big});
    for raw_query in ["dryRun=All", ""] {
        let created = create_value(
            &ctx,
            Kind::Job,
            Some("default"),
            &query(raw_query),
            huge.clone(),
        )
        .await;
        assert_too_large(created);
    }
    assert!(current(&ctx, &key_of(&job_path("huge"))).is_none());

    // Merge patches: each half the limit fits, the second one does not.
    let before = create_job(&ctx, job("grows")).await;
    let half = "y".repeat(MAX_OBJECT_BYTES / 2);
    let config = |key: &str| json!({"spec": {"groups": [{"name": "g", "tasks": [{"name": "t", "driver": "mock", "config": {key: half}}]}]}});
    merge(&ctx, &job_path("grows"), config("a")).await.unwrap();
    let mut both = config("a");
    both["spec"]["groups"][0]["tasks"][0]["config"]["b"] = json!(half);
    let after_one = stored(&ctx, "grows");
    assert!(after_one.resource_version > before.resource_version);
    assert_too_large(merge(&ctx, &job_path("grows"), both.clone()).await);
    // An apply patch, and a PUT of the same object.
    let mut applied = job("grows");
    applied["spec"] = both["spec"].clone();
    let body = Bytes::from(applied.to_string());
    let path = job_path("grows");
    let apply_media = "application/apply-patch+yaml";
    assert_too_large(super::patch(&ctx, &path, &Query::default(), apply_media, &body).await);
    applied["metadata"]["resourceVersion"] = json!(after_one.resource_version.to_string());
    let body = Bytes::from(applied.to_string());
    assert_too_large(replace(&ctx, &path, &Query::default(), "application/json", &body).await);
    assert_eq!(
        stored(&ctx, "grows").resource_version,
        after_one.resource_version
    );

    // The status subresource.
    let status = ResourcePath {
        status: true,
        ..job_path("grows")
    };
    let conditions = |n: usize| {
        json!({"status": {"conditions": (0..n).map(|i| json!({
            "type": format!("C{i}"), "status": "True", "message": "z".repeat(100_000)
        })).collect::<Vec<_>>()}})
    };
    assert_too_large(merge(&ctx, &status, conditions(40)).await);
    assert_eq!(
        stored(&ctx, "grows").resource_version,
        after_one.resource_version
    );
}

#[tokio::test]
async fn a_patch_cannot_rename_an_object_or_move_it() {
    let (_dir, ctx) = context(100).await;
    let before = create_job(&ctx, job("a")).await;
    let path = job_path("a");
    assert_immutable(
        merge(&ctx, &path, json!({"metadata": {"name": "b"}})).await,
        "metadata.name",
    );
    assert_immutable(
        merge(&ctx, &path, json!({"metadata": {"name": null}})).await,
        "metadata.name",
    );
    assert_immutable(
        merge(&ctx, &path, json!({"metadata": {"namespace": "prod"}})).await,
        "metadata.namespace",
    );
    let rename = json!([{"op": "replace", "path": "/metadata/name", "value": "b"}]);
    assert_immutable(patch_json(&ctx, "a", "", rename).await, "metadata.name");
    let status = ResourcePath {
        status: true,
        ..job_path("a")
    };
    assert_immutable(
        merge(&ctx, &status, json!({"metadata": {"name": "b"}})).await,
        "metadata.name",
    );
    let mut applied = job("a");
    applied["metadata"]["namespace"] = json!("prod");
    let body = Bytes::from(applied.to_string());
    let apply_media = "application/apply-patch+yaml";
    let apply = super::patch(&ctx, &path, &Query::default(), apply_media, &body).await;
    assert_immutable(apply, "metadata.namespace");
    assert_eq!(stored(&ctx, "a").resource_version, before.resource_version);
    // The same name and namespace are no change.
    let same = json!({"metadata": {"name": "a", "namespace": "default", "labels": {"x": "y"}}});
    assert_eq!(merge(&ctx, &path, same).await.unwrap().code, 200);
    assert_eq!(stored(&ctx, "a").to_value()["metadata"]["labels"]["x"], "y");
}

#[tokio::test]
async fn strict_validation_refuses_duplicate_keys() {
    let (_dir, ctx) = context(100).await;
    let path = ResourcePath {
        name: None,
        ..job_path("")
    };
    let body = Bytes::from_static(
        br#"{"apiVersion": "caravan.dev/v1", "kind": "Job", "metadata": {"name": "a", "name": "b"},
            "spec": {"groups": [{"name": "g", "tasks": [{"name": "t", "driver": "mock"}]}]}}"#,
    );
    match create(&ctx, &path, &Query::default(), "application/json", &body).await {
        Err(ApiError::BadRequest(msg)) => assert!(
            msg.starts_with(r#"strict decoding error: json: duplicate field "name""#),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    let ignore = query("fieldValidation=Ignore");
    let lenient = create(&ctx, &path, &ignore, "application/json", &body).await;
    assert_eq!(lenient.unwrap().code, 201);
    assert!(current(&ctx, &key_of(&job_path("b"))).is_some());
}
