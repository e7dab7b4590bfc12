//! An in-process API server on a free loopback port, and small HTTP helpers.

use std::time::Duration;

use caravan_apiserver::raft::StoreConfig;
use caravan_apiserver::{ApiConfig, Server, ServerConfig};
use futures::StreamExt;
use serde_json::{Value, json};
use tempfile::TempDir;

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    /// The server's in-memory heartbeat tracker.
    pub heartbeats: std::sync::Arc<caravan_apiserver::heartbeat::HeartbeatTracker>,
    _dir: TempDir,
    _task: tokio::task::JoinHandle<()>,
}

/// Starts a server with default settings.
pub async fn start() -> TestServer {
    start_with(|_, _| {}).await
}

/// Starts a server after letting the test adjust its store and API settings.
pub async fn start_with(adjust: impl FnOnce(&mut StoreConfig, &mut ApiConfig)) -> TestServer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = StoreConfig::new(dir.path().join("raft"), "127.0.0.1:0".into());
    let mut api = ApiConfig::default();
    adjust(&mut store, &mut api);
    let server = Server::start(ServerConfig {
        data_dir: dir.path().to_path_buf(),
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        store: Some(store),
        api,
        cluster: None,
        cluster_secret: None,
        controllers: None,
        tls: None,
    })
    .await
    .expect("server starts");
    let base = format!("http://{}", server.local_addr);
    let heartbeats = server.heartbeats();
    let task = tokio::spawn(async move {
        let _ = server.serve(std::future::pending()).await;
    });
    TestServer {
        base,
        http: reqwest::Client::new(),
        heartbeats,
        _dir: dir,
        _task: task,
    }
}

/// A small valid Job.
pub fn job(name: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"groups": [{"name": "g", "tasks": [{"name": "t", "driver": "mock"}]}]}
    })
}

/// An Allocation placed on `node` for `job`.
pub fn alloc(name: &str, job: &str, node: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Allocation",
        "metadata": {"name": name},
        "spec": {"jobName": job, "jobVersion": 0, "group": "g", "nodeName": node, "desiredStatus": "run"}
    })
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn jobs(&self) -> String {
        self.url("/apis/caravan.dev/v1/namespaces/default/jobs")
    }

    pub async fn post(&self, url: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .expect("request");
        status_json(resp).await
    }

    pub async fn get(&self, url: &str) -> (u16, Value) {
        let resp = self.http.get(url).send().await.expect("request");
        status_json(resp).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        content_type: &str,
        body: String,
    ) -> (u16, Value) {
        let resp = self
            .http
            .request(method, url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        status_json(resp).await
    }

    /// Creates a job and returns its resourceVersion.
    pub async fn create_job(&self, name: &str) -> u64 {
        let (code, body) = self.post(&self.jobs(), &job(name)).await;
        assert_eq!(code, 201, "{body}");
        rv(&body)
    }

    /// Opens a chunked watch and returns a reader of its events.
    pub async fn watch(&self, url: &str) -> EventReader {
        let resp = self.http.get(url).send().await.expect("watch request");
        assert_eq!(resp.status().as_u16(), 200, "watch status");
        EventReader::new(resp)
    }
}

impl EventReader {
    /// Reads the watch events of `resp`.
    pub fn new(resp: reqwest::Response) -> EventReader {
        EventReader {
            stream: Box::pin(resp.bytes_stream()),
            buf: Vec::new(),
        }
    }
}

pub async fn status_json(resp: reqwest::Response) -> (u16, Value) {
    let code = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no resourceVersion in {obj}"))
}

type ByteStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// Reads newline-delimited watch events.
pub struct EventReader {
    stream: ByteStream,
    buf: Vec<u8>,
}

impl EventReader {
    /// The next event, or `None` when the stream ends or nothing arrives within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                return Some(serde_json::from_slice(&line).expect("event is JSON"));
            }
            match tokio::time::timeout(wait, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }

    /// The next event; fails the test when none arrives within 10 s.
    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("a watch event within 10 s")
    }

    /// `(type, name)` of the next event.
    pub async fn next_brief(&mut self) -> (String, String) {
        let e = self.next().await;
        (
            e["type"].as_str().unwrap_or("").to_string(),
            e["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    }
}
