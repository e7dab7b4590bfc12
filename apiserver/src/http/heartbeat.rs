//! `POST /apis/caravan.dev/v1/nodes/{name}/heartbeat`: a node agent reports it is alive and
//! learns when to report next.
//!
//! ```text
//! POST ─▶ leader? ─▶ Node exists? ─▶ status.status != ready ─▶ merge into status (one Raft write)
//!                                  └▶ HeartbeatTracker::beat (memory only) ─▶ 200 NodeHeartbeat
//! ```

use std::time::{Duration, Instant, SystemTime};

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use caravan_schemas::{API_VERSION, Kind};
use serde_json::{Value, json};

use super::body;
use super::context::ApiContext;
use super::error::ApiError;
use super::path::{PREFIX, ResourcePath};
use super::query::Query;
use super::respond;
use super::write::{self, PatchKind};
use crate::store::ObjectKey;

/// The node a heartbeat path names: `Some` only for `…/nodes/{name}/heartbeat`.
pub fn parse(path: &str) -> Option<String> {
    let rest = path.strip_prefix(PREFIX)?;
    match rest
        .trim_end_matches('/')
        .split('/')
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["nodes", name, "heartbeat"] if !name.is_empty() => Some(
            percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .into_owned(),
        ),
        _ => None,
    }
}

/// Handles a heartbeat of `node`.
pub async fn handle(ctx: &ApiContext, node: String, req: Request) -> Result<Response, ApiError> {
    if req.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed(format!(
            "method {} is not allowed on a heartbeat: POST it",
            req.method()
        )));
    }
    let media = body::content_type(req.headers());
    let bytes = body::read(req.into_body()).await?;
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        body::decode(&bytes, &media, false).await?;
    }
    if !ctx.store.is_leader() {
        return Err(ApiError::Unavailable(
            "heartbeats are held by the leader and this server is not the leader".into(),
        ));
    }
    let key = ObjectKey {
        kind: Kind::Node,
        namespace: String::new(),
        name: node.clone(),
    };
    let current = ctx
        .store
        .state()
        .get(&key)
        .ok_or_else(|| ApiError::not_found(Kind::Node, &node))?;
    let ready = current
        .to_value()
        .pointer("/status/status")
        .and_then(Value::as_str)
        == Some("ready");
    if !ready {
        mark_ready(ctx, &node).await?;
    }
    let ttl = ctx.heartbeats.beat(&node, Instant::now());
    Ok(respond::json(200, &heartbeat_body(&node, ttl)))
}

/// The one write a heartbeat makes: the node's status becomes `ready`, through the status
/// subresource like any other status change.
async fn mark_ready(ctx: &ApiContext, node: &str) -> Result<(), ApiError> {
    let path = ResourcePath {
        kind: Kind::Node,
        namespace: None,
        name: Some(node.to_string()),
        status: true,
    };
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let patch = json!({"status": {"status": "ready", "lastHeartbeat": now}});
    write::patch_with(ctx, &path, &Query::default(), PatchKind::Merge(patch)).await?;
    Ok(())
}

/// The answer to a heartbeat; the TTL is rounded down to milliseconds, e.g. `10s 347ms`.
fn heartbeat_body(node: &str, ttl: Duration) -> Value {
    let ttl = Duration::from_millis(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    json!({
        "apiVersion": API_VERSION,
        "kind": "NodeHeartbeat",
        "nodeName": node,
        "heartbeatTTL": humantime::format_duration(ttl).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_heartbeat_paths_match() {
        assert_eq!(
            parse(&format!("{PREFIX}nodes/n%2D1/heartbeat")),
            Some("n-1".into())
        );
        for other in [
            "nodes/n1",
            "nodes/n1/status",
            "nodes//heartbeat",
            "namespaces/default/nodes/n1/heartbeat",
            "jobs/n1/heartbeat",
        ] {
            assert_eq!(parse(&format!("{PREFIX}{other}")), None, "{other}");
        }
    }

    #[test]
    fn the_ttl_is_sent_in_milliseconds() {
        let body = heartbeat_body("n1", Duration::from_micros(10_347_891));
        assert_eq!(body["heartbeatTTL"], "10s 347ms");
        assert_eq!(body["kind"], "NodeHeartbeat");
        assert_eq!(body["nodeName"], "n1");
        assert_eq!(body["apiVersion"], "caravan.dev/v1");
    }
}
