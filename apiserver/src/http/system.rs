//! `PUT` or `POST /v1/system/gc[?force=true]` (Nomad's `PUT /v1/system/gc`): runs a garbage
//! collection pass now on the leader's controllers and answers what it deleted.
//!
//! ```text
//! PUT /v1/system/gc ─▶ api::collect_garbage(force): GcTrigger (set when the server runs the
//!                        │ controllers)? ─ no ─▶ 503 Status
//!                        ▼
//!                 the gc loop's pass ─▶ 200 GcSummary (counts and names per kind)
//! ```
//!
//! Without `force` the configured thresholds apply; with it every threshold is zero, as in
//! Nomad's forced collection. Either way nothing live is deleted.

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use serde_json::Value;

use super::error::ApiError;
use super::respond;
use crate::api;
use crate::context::ApiContext;

/// The path of the endpoint.
pub const GC_PATH: &str = "/v1/system/gc";

/// Whether `path` is the garbage collection endpoint.
pub fn is_gc(path: &str) -> bool {
    path.trim_end_matches('/') == GC_PATH
}

/// `force` from the query: absent or `false` is off, `force`, `true` or `1` is on.
fn force(query: Option<&str>) -> Result<bool, ApiError> {
    let mut force = false;
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
        if key != "force" {
            continue;
        }
        force = match value {
            "true" | "1" | "" => true,
            "false" | "0" => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid force {other:?}: expected true or false"
                )));
            }
        };
    }
    Ok(force)
}

/// Handles a request to [`GC_PATH`].
pub async fn handle_gc(ctx: &ApiContext, req: Request) -> Result<Response, ApiError> {
    if req.method() != Method::PUT && req.method() != Method::POST {
        return Err(ApiError::MethodNotAllowed(format!(
            "method {} is not allowed on {GC_PATH}: PUT or POST it",
            req.method()
        )));
    }
    let force = force(req.uri().query())?;
    let summary = api::collect_garbage(ctx, force).await?;
    let mut body = serde_json::to_value(&summary)
        .map_err(|e| ApiError::internal(format!("failed to encode the summary: {e}")))?;
    if let Value::Object(map) = &mut body {
        map.insert("apiVersion".into(), caravan_schemas::API_VERSION.into());
        map.insert("kind".into(), "GcSummary".into());
    }
    Ok(respond::json(200, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_gc_path_matches() {
        assert!(is_gc("/v1/system/gc"));
        assert!(is_gc("/v1/system/gc/"));
        for other in [
            "/v1/system",
            "/v1/system/gcx",
            "/apis/caravan.dev/v1/system/gc",
        ] {
            assert!(!is_gc(other), "{other}");
        }
    }

    #[test]
    fn force_is_read_from_the_query() {
        assert!(!force(None).unwrap());
        assert!(!force(Some("pretty=1")).unwrap());
        assert!(force(Some("force")).unwrap());
        assert!(force(Some("force=true")).unwrap());
        assert!(!force(Some("force=false")).unwrap());
        assert!(force(Some("force=maybe")).is_err());
    }
}
