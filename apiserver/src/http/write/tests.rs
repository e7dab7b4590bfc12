use caravan_schemas::Kind;
use serde_json::{Value, json};

use super::*;
use crate::api::testing::{context, create_job, job};

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

async fn patch_json(ctx: &ApiContext, name: &str, patch: Value) -> Result<Outcome, ApiError> {
    let body = Bytes::from(patch.to_string());
    let media = "application/json-patch+json";
    super::patch(ctx, &job_path(name), &Query::default(), media, &body).await
}

#[tokio::test]
async fn a_json_patch_of_too_many_operations_is_refused() {
    let (_dir, ctx) = context(100).await;
    create_job(&ctx, job("ops")).await;
    let test = json!({"op": "test", "path": "/kind", "value": "Job"});
    let ops = vec![test; MAX_JSON_PATCH_OPS + 1];
    match patch_json(&ctx, "ops", json!(ops)).await {
        Err(e @ ApiError::Api(api::Error::TooLarge { .. })) => {
            let status = e.to_status();
            assert_eq!(
                (status.code, status.reason.as_str()),
                (413, "RequestEntityTooLarge")
            );
            assert!(
                status
                    .message
                    .contains("maximum operations in a JSON patch is 10000, got 10001"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a 413, got {other:?}"),
    }
    let ops = vec![json!({"op": "test", "path": "/kind", "value": "Job"}); MAX_JSON_PATCH_OPS];
    assert!(patch_json(&ctx, "ops", json!(ops)).await.is_ok());
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
        Err(ApiError::Api(api::Error::BadRequest(msg))) => assert!(
            msg.starts_with(r#"strict decoding error: json: duplicate field "name""#),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    let ignore = query("fieldValidation=Ignore");
    let lenient = create(&ctx, &path, &ignore, "application/json", &body).await;
    assert!(lenient.unwrap().created);
    let options = api::GetOptions::default();
    assert!(api::get(&ctx, Kind::Job, "default", "b", &options).is_ok());
}
