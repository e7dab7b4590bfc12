//! Tests of JobVersions through the service layer: which Job writes store one, what it holds,
//! retention, deletion with the job, and the writes clients may not make.

use caravan_runtime::Subresource;
use serde_json::{Value, json};

use super::*;
use crate::api::testing::{context, context_with, create_job, job};
use crate::api::{
    DeleteOptions, ListOptions, Outcome, Patch, Selectors, WriteOptions, create, delete, list,
    patch, replace,
};
use crate::context::ApiConfig;

const NS: &str = "default";

/// The versions of `job`, listed by `spec.jobName` and ordered by version.
fn versions(ctx: &ApiContext, job: &str) -> Vec<Value> {
    let selector = format!("spec.jobName={job}");
    let options = ListOptions {
        selectors: Selectors::parse(Kind::JobVersion, None, Some(&selector)).unwrap(),
        ..ListOptions::default()
    };
    let page = list(ctx, Kind::JobVersion, Some(NS), &options).expect("listed");
    let mut versions: Vec<Value> = page.items.iter().map(|v| v.to_value()).collect();
    versions.sort_by_key(|v| v["spec"]["version"].as_i64());
    versions
}

/// The version numbers of `job`'s versions.
fn numbers(ctx: &ApiContext, job: &str) -> Vec<i64> {
    versions(ctx, job)
        .iter()
        .filter_map(|v| v["spec"]["version"].as_i64())
        .collect()
}

fn stored_job(ctx: &ApiContext, name: &str) -> Value {
    ctx.store
        .state()
        .get(&crate::api::write::key(Kind::Job, NS, name))
        .expect("the job is stored")
        .to_value()
}

async fn patch_job(
    ctx: &ApiContext,
    name: &str,
    subresource: Subresource,
    p: Patch,
) -> Result<Outcome, Error> {
    patch(
        ctx,
        Kind::Job,
        NS,
        name,
        subresource,
        p,
        &WriteOptions::default(),
    )
    .await
}

fn merge(p: Value) -> Patch {
    Patch::Merge(p)
}

