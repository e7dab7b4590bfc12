//! Node heartbeats: held in the leader's memory, written through Raft only when they change a
//! node's status to `ready`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, rv, start, start_with};

const V1: &str = "/apis/caravan.dev/v1";

/// Creates node `name` (no status: it is `initializing`) and sets its status when given.
async fn create_node(s: &TestServer, name: &str, status: Option<&str>) -> Value {
    let node = json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"datacenter": "dc1", "httpAddr": "127.0.0.1:1"}
    });
    let (code, body) = s.post(&s.url(&format!("{V1}/nodes")), &node).await;
    assert_eq!(code, 201, "{body}");
    let Some(status) = status else { return body };
    let patch = json!({"status": {"status": status}});
    let (code, body) = s
        .send(
            Method::PATCH,
            &s.url(&format!("{V1}/nodes/{name}/status")),
            "application/merge-patch+json",
            patch.to_string(),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn heartbeat(s: &TestServer, name: &str) -> (u16, Value) {
    let resp = s
        .http
        .post(s.url(&format!("{V1}/nodes/{name}/heartbeat")))
        .send()
        .await
        .expect("request");
    crate::support::status_json(resp).await
}

async fn node(s: &TestServer, name: &str) -> Value {
    let (code, body) = s.get(&s.url(&format!("{V1}/nodes/{name}"))).await;
    assert_eq!(code, 200, "{body}");
    body
}

fn ttl_of(answer: &Value) -> Duration {
    let text = answer["heartbeatTTL"]
        .as_str()
        .unwrap_or_else(|| panic!("no heartbeatTTL in {answer}"));
    humantime::parse_duration(text).expect("a humantime TTL")
}

#[tokio::test]
async fn a_heartbeat_of_an_unknown_node_is_not_found() {
    let s = start().await;
    let (code, status) = heartbeat(&s, "ghost").await;
    assert_eq!(code, 404, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["details"]["name"], "ghost");
    assert!(!s.heartbeats.is_tracked("ghost"));
}

#[tokio::test]
async fn a_heartbeat_of_a_ready_node_writes_nothing() {
    let s = start().await;
    let created = create_node(&s, "n1", Some("ready")).await;
    let before = rv(&created);
    for _ in 0..3 {
        let (code, answer) = heartbeat(&s, "n1").await;
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["apiVersion"], "caravan.dev/v1");
        assert_eq!(answer["kind"], "NodeHeartbeat");
        assert_eq!(answer["nodeName"], "n1");
        let ttl = ttl_of(&answer);
        assert!(
            ttl >= Duration::from_secs(10) && ttl < Duration::from_secs(20),
            "{ttl:?}"
        );
    }
    assert_eq!(rv(&node(&s, "n1").await), before, "no Raft write");
    assert!(s.heartbeats.is_tracked("n1"));
}

#[tokio::test]
async fn a_heartbeat_marks_an_initializing_or_down_node_ready_once() {
    let s = start().await;
    for (name, status) in [
        ("fresh", None),
        ("init", Some("initializing")),
        ("down", Some("down")),
    ] {
        let created = create_node(&s, name, status).await;
        let (code, answer) = heartbeat(&s, name).await;
        assert_eq!(code, 200, "{answer}");
        let after = node(&s, name).await;
        assert_eq!(after["status"]["status"], "ready", "{after}");
        let stamp = after["status"]["lastHeartbeat"]
            .as_str()
            .expect("lastHeartbeat");
        humantime::parse_rfc3339(stamp).expect("RFC 3339");
        assert!(rv(&after) > rv(&created));
        assert_eq!(after["spec"], created["spec"], "only the status changes");
        // The node is ready now: the next heartbeats change nothing.
        let (code, _) = heartbeat(&s, name).await;
        assert_eq!(code, 200);
        assert_eq!(rv(&node(&s, name).await), rv(&after), "{name}");
    }
}

#[tokio::test]
async fn a_heartbeat_takes_an_empty_object_and_only_post() {
    let s = start().await;
    create_node(&s, "n1", Some("ready")).await;
    let url = s.url(&format!("{V1}/nodes/n1/heartbeat"));
    assert_eq!(s.post(&url, &json!({})).await.0, 200);
    let (code, status) = s
        .send(Method::POST, &url, "application/json", "[1]".into())
        .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    let (code, status) = s.get(&url).await;
    assert_eq!(code, 405, "{status}");
}

#[tokio::test]
async fn a_node_that_misses_its_ttl_and_grace_is_marked_down_once() {
    let s = start_with(|_, api| {
        api.heartbeat.min_ttl = Duration::from_millis(50);
        api.heartbeat.grace = Duration::from_millis(50);
        api.heartbeat.failover_ttl = Duration::from_millis(50);
    })
    .await;
    create_node(&s, "quiet", Some("ready")).await;
    create_node(&s, "chatty", Some("ready")).await;
    let (_, answer) = heartbeat(&s, "quiet").await;
    let ttl = ttl_of(&answer);
    assert!(
        ttl >= Duration::from_millis(50) && ttl < Duration::from_millis(100),
        "{ttl:?}"
    );
    // chatty keeps heartbeating; quiet stops. Only quiet goes down, with one status write.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        heartbeat(&s, "chatty").await;
        if node(&s, "quiet").await["status"]["status"] == "down" {
            break;
        }
        assert!(Instant::now() < deadline, "quiet was never marked down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(node(&s, "chatty").await["status"]["status"], "ready");
    assert!(
        !s.heartbeats.is_tracked("quiet"),
        "a down node is forgotten"
    );
    let down = node(&s, "quiet").await;
    let rv = down["metadata"]["resourceVersion"].clone();
    assert!(
        down["status"]["statusDescription"]
            .as_str()
            .unwrap()
            .contains("missed its heartbeat")
    );
    // Nothing more is written while it stays silent.
    for _ in 0..5 {
        heartbeat(&s, "chatty").await;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(node(&s, "quiet").await["metadata"]["resourceVersion"], rv);
    // Its next heartbeat brings it back.
    heartbeat(&s, "quiet").await;
    assert_eq!(node(&s, "quiet").await["status"]["status"], "ready");
}

#[tokio::test]
async fn a_registered_node_that_never_heartbeats_is_marked_down() {
    let s = start_with(|_, api| {
        api.heartbeat.min_ttl = Duration::from_millis(50);
        api.heartbeat.grace = Duration::from_millis(50);
    })
    .await;
    let created = Instant::now();
    create_node(&s, "silent", Some("ready")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while node(&s, "silent").await["status"]["status"] != "down" {
        assert!(Instant::now() < deadline, "silent was never marked down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(created.elapsed() >= Duration::from_millis(100));
}
