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
async fn a_node_whose_ttl_and_grace_passed_is_expired() {
    let s = start_with(|_, api| {
        api.heartbeat.min_ttl = Duration::from_millis(50);
        api.heartbeat.grace = Duration::from_millis(50);
    })
    .await;
    create_node(&s, "quiet", Some("ready")).await;
    create_node(&s, "chatty", Some("ready")).await;
    let sent = Instant::now();
    let (_, answer) = heartbeat(&s, "quiet").await;
    let ttl = ttl_of(&answer);
    assert!(
        ttl >= Duration::from_millis(50) && ttl < Duration::from_millis(100),
        "{ttl:?}"
    );
    assert!(
        !s.heartbeats.expired(sent).contains(&"quiet".to_string()),
        "not expired as of its heartbeat"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Asked as of just before chatty's heartbeat: chatty can never be listed, whatever the
        // scheduling delays.
        let now = Instant::now();
        heartbeat(&s, "chatty").await;
        let expired = s.heartbeats.expired(now);
        if expired.contains(&"quiet".to_string()) {
            assert!(!expired.contains(&"chatty".to_string()), "{expired:?}");
            break;
        }
        assert!(Instant::now() < deadline, "quiet never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Expiry marks nothing down by itself.
    assert_eq!(node(&s, "quiet").await["status"]["status"], "ready");
    s.heartbeats.forget("quiet");
    assert!(!s.heartbeats.is_tracked("quiet"));
    assert!(
        !s.heartbeats
            .expired(Instant::now())
            .contains(&"quiet".to_string())
    );
}
