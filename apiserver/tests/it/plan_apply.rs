//! The plan endpoint: concurrent plans never oversubscribe a node, rejected parts report a
//! refresh index, malformed plans are refused.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::{TestServer, start};

const V1: &str = "/apis/caravan.dev/v1";
const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// CPU (MHz) and memory (MB) of every node.
const CAPACITY: (u64, u64) = (1000, 2000);

/// Registers a ready node of [`CAPACITY`]: created, then its status set.
async fn register_node(server: &TestServer, name: &str) {
    let node = json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"datacenter": "dc1"}
    });
    let (code, body) = server
        .post(&server.url(&format!("{V1}/nodes")), &node)
        .await;
    assert_eq!(code, 201, "{body}");
    let status = json!({"status": {
        "status": "ready",
        "resources": {"cpu": CAPACITY.0, "cores": 1, "memoryMB": CAPACITY.1, "diskMB": 100_000}
    }});
    let (code, body) = server
        .send(
            reqwest::Method::PATCH,
            &server.url(&format!("{V1}/nodes/{name}/status")),
            "application/merge-patch+json",
            status.to_string(),
        )
        .await;
    assert_eq!(code, 200, "{body}");
}

async fn create_eval(server: &TestServer, name: &str) {
    let eval = json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Evaluation",
        "metadata": {"name": name},
        "spec": {"jobName": "web", "triggeredBy": "job-register", "type": "service"}
    });
    let url = server.url(&format!("{V1}/namespaces/default/evaluations"));
    let (code, body) = server.post(&url, &eval).await;
    assert_eq!(code, 201, "{body}");
}

fn alloc(name: &str, node: &str, cpu: u64, memory_mb: u64) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Allocation",
        "metadata": {"name": name},
        "spec": {
            "jobName": "web", "group": "g", "nodeName": node, "desiredStatus": "run",
            "allocatedResources": {
                "tasks": {"t": {"cpu": cpu, "memoryMB": memory_mb}},
                "shared": {"diskMB": 100}
            }
        },
        "status": {"clientStatus": "pending"}
    })
}

fn plan_url(server: &TestServer, eval: &str) -> String {
    server.url(&format!("{V1}/namespaces/default/evaluations/{eval}/plan"))
}

/// Plan `i`: one allocation on every node, 250–350 MHz and 300 MB each. Twenty of them ask
/// about 6000 MHz of every 1000 MHz node.
fn plan(i: usize) -> Value {
    let mut node_allocation = serde_json::Map::new();
    for (n, node) in NODES.iter().enumerate() {
        let cpu = 250 + 50 * ((i + n) % 3) as u64;
        let name = format!("web-g-{i}-{n}");
        node_allocation.insert((*node).to_owned(), json!([alloc(&name, node, cpu, 300)]));
    }
    json!({"jobName": "web", "jobVersion": 0, "priority": 50, "nodeAllocation": node_allocation})
}

#[tokio::test]
async fn concurrent_plans_never_oversubscribe_a_node() {
    let server = start().await;
    for node in NODES {
        register_node(&server, node).await;
    }
    for i in 0..20 {
        create_eval(&server, &format!("e{i}")).await;
    }

    let requests = (0..20).map(|i| {
        let http = server.http.clone();
        let url = plan_url(&server, &format!("e{i}"));
        let body = plan(i);
        tokio::spawn(async move {
            let resp = http.post(url).json(&body).send().await.expect("request");
            let code = resp.status().as_u16();
            let result: Value = resp.json().await.expect("JSON");
            (code, result)
        })
    });
    let mut committed = 0;
    let mut rejected_parts = 0;
    for handle in futures::future::join_all(requests).await {
        let (code, result) = handle.expect("task");
        assert_eq!(code, 200, "{result}");
        assert!(
            result["allocIndex"].as_u64().is_some_and(|i| i > 0),
            "{result}"
        );
        let placed = result["nodeAllocation"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        committed += placed
            .values()
            .filter_map(Value::as_array)
            .map(Vec::len)
            .sum::<usize>();
        let missing = NODES.iter().filter(|n| !placed.contains_key(**n)).count();
        rejected_parts += missing;
        if missing > 0 {
            assert!(
                result["refreshIndex"].as_u64().is_some_and(|i| i > 0),
                "a rejected part without a refresh index: {result}"
            );
        } else {
            assert_eq!(result["refreshIndex"], 0, "{result}");
        }
    }
    assert!(committed > 0, "something fits");
    assert!(rejected_parts > 0, "the plans oversubscribe together");

    let (code, list) = server
        .get(&server.url(&format!("{V1}/namespaces/default/allocations")))
        .await;
    assert_eq!(code, 200, "{list}");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        items.len(),
        committed,
        "every committed allocation is stored"
    );
    let mut used: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for item in &items {
        let node = item["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let task = &item["spec"]["allocatedResources"]["tasks"]["t"];
        let entry = used.entry(node).or_default();
        entry.0 += task["cpu"].as_u64().unwrap_or_default();
        entry.1 += task["memoryMB"].as_u64().unwrap_or_default();
        assert!(
            item["metadata"]["uid"]
                .as_str()
                .is_some_and(|u| !u.is_empty())
        );
    }
    for (node, (cpu, memory)) in used {
        assert!(
            cpu <= CAPACITY.0 && memory <= CAPACITY.1,
            "{node} is oversubscribed: {cpu} MHz, {memory} MB"
        );
    }
}

#[tokio::test]
async fn malformed_plans_are_refused() {
    let server = start().await;
    register_node(&server, "n1").await;
    create_eval(&server, "e1").await;
    let url = plan_url(&server, "e1");

    let (code, body) = server
        .post(&url, &json!({"namespace": "prod", "jobName": "web"}))
        .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (400, Some("BadRequest")),
        "{body}"
    );

    let mut other_ns = plan(0);
    other_ns["nodeAllocation"]["n1"][0]["metadata"]["namespace"] = json!("prod");
    let (code, body) = server.post(&url, &other_ns).await;
    assert_eq!(code, 400, "{body}");

    let mut other_job = plan(0);
    other_job["nodeAllocation"]["n1"][0]["spec"]["jobName"] = json!("api");
    let (code, body) = server.post(&url, &other_job).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (422, Some("Invalid")),
        "{body}"
    );
    assert_eq!(
        body["details"]["causes"][0]["field"], "nodeAllocation[n1][0].spec.jobName",
        "{body}"
    );

    let mut bad_alloc = plan(0);
    bad_alloc["nodeAllocation"]["n1"][0]["metadata"]["name"] = json!("Not_A_Name");
    let (code, body) = server.post(&url, &bad_alloc).await;
    assert_eq!(code, 422, "{body}");

    let (code, body) = server.post(&plan_url(&server, "missing"), &plan(0)).await;
    assert_eq!(code, 404, "{body}");

    let resp = server.http.get(&url).send().await.expect("request");
    assert_eq!(resp.status().as_u16(), 405);

    // A plan on a node that does not exist is answered with a refresh index, not an error.
    let (code, body) = server.post(&url, &plan(1)).await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body["refreshIndex"].as_u64().is_some_and(|i| i > 0),
        "{body}"
    );
    assert_eq!(
        body["nodeAllocation"].as_object().map(|m| m.len()),
        Some(1),
        "{body}"
    );
}
