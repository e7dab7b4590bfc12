//! The HTTP connection to one Caravan region: address list with failover, request sending and
//! error-body decoding.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use caravan_schemas::Status;
use reqwest::{Method, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The address used when none is configured, as with `nomad`.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:4646";

/// How long a non-streaming request may take, end to end.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long establishing a TCP connection may take before the next address is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle on the Caravan API. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// Base URLs without a trailing slash, e.g. `http://10.0.0.1:4646`.
    addresses: Vec<String>,
    /// Index into `addresses` of the server that answered last.
    current: AtomicUsize,
    /// Region every request is for (`x-caravan-region`); the servers forward it there.
    region: Option<String>,
    /// The servers' shared secret, sent by a server's own clients (its scheduler workers):
    /// the eval broker answers cluster members only.
    cluster_secret: Option<String>,
    /// The bearer token every request carries (an ACL token, a node's secret id, or the
    /// cluster secret for a server's own clients).
    token: Option<String>,
    /// The node whose secret id `token` is (`x-caravan-node`).
    node: Option<String>,
}

impl Inner {
    /// The same connection pool and current server, with other settings.
    fn derive(&self) -> Inner {
        Inner {
            http: self.http.clone(),
            addresses: self.addresses.clone(),
            current: AtomicUsize::new(self.current.load(Ordering::Relaxed)),
            region: self.region.clone(),
            cluster_secret: self.cluster_secret.clone(),
            token: self.token.clone(),
            node: self.node.clone(),
        }
    }
}

/// Header naming the region a request is for.
pub const REGION_HEADER: &str = "x-caravan-region";
/// Header carrying the servers' shared secret.
pub const CLUSTER_SECRET_HEADER: &str = "x-caravan-cluster-secret";
/// The header naming the node whose secret id a node agent's requests carry as their token.
pub const NODE_HEADER: &str = "x-caravan-node";

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("addresses", &self.inner.addresses)
            .finish()
    }
}

/// One request, kept whole so it can be re-sent to the next address on a connection failure.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    pub content_type: Option<&'static str>,
    pub accept: Option<&'static str>,
    pub body: Option<Vec<u8>>,
    /// Streaming requests (watches) have no overall timeout.
    pub streaming: bool,
}

impl Request {
    pub fn new(method: Method, path: String) -> Request {
        Request {
            method,
            path,
            content_type: None,
            accept: None,
            body: None,
            streaming: false,
        }
    }

    pub fn json_body(mut self, content_type: &'static str, body: &serde_json::Value) -> Request {
        self.content_type = Some(content_type);
        self.body = Some(serde_json::to_vec(body).expect("a JSON value always serializes"));
        self
    }

    pub fn accept(mut self, accept: &'static str) -> Request {
        self.accept = Some(accept);
        self
    }

    pub fn streaming(mut self) -> Request {
        self.streaming = true;
        self
    }
}

/// The HTTP client every [`HttpClient`] starts from.
fn builder() -> reqwest::ClientBuilder {
    // reqwest is built without a TLS crypto provider and refuses to build a client until
    // one is installed process-wide; install ring's unless the program chose another.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .http1_only()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("caravan/", env!("CARGO_PKG_VERSION")))
}

