//! Writes through the HTTP API: create, replace, status, patch, apply, dry run, delete and
//! finalizers, and bad input that must change nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{job, rv, start};

#[tokio::test]
async fn create_fills_defaults_and_server_fields() {
    let s = start().await;
    let (code, body) = s.post(&s.jobs(), &job("web")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["priority"], 50);
    assert_eq!(body["spec"]["groups"][0]["count"], 1);
    assert_eq!(
        body["spec"]["groups"][0]["tasks"][0]["resources"]["cpu"],
        100
    );
    assert_eq!(body["metadata"]["generation"], 1);
    assert_eq!(body["metadata"]["namespace"], "default");
    assert!(
        body["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    let (code, got) = s.get(&format!("{}/web", s.jobs())).await;
    assert_eq!(code, 200);
    assert_eq!(got, body, "GET returns exactly what create acknowledged");
}

#[tokio::test]
async fn second_create_is_already_exists() {
    let s = start().await;
    s.create_job("web").await;
    let (code, status) = s.post(&s.jobs(), &job("web")).await;
    assert_eq!(code, 409);
    assert_eq!(status["reason"], "AlreadyExists");
    assert_eq!(status["details"]["name"], "web");
}

#[tokio::test]
async fn create_in_a_missing_namespace_is_not_found() {
    let s = start().await;
    let (code, status) = s
        .post(
            &s.url("/apis/caravan.dev/v1/namespaces/nope/jobs"),
            &job("web"),
        )
        .await;
    assert_eq!(code, 404, "{status}");
    assert_eq!(status["reason"], "NotFound");
}

#[tokio::test]
async fn replace_needs_the_current_resource_version() {
    let s = start().await;
    let rv1 = s.create_job("web").await;
    let url = format!("{}/web", s.jobs());
    let mut body = job("web");
    let (code, status) = s
        .send(Method::PUT, &url, "application/json", body.to_string())
        .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (422, Some("Invalid")),
        "{status}"
    );
    body["metadata"]["resourceVersion"] = json!((rv1 + 100).to_string());
    let (code, status) = s
        .send(Method::PUT, &url, "application/json", body.to_string())
        .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("Conflict")),
        "{status}"
    );
    body["metadata"]["resourceVersion"] = json!(rv1.to_string());
    body["spec"]["priority"] = json!(70);
    let (code, updated) = s
        .send(Method::PUT, &url, "application/json", body.to_string())
        .await;
    assert_eq!(code, 200, "{updated}");
    assert!(rv(&updated) > rv1);
    assert_eq!(updated["metadata"]["generation"], 2);
    assert_eq!(updated["spec"]["priority"], 70);
}

#[tokio::test]
async fn status_writes_keep_generation_and_spec_writes_keep_status() {
    let s = start().await;
    s.create_job("web").await;
    let url = format!("{}/web", s.jobs());
    let (code, after_status) = s
        .send(
            Method::PATCH,
            &format!("{url}/status"),
            "application/merge-patch+json",
            json!({"status": {"status": "running"}, "spec": {"priority": 99}}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{after_status}");
    assert_eq!(after_status["status"]["status"], "running");
    assert_eq!(
        after_status["spec"]["priority"], 50,
        "status writes ignore spec"
    );
    assert_eq!(after_status["metadata"]["generation"], 1);
    let (code, after_spec) = s
        .send(
            Method::PATCH,
            &url,
            "application/merge-patch+json",
            json!({"spec": {"priority": 60}, "status": {"status": "dead"}}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{after_spec}");
    assert_eq!(after_spec["metadata"]["generation"], 2);
    assert_eq!(
        after_spec["status"]["status"], "running",
        "spec writes ignore status"
    );
}

#[tokio::test]
async fn nodes_get_a_computed_class_from_every_write_that_changes_it() {
    let s = start().await;
    let nodes = s.url("/apis/caravan.dev/v1/nodes");
    let node = json!({"apiVersion": "caravan.dev/v1", "kind": "Node", "metadata": {"name": "n1"}});
    let (code, created) = s.post(&nodes, &node).await;
    assert_eq!(code, 201, "{created}");
    let patch = |url: String, body: Value| {
        let s = &s;
        async move {
            let (code, object) = s
                .send(
                    Method::PATCH,
                    &url,
                    "application/merge-patch+json",
                    body.to_string(),
                )
                .await;
            assert_eq!(code, 200, "{object}");
            object["status"]["computedClass"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let status = format!("{nodes}/n1/status");
    let attributes =
        |attributes: Value| json!({"status": {"status": "ready", "attributes": attributes}});
    let linux = patch(status.clone(), attributes(json!({"kernel.name": "linux"}))).await;
    assert!(linux.starts_with("v1:"), "{linux}");
    let darwin = patch(status.clone(), attributes(json!({"kernel.name": "darwin"}))).await;
    assert_ne!(darwin, linux, "a status write recomputes it");
    let unique = patch(status.clone(), attributes(json!({"unique.hostname": "n1"}))).await;
    assert_eq!(unique, darwin, "unique attributes are not part of it");
    let moved = patch(
        format!("{nodes}/n1"),
        json!({"spec": {"datacenter": "dc9"}}),
    )
    .await;
    assert_ne!(
        moved, darwin,
        "a spec write recomputes it from the kept status"
    );
    let forged = patch(status, json!({"status": {"computedClass": "v1:forged"}})).await;
    assert_eq!(forged, moved, "the server's value wins");
}

#[tokio::test]
async fn merge_patch_null_removes_and_no_op_keeps_the_resource_version() {
    let s = start().await;
    s.create_job("web").await;
    let url = format!("{}/web", s.jobs());
    let (_, patched) = s
        .send(
            Method::PATCH,
            &url,
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"app": null, "tier": "front"}}}).to_string(),
        )
        .await;
    assert_eq!(patched["metadata"]["labels"], json!({"tier": "front"}));
    let (code, again) = s
        .send(
            Method::PATCH,
            &url,
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"tier": "front"}}}).to_string(),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        rv(&again),
        rv(&patched),
        "a patch that changes nothing writes nothing"
    );
}

