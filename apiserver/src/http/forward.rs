//! Followers forward to the leader what needs it: every write, consistent reads (a get or list
//! without `resourceVersion=0`), plans, heartbeats, garbage collection and membership changes.
//! Watches, `resourceVersion=0` reads, discovery and the gossip view are served locally.
//!
//! ```text
//! request ─▶ needs_leader(method, path, query)? ─no──▶ this server
//!                  │ yes, and this server follows
//!                  ▼
//!            http://{leader}{path?query}  (streamed both ways; one hop at most)
//! ```

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::cluster::MemberStatus;
use crate::cluster::secret::SECRET_HEADER;
use crate::context::ApiContext;

/// Marks a request a follower forwarded, so it is never forwarded twice.
pub const FORWARDED: &str = "x-caravan-forwarded";
/// Marks a request forwarded to its region, so it never hops regions twice.
pub const REGION_FORWARDED: &str = "x-caravan-region-forwarded";
/// Header naming the region a request is for (the CLI's `--region`).
pub const REGION_HEADER: &str = "x-caravan-region";

fn is_resource_path(path: &str) -> bool {
    ["/apis/caravan.dev/v1/", "/api/v1/"].iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty())
    })
}

fn query_has(query: Option<&str>, key: &str, value: &str) -> bool {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .any(|(k, v)| k == key && v == value)
}

/// Whether a request must be answered by the leader. Pure.
pub fn needs_leader(method: &Method, path: &str, query: Option<&str>) -> bool {
    if path.starts_with("/internal/") {
        return false;
    }
    if let Some(rest) = path.strip_prefix("/v1/agent/") {
        return rest == "force-leave";
    }
    if path.starts_with(super::broker::BROKER_PATH) {
        return true;
    }
    if path.starts_with("/v1/acl/") {
        return method != Method::GET;
    }
    if path.starts_with("/v1/operator/raft/") || path == "/v1/system/gc" {
        return method != Method::GET;
    }
    if method != Method::GET && method != Method::HEAD {
        return is_resource_path(path);
    }
    is_resource_path(path)
        && !query_has(query, "watch", "true")
        && !query_has(query, "watch", "1")
        && !query_has(query, "resourceVersion", "0")
}

fn client() -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    let client = crate::peers::client_builder(builder, crate::peers::To::Server)
        .build()
        .map_err(|e| ApiError::internal(format!("failed to build the HTTP client: {e}")))?;
    Ok(CLIENT.get_or_init(|| client))
}

/// The region a request is for: the `x-caravan-region` header, else `?region=`.
pub fn requested_region<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(REGION_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            query
                .unwrap_or_default()
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "region")
                .map(|(_, v)| v)
        })
        .filter(|r| !r.is_empty())
}

/// The middleware: sends a request for another region to a server of that region, and one
/// that needs the leader to the leader when this server follows.
pub async fn layer(State(ctx): State<Arc<ApiContext>>, req: Request, next: Next) -> Response {
    let uri = req.uri().clone();
    let result = if let Some(region) = requested_region(req.headers(), uri.query())
        .filter(|r| *r != ctx.region())
        .map(str::to_string)
    {
        to_region(&ctx, &region, req).await
    } else if !needs_leader(req.method(), uri.path(), uri.query()) || ctx.store.is_leader() {
        return next.run(req).await;
    } else {
        to_leader(&ctx, req).await
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn to_region(ctx: &ApiContext, region: &str, req: Request) -> Result<Response, ApiError> {
    if req.headers().contains_key(REGION_FORWARDED) {
        return Err(ApiError::unavailable(format!(
            "this server is not in region {region:?}"
        )));
    }
    let members = match ctx.cluster() {
        Some(cluster) => cluster.members().await,
        None => Vec::new(),
    };
    let target = members
        .iter()
        .filter(|m| m.region == region && m.status == MemberStatus::Alive)
        .map(|m| m.http_addr.clone())
        .min()
        .ok_or_else(|| {
            ApiError::unavailable(format!("no live server of region {region:?} is known"))
        })?;
    relay(ctx, &target, req, REGION_FORWARDED).await
}

async fn to_leader(ctx: &ApiContext, req: Request) -> Result<Response, ApiError> {
    if req.headers().contains_key(FORWARDED) {
        return Err(ApiError::unavailable(
            "this server is not the leader (leadership changed while forwarding)",
        ));
    }
    let Some(leader) = ctx.store.leader_addr() else {
        return Err(ApiError::unavailable(
            "no leader: the servers are electing one or have no quorum",
        ));
    };
    relay(ctx, &leader, req, FORWARDED).await
}

/// Sends `req` to `target` marked with `marker` and carrying the cluster secret, and streams
/// the answer back.
async fn relay(
    ctx: &ApiContext,
    target: &str,
    req: Request,
    marker: &'static str,
) -> Result<Response, ApiError> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let url = format!("{}{path}", crate::peers::url(target));
    let (parts, body) = req.into_parts();
    let mut out = client()?
        .request(parts.method.clone(), &url)
        .header(marker, "1")
        .header(SECRET_HEADER, ctx.store.secret().expose())
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    for (name, value) in &parts.headers {
        if forwardable(name) && name.as_str() != SECRET_HEADER {
            out = out.header(name, value);
        }
    }
    let resp = out.send().await.map_err(|e| {
        ApiError::unavailable(format!("the server at {target} could not be reached: {e}"))
    })?;
    let mut answer = Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        if forwardable(name) {
            answer = answer.header(name, value);
        }
    }
    answer
        .header(marker, HeaderValue::from_static("1"))
        .body(Body::from_stream(resp.bytes_stream()))
        .map_err(|e| ApiError::internal(format!("failed to relay the leader's answer: {e}")))
}

