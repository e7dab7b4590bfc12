//! `GET /apis/caravan.dev/v1/namespaces/{ns}/allocations/{name}/log`: a task's stdout or stderr,
//! read by the agent of the allocation's node and streamed back unchanged.
//!
//! ```text
//! GET …/allocations/{name}/log?task=&stream=&follow=&tailLines=
//!   ─▶ Allocation (404) ─▶ spec.nodeName ─▶ Node (404) ─▶ spec.httpAddr (503 when missing, or
//!      not exactly HOST:PORT)
//!   ─▶ GET http://{httpAddr}/v1/client/fs/logs/{alloc uid}?type=&follow=&task=&tail=
//!   ─▶ 200 text/plain, the agent's bytes as they come; agent errors become Status objects
//! ```
//!
//! The URL is built from parts ([`agent_url`]): the address is checked again here (a Node
//! stored before admission checked it, or written around admission, must not steer the server
//! to another URL), the uid must be a UUID, and the task name and stream are query values,
//! percent-encoded, never spliced into the URL's text.
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
use caravan_schemas::node::valid_http_addr;
use caravan_schemas::{Kind, Status};
use reqwest::Url;
use serde_json::Value;

use super::error::{ApiError, status_response};
use super::path::PREFIX;
use super::query::{bad, parse_bool, url_pairs};
use crate::api::{self, GetOptions};
use crate::context::ApiContext;

/// How long connecting to a node's agent may take.
const AGENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
                            return Err(ApiError::bad_request(format!(
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
}

/// The URL of the log endpoint of the agent of `node`, whose `spec.httpAddr` is `addr`, for
/// the allocation with `uid`: `http://{addr}/v1/client/fs/logs/{uid}?type=&follow=&task=&tail=`.
/// An address that is not exactly `HOST:PORT` is refused (503: the node cannot be reached
/// through it); so is a uid that is not a UUID (the servers give every object one).
pub fn agent_url(node: &str, addr: &str, uid: &str, query: &LogQuery) -> Result<Url, ApiError> {
    let invalid =
        |why: String| ApiError::unavailable(format!("node {node} has an invalid httpAddr: {why}"));
    valid_http_addr(addr).map_err(invalid)?;
    if uid.len() != 36 || uuid::Uuid::try_parse(uid).is_err() {
        return Err(ApiError::internal(format!(
            "the allocation's uid {uid:?} is not a UUID"
        )));
    }
    let mut url =
        Url::parse(&format!("{}/", crate::peers::url(addr))).map_err(|e| invalid(e.to_string()))?;
    // What the check above promises, as the URL parser understood it: a host and a port only.
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.host().is_none()
    {
        return Err(invalid(format!("{addr:?} is more than HOST:PORT")));
    }
    url.path_segments_mut()
        .map_err(|()| invalid(format!("{addr:?} cannot be a base URL")))?
        .clear()
        .extend(["v1", "client", "fs", "logs", uid]);
    {
        let mut pairs = url.query_pairs_mut();
        pairs
            .append_pair("type", query.stream.as_str())
            .append_pair("follow", if query.follow { "true" } else { "false" });
        if let Some(task) = &query.task {
            pairs.append_pair("task", task);
        }
        if let Some(n) = query.tail_lines {
            pairs.append_pair("tail", &n.to_string());
        }
    }
    Ok(url)
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
    let url = agent_url(&node, &addr, &uid, &query)?;
    let unreachable = |e: reqwest::Error| {
        ApiError::unavailable(format!(
            "the agent of node {node} at {addr} could not be reached: {e}"
        ))
    };
    let resp = agent_client()?.get(url).send().await.map_err(unreachable)?;
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
    let options = GetOptions::default();
    let alloc = api::get(
        ctx,
        Kind::Allocation,
        &target.namespace,
        &target.name,
        &options,
    )?;
    let node = alloc
        .to_value()
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "allocation {} is not placed on a node",
            target.name
        )));
    }
    Ok((node, alloc.uid.clone()))
}

