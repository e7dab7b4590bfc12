//! `GET /apis/caravan.dev/v1/namespaces/{ns}/allocations/{name}/log`: a task's stdout or stderr,
//! read by the agent of the allocation's node and streamed back unchanged.
//!
//! ```text
//! GET …/allocations/{name}/log?task=&stream=&follow=&tailLines=
//!   ─▶ Allocation (404) ─▶ spec.nodeName ─▶ Node (404) ─▶ spec.httpAddr (503 when missing)
//!   ─▶ GET http://{httpAddr}/v1/client/fs/logs/{alloc uid}?task=&type=&follow=&tail=
//!   ─▶ 200 text/plain, the agent's bytes as they come; agent errors become Status objects
//! ```
//!
//! The parameters follow Kubernetes' `pods/log` (`follow`, `tailLines`) with Caravan's `task`
//! (which task of the allocation; optional when it has one) and `stream` (`stdout`, the
//! default, or `stderr`).

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use caravan_schemas::{Kind, Status};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::context::ApiContext;
use super::error::{ApiError, status_response};
use super::path::PREFIX;
use super::query::{bad, parse_bool, url_pairs};
use crate::store::ObjectKey;

/// How long connecting to a node's agent may take.
const AGENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Characters escaped in a query value or path segment sent to the agent.
const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// The allocation a log path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPath {
    pub namespace: String,
    pub name: String,
}

impl LogPath {
    /// `Some` only for `…/namespaces/{ns}/allocations/{name}/log`.
    pub fn parse(path: &str) -> Option<LogPath> {
        let rest = path.strip_prefix(PREFIX)?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        match rest
            .trim_end_matches('/')
            .split('/')
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["namespaces", ns, "allocations", name, "log"]
                if !ns.is_empty() && !name.is_empty() =>
            {
                Some(LogPath {
                    namespace: decode(ns),
                    name: decode(name),
                })
            }
            _ => None,
        }
    }
}

/// Which output of a task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogStream {
    #[default]
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// The query parameters of a log request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub task: Option<String>,
    pub stream: LogStream,
    pub follow: bool,
    pub tail_lines: Option<u64>,
}

impl LogQuery {
    pub fn parse(raw: Option<&str>) -> Result<LogQuery, ApiError> {
        let mut q = LogQuery::default();
        for (key, value) in raw.into_iter().flat_map(url_pairs) {
            match key.as_str() {
                "task" => q.task = (!value.is_empty()).then_some(value),
                "stream" => {
                    q.stream = match value.as_str() {
                        "stdout" | "" => LogStream::Stdout,
                        "stderr" => LogStream::Stderr,
                        _ => {
                            return Err(ApiError::BadRequest(format!(
                                "stream must be stdout or stderr, got {value:?}"
                            )));
                        }
                    }
                }
                "follow" => q.follow = parse_bool(&key, &value)?,
                "tailLines" => {
                    q.tail_lines = Some(value.parse().map_err(|_| bad(&key, &value))?);
                }
                // Other parameters (`pretty`, `timestamps`, …) are accepted and ignored.
                _ => {}
            }
        }
        Ok(q)
    }

    /// The agent's path and query for the allocation with `uid`.
    pub fn agent_path(&self, uid: &str) -> String {
        let mut path = format!(
            "/v1/client/fs/logs/{}?type={}&follow={}",
            utf8_percent_encode(uid, ESCAPE),
            self.stream.as_str(),
            self.follow
        );
        if let Some(task) = &self.task {
            path.push_str(&format!("&task={}", utf8_percent_encode(task, ESCAPE)));
        }
        if let Some(n) = self.tail_lines {
            path.push_str(&format!("&tail={n}"));
        }
        path
    }
}

/// Handles a request to a log path.
pub async fn handle(ctx: &ApiContext, target: LogPath, req: Request) -> Result<Response, ApiError> {
    if req.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed(format!(
            "method {} is not allowed on a log: GET it",
            req.method()
        )));
    }
    let query = LogQuery::parse(req.uri().query())?;
    let (node, uid) = placement(ctx, &target)?;
    let addr = agent_address(ctx, &node)?;
    let base = if addr.contains("://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{addr}")
    };
    let url = format!("{base}{}", query.agent_path(&uid));
    let unreachable = |e: reqwest::Error| {
        ApiError::Unavailable(format!(
            "the agent of node {node} at {addr} could not be reached: {e}"
        ))
    };
    let resp = agent_client()?
        .get(&url)
        .send()
        .await
        .map_err(unreachable)?;
    let code = resp.status();
    if !code.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Ok(agent_error(&node, code, text.trim()));
    }
    let mut out = Response::new(Body::from_stream(resp.bytes_stream()));
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(out)
}