/// Hop-by-hop headers stay on their hop.
fn forwardable(name: &HeaderName) -> bool {
    ![
        header::HOST,
        header::CONNECTION,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TE,
        header::TRAILER,
    ]
    .contains(name)
        && name.as_str() != "keep-alive"
        && name.as_str() != "proxy-connection"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_consistent_reads_go_to_the_leader() {
        let jobs = "/apis/caravan.dev/v1/namespaces/default/jobs";
        assert!(needs_leader(&Method::POST, jobs, None));
        assert!(needs_leader(&Method::PATCH, &format!("{jobs}/web"), None));
        assert!(needs_leader(&Method::DELETE, &format!("{jobs}/web"), None));
        assert!(needs_leader(&Method::GET, jobs, None));
        assert!(needs_leader(&Method::GET, jobs, Some("limit=10")));
        assert!(needs_leader(&Method::POST, "/api/v1/namespaces", None));
        assert!(needs_leader(
            &Method::POST,
            "/apis/caravan.dev/v1/nodes/n1/heartbeat",
            None
        ));
        assert!(needs_leader(&Method::PUT, "/v1/system/gc", None));
        assert!(needs_leader(&Method::POST, "/v1/eval-broker/dequeue", None));
        assert!(needs_leader(
            &Method::PUT,
            "/v1/agent/force-leave",
            Some("node=s3")
        ));
    }

    #[test]
    fn the_region_comes_from_the_header_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            requested_region(&headers, Some("region=east&limit=1")),
            Some("east")
        );
        assert_eq!(requested_region(&headers, Some("limit=1")), None);
        assert_eq!(requested_region(&headers, Some("region=")), None);
        headers.insert(REGION_HEADER, HeaderValue::from_static("west"));
        assert_eq!(
            requested_region(&headers, Some("region=east")),
            Some("west")
        );
    }

    #[test]
    fn watches_cached_reads_discovery_and_gossip_stay_local() {
        let jobs = "/apis/caravan.dev/v1/namespaces/default/jobs";
        assert!(!needs_leader(&Method::GET, jobs, Some("watch=true")));
        assert!(!needs_leader(
            &Method::GET,
            jobs,
            Some("watch=1&resourceVersion=5")
        ));
        assert!(!needs_leader(&Method::GET, jobs, Some("resourceVersion=0")));
        assert!(!needs_leader(&Method::GET, "/apis/caravan.dev/v1", None));
        assert!(!needs_leader(&Method::GET, "/apis", None));
        assert!(!needs_leader(&Method::GET, "/readyz", None));
        assert!(!needs_leader(&Method::GET, "/openapi/v3", None));
        assert!(!needs_leader(&Method::POST, "/internal/raft/append", None));
        assert!(!needs_leader(&Method::GET, "/v1/agent/members", None));
        assert!(!needs_leader(
            &Method::PUT,
            "/v1/agent/join",
            Some("address=x:1")
        ));
        assert!(!needs_leader(
            &Method::GET,
            "/v1/operator/raft/configuration",
            None
        ));
    }
}
