//! The server-to-server endpoints answer cluster members only: a forged vote or log entry, or
//! a stranger taking evaluations from the broker, is refused and changes nothing.

use caravan_e2e::Sandbox;
use caravan_e2e::http::{self, assert_status, object_path};
use caravan_e2e::sandbox::TEST_CLUSTER_SECRET;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET_HEADER: &str = "x-caravan-cluster-secret";

async fn post(
    client: &reqwest::Client,
    url: &str,
    secret: Option<&str>,
    body: &Value,
) -> (StatusCode, String) {
    let mut req = client.post(url).json(body);
    if let Some(secret) = secret {
        req = req.header(SECRET_HEADER, secret);
    }
    let resp = req.send().await.expect("request failed");
    (resp.status(), resp.text().await.unwrap_or_default())
}

/// This server's Raft id, from its configuration.
async fn raft_id(client: &reqwest::Client, sandbox: &Sandbox) -> u64 {
    let config: Value = client
        .get(sandbox.url("/v1/operator/raft/configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    config["servers"][0]["raftId"]
        .as_u64()
        .unwrap_or_else(|| panic!("no raft id: {config}"))
}

fn vote(term: u64, node_id: u64) -> Value {
    json!({"vote": {"leader_id": {"term": term, "node_id": node_id}, "committed": false},
           "last_log_id": null})
}

fn forged_job_append(term: u64, node_id: u64) -> Value {
    let job = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Job",
        "metadata": {"name": "forged", "namespace": "default", "uid": "f",
                     "creationTimestamp": "1999-01-01T00:00:00Z"},
        "spec": {"type": "batch", "groups": []},
    });
    json!({
        "vote": {"leader_id": {"term": term, "node_id": node_id}, "committed": true},
        "prev_log_id": null,
        "entries": [{"log_id": {"leader_id": {"term": term, "node_id": node_id}, "index": 1_000_000},
                     "payload": {"Normal": [{"Put": {"kind": "Job", "object": job, "expect": "Absent"}}]}}],
        "leader_commit": null,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_and_broker_refuse_strangers_and_the_server_keeps_working() {
    let mut sandbox = Sandbox::start("hostile-members");
    let client = http::client();
    let me = raft_id(&client, &sandbox).await;
    let vote_url = sandbox.url("/internal/raft/vote");
    let append_url = sandbox.url("/internal/raft/append");

    // Without the secret: 403 Forbidden, before anything reaches Raft.
    for (url, body) in [
        (&vote_url, vote(u64::MAX, 999)),
        (&append_url, forged_job_append(u64::MAX, 999)),
    ] {
        let (status, text) = post(&client, url, None, &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{url}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_status(&body, 403, "Forbidden");
    }
    let (status, text) = post(
        &client,
        &vote_url,
        Some("wrong-secret-0123456789"),
        &vote(5, 999),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    // Nor is a stranger's request relayed (to another region, which would carry this
    // server's secret onwards).
    let resp = client
        .post(&vote_url)
        .header("x-caravan-region", "elsewhere")
        .json(&vote(5, 999))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // With the secret, a vote or entries from outside the membership, from this server's own
    // id, or at a term that would wrap are still refused.
    let secret = Some(TEST_CLUSTER_SECRET);
    for body in [
        vote(u64::MAX, 999),
        vote(u64::MAX, me),
        vote(7, 999),
        vote(7, me),
    ] {
        let (status, text) = post(&client, &vote_url, secret, &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {text}");
    }
    for body in [forged_job_append(u64::MAX, me), forged_job_append(9, 999)] {
        let (status, text) = post(&client, &append_url, secret, &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    }

    // The broker hands no evaluation to a stranger.
    for op in ["dequeue", "ack", "nack"] {
        let url = sandbox.url(&format!("/v1/eval-broker/{op}"));
        let body = json!({"types": ["service", "batch"], "timeoutMs": 10, "eval": "x", "token": 1});
        let (status, text) = post(&client, &url, None, &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{op}: {text}");
    }

    // Nothing was forged, and the server still writes, is ready, and restarts on its data.
    let forged = client
        .get(sandbox.url(&object_path("default", "jobs", "forged")))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);
    let namespaces = sandbox.url("/apis/caravan.dev/v1/namespaces");
    let create = |name: &str| {
        client
            .post(&namespaces)
            .json(&json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": name}}))
    };
    let resp = create("after-attack").send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        resp.text().await.unwrap()
    );
    let ready = client.get(sandbox.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    sandbox
        .restart()
        .expect("the server restarts on its data dir");
    let resp = create("after-restart").send().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        resp.text().await.unwrap()
    );
}
