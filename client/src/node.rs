//! Requests of node agents and of `caravan logs`: node heartbeats and allocation logs.

use std::time::Duration;

use bytes::Bytes;
use caravan_schemas::API_VERSION;
use futures::stream::{BoxStream, StreamExt};
use reqwest::Method;
use serde::Deserialize;

use crate::client::{HttpClient, Request};
use crate::error::{Error, Result};
use crate::params::{Query, encode};

/// What a task's log request asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogParams {
    /// The task of the allocation; may be left out when the allocation has one task.
    pub task: Option<String>,
    /// Read stderr instead of stdout.
    pub stderr: bool,
    /// Keep streaming as the task writes, until the stream is dropped.
    pub follow: bool,
    /// Only the last N lines (then new ones, when following).
    pub tail_lines: Option<u64>,
}

impl LogParams {
    pub(crate) fn query(&self) -> Query {
        let mut q = Query::default();
        q.push_opt("task", self.task.as_deref());
        q.push("stream", if self.stderr { "stderr" } else { "stdout" });
        if self.follow {
            q.push("follow", "true");
        }
        if let Some(n) = self.tail_lines {
            q.push("tailLines", n.to_string());
        }
        q
    }
}

/// The answer to a heartbeat.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeHeartbeat {
    #[serde(rename = "heartbeatTTL")]
    heartbeat_ttl: String,
}

impl HttpClient {
    /// Tells the leader that `node` is alive (marking it `ready` if it was not) and returns the
    /// TTL within which the next heartbeat must arrive.
    pub async fn heartbeat(&self, node: &str) -> Result<Duration> {
        if node.is_empty() {
            return Err(Error::InvalidRequest("a node name is required".into()));
        }
        let path = format!("/apis/{API_VERSION}/nodes/{}/heartbeat", encode(node));
        let req = Request::new(Method::POST, path)
            .accept("application/json")
            .json_body("application/json", &serde_json::json!({}));
        let answer: NodeHeartbeat = self.json(req).await?;
        parse_ttl(&answer.heartbeat_ttl)
    }

    /// The log of a task of allocation `name` in `namespace`, as bytes arrive. Errors the
    /// server answers before streaming (no such allocation, the node's agent unreachable…)
    /// are returned here; a connection lost while streaming ends the stream with an error.
    pub async fn logs(
        &self,
        namespace: &str,
        name: &str,
        params: &LogParams,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        if namespace.is_empty() || name.is_empty() {
            return Err(Error::InvalidRequest(
                "a namespace and an allocation name are required".into(),
            ));
        }
        let path = format!(
            "/apis/{API_VERSION}/namespaces/{}/allocations/{}/log{}",
            encode(namespace),
            encode(name),
            params.query().finish()
        );
        let req = Request::new(Method::GET, path)
            .accept("text/plain")
            .streaming();
        let (address, resp) = self.send(req).await?;
        Ok(resp
            .bytes_stream()
            .map(move |chunk| {
                chunk.map_err(|source| Error::Http {
                    address: address.clone(),
                    source,
                })
            })
            .boxed())
    }
}

/// A TTL as the server writes it, e.g. `10s 347ms`.
fn parse_ttl(text: &str) -> Result<Duration> {
    humantime::parse_duration(text).map_err(|e| {
        Error::Decode(<serde_json::Error as serde::de::Error>::custom(format!(
            "invalid heartbeatTTL {text:?}: {e}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_params_become_the_query() {
        assert_eq!(LogParams::default().query().finish(), "?stream=stdout");
        let p = LogParams {
            task: Some("web server".into()),
            stderr: true,
            follow: true,
            tail_lines: Some(0),
        };
        assert_eq!(
            p.query().finish(),
            "?task=web%20server&stream=stderr&follow=true&tailLines=0"
        );
    }

    use crate::test_support::one_shot;

    #[tokio::test]
    async fn a_heartbeat_posts_to_the_node_and_returns_the_ttl() {
        let body = r#"{"apiVersion":"caravan.dev/v1","kind":"NodeHeartbeat","nodeName":"n1","heartbeatTTL":"12s 5ms"}"#;
        let (client, served) = one_shot("200 OK", "application/json", body).await;
        let ttl = client.heartbeat("n1").await.unwrap();
        assert_eq!(ttl, Duration::from_millis(12_005));
        let request = served.await.unwrap();
        assert!(
            request.starts_with("POST /apis/caravan.dev/v1/nodes/n1/heartbeat HTTP/1.1"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn logs_stream_bytes_and_errors_come_first() {
        let (client, served) = one_shot("200 OK", "text/plain", "a\nb\n").await;
        let params = LogParams {
            tail_lines: Some(2),
            ..LogParams::default()
        };
        let mut stream = client.logs("default", "web-1", &params).await.unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = stream.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, b"a\nb\n");
        let request = served.await.unwrap();
        assert!(
            request.starts_with(
                "GET /apis/caravan.dev/v1/namespaces/default/allocations/web-1/log?stream=stdout&tailLines=2 "
            ),
            "{request}"
        );

        let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"node n1 has no agent address","reason":"ServiceUnavailable","code":503}"#;
        let (client, _served) =
            one_shot("503 Service Unavailable", "application/json", status).await;
        let err = match client.logs("default", "web-1", &params).await {
            Err(e) => e,
            Ok(_) => panic!("a 503 is an error"),
        };
        assert_eq!(err.code(), Some(503));
        assert_eq!(
            err.status().unwrap().message,
            "node n1 has no agent address"
        );
    }

    #[test]
    fn ttls_parse_as_humantime() {
        assert_eq!(
            parse_ttl("10s 347ms").unwrap(),
            Duration::from_millis(10_347)
        );
        assert!(matches!(parse_ttl("soon"), Err(Error::Decode(_))));
    }
}