/// `spec.httpAddr` of the node, as stored (checked by [`agent_url`]).
fn agent_address(ctx: &ApiContext, node: &str) -> Result<String, ApiError> {
    let obj = api::get(ctx, Kind::Node, "", node, &GetOptions::default())?;
    obj.to_value()
        .pointer("/spec/httpAddr")
        .and_then(Value::as_str)
        .filter(|a| !a.trim().is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::unavailable(format!("node {node} has no agent address")))
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
            return axum::response::IntoResponse::into_response(ApiError::unavailable(format!(
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
    let builder = reqwest::Client::builder()
        .connect_timeout(AGENT_CONNECT_TIMEOUT)
        .tcp_keepalive(Duration::from_secs(30));
    let client = crate::peers::client_builder(builder, crate::peers::To::Agent)
        .build()
        .map_err(|e| ApiError::internal(format!("failed to build the HTTP client: {e}")))?;
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

    const UID: &str = "0b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c";

    fn url(addr: &str, uid: &str, query: &LogQuery) -> Result<String, ApiError> {
        agent_url("n1", addr, uid, query).map(String::from)
    }

    #[test]
    fn query_maps_to_the_agent_url() {
        let q = LogQuery::parse(Some("task=web+1&stream=stderr&follow=true&tailLines=20")).unwrap();
        assert_eq!(
            url("10.0.0.5:4647", UID, &q).unwrap(),
            format!(
                "http://10.0.0.5:4647/v1/client/fs/logs/{UID}?type=stderr&follow=true&task=web+1&tail=20"
            )
        );
        let q = LogQuery::parse(None).unwrap();
        assert_eq!(q, LogQuery::default());
        assert_eq!(
            url("[::1]:4647", UID, &q).unwrap(),
            format!("http://[::1]:4647/v1/client/fs/logs/{UID}?type=stdout&follow=false")
        );
        assert_eq!(
            url("node-1.example.com:80", UID, &q).unwrap(),
            format!("http://node-1.example.com/v1/client/fs/logs/{UID}?type=stdout&follow=false")
        );
    }

    #[test]
    fn hostile_addresses_are_refused_before_any_request() {
        let q = LogQuery::default();
        for addr in [
            "127.0.0.1:5190/admin/secret?x=",
            "127.0.0.1:5190?x=",
            "127.0.0.1:5190#",
            "127.0.0.1:5190/",
            "http://127.0.0.1:5190",
            "evil@127.0.0.1:5190",
            "127.0.0.1:5190 ",
            "127.0.0.1",
            "127.0.0.1:0",
            "a/b:80",
            "169.254.169.254:80/latest/meta-data?",
        ] {
            let err = url(addr, UID, &q).unwrap_err();
            let ApiError::Api(api::Error::Unavailable(message)) = &err else {
                panic!("{addr:?}: {err:?}")
            };
            assert!(
                message.starts_with("node n1 has an invalid httpAddr"),
                "{addr:?}: {message}"
            );
        }
    }

    #[test]
    fn hostile_task_names_stay_query_values() {
        for task in [
            "../../admin",
            "x&type=stderr",
            "x#frag",
            "x?y=1",
            "/etc/passwd",
            "a b%2F..",
            "x\r\nHost: evil",
        ] {
            let q = LogQuery {
                task: Some(task.into()),
                ..LogQuery::default()
            };
            let built = agent_url("n1", "127.0.0.1:4647", UID, &q).unwrap();
            assert_eq!(built.host_str(), Some("127.0.0.1"));
            assert_eq!(built.port(), Some(4647));
            assert_eq!(built.path(), format!("/v1/client/fs/logs/{UID}"));
            assert_eq!(built.fragment(), None);
            let pairs: Vec<(String, String)> = built.query_pairs().into_owned().collect();
            assert_eq!(
                pairs,
                [
                    ("type".to_string(), "stdout".to_string()),
                    ("follow".to_string(), "false".to_string()),
                    ("task".to_string(), task.to_string()),
                ],
                "{built}"
            );
        }
    }

    #[test]
    fn uids_must_be_uuids() {
        let q = LogQuery::default();
        for uid in ["", "u-1", "../../admin", "x?y", &format!("{UID}/..")] {
            assert!(
                matches!(
                    url("127.0.0.1:4647", uid, &q),
                    Err(ApiError::Api(api::Error::Internal(_)))
                ),
                "{uid:?}"
            );
        }
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert!(LogQuery::parse(Some("stream=both")).is_err());
        assert!(LogQuery::parse(Some("tailLines=-1")).is_err());
        assert!(LogQuery::parse(Some("follow=maybe")).is_err());
    }
}
