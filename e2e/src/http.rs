//! Raw HTTP against the API: a reqwest client, API paths, and a watch-stream reader.

use std::sync::Once;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;

/// The path of a namespaced collection, e.g. `/apis/caravan.dev/v1/namespaces/default/jobs`.
pub fn collection_path(namespace: &str, plural: &str) -> String {
    format!("/apis/caravan.dev/v1/namespaces/{namespace}/{plural}")
}

/// The path of one namespaced object.
pub fn object_path(namespace: &str, plural: &str, name: &str) -> String {
    format!("{}/{name}", collection_path(namespace, plural))
}

/// A reqwest client for plain-HTTP loopback use.
/// POSTs `body` to the collection at `url` and returns the created object; panics with the
/// server's answer unless it is 201 Created.
pub async fn create(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let resp = client
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(code, 201, "POST {url}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// GETs `url` and parses the answer as JSON; panics when the request or the parse fails.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// A reqwest client whose every request carries `token` (`Authorization: Bearer`) and, for a
/// node agent's secret id, the node's name (`x-caravan-node`).
pub fn client_with_token(token: &str, node: Option<&str>) -> reqwest::Client {
    let _ = client();
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {token}");
    headers.insert(
        reqwest::header::AUTHORIZATION,
        bearer.parse().expect("a token is a header value"),
    );
    if let Some(node) = node {
        headers.insert("x-caravan-node", node.parse().expect("a node name"));
    }
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .default_headers(headers)
        .build()
        .expect("failed to build the HTTP client")
}

pub fn client() -> reqwest::Client {
    static PROVIDER: Once = Once::new();
    // reqwest is built without a default TLS crypto provider; install one once per process.
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("failed to build the HTTP client")
}

/// `metadata.resourceVersion` of an object or list, as text.
pub fn resource_version(v: &Value) -> Option<&str> {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

/// `metadata.name` of an object.
pub fn name(v: &Value) -> Option<&str> {
    v.pointer("/metadata/name").and_then(Value::as_str)
}

/// A newline-delimited watch stream (`{"type":…,"object":…}` per line).
pub struct WatchStream {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
    ended: bool,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("ended", &self.ended)
            .finish()
    }
}

impl WatchStream {
    /// Opens `GET url` (which should carry `watch=true`); fails unless the answer is 200.
    pub async fn open(client: &reqwest::Client, url: &str) -> anyhow::Result<Self> {
        let resp = client
            .get(url)
            .send()
            .await
            .with_context(|| format!("failed to open watch {url}"))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            let body = resp.text().await.unwrap_or_default();
            bail!("watch {url} answered {status}: {body}");
        }
        Ok(WatchStream {
            body: resp.bytes_stream().boxed(),
            buf: Vec::new(),
            ended: false,
        })
    }

    /// The next event, `Ok(None)` when the stream ended; an error on timeout, a broken stream
    /// or a line that is not JSON.
    pub async fn next_event(&mut self, timeout: Duration) -> anyhow::Result<Option<Value>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = &line[..line.len() - 1];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let event = serde_json::from_slice(line).with_context(|| {
                    format!("watch line is not JSON: {}", String::from_utf8_lossy(line))
                })?;
                return Ok(Some(event));
            }
            if self.ended {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.buf);
                return Ok(Some(serde_json::from_slice(&rest).with_context(|| {
                    format!(
                        "last watch line is not JSON: {}",
                        String::from_utf8_lossy(&rest)
                    )
                })?));
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => bail!("no watch event within {timeout:?}"),
                Ok(None) => self.ended = true,
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                Ok(Some(Err(e))) => return Err(e).context("watch stream broke"),
            }
        }
    }
}

/// Asserts that `body` is a Kubernetes `Status` failure with `code` and `reason`.
#[track_caller]
pub fn assert_status(body: &Value, code: u16, reason: &str) {
    assert_eq!(body["kind"], "Status", "not a Status: {body}");
    assert_eq!(body["status"], "Failure", "not a failure: {body}");
    assert_eq!(body["code"], code, "wrong code: {body}");
    assert_eq!(body["reason"], reason, "wrong reason: {body}");
}