impl HttpClient {
    /// A client for one or more comma-separated server addresses, e.g.
    /// `http://10.0.0.1:4646,http://10.0.0.2:4646`. An address without a scheme gets `http://`.
    /// Requests go to the address that answered last and fail over to the next one when a
    /// connection cannot be established.
    pub fn new(addresses: &str) -> Result<HttpClient> {
        let addresses = parse_addresses(addresses)?;
        let http = builder().build().map_err(|source| Error::Http {
            address: addresses[0].clone(),
            source,
        })?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                http,
                addresses,
                current: AtomicUsize::new(0),
                region: None,
                cluster_secret: None,
                token: None,
                node: None,
            }),
        })
    }

    /// The same servers, with every request addressed to `region` (the servers forward it to
    /// one of that region's servers).
    pub fn in_region(self, region: Option<&str>) -> HttpClient {
        let Some(region) = region else {
            return self;
        };
        HttpClient {
            inner: Arc::new(Inner {
                region: Some(region.to_string()),
                ..self.inner.derive()
            }),
        }
    }

    /// The same servers, with every request carrying the servers' shared secret (for a
    /// server's own workers, which take evaluations from the leader's broker).
    pub fn with_cluster_secret(self, secret: &str) -> HttpClient {
        HttpClient {
            inner: Arc::new(Inner {
                cluster_secret: Some(secret.to_string()),
                // With ACLs on, the servers take their own secret as a management token.
                token: Some(secret.to_string()),
                ..self.inner.derive()
            }),
        }
    }

    /// The same servers over HTTPS: checked against `tls`'s CA as `peer` says, presenting
    /// its certificate to servers that ask for one (mutual TLS). Addresses given as `http://`
    /// (or without a scheme) are reached with `https://`.
    pub fn with_tls(
        self,
        tls: &Arc<caravan_tls::Tls>,
        peer: caravan_tls::Peer,
    ) -> Result<HttpClient> {
        let address = self.inner.addresses[0].clone();
        let http = builder()
            .use_preconfigured_tls(tls.client_config(peer))
            .build()
            .map_err(|source| Error::Http { address, source })?;
        let addresses = self
            .inner
            .addresses
            .iter()
            .map(|a| match a.strip_prefix("http://") {
                Some(rest) => format!("https://{rest}"),
                None => a.clone(),
            })
            .collect();
        Ok(HttpClient {
            inner: Arc::new(Inner {
                http,
                addresses,
                ..self.inner.derive()
            }),
        })
    }

    /// The same servers, with every request carrying `token` (`Authorization: Bearer`), or
    /// none.
    pub fn with_token(self, token: Option<&str>) -> HttpClient {
        HttpClient {
            inner: Arc::new(Inner {
                token: token.map(str::to_string),
                ..self.inner.derive()
            }),
        }
    }

    /// The same servers, with every request speaking for node `node` with its secret id.
    pub fn with_node_secret(self, node: &str, secret: &str) -> HttpClient {
        HttpClient {
            inner: Arc::new(Inner {
                token: Some(secret.to_string()),
                node: Some(node.to_string()),
                ..self.inner.derive()
            }),
        }
    }

    /// The bearer token requests carry, if any (for callers making their own requests).
    pub fn token(&self) -> Option<&str> {
        self.inner.token.as_deref()
    }

    /// Every configured base URL.
    pub fn addresses(&self) -> &[String] {
        &self.inner.addresses
    }

    /// The base URL requests are currently sent to.
    pub fn address(&self) -> &str {
        let i = self.inner.current.load(Ordering::Relaxed);
        &self.inner.addresses[i % self.inner.addresses.len()]
    }

    /// GETs any JSON path, e.g. `/version` or `/healthz`.
    pub async fn get_path<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let req = Request::new(Method::GET, path.to_owned()).accept("application/json");
        self.json(req).await
    }

    /// Sends a request and decodes a successful JSON response.
    pub(crate) async fn json<T: DeserializeOwned>(&self, req: Request) -> Result<T> {
        let (address, resp) = self.send(req).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| Error::Http { address, source })?;
        serde_json::from_slice(&bytes).map_err(Error::Decode)
    }

    /// Sends a request, failing over across addresses on connection errors, and turns error
    /// responses into [`Error::Api`]. Returns the address that answered and its response.
    pub(crate) async fn send(&self, req: Request) -> Result<(String, reqwest::Response)> {
        let count = self.inner.addresses.len();
        let start = self.inner.current.load(Ordering::Relaxed);
        let mut last_error = None;
        for attempt in 0..count {
            let index = (start + attempt) % count;
            let address = &self.inner.addresses[index];
            match self.build(address, &req).send().await {
                Ok(resp) => {
                    if attempt > 0 {
                        self.inner.current.store(index, Ordering::Relaxed);
                    }
                    let resp = check_status(address, resp).await?;
                    return Ok((address.clone(), resp));
                }
                Err(source) if source.is_connect() && attempt + 1 < count => {
                    tracing::debug!(%address, error = %source, "connection failed, trying next address");
                    last_error = Some(source);
                }
                Err(source) => {
                    return Err(Error::Http {
                        address: address.clone(),
                        source,
                    });
                }
            }
        }
        // Only reachable with zero attempts, which `parse_addresses` rules out.
        Err(Error::InvalidRequest(format!(
            "no server address to send to ({last_error:?})"
        )))
    }

    fn build(&self, address: &str, req: &Request) -> reqwest::RequestBuilder {
        let mut builder = self
            .inner
            .http
            .request(req.method.clone(), format!("{address}{}", req.path));
        if !req.streaming {
            builder = builder.timeout(REQUEST_TIMEOUT);
        }
        if let Some(accept) = req.accept {
            builder = builder.header(header::ACCEPT, accept);
        }
        if let Some(region) = &self.inner.region {
            builder = builder.header(REGION_HEADER, region);
        }
        if let Some(secret) = &self.inner.cluster_secret {
            builder = builder.header(CLUSTER_SECRET_HEADER, secret);
        }
        if let Some(token) = &self.inner.token {
            builder = builder.bearer_auth(token);
        }
        if let Some(node) = &self.inner.node {
            builder = builder.header(NODE_HEADER, node);
        }
        if let Some(content_type) = req.content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        builder
    }
}