#[tokio::test]
async fn apply_patch_creates_when_absent_and_merges_when_present() {
    let s = start().await;
    let url = format!("{}/web?fieldManager=test&force=true", s.jobs());
    let yaml = "apiVersion: caravan.dev/v1\nkind: Job\nmetadata:\n  name: web\nspec:\n  groups:\n  - name: g\n    tasks:\n    - name: t\n      driver: mock\n";
    let (code, created) = s
        .send(
            Method::PATCH,
            &url,
            "application/apply-patch+yaml",
            yaml.into(),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    let (code, updated) = s
        .send(
            Method::PATCH,
            &url,
            "application/apply-patch+yaml",
            yaml.replace("spec:\n", "spec:\n  priority: 80\n"),
        )
        .await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["spec"]["priority"], 80);
}

#[tokio::test]
async fn dry_run_persists_nothing() {
    let s = start().await;
    let (code, body) = s
        .post(&format!("{}?dryRun=All", s.jobs()), &job("web"))
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["priority"], 50, "dry run still admits");
    let (code, _) = s.get(&format!("{}/web", s.jobs())).await;
    assert_eq!(code, 404);
    let rv1 = s.create_job("web").await;
    let resp = s
        .http
        .delete(format!("{}/web?dryRun=All", s.jobs()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (code, still) = s.get(&format!("{}/web", s.jobs())).await;
    assert_eq!((code, rv(&still)), (200, rv1));
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_removed() {
    let s = start().await;
    let mut body = job("web");
    body["metadata"]["finalizers"] = json!(["caravan.dev/test"]);
    let (code, _) = s.post(&s.jobs(), &body).await;
    assert_eq!(code, 201);
    let url = format!("{}/web", s.jobs());
    let resp = s.http.delete(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (code, held) = s.get(&url).await;
    assert_eq!(code, 200, "a finalizer keeps the object");
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    let (code, status) = s
        .send(
            Method::PATCH,
            &url,
            "application/merge-patch+json",
            json!({"metadata": {"finalizers": ["caravan.dev/test", "new"]}}).to_string(),
        )
        .await;
    assert_eq!(
        code, 422,
        "no finalizer may be added during deletion: {status}"
    );
    let (code, _) = s
        .send(
            Method::PATCH,
            &url,
            "application/merge-patch+json",
            json!({"metadata": {"finalizers": null}}).to_string(),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = s.get(&url).await;
    assert_eq!(code, 404, "removing the last finalizer deletes the object");
}

#[tokio::test]
async fn delete_preconditions_are_enforced() {
    let s = start().await;
    let rv1 = s.create_job("web").await;
    let url = format!("{}/web", s.jobs());
    let stale = json!({"preconditions": {"resourceVersion": (rv1 + 1).to_string()}});
    let (code, status) = s
        .send(Method::DELETE, &url, "application/json", stale.to_string())
        .await;
    assert_eq!((code, status["reason"].as_str()), (409, Some("Conflict")));
    let ok = json!({"preconditions": {"resourceVersion": rv1.to_string()}, "propagationPolicy": "Background"});
    let (code, deleted) = s
        .send(Method::DELETE, &url, "application/json", ok.to_string())
        .await;
    assert_eq!(code, 200);
    assert_eq!(deleted["metadata"]["name"], "web");
    let (code, status) = s.get(&url).await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
}

#[tokio::test]
async fn invalid_objects_list_every_cause_and_write_nothing() {
    let s = start().await;
    let before: Value = s.get(&s.jobs()).await.1;
    let bad = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Job", "metadata": {"name": "bad"},
        "spec": {"priority": 0, "type": "cron", "groups": [{"name": "g", "count": -2, "tasks": [{"name": "t"}]}]}
    });
    let (code, status) = s.post(&s.jobs(), &bad).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (422, Some("Invalid")),
        "{status}"
    );
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    for want in [
        "spec.priority",
        "spec.type",
        "spec.groups[0].count",
        "spec.groups[0].tasks[0].driver",
    ] {
        assert!(fields.contains(&want), "{want} missing from {fields:?}");
    }
    let after: Value = s.get(&s.jobs()).await.1;
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn malformed_bodies_and_unsupported_patches_are_client_errors() {
    let s = start().await;
    let (code, status) = s
        .send(
            Method::POST,
            &s.jobs(),
            "application/json",
            "{\"kind\": ".into(),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    assert!(
        status["message"].as_str().unwrap().contains("line 1"),
        "{status}"
    );
    let (code, _) = s
        .send(
            Method::POST,
            &s.jobs(),
            "application/yaml",
            "a: [1\nb: 2".into(),
        )
        .await;
    assert_eq!(code, 400);
    s.create_job("web").await;
    let (code, status) = s
        .send(
            Method::PATCH,
            &format!("{}/web", s.jobs()),
            "application/strategic-merge-patch+json",
            "{}".into(),
        )
        .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(4 * 1024 * 1024));
    let (code, status) = s
        .send(Method::POST, &s.jobs(), "application/json", big)
        .await;
    assert_eq!(code, 413, "{status}");
    let (code, status) = s
        .get(&s.url("/apis/caravan.dev/v1/namespaces/default/pods"))
        .await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    let wrong_kind =
        json!({"apiVersion": "caravan.dev/v1", "kind": "Node", "metadata": {"name": "x"}});
    let (code, _) = s.post(&s.jobs(), &wrong_kind).await;
    assert_eq!(code, 400);
}
