use caravan_runtime::Subresource;
use serde_json::{Value, json};

use super::*;
use crate::api::testing::{context, create_job, job};

fn dry_run(dry_run: bool) -> WriteOptions {
    WriteOptions {
        dry_run,
        ..WriteOptions::default()
    }
}

fn stored(ctx: &ApiContext, name: &str) -> Option<Arc<StoredObject>> {
    current(ctx, &key(Kind::Job, "default", name))
}

async fn patch_job(
    ctx: &ApiContext,
    name: &str,
    subresource: Subresource,
    p: Patch,
    options: &WriteOptions,
) -> Result<Outcome, Error> {
    patch(ctx, Kind::Job, "default", name, subresource, p, options).await
}

async fn merge(ctx: &ApiContext, name: &str, status: bool, p: Value) -> Result<Outcome, Error> {
    let subresource = if status {
        Subresource::Status
    } else {
        Subresource::Main
    };
    let options = WriteOptions::default();
    patch_job(ctx, name, subresource, Patch::Merge(p), &options).await
}

async fn json_patch(
    ctx: &ApiContext,
    name: &str,
    ops: Value,
    options: &WriteOptions,
) -> Result<Outcome, Error> {
    let ops = serde_json::from_value(ops).expect("a JSON patch");
    patch_job(ctx, name, Subresource::Main, Patch::Json(ops), options).await
}

fn assert_too_large(result: Result<Outcome, Error>) -> String {
    match result {
        Err(Error::TooLarge { message, .. }) => message,
        other => panic!("expected a 413, got {other:?}"),
    }
}

fn assert_immutable(result: Result<Outcome, Error>, field: &str) {
    match result {
        Err(Error::Invalid { causes, .. }) => {
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
    for options in [dry_run(true), dry_run(false)] {
        let msg = assert_too_large(json_patch(&ctx, "grow", json!(copies), &options).await);
        assert!(msg.contains("JSON patch would make"), "{msg}");
    }
    let after = stored(&ctx, "grow").expect("stored");
    assert_eq!(after.resource_version, before.resource_version);
    // A few copies stay under the limit and are applied.
    let outcome = json_patch(&ctx, "grow", json!(copies[..3]), &dry_run(false))
        .await
        .unwrap();
    assert!(!outcome.created);
    assert!(stored(&ctx, "grow").expect("stored").json.len() > 4 * before.json.len());
}

#[tokio::test]
async fn no_write_stores_an_object_past_the_limit() {
    let (_dir, ctx) = context(100).await;
    let big = "x".repeat(MAX_OBJECT_BYTES);
    // Create (and a dry-run create).
    let mut huge = job("huge");
    huge["spec"]["groups"][0]["tasks"][0]["config"] = json!({"blob": big});
    for options in [dry_run(true), dry_run(false)] {
        let created = create(&ctx, Kind::Job, "default", huge.clone(), &options).await;
        assert_too_large(created);
    }
    assert!(stored(&ctx, "huge").is_none());

    // Merge patches: each half the limit fits, the second one does not.
    let before = create_job(&ctx, job("grows")).await;
    let half = "y".repeat(MAX_OBJECT_BYTES / 2);
    let config = |key: &str| json!({"spec": {"groups": [{"name": "g", "tasks": [{"name": "t", "driver": "mock", "config": {key: half}}]}]}});
    merge(&ctx, "grows", false, config("a")).await.unwrap();
    let mut both = config("a");
    both["spec"]["groups"][0]["tasks"][0]["config"]["b"] = json!(half);
    let after_one = stored(&ctx, "grows").expect("stored");
    assert!(after_one.resource_version > before.resource_version);
    assert_too_large(merge(&ctx, "grows", false, both.clone()).await);
    // An apply patch, and a replacement of the same object.
    let mut applied = job("grows");
    applied["spec"] = both["spec"].clone();
    let options = WriteOptions::default();
    let apply = Patch::Apply(applied.clone());
    assert_too_large(patch_job(&ctx, "grows", Subresource::Main, apply, &options).await);
    applied["metadata"]["resourceVersion"] = json!(after_one.resource_version.to_string());
    let replaced = replace(
        &ctx,
        Kind::Job,
        "default",
        "grows",
        Subresource::Main,
        applied,
        &options,
    );
    assert_too_large(replaced.await);
    let rv = |ctx: &ApiContext| stored(ctx, "grows").expect("stored").resource_version;
    assert_eq!(rv(&ctx), after_one.resource_version);

    // The status subresource.
    let conditions = |n: usize| {
        json!({"status": {"conditions": (0..n).map(|i| json!({
            "type": format!("C{i}"), "status": "True", "message": "z".repeat(100_000)
        })).collect::<Vec<_>>()}})
    };
    assert_too_large(merge(&ctx, "grows", true, conditions(40)).await);
    assert_eq!(rv(&ctx), after_one.resource_version);
}

#[tokio::test]
async fn a_patch_cannot_rename_an_object_or_move_it() {
    let (_dir, ctx) = context(100).await;
    let before = create_job(&ctx, job("a")).await;
    assert_immutable(
        merge(&ctx, "a", false, json!({"metadata": {"name": "b"}})).await,
        "metadata.name",
    );
    assert_immutable(
        merge(&ctx, "a", false, json!({"metadata": {"name": null}})).await,
        "metadata.name",
    );
    assert_immutable(
        merge(&ctx, "a", false, json!({"metadata": {"namespace": "prod"}})).await,
        "metadata.namespace",
    );
    let rename = json!([{"op": "replace", "path": "/metadata/name", "value": "b"}]);
    let options = WriteOptions::default();
    assert_immutable(
        json_patch(&ctx, "a", rename, &options).await,
        "metadata.name",
    );
    assert_immutable(
        merge(&ctx, "a", true, json!({"metadata": {"name": "b"}})).await,
        "metadata.name",
    );
    let mut applied = job("a");
    applied["metadata"]["namespace"] = json!("prod");
    let apply = patch_job(
        &ctx,
        "a",
        Subresource::Main,
        Patch::Apply(applied),
        &options,
    )
    .await;
    assert_immutable(apply, "metadata.namespace");
    let after = stored(&ctx, "a").expect("stored");
    assert_eq!(after.resource_version, before.resource_version);
    // The same name and namespace are no change.
    let same = json!({"metadata": {"name": "a", "namespace": "default", "labels": {"x": "y"}}});
    assert!(!merge(&ctx, "a", false, same).await.unwrap().created);
    let after = stored(&ctx, "a").expect("stored").to_value();
    assert_eq!(after["metadata"]["labels"]["x"], "y");
}
