//! `POST /apis/caravan.dev/v1/nodes/{name}/heartbeat`: a node agent reports it is alive and
//! learns when to report next.
//!
//! ```text
//! POST ─▶ body (empty, or any JSON or YAML) ─▶ api::heartbeat ─▶ 200 NodeHeartbeat (the TTL)
//! ```

use std::time::Duration;

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use caravan_schemas::API_VERSION;
use serde_json::{Value, json};

use super::body;
use super::error::ApiError;
use super::path::PREFIX;
use super::respond;
use crate::api;
use crate::context::ApiContext;

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
    let ttl = api::heartbeat(ctx, &node).await?;
    Ok(respond::json(200, &heartbeat_body(&node, ttl)))
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
