//! A node's secret id reaches its own objects only: its Node, its allocations' status, its
//! heartbeat; never another node's, nor the API beyond what its allocations need.

use caravan_e2e::http::client_with_token;
use serde_json::{Value, json};
use sha2::Digest;

use caravan_e2e::Sandbox;

use super::{eventually, send, start_with};

const PREFIX: &str = "/apis/caravan.dev/v1";

fn hash(secret: &str) -> String {
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_secret_cannot_change_another_node_or_its_allocations() {
    // A dev agent: a server and its own client node.
    let (sandbox, management) = start_with(Sandbox::builder().name("acl-nodes").client());
    let admin = client_with_token(&management, None);
    // The dev agent's own node registered with its secret id.
    let nodes = sandbox.url(&format!("{PREFIX}/nodes"));
    let dev_node: String = eventually("the dev node registers", || async {
        let (_, list) = send(admin.get(&nodes)).await;
        list["items"][0]["metadata"]["name"]
            .as_str()
            .map(str::to_string)
    })
    .await;
    let secret = std::fs::read_to_string(sandbox.data_dir().join("client/secret-id")).unwrap();
    let (_, node) = send(admin.get(format!("{nodes}/{dev_node}"))).await;
    assert_eq!(node["spec"]["secretIdHash"], hash(secret.trim()), "{node}");

    // A job places an allocation on the dev node.
    let job = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Job",
        "metadata": {"name": "sleepy", "namespace": "default"},
        "spec": {"type": "service", "datacenters": ["dc1"], "groups": [{
            "name": "g", "count": 1,
            "tasks": [{"name": "t", "driver": "mock", "config": {"run_for": "1h"},
                       "resources": {"cpu": 20, "memoryMB": 16}}]}]}
    });
    let (code, answer) = send(
        admin
            .post(sandbox.url(&format!("{PREFIX}/namespaces/default/jobs")))
            .json(&job),
    )
    .await;
    assert_eq!(code, 201, "{answer}");
    let allocs = sandbox.url(&format!("{PREFIX}/namespaces/default/allocations"));
    let alloc: String = eventually("the allocation runs", || async {
        let (_, list) = send(admin.get(&allocs)).await;
        let first = &list["items"][0];
        (first["status"]["clientStatus"] == "running").then(|| {
            first["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
    })
    .await;

    // A second node registers itself with its own secret.
    let other_secret = "5f0c7b4e-3c1d-4f7a-9d2e-6b8a1c0e9f21";
    let other = client_with_token(other_secret, Some("other"));
    let register = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Node",
        "metadata": {"name": "other"},
        "spec": {"secretIdHash": hash(other_secret)},
    });
    let (code, answer) = send(other.post(&nodes).json(&register)).await;
    assert_eq!(code, 201, "{answer}");
    // Registering under another secret's hash is refused.
    let impostor = client_with_token("0b1d7a52-1111-4222-8333-944455556666", Some("third"));
    let (code, _) = send(impostor.post(&nodes).json(&json!({
        "apiVersion": "caravan.dev/v1", "kind": "Node",
        "metadata": {"name": "third"},
        "spec": {"secretIdHash": hash(other_secret)},
    })))
    .await;
    assert_eq!(code, 403);

    let alloc_url = format!("{allocs}/{alloc}");
    let failed = json!({"status": {"clientStatus": "failed"}});
    let patch = |client: &reqwest::Client, url: String, body: &Value| {
        client
            .patch(url)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
    };
    // The other node can neither change nor see the dev node and its allocation.
    for (request, what) in [
        (
            patch(&other, format!("{alloc_url}/status"), &failed),
            "patch the allocation's status",
        ),
        (other.delete(&alloc_url), "delete the allocation"),
        (other.get(&alloc_url), "read the allocation"),
        (
            patch(
                &other,
                format!("{nodes}/{dev_node}"),
                &json!({"spec": {"schedulingEligibility": "ineligible"}}),
            ),
            "patch the dev node",
        ),
        (
            patch(
                &other,
                format!("{nodes}/{dev_node}/status"),
                &json!({"status": {"status": "down"}}),
            ),
            "patch the dev node's status",
        ),
        (
            other.post(format!("{nodes}/{dev_node}/heartbeat")),
            "heartbeat the dev node",
        ),
        (
            other.get(sandbox.url(&format!("{PREFIX}/namespaces/default/jobs"))),
            "list jobs",
        ),
        (
            other.get(sandbox.url(&format!("{PREFIX}/acltokens"))),
            "list tokens",
        ),
    ] {
        let (code, answer) = send(request).await;
        assert_eq!(code, 403, "the other node could {what}: {answer}");
    }
    let (code, list) = send(other.get(&allocs)).await;
    assert_eq!(code, 200);
    assert_eq!(
        list["items"],
        json!([]),
        "the other node sees allocations: {list}"
    );
    let (_, list) = send(other.get(&nodes)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["metadata"]["name"], "other");
    // Its own node it may write.
    let (code, answer) = send(patch(
        &other,
        format!("{nodes}/other/status"),
        &json!({"status": {"status": "ready"}}),
    ))
    .await;
    assert_eq!(code, 200, "{answer}");

    // The dev node's secret under the wrong name, or a wrong secret, is refused.
    let wrong = client_with_token(other_secret, Some(&dev_node));
    let (code, _) = send(wrong.get(&alloc_url)).await;
    assert_eq!(code, 401);
    // The allocation is untouched and still running.
    let (_, current) = send(admin.get(&alloc_url)).await;
    assert_eq!(current["status"]["clientStatus"], "running", "{current}");
    // The dev node itself reads it.
    let own = client_with_token(secret.trim(), Some(&dev_node));
    let (code, _) = send(own.get(&alloc_url)).await;
    assert_eq!(code, 200);
}