/// The node and uid of the allocation.
fn placement(ctx: &ApiContext, target: &LogPath) -> Result<(String, String), ApiError> {
    let key = ObjectKey {
        kind: Kind::Allocation,
        namespace: target.namespace.clone(),
        name: target.name.clone(),
    };
    let alloc = ctx
        .store
        .state()
        .get(&key)
        .ok_or_else(|| ApiError::not_found(Kind::Allocation, &target.name))?;
    let node = alloc
        .to_value()
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if node.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "allocation {} is not placed on a node",
            target.name
        )));
    }
    Ok((node, alloc.uid.clone()))
}

/// `spec.httpAddr` of the node.
fn agent_address(ctx: &ApiContext, node: &str) -> Result<String, ApiError> {
    let key = ObjectKey {
        kind: Kind::Node,
        namespace: String::new(),
        name: node.to_string(),
    };
    let obj = ctx
        .store
        .state()
        .get(&key)
        .ok_or_else(|| ApiError::not_found(Kind::Node, node))?;
    obj.to_value()
        .pointer("/spec/httpAddr")
        .and_then(Value::as_str)
        .filter(|a| !a.trim().is_empty())
        .map(|a| a.trim().to_string())
        .ok_or_else(|| ApiError::Unavailable(format!("node {node} has no agent address")))
}

/// An agent's error answer as a `Status`: 404 and 400 keep their code and the agent's message,
/// anything else is the node being unavailable.
fn agent_error(node: &str, code: StatusCode, text: &str) -> Response {
    let message = if text.is_empty() {
        code.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.to_string()
    };
    let status = match code.as_u16() {
        404 => Status::failure(404, "NotFound", message),
        400 => Status::failure(400, "BadRequest", message),
        other => {
            return axum::response::IntoResponse::into_response(ApiError::Unavailable(format!(
                "the agent of node {node} answered {other}: {message}"
            )));
        }
    };
    status_response(&status)
}

/// The HTTP client to agents: no overall timeout (a followed log streams for as long as the
/// caller reads).
fn agent_client() -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    // reqwest refuses to build a client until a rustls crypto provider is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(AGENT_CONNECT_TIMEOUT)
        .tcp_keepalive(Duration::from_secs(30))
        .build()
        .map_err(|e| ApiError::Internal(format!("failed to build the HTTP client: {e}")))?;
    Ok(CLIENT.get_or_init(|| client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_log_paths_match() {
        assert_eq!(
            LogPath::parse(&format!("{PREFIX}namespaces/default/allocations/a%2E1/log")),
            Some(LogPath {
                namespace: "default".into(),
                name: "a.1".into()
            })
        );
        for other in [
            "namespaces/default/allocations/a1",
            "namespaces/default/allocations/a1/logs",
            "namespaces/default/jobs/a1/log",
            "namespaces//allocations/a1/log",
            "allocations/a1/log",
        ] {
            assert_eq!(LogPath::parse(&format!("{PREFIX}{other}")), None, "{other}");
        }
    }

    #[test]
    fn query_maps_to_the_agent_path() {
        let q = LogQuery::parse(Some("task=web+1&stream=stderr&follow=true&tailLines=20")).unwrap();
        assert_eq!(
            q.agent_path("u-1"),
            "/v1/client/fs/logs/u-1?type=stderr&follow=true&task=web%201&tail=20"
        );
        let q = LogQuery::parse(None).unwrap();
        assert_eq!(q, LogQuery::default());
        assert_eq!(
            q.agent_path("u"),
            "/v1/client/fs/logs/u?type=stdout&follow=false"
        );
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert!(LogQuery::parse(Some("stream=both")).is_err());
        assert!(LogQuery::parse(Some("tailLines=-1")).is_err());
        assert!(LogQuery::parse(Some("follow=maybe")).is_err());
    }
}
