//! What `bench api` and `bench watch` drive: Caravan's API (Jobs in a fresh namespace) or
//! etcd's v3 JSON gateway (keys under a fresh prefix). Both get the same documents (a Job of
//! the chosen size, stored as the etcd value), so one load generator measures both.
//!
//! | operation | Caravan | etcd |
//! | --- | --- | --- |
//! | create | `POST …/jobs` | `POST /v3/kv/put` of a new key |
//! | update | `PUT …/jobs/NAME` with the last `resourceVersion` | `POST /v3/kv/put` of the key |
//! | get | `GET …/jobs/NAME` | `POST /v3/kv/range` of the key |
//! | list | `GET …/jobs?limit=50` | `POST /v3/kv/range` of the prefix, `limit: 50` |
//! | watch | `GET …/jobs?watch=true` | `POST /v3/watch` of the prefix |

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::payload::{create_namespace, job};

mod bodies;
mod usage;

use bodies::{RangeResponse, contains};
pub use bodies::{
    WatchFormat, WatchStream, created_in, prefix_end, resource_version, string_field, updates_of,
};
pub use usage::server_usage;

/// The annotation counting a document's acknowledged updates.
pub const UPDATES: &str = "bench.caravan.dev/updates";
/// Objects of one list request.
pub const LIST_LIMIT: usize = 50;
/// The placeholders of a document template.
pub const NAME: &str = "NAME_PLACEHOLDER";
pub const UPDATES_PLACEHOLDER: &str = "UPDATES_PLACEHOLDER";
pub const RV: &str = "RV_PLACEHOLDER";

/// A Caravan API server or an etcd member, and the namespace or key prefix of this run.
#[derive(Debug, Clone)]
pub enum Target {
    Caravan { base: String, ns: String },
    Etcd { endpoint: String, prefix: String },
}

/// One request of an operation, ready to send.
pub struct Request {
    pub method: reqwest::Method,
    pub url: String,
    pub content_type: &'static str,
    pub body: Option<String>,
}

impl Target {
    /// Caravan at `base`, or etcd at `etcd` when given; a fresh namespace or prefix for the run.
    pub async fn prepare(
        http: &reqwest::Client,
        base: &str,
        etcd: Option<&str>,
        run: &str,
    ) -> anyhow::Result<Target> {
        match etcd {
            Some(endpoint) => {
                let endpoint = endpoint.trim_end_matches('/').to_string();
                // The member answers before the run starts, or the run does not start.
                http.get(format!("{endpoint}/version"))
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .with_context(|| format!("failed to reach etcd at {endpoint}"))?;
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                let prefix = format!("/bench/{run}-{:x}/", nanos & 0xff_ffff_ffff);
                Ok(Target::Etcd { endpoint, prefix })
            }
            None => Ok(Target::Caravan {
                base: base.to_string(),
                ns: create_namespace(http, base, run).await?,
            }),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Caravan { base, ns } => format!("Caravan at {base}, namespace {ns}"),
            Target::Etcd { endpoint, prefix } => format!("etcd at {endpoint}, prefix {prefix}"),
        }
    }

    /// The Prometheus endpoint of the server (both export `process_resident_memory_bytes`).
    pub fn metrics_url(&self) -> String {
        match self {
            Target::Caravan { base, .. } => format!("{base}/metrics"),
            Target::Etcd { endpoint, .. } => format!("{endpoint}/metrics"),
        }
    }

    fn jobs_url(&self) -> String {
        match self {
            Target::Caravan { base, ns } => {
                format!("{base}/apis/caravan.dev/v1/namespaces/{ns}/jobs")
            }
            Target::Etcd { endpoint, .. } => endpoint.clone(),
        }
    }

    fn namespace(&self) -> &str {
        match self {
            Target::Caravan { ns, .. } => ns,
            Target::Etcd { prefix, .. } => prefix.trim_matches('/'),
        }
    }

