//! Allocation logs: the server finds the allocation's node and proxies the request to the
//! node's agent (a stub here), streaming its bytes back; failures are `Status` objects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::support::{TestServer, alloc, start};

const V1: &str = "/apis/caravan.dev/v1";

/// A node agent that serves fixed content and records what it was asked.
#[derive(Default)]
struct StubAgent {
    /// Path and query of every request.
    requests: Mutex<Vec<String>>,
    /// Lets a followed log send its second chunk.
    release: Notify,
}

async fn stub_logs(
    State(stub): State<Arc<StubAgent>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    uri: axum::http::Uri,
) -> Response {
    stub.requests.lock().unwrap().push(uri.to_string());
    let param = |k: &str| q.get(k).cloned().unwrap_or_default();
    match param("task").as_str() {
        "db" => {
            return (
                StatusCode::NOT_FOUND,
                format!("task \"db\" not found in allocation {id}\n"),
            )
                .into_response();
        }
        "boom" => return (StatusCode::INTERNAL_SERVER_ERROR, "disk on fire").into_response(),
        _ => {}
    }
    if param("follow") == "true" {
        let chunks = futures::stream::unfold(0, move |step| {
            let stub = stub.clone();
            async move {
                match step {
                    0 => Some((Ok::<_, std::io::Error>("first\n".to_string()), 1)),
                    1 => {
                        stub.release.notified().await;
                        Some((Ok("second\n".to_string()), 2))
                    }
                    _ => None,
                }
            }
        });
        return Body::from_stream(chunks).into_response();
    }
    format!(
        "id={id} task={} type={} follow={} tail={}\nhello\n",
        param("task"),
        param("type"),
        param("follow"),
        param("tail")
    )
    .into_response()
}

/// Starts the stub agent; returns it and its `host:port`.
async fn stub_agent() -> (Arc<StubAgent>, String) {
    let stub = Arc::new(StubAgent::default());
    let app = Router::new()
        .route("/v1/client/fs/logs/{id}", get(stub_logs))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (stub, addr)
}

/// Creates node `name` with the agent address `http_addr`.
async fn create_node(s: &TestServer, name: &str, http_addr: Option<&str>) {
    let mut node = json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"datacenter": "dc1"}
    });
    if let Some(addr) = http_addr {
        node["spec"]["httpAddr"] = json!(addr);
    }
    let (code, body) = s.post(&s.url(&format!("{V1}/nodes")), &node).await;
    assert_eq!(code, 201, "{body}");
}

/// Creates allocation `name` on `node`; returns its uid.
async fn create_alloc(s: &TestServer, name: &str, node: &str) -> String {
    let url = s.url(&format!("{V1}/namespaces/default/allocations"));
    let (code, body) = s.post(&url, &alloc(name, "web", node)).await;
    assert_eq!(code, 201, "{body}");
    body["metadata"]["uid"].as_str().expect("uid").to_string()
}

fn log_url(s: &TestServer, alloc: &str, query: &str) -> String {
    s.url(&format!(
        "{V1}/namespaces/default/allocations/{alloc}/log{query}"
    ))
}

async fn get_text(s: &TestServer, url: &str) -> (u16, String, String) {
    let resp = s.http.get(url).send().await.expect("request");
    let code = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (code, content_type, resp.text().await.expect("body"))
}

async fn get_status(s: &TestServer, url: &str) -> (u16, Value) {
    s.get(url).await
}

#[tokio::test]
async fn logs_are_proxied_from_the_nodes_agent() {
    let s = start().await;
    let (stub, addr) = stub_agent().await;
    create_node(&s, "n1", Some(&addr)).await;
    s.create_job("web").await;
    let uid = create_alloc(&s, "web-1", "n1").await;

    let (code, content_type, body) = get_text(&s, &log_url(&s, "web-1", "")).await;
    assert_eq!(code, 200, "{body}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(
        body,
        format!("id={uid} task= type=stdout follow=false tail=\nhello\n")
    );

    let query = "?task=server&stream=stderr&tailLines=20";
    let (code, _, body) = get_text(&s, &log_url(&s, "web-1", query)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        format!("id={uid} task=server type=stderr follow=false tail=20\nhello\n")
    );
    let seen = stub.requests.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            format!("/v1/client/fs/logs/{uid}?type=stdout&follow=false"),
            format!("/v1/client/fs/logs/{uid}?type=stderr&follow=false&task=server&tail=20"),
        ]
    );
}

#[tokio::test]
async fn a_followed_log_streams_before_the_agent_is_done() {
    let s = start().await;
    let (stub, addr) = stub_agent().await;
    create_node(&s, "n1", Some(&addr)).await;
    s.create_job("web").await;
    create_alloc(&s, "web-1", "n1").await;

    let resp = s
        .http
        .get(log_url(&s, "web-1", "?follow=true"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.bytes_stream();
    let mut received = Vec::new();
    while !received.ends_with(b"first\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("the first chunk arrives while the agent still streams")
            .expect("the stream goes on")
            .expect("a chunk");
        received.extend_from_slice(&chunk);
    }
    assert_eq!(received, b"first\n");
    stub.release.notify_one();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("the stream ends")
    {
        received.extend_from_slice(&chunk.expect("a chunk"));
    }
    assert_eq!(received, b"first\nsecond\n");
}

#[tokio::test]
async fn agent_errors_become_statuses() {
    let s = start().await;
    let (_stub, addr) = stub_agent().await;
    create_node(&s, "n1", Some(&addr)).await;
    s.create_job("web").await;
    create_alloc(&s, "web-1", "n1").await;

    let (code, status) = get_status(&s, &log_url(&s, "web-1", "?task=db")).await;
    assert_eq!(code, 404, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "NotFound");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("task \"db\" not found"), "{message}");

    let (code, status) = get_status(&s, &log_url(&s, "web-1", "?task=boom")).await;
    assert_eq!(code, 503, "{status}");
    assert_eq!(status["reason"], "ServiceUnavailable");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("disk on fire")
    );

    let (code, status) = get_status(&s, &log_url(&s, "web-1", "?stream=both")).await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
}

#[tokio::test]
async fn missing_allocations_and_nodes_are_not_found() {
    let s = start().await;
    s.create_job("web").await;
    let (code, status) = get_status(&s, &log_url(&s, "ghost", "")).await;
    assert_eq!(code, 404, "{status}");
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["details"]["kind"], "allocations");

    create_alloc(&s, "web-1", "nowhere").await;
    let (code, status) = get_status(&s, &log_url(&s, "web-1", "")).await;
    assert_eq!(code, 404, "{status}");
    assert_eq!(status["details"]["kind"], "nodes");
}

#[tokio::test]
async fn unreachable_agents_are_unavailable() {
    let s = start().await;
    s.create_job("web").await;
    create_node(&s, "bare", None).await;
    create_alloc(&s, "on-bare", "bare").await;
    let (code, status) = get_status(&s, &log_url(&s, "on-bare", "")).await;
    assert_eq!(code, 503, "{status}");
    assert_eq!(status["reason"], "ServiceUnavailable");
    assert_eq!(status["message"], "node bare has no agent address");

    // A port nothing listens on: the connection is refused.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().to_string()
    };
    create_node(&s, "gone", Some(&closed)).await;
    create_alloc(&s, "on-gone", "gone").await;
    let (code, status) = get_status(&s, &log_url(&s, "on-gone", "")).await;
    assert_eq!(code, 503, "{status}");
    assert_eq!(status["reason"], "ServiceUnavailable");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains("could not be reached"), "{message}");
}
