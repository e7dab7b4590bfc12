//! JobVersions over HTTP: written with the Job's spec changes, listed by job, refused to
//! clients' writes with 405 except through their status subresource.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, start};

const MERGE: &str = "application/merge-patch+json";

fn versions_url(s: &TestServer) -> String {
    s.url("/apis/caravan.dev/v1/namespaces/default/jobversions")
}

/// `(name, version)` of the versions listed by `query`.
async fn listed(s: &TestServer, query: &str) -> Vec<(String, i64)> {
    let (code, list) = s.get(&format!("{}?{query}", versions_url(s))).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["kind"], "JobVersionList");
    let mut items: Vec<(String, i64)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["metadata"]["name"].as_str().unwrap().to_owned(),
                v["spec"]["version"].as_i64().unwrap(),
            )
        })
        .collect();
    items.sort_by_key(|(_, n)| *n);
    items
}

fn pairs(want: &[(&str, i64)]) -> Vec<(String, i64)> {
    want.iter().map(|(n, v)| (n.to_string(), *v)).collect()
}

#[tokio::test]
async fn a_spec_patch_adds_a_version_and_a_status_patch_does_not() {
    let s = start().await;
    s.create_job("web").await;
    s.create_job("api").await;
    let web = format!("{}/web", s.jobs());
    let (code, body) = s
        .send(
            Method::PATCH,
            &web,
            MERGE,
            json!({"spec": {"priority": 70}}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["metadata"]["generation"], 2);
    let status = json!({"status": {"status": "running"}}).to_string();
    let (code, body) = s
        .send(Method::PATCH, &format!("{web}/status"), MERGE, status)
        .await;
    assert_eq!(code, 200, "{body}");
    let by_field = listed(&s, "fieldSelector=spec.jobName%3Dweb").await;
    assert_eq!(by_field, pairs(&[("web-v0", 0), ("web-v1", 1)]));
    let by_label = listed(&s, "labelSelector=caravan.dev%2Fjob%3Dweb").await;
    assert_eq!(by_label, by_field);
    let (_, v1) = s.get(&format!("{}/web-v1", versions_url(&s))).await;
    assert_eq!(v1["spec"]["job"]["priority"], 70);
    assert_eq!(v1["spec"]["jobName"], "web");
    assert_eq!(
        listed(&s, "fieldSelector=spec.jobName%3Dapi").await,
        pairs(&[("api-v0", 0)])
    );
}

fn assert_405(code: u16, status: &Value) {
    assert_eq!(code, 405, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "MethodNotAllowed");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("JobVersions are written by the servers when a Job's spec changes"),
        "{message}"
    );
}

#[tokio::test]
async fn clients_writes_of_job_versions_are_405_but_their_status_is_theirs() {
    let s = start().await;
    s.create_job("web").await;
    let v0_url = format!("{}/web-v0", versions_url(&s));
    let (_, v0) = s.get(&v0_url).await;
    let mut forged = v0.clone();
    forged["metadata"] = json!({"name": "web-v5"});
    let (code, status) = s.post(&versions_url(&s), &forged).await;
    assert_405(code, &status);
    let (code, status) = s
        .send(Method::PUT, &v0_url, "application/json", v0.to_string())
        .await;
    assert_405(code, &status);
    let (code, status) = s
        .send(
            Method::PATCH,
            &v0_url,
            MERGE,
            json!({"spec": {"version": 3}}).to_string(),
        )
        .await;
    assert_405(code, &status);
    let (code, status) = s
        .send(Method::DELETE, &v0_url, "application/json", String::new())
        .await;
    assert_405(code, &status);
    let (_, after) = s.get(&v0_url).await;
    assert_eq!(after, v0, "nothing was written");

    let stable = json!({"status": {"stable": true}}).to_string();
    let (code, body) = s
        .send(Method::PATCH, &format!("{v0_url}/status"), MERGE, stable)
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"]["stable"], true);

    // Deleting the job deletes its versions.
    let (code, _) = s
        .send(
            Method::DELETE,
            &format!("{}/web", s.jobs()),
            "application/json",
            String::new(),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = s.get(&v0_url).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn discovery_advertises_what_clients_may_do_with_job_versions() {
    let s = start().await;
    let (_, list) = s.get(&s.url("/apis/caravan.dev/v1")).await;
    let resource = |name: &str| {
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {list}"))
            .clone()
    };
    let versions = resource("jobversions");
    assert_eq!(versions["kind"], "JobVersion");
    assert_eq!(versions["namespaced"], true);
    assert_eq!(versions["shortNames"], json!(["jv"]));
    assert_eq!(versions["verbs"], json!(["get", "list", "watch"]));
    assert_eq!(
        resource("jobversions/status")["verbs"],
        json!(["get", "patch", "update"])
    );
    assert_eq!(resource("jobs")["verbs"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn tables_show_versions_and_deployments_at_a_glance() {
    let s = start().await;
    s.create_job("web").await;
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let get_table = |url: String| {
        let http = s.http.clone();
        async move {
            let resp = http.get(url).header("accept", table).send().await.unwrap();
            resp.json::<Value>().await.unwrap()
        }
    };
    let versions = get_table(versions_url(&s)).await;
    let columns: Vec<&str> = versions["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Job", "Version", "Stable", "Age", "Type"]);
    let cells = versions["rows"][0]["cells"].as_array().unwrap();
    assert_eq!(
        cells[..4],
        [json!("web-v0"), json!("web"), json!("0"), json!("false")]
    );
    let deployments = get_table(s.url("/apis/caravan.dev/v1/namespaces/default/deployments")).await;
    let columns: Vec<&str> = deployments["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Name",
            "Job",
            "Version",
            "Status",
            "Desired",
            "Placed",
            "Healthy",
            "Unhealthy",
            "Canaries",
            "Age",
            "Description",
            "Progress Deadline"
        ]
    );
}
