//! Jobs, nodes and bodies built to hurt a server or its hosts are refused at admission with
//! the failing field, and the server stays responsive.

use std::time::Duration;

use caravan_e2e::http::{self, assert_status, collection_path, object_path};
use caravan_e2e::{Sandbox, fixtures};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request failed");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The fields named by a 422's causes.
fn fields(body: &Value) -> Vec<String> {
    body["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["field"].as_str().map(str::to_owned))
        .collect()
}

#[track_caller]
fn assert_invalid(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_status(body, 422, "Invalid");
    assert!(
        fields(body).iter().any(|f| f == field),
        "no cause on {field}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_jobs_and_nodes_are_refused_with_their_field() {
    let sandbox = Sandbox::start("hostile-admission");
    let client = http::client();
    let jobs = sandbox.url(&collection_path("default", "jobs"));
    let job_with = |edit: &dyn Fn(&mut Value)| {
        let mut job = fixtures::small_job("hostile");
        edit(&mut job);
        job
    };
    let task = "/spec/groups/0/tasks/0";
    let cases: Vec<(Value, &str)> = vec![
        // Task and group names that would leave the allocation directory.
        (
            job_with(&|j| j.pointer_mut(task).unwrap()["name"] = json!("../../../../x")),
            "spec.groups[0].tasks[0].name",
        ),
        (
            job_with(&|j| j.pointer_mut(task).unwrap()["name"] = json!("/etc")),
            "spec.groups[0].tasks[0].name",
        ),
        (
            job_with(&|j| j["spec"]["groups"][0]["name"] = json!("..")),
            "spec.groups[0].name",
        ),
        // A count that would eat memory without end.
        (
            job_with(&|j| j["spec"]["groups"][0]["count"] = json!(1_000_000_000)),
            "spec.groups[0].count",
        ),
        // Resources whose sum wraps around.
        (
            job_with(&|j| {
                j.pointer_mut(task).unwrap()["resources"]["cpu"] =
                    json!(9_223_372_036_854_775_807u64)
            }),
            "spec.groups[0].tasks[0].resources.cpu",
        ),
        // A kill timeout that keeps a task alive for ever.
        (
            job_with(&|j| j.pointer_mut(task).unwrap()["killTimeout"] = json!("5000000000000000h")),
            "spec.groups[0].tasks[0].killTimeout",
        ),
        // A name the job label cannot hold.
        (
            job_with(&|j| j["metadata"]["name"] = json!("a".repeat(64))),
            "metadata.name",
        ),
        // Blocks nothing runs yet.
        (
            job_with(&|j| j["spec"]["periodic"] = json!({"cron": "*/5 * * * *"})),
            "spec.periodic",
        ),
        // A constraint regexp that does not compile.
        (
            job_with(
                &|j| j["spec"]["constraints"] = json!([{"attribute": "${attr.kernel.name}", "operator": "regexp", "value": "(((("}]),
            ),
            "spec.constraints[0].value",
        ),
    ];
    for (job, field) in cases {
        let (status, body) = send(client.post(&jobs).json(&job)).await;
        assert_invalid(status, &body, field);
    }

    // A node whose agent address would make the server fetch any URL.
    let mut node = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Node",
        "metadata": {"name": "ssrf"},
        "spec": {"datacenter": "dc1", "httpAddr": "127.0.0.1:5190/admin/secret?x="},
    });
    let nodes = sandbox.url("/apis/caravan.dev/v1/nodes");
    let (status, body) = send(client.post(&nodes).json(&node)).await;
    assert_invalid(status, &body, "spec.httpAddr");
    node["spec"]["httpAddr"] = json!("127.0.0.1:5190");
    let (status, body) = send(client.post(&nodes).json(&node)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Nothing of the refused jobs was stored.
    let (status, _) =
        send(client.get(sandbox.url(&object_path("default", "jobs", "hostile")))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_built_to_grow_or_stall_are_refused_and_the_server_stays_responsive() {
    let sandbox = Sandbox::start("hostile-bodies");
    let client = http::client();
    let jobs = sandbox.url(&collection_path("default", "jobs"));
    let (status, body) = send(client.post(&jobs).json(&fixtures::small_job("grow"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // 18 copies of the spec into itself: each doubles the object (180 MB before the fix).
    let ops: Vec<Value> = (0..18)
        .map(|i| json!({"op": "copy", "from": "/spec", "path": format!("/spec/groups/0/tasks/0/config/x{i}")}))
        .collect();
    for dry_run in ["?dryRun=All", ""] {
        let url = format!(
            "{}{dry_run}",
            sandbox.url(&object_path("default", "jobs", "grow"))
        );
        let (status, body) = send(
            client
                .patch(&url)
                .header("content-type", "application/json-patch+json")
                .json(&ops),
        )
        .await;
        let shown: String = body.to_string().chars().take(300).collect();
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{dry_run}: {shown}");
        assert_status(&body, 413, "RequestEntityTooLarge");
    }

    // Deeply nested YAML, three at once: refused quickly, and /readyz answers meanwhile.
    let depth = 60_000;
    let nested = format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let posts: Vec<_> = (0..3)
        .map(|_| {
            client
                .post(&jobs)
                .header("content-type", "application/yaml")
                .body(nested.clone())
                .send()
        })
        .collect();
    let ready = async {
        tokio::time::timeout(
            Duration::from_secs(5),
            client.get(sandbox.url("/readyz")).send(),
        )
        .await
        .expect("/readyz answers while nested bodies are parsed")
        .expect("/readyz")
        .status()
    };
    let (answers, ready) = tokio::join!(futures::future::join_all(posts), ready);
    assert_eq!(ready, StatusCode::OK);
    for answer in answers {
        let answer = answer.expect("an answer");
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    }
}
