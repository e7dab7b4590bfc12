//! A server [`Sandbox`] with shortened heartbeat settings, for tests that add client agents
//! ([`crate::ClientAgent`]) and follow nodes and allocations through the API.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Sandbox;
use crate::http::{self, collection_path};

/// TTL 1 s + grace 1 s: a node is down about 2–3 s after its last heartbeat.
pub const TTL_ARGS: [&str; 4] = ["--heartbeat-min-ttl", "1s", "--heartbeat-grace", "1s"];
/// How long a wait on the cluster lasts before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A server with short heartbeat TTLs and an HTTP client to read it.
pub struct Cluster {
    pub server: Sandbox,
    pub http: reqwest::Client,
}

/// The string at `pointer` in `value`, or `""`.
pub fn field<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

impl Cluster {
    /// Starts the server with [`TTL_ARGS`] and `extra` agent flags.
    pub fn start(name: &str, extra: &[&str]) -> Cluster {
        Cluster::launch(Sandbox::builder().name(name), extra)
    }

    /// Starts `caravan agent --dev` (server and a node agent) with [`TTL_ARGS`] and `extra`.
    pub fn start_dev(name: &str, extra: &[&str]) -> Cluster {
        Cluster::launch(Sandbox::builder().name(name).client(), extra)
    }

    fn launch(mut builder: crate::SandboxBuilder, extra: &[&str]) -> Cluster {
        for arg in TTL_ARGS.iter().chain(extra) {
            builder = builder.arg(arg);
        }
        Cluster {
            server: builder
                .start()
                .unwrap_or_else(|e| panic!("failed to start the server: {e:#}")),
            http: http::client(),
        }
    }

    /// GETs `path`: the HTTP code (0 when unreachable) and the JSON body (`Null` if none).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        match self.http.get(self.server.url(path)).send().await {
            Ok(resp) => {
                let code = resp.status().as_u16();
                (code, resp.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// GETs `path`; `Null` when the server does not answer with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.1
    }

    /// The Node `name`, or `Null`.
    pub async fn node(&self, name: &str) -> Value {
        self.get_json(&format!("/apis/caravan.dev/v1/nodes/{name}"))
            .await
    }

    /// The Node's `status.status`, or `""`.
    pub async fn node_status(&self, name: &str) -> String {
        field(&self.node(name).await, "/status/status").to_string()
    }

    /// Every allocation of `job` in namespace `default`.
    pub async fn allocs(&self, job: &str) -> Vec<Value> {
        let path = format!(
            "{}?fieldSelector=spec.jobName={job}",
            collection_path("default", "allocations")
        );
        self.get_json(&path).await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `cond` over the job's allocations until it holds.
    pub async fn wait_allocs(
        &self,
        job: &str,
        what: &str,
        cond: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let allocs = self.allocs(job).await;
            if cond(&allocs) {
                return allocs;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}: {}\n{}",
                serde_json::to_string_pretty(&allocs).unwrap(),
                self.server.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until `cond` holds for the Node `name`.
    pub async fn wait_node_where(&self, name: &str, what: &str, cond: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let node = self.node(name).await;
            if cond(&node) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until node {name} {what}: {node:#}\n{}",
                self.server.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until the Node `name` has `status.status == status`.
    pub async fn wait_node(&self, name: &str, status: &str) {
        self.wait_node_where(name, &format!("is {status}"), |n| {
            field(n, "/status/status") == status
        })
        .await;
    }

    /// `caravan apply -f` of `job`.
    pub fn apply(&self, job: &Value) {
        let path = self
            .server
            .write_file("job.yaml", &crate::fixtures::to_yaml(job));
        self.server
            .caravan(&["apply", "-f", path.to_str().unwrap()])
            .assert_success();
    }
}