#[tokio::test]
async fn creating_a_job_stores_version_0_in_the_same_entry() {
    let (_dir, ctx) = context(100).await;
    let created = create_job(&ctx, job("web")).await;
    let job = created.to_value();
    let versions = versions(&ctx, "web");
    assert_eq!(versions.len(), 1, "{versions:?}");
    let v0 = &versions[0];
    assert_eq!(v0["kind"], "JobVersion");
    assert_eq!(v0["apiVersion"], "caravan.dev/v1");
    let meta = &v0["metadata"];
    assert_eq!(meta["name"], "web-v0");
    assert_eq!(meta["namespace"], NS);
    assert_eq!(meta["generation"], 1);
    assert_eq!(meta["labels"], json!({"caravan.dev/job": "web"}));
    assert!(meta["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert_ne!(meta["uid"], job["metadata"]["uid"]);
    assert!(meta["creationTimestamp"].is_string());
    assert_eq!(
        meta["resourceVersion"], job["metadata"]["resourceVersion"],
        "written in the same Raft entry as the job"
    );
    assert_eq!(v0["spec"]["jobName"], "web");
    assert_eq!(v0["spec"]["jobUid"], job["metadata"]["uid"]);
    assert_eq!(v0["spec"]["version"], 0);
    assert_eq!(
        v0["spec"]["job"], job["spec"],
        "the admitted spec, defaults in"
    );
    assert!(v0.get("status").is_none());
}

#[tokio::test]
async fn every_spec_change_adds_a_version_and_nothing_else_does() {
    let (_dir, ctx) = context(100).await;
    create_job(&ctx, job("web")).await;
    // A merge patch of the spec: version 1.
    patch_job(
        &ctx,
        "web",
        Subresource::Main,
        merge(json!({"spec": {"priority": 70}})),
    )
    .await
    .unwrap();
    assert_eq!(numbers(&ctx, "web"), [0, 1]);
    assert_eq!(versions(&ctx, "web")[1]["spec"]["job"]["priority"], 70);
    // A status patch, a metadata-only patch, and a patch that changes nothing: no version.
    patch_job(
        &ctx,
        "web",
        Subresource::Status,
        merge(json!({"status": {"status": "running"}})),
    )
    .await
    .unwrap();
    assert_eq!(stored_job(&ctx, "web")["status"]["status"], "running");
    patch_job(
        &ctx,
        "web",
        Subresource::Main,
        merge(json!({"metadata": {"labels": {"team": "a"}}})),
    )
    .await
    .unwrap();
    patch_job(
        &ctx,
        "web",
        Subresource::Main,
        merge(json!({"spec": {"priority": 70}})),
    )
    .await
    .unwrap();
    assert_eq!(numbers(&ctx, "web"), [0, 1]);
    // A replace (PUT) with a new spec: version 2; the same body again: nothing.
    let mut body = stored_job(&ctx, "web");
    body["spec"]["priority"] = json!(80);
    for _ in 0..2 {
        body["metadata"]["resourceVersion"] =
            stored_job(&ctx, "web")["metadata"]["resourceVersion"].clone();
        replace(
            &ctx,
            Kind::Job,
            NS,
            "web",
            Subresource::Main,
            body.clone(),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    }
    assert_eq!(numbers(&ctx, "web"), [0, 1, 2]);
    // A JSON patch and an apply patch: versions 3 and 4.
    let ops =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/priority", "value": 90}]))
            .unwrap();
    patch_job(&ctx, "web", Subresource::Main, Patch::Json(ops))
        .await
        .unwrap();
    let mut applied = job("web");
    applied["spec"]["priority"] = json!(95);
    patch_job(&ctx, "web", Subresource::Main, Patch::Apply(applied))
        .await
        .unwrap();
    assert_eq!(numbers(&ctx, "web"), [0, 1, 2, 3, 4]);
    let job = stored_job(&ctx, "web");
    assert_eq!(job["metadata"]["generation"], 5);
    let newest = versions(&ctx, "web").pop().unwrap();
    assert_eq!(newest["metadata"]["name"], "web-v4");
    assert_eq!(newest["spec"]["job"], job["spec"]);
}

#[tokio::test]
async fn a_dry_run_stores_no_version() {
    let (_dir, ctx) = context(100).await;
    let dry = WriteOptions {
        dry_run: true,
        ..WriteOptions::default()
    };
    create(&ctx, Kind::Job, NS, job("web"), &dry).await.unwrap();
    assert!(numbers(&ctx, "web").is_empty());
    create_job(&ctx, job("web")).await;
    let p = merge(json!({"spec": {"priority": 70}}));
    patch(&ctx, Kind::Job, NS, "web", Subresource::Main, p, &dry)
        .await
        .unwrap();
    assert_eq!(numbers(&ctx, "web"), [0]);
}

#[tokio::test]
async fn versions_are_trimmed_to_the_newest_kept_and_the_newest_stable() {
    let config = ApiConfig {
        job_versions_kept: 2,
        ..ApiConfig::default()
    };
    let (_dir, ctx) = context_with(100, config).await;
    create_job(&ctx, job("web")).await;
    // Version 0 becomes stable, through the status subresource clients may write.
    let stable = merge(json!({"status": {"stable": true}}));
    let options = WriteOptions::default();
    patch(
        &ctx,
        Kind::JobVersion,
        NS,
        "web-v0",
        Subresource::Status,
        stable,
        &options,
    )
    .await
    .expect("a status patch of a JobVersion is allowed");
    for priority in [60, 61, 62, 63] {
        let p = merge(json!({"spec": {"priority": priority}}));
        patch_job(&ctx, "web", Subresource::Main, p).await.unwrap();
    }
    assert_eq!(numbers(&ctx, "web"), [0, 3, 4]);
    let v0 = &versions(&ctx, "web")[0];
    assert_eq!(v0["status"]["stable"], true);
    // Once a newer version is stable, the older stable one goes at the next trim.
    let stable = merge(json!({"status": {"stable": true}}));
    patch(
        &ctx,
        Kind::JobVersion,
        NS,
        "web-v4",
        Subresource::Status,
        stable,
        &options,
    )
    .await
    .unwrap();
    let p = merge(json!({"spec": {"priority": 64}}));
    patch_job(&ctx, "web", Subresource::Main, p).await.unwrap();
    assert_eq!(numbers(&ctx, "web"), [4, 5]);
}

#[tokio::test]
async fn deleting_a_job_deletes_its_versions_and_no_other_job_s() {
    let (_dir, ctx) = context(100).await;
    create_job(&ctx, job("web")).await;
    // A job whose name starts like a version of "web".
    create_job(&ctx, job("web-v1")).await;
    let p = merge(json!({"spec": {"priority": 70}}));
    patch_job(&ctx, "web", Subresource::Main, p).await.unwrap();
    assert_eq!(numbers(&ctx, "web"), [0, 1]);
    delete(&ctx, Kind::Job, NS, "web", &DeleteOptions::default())
        .await
        .unwrap();
    assert!(numbers(&ctx, "web").is_empty());
    assert_eq!(numbers(&ctx, "web-v1"), [0]);

    // Through the finalizer path: the versions stay while the job is being deleted and go
    // with it when its last finalizer is removed.
    let mut held = job("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    create_job(&ctx, held).await;
    delete(&ctx, Kind::Job, NS, "held", &DeleteOptions::default())
        .await
        .unwrap();
    assert!(stored_job(&ctx, "held")["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(numbers(&ctx, "held"), [0]);
    let release = merge(json!({"metadata": {"finalizers": null}}));
    patch_job(&ctx, "held", Subresource::Main, release)
        .await
        .unwrap();
    assert!(numbers(&ctx, "held").is_empty());
    // A job created again under the same name starts its versions anew.
    let again = create_job(&ctx, job("web")).await;
    let versions = versions(&ctx, "web");
    assert_eq!(versions.len(), 1);
    assert_eq!(
        versions[0]["spec"]["jobUid"].as_str(),
        Some(again.uid.as_str())
    );
}

fn assert_not_allowed(result: Result<Outcome, Error>, verb: &str) {
    match result {
        Err(Error::MethodNotAllowed(message)) => {
            assert!(message.starts_with(verb), "{message}");
            assert!(
                message.contains("written by the servers when a Job's spec changes"),
                "{message}"
            );
        }
        other => panic!("expected {verb} to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn clients_cannot_create_replace_patch_or_delete_job_versions() {
    let (_dir, ctx) = context(100).await;
    create_job(&ctx, job("web")).await;
    let options = WriteOptions::default();
    let forged = json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "JobVersion",
        "metadata": {"name": "web-v7", "namespace": NS},
        "spec": {"jobName": "web", "version": 7, "job": {"groups": []}},
    });
    assert_not_allowed(
        create(&ctx, Kind::JobVersion, NS, forged.clone(), &options).await,
        "create",
    );
    let mut body = versions(&ctx, "web")[0].clone();
    body["spec"]["version"] = json!(9);
    let put = replace(
        &ctx,
        Kind::JobVersion,
        NS,
        "web-v0",
        Subresource::Main,
        body,
        &options,
    );
    assert_not_allowed(put.await, "update");
    for p in [merge(json!({"spec": {"version": 9}})), Patch::Apply(forged)] {
        let patched = patch(
            &ctx,
            Kind::JobVersion,
            NS,
            "web-v0",
            Subresource::Main,
            p,
            &options,
        );
        assert_not_allowed(patched.await, "patch");
    }
    let no_options = DeleteOptions::default();
    let deleted = delete(&ctx, Kind::JobVersion, NS, "web-v0", &no_options);
    assert_not_allowed(deleted.await, "delete");
    let versions = versions(&ctx, "web");
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0]["spec"]["version"], 0);
    // Their status is the clients' to write.
    let stable = merge(json!({"status": {"stable": true}}));
    patch(
        &ctx,
        Kind::JobVersion,
        NS,
        "web-v0",
        Subresource::Status,
        stable,
        &options,
    )
    .await
    .unwrap();
    let mut status = self::versions(&ctx, "web")[0].clone();
    assert_eq!(status["status"]["stable"], true);
    status["status"]["stable"] = json!(false);
    replace(
        &ctx,
        Kind::JobVersion,
        NS,
        "web-v0",
        Subresource::Status,
        status,
        &options,
    )
    .await
    .expect("a status replace is allowed");
    assert_eq!(self::versions(&ctx, "web")[0]["status"]["stable"], false);
}

#[tokio::test]
async fn versions_are_listed_by_job_and_by_label() {
    let (_dir, ctx) = context(100).await;
    for name in ["web", "api"] {
        create_job(&ctx, job(name)).await;
    }
    let p = merge(json!({"spec": {"priority": 70}}));
    patch_job(&ctx, "web", Subresource::Main, p).await.unwrap();
    let by_label = ListOptions {
        selectors: Selectors::parse(Kind::JobVersion, Some("caravan.dev/job=web"), None).unwrap(),
        ..ListOptions::default()
    };
    let page = list(&ctx, Kind::JobVersion, None, &by_label).unwrap();
    let names: Vec<&str> = page.items.iter().map(|v| v.key.name.as_str()).collect();
    assert_eq!(names, ["web-v0", "web-v1"]);
    assert_eq!(numbers(&ctx, "api"), [0]);
}

#[test]
fn derive_builds_a_version_only_for_a_new_generation() {
    let job = |generation: i64| {
        json!({
            "apiVersion": "caravan.dev/v1",
            "kind": "Job",
            "metadata": {"name": "web", "namespace": "prod", "uid": "job-uid",
                         "generation": generation, "labels": {"team": "a"}},
            "spec": {"type": "service", "groups": []},
            "status": {"status": "running"},
        })
        .to_string()
    };
    let now = humantime::parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
    let unchanged = derive(&job(3), Some(job(3).as_bytes()), "v-uid", now, 6).unwrap();
    assert!(unchanged.is_none());
    let version = derive(&job(4), Some(job(3).as_bytes()), "v-uid", now, 6)
        .unwrap()
        .expect("a new generation");
    assert_eq!(version.keep, 6);
    let value: Value = serde_json::from_str(version.object.get()).unwrap();
    assert_eq!(
        value,
        json!({
            "apiVersion": "caravan.dev/v1",
            "kind": "JobVersion",
            "metadata": {"name": "web-v3", "namespace": "prod", "uid": "v-uid",
                         "generation": 1, "creationTimestamp": "2030-01-01T00:00:00Z",
                         "labels": {"caravan.dev/job": "web"}},
            "spec": {"jobName": "web", "jobUid": "job-uid", "version": 3,
                     "job": serde_json::from_str::<Job>(&job(4)).unwrap().spec},
        })
    );
    assert!(derive(&job(1), None, "v-uid", now, 6).unwrap().is_some());
}