    /// The documents a run writes, as JSON templates with `NAME_PLACEHOLDER` and
    /// `UPDATES_PLACEHOLDER` (the `UPDATES` annotation) to fill in: one to create, one to
    /// update (which for Caravan also carries `RV_PLACEHOLDER` as its `resourceVersion`).
    pub fn templates(&self, size: usize) -> (String, String) {
        let doc = job(
            self.namespace(),
            NAME,
            size,
            json!({ UPDATES: UPDATES_PLACEHOLDER }),
        );
        let create = doc.to_string();
        let update = match self {
            Target::Caravan { .. } => {
                let mut doc = doc;
                doc["metadata"]["resourceVersion"] = Value::String(RV.into());
                doc.to_string()
            }
            Target::Etcd { .. } => create.clone(),
        };
        (create, update)
    }

    /// The JSON of a document named `name` of about `size` bytes with these annotations.
    pub fn document(&self, name: &str, size: usize, annotations: Value) -> String {
        job(self.namespace(), name, size, annotations).to_string()
    }

    /// Creates `name` from its document (JSON).
    pub fn create(&self, name: &str, doc: String) -> Request {
        match self {
            Target::Caravan { .. } => Request {
                method: reqwest::Method::POST,
                url: self.jobs_url(),
                content_type: "application/json",
                body: Some(doc),
            },
            Target::Etcd { .. } => self.put(name, &doc),
        }
    }

    /// Replaces `name` with its next document (for Caravan, one carrying the object's last
    /// `resourceVersion`).
    pub fn update(&self, name: &str, doc: String) -> Request {
        match self {
            Target::Caravan { .. } => Request {
                method: reqwest::Method::PUT,
                url: format!("{}/{name}", self.jobs_url()),
                content_type: "application/json",
                body: Some(doc),
            },
            Target::Etcd { .. } => self.put(name, &doc),
        }
    }

    /// The status code of a successful create.
    pub fn created_code(&self) -> u16 {
        match self {
            Target::Caravan { .. } => 201,
            Target::Etcd { .. } => 200,
        }
    }

    pub fn get(&self, name: &str) -> Request {
        match self {
            Target::Caravan { .. } => Request {
                method: reqwest::Method::GET,
                url: format!("{}/{name}", self.jobs_url()),
                content_type: "application/json",
                body: None,
            },
            Target::Etcd { endpoint, prefix } => Request {
                method: reqwest::Method::POST,
                url: format!("{endpoint}/v3/kv/range"),
                content_type: "application/json",
                body: Some(json!({"key": B64.encode(format!("{prefix}{name}"))}).to_string()),
            },
        }
    }

    /// The first page of `LIST_LIMIT` objects.
    pub fn list(&self) -> Request {
        match self {
            Target::Caravan { .. } => Request {
                method: reqwest::Method::GET,
                url: format!("{}?limit={LIST_LIMIT}", self.jobs_url()),
                content_type: "application/json",
                body: None,
            },
            Target::Etcd { .. } => self.range_page(None, LIST_LIMIT),
        }
    }

    fn put(&self, name: &str, doc: &str) -> Request {
        let Target::Etcd { endpoint, prefix } = self else {
            unreachable!("puts are etcd requests")
        };
        Request {
            method: reqwest::Method::POST,
            url: format!("{endpoint}/v3/kv/put"),
            content_type: "application/json",
            body: Some(
                json!({
                    "key": B64.encode(format!("{prefix}{name}")),
                    "value": B64.encode(doc),
                })
                .to_string(),
            ),
        }
    }

    /// A range over the run's prefix, from `after` (exclusive) when given.
    fn range_page(&self, after: Option<&[u8]>, limit: usize) -> Request {
        let Target::Etcd { endpoint, prefix } = self else {
            unreachable!("ranges are etcd requests")
        };
        let start = match after {
            Some(key) => [key, b"\0"].concat(),
            None => prefix.as_bytes().to_vec(),
        };
        Request {
            method: reqwest::Method::POST,
            url: format!("{endpoint}/v3/kv/range"),
            content_type: "application/json",
            body: Some(
                json!({
                    "key": B64.encode(start),
                    "range_end": B64.encode(prefix_end(prefix)),
                    "limit": limit,
                })
                .to_string(),
            ),
        }
    }