/// Splits and normalizes a comma-separated address list.
fn parse_addresses(addresses: &str) -> Result<Vec<String>> {
    let parsed: Vec<String> = addresses
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            let with_scheme = if a.contains("://") {
                a.to_owned()
            } else {
                format!("http://{a}")
            };
            let url = reqwest::Url::parse(&with_scheme)
                .map_err(|e| Error::InvalidRequest(format!("invalid address {a:?}: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(Error::InvalidRequest(format!(
                    "invalid address {a:?}: expected http://host:port"
                )));
            }
            Ok(with_scheme.trim_end_matches('/').to_owned())
        })
        .collect::<Result<_>>()?;
    if parsed.is_empty() {
        return Err(Error::InvalidRequest("no server address given".into()));
    }
    Ok(parsed)
}

/// Passes a success response through; reads an error response's `Status` body.
async fn check_status(address: &str, resp: reqwest::Response) -> Result<reqwest::Response> {
    let code = resp.status();
    if code.is_success() {
        return Ok(resp);
    }
    let body = resp.bytes().await.map_err(|source| Error::Http {
        address: address.to_owned(),
        source,
    })?;
    Err(status_from_body(code, &body).into())
}

/// Decodes an error body as a `Status`, or makes one from the HTTP code and the raw text.
pub(crate) fn status_from_body(code: StatusCode, body: &[u8]) -> Status {
    match serde_json::from_slice::<Status>(body) {
        Ok(mut status) if status.kind == "Status" => {
            if status.code == 0 {
                status.code = code.as_u16();
            }
            if status.reason.is_empty() {
                status.reason = reason_for(code).to_owned();
            }
            status
        }
        _ => {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            let message = if text.is_empty() {
                code.canonical_reason()
                    .unwrap_or("unknown error")
                    .to_owned()
            } else {
                text
            };
            Status::failure(code.as_u16(), reason_for(code), message)
        }
    }
}

/// The Kubernetes `Status` reason conventionally paired with an HTTP code.
fn reason_for(code: StatusCode) -> &'static str {
    match code.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_split_and_given_a_scheme() {
        let parsed = parse_addresses("10.0.0.1:4646, https://b:4646/ ,").unwrap();
        assert_eq!(parsed, ["http://10.0.0.1:4646", "https://b:4646"]);
        assert!(parse_addresses(" , ").is_err());
        assert!(parse_addresses("ftp://x").is_err());
    }

    #[test]
    fn error_body_status_is_kept_and_plain_text_is_wrapped() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"jobs.caravan.dev \"x\" not found","reason":"NotFound","code":404}"#;
        let status = status_from_body(StatusCode::NOT_FOUND, body);
        assert_eq!(status.reason, "NotFound");
        assert_eq!(status.message, "jobs.caravan.dev \"x\" not found");

        let status = status_from_body(StatusCode::SERVICE_UNAVAILABLE, b"no leader\n");
        assert_eq!(status.code, 503);
        assert_eq!(status.reason, "ServiceUnavailable");
        assert_eq!(status.message, "no leader");
    }
}