    /// Whether a successful answer to a get or list request holds what it should: the object,
    /// or a page of objects.
    pub fn found(&self, body: &[u8]) -> bool {
        match self {
            Target::Caravan { .. } => !body.is_empty(),
            // etcd answers a range of a missing key with 200 and no `kvs`.
            Target::Etcd { .. } => contains(body, b"\"kvs\""),
        }
    }

    /// Every stored document of the run, read page by page.
    pub async fn scan(&self, http: &reqwest::Client) -> anyhow::Result<Vec<Value>> {
        let mut docs = Vec::new();
        match self {
            Target::Caravan { .. } => {
                let mut token: Option<String> = None;
                loop {
                    let mut url = format!("{}?limit=5000", self.jobs_url());
                    if let Some(t) = &token {
                        url.push_str(&format!("&continue={t}"));
                    }
                    let mut list: Value = http
                        .get(url)
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    if let Some(items) = list["items"].as_array_mut() {
                        docs.append(items);
                    }
                    token = list["metadata"]["continue"].as_str().map(str::to_string);
                    if token.is_none() {
                        return Ok(docs);
                    }
                }
            }
            Target::Etcd { .. } => {
                let mut after: Option<Vec<u8>> = None;
                loop {
                    let r = self.range_page(after.as_deref(), 1000);
                    let page: RangeResponse = http
                        .post(&r.url)
                        .body(r.body.unwrap_or_default())
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    for kv in &page.kvs {
                        docs.push(serde_json::from_slice(&B64.decode(&kv.value)?)?);
                    }
                    match page.kvs.last() {
                        Some(last) if page.more => after = Some(B64.decode(&last.key)?),
                        _ => return Ok(docs),
                    }
                }
            }
        }
    }

    /// Where watches start: the revision of an empty list for Caravan (the run's namespace is
    /// new), nothing for etcd (its watches start after the current revision).
    pub async fn watch_start(&self, http: &reqwest::Client) -> anyhow::Result<String> {
        match self {
            Target::Caravan { .. } => {
                let list: Value = http
                    .get(self.jobs_url())
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                Ok(list["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("0")
                    .to_string())
            }
            Target::Etcd { .. } => Ok(String::new()),
        }
    }

    /// Opens a watch on every object of the run from `start`; for etcd, waits until it is
    /// created.
    pub async fn watch(&self, http: &reqwest::Client, start: &str) -> anyhow::Result<WatchStream> {
        match self {
            Target::Caravan { .. } => {
                let url = format!(
                    "{}?watch=true&resourceVersion={start}&timeoutSeconds=600",
                    self.jobs_url()
                );
                let resp = http.get(url).send().await?.error_for_status()?;
                Ok(WatchStream::new(resp, WatchFormat::Kubernetes, Vec::new()))
            }
            Target::Etcd { endpoint, prefix } => {
                let body = json!({"create_request": {
                    "key": B64.encode(prefix),
                    "range_end": B64.encode(prefix_end(prefix)),
                }});
                let resp = http
                    .post(format!("{endpoint}/v3/watch"))
                    .body(body.to_string())
                    .send()
                    .await?
                    .error_for_status()?;
                let mut stream = WatchStream::new(resp, WatchFormat::Etcd, Vec::new());
                let first = stream
                    .next_line()
                    .await?
                    .context("the watch closed before it was created")?;
                anyhow::ensure!(
                    contains(&first, b"\"created\":true"),
                    "unexpected first watch response: {}",
                    String::from_utf8_lossy(&first)
                );
                Ok(stream)
            }
        }
    }
}
