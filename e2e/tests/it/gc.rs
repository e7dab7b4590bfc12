//! Garbage collection end to end on real processes: a client agent killed with `kill -9`
//! leaves a `down` node that `caravan system gc` (or the periodic pass) deletes once it is
//! past the node threshold; a finished batch job goes with its evaluations and allocations
//! once past the job threshold; a server without controllers answers 503.

use std::time::{Duration, Instant};

use caravan_e2e::cluster::{Cluster, DEADLINE};
use caravan_e2e::http::{self, collection_path, create, object_path};
use caravan_e2e::{ClientAgent, Output};
use serde_json::{Value, json};

/// Garbage-collection helpers on the shared cluster harness.
trait Gc {
    async fn node_state(&self, name: &str) -> Option<String>;
    async fn wait_node_is(&self, name: &str, what: &str, cond: impl Fn(Option<&str>) -> bool);
    async fn names_of_job(&self, plural: &str, job: &str) -> Vec<String>;
    fn gc(&self) -> Output;
    async fn gc_until_collected(&self, what: &str) -> String;
}

impl Gc for Cluster {
    /// The node's status, `None` once the node is gone.
    async fn node_state(&self, name: &str) -> Option<String> {
        let (code, node) = self
            .get(&format!("/apis/caravan.dev/v1/nodes/{name}"))
            .await;
        (code != 404).then(|| {
            node.pointer("/status/status")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
    }

    /// Polls `cond` on the node's status until it holds.
    async fn wait_node_is(&self, name: &str, what: &str, cond: impl Fn(Option<&str>) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let status = self.node_state(name).await;
            if cond(status.as_deref()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {name} is {status:?}, waiting until {what}\n{}",
                self.server.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Names of the job's objects of `plural` (evaluations, allocations).
    async fn names_of_job(&self, plural: &str, job: &str) -> Vec<String> {
        let path = format!(
            "{}?fieldSelector=spec.jobName={job}",
            collection_path("default", plural)
        );
        self.get(&path).await.1["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| http::name(i).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn gc(&self) -> Output {
        let out = self.server.caravan(&["system", "gc"]);
        out.assert_success();
        out
    }

    /// Runs `caravan system gc` until its report names `what`; returns that report.
    async fn gc_until_collected(&self, what: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let out = self.gc();
            if out.stdout.lines().any(|l| l.ends_with(what)) {
                return out.stdout.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{what} was never collected; last report:\n{}\n{}",
                out.stdout,
                self.server.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_gc_deletes_a_node_down_past_the_node_threshold() {
    let cluster = Cluster::start("gc-node", &["--node-gc-threshold", "6s"]);
    let mut client = ClientAgent::start(&cluster.server, "client-a", &[]).unwrap();
    cluster
        .wait_node_is("client-a", "ready", |s| s == Some("ready"))
        .await;

    client.kill_9();
    cluster
        .wait_node_is("client-a", "down", |s| s == Some("down"))
        .await;
    let seen_down = Instant::now();
    let early = cluster.gc();
    // Down for less than the threshold (6 s; times are to the second and the node was marked
    // down at most a poll before it was seen): the node stays.
    if seen_down.elapsed() < Duration::from_secs(3) {
        assert!(!early.stdout.contains("client-a"), "{}", early.stdout);
        assert_eq!(
            cluster.node_state("client-a").await.as_deref(),
            Some("down")
        );
    }

    let report = cluster.gc_until_collected("client-a").await;
    assert!(report.contains("Collected 1 node,"), "{report}");
    assert_eq!(cluster.node_state("client-a").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_pass_deletes_a_down_node_on_its_own() {
    let cluster = Cluster::start(
        "gc-interval",
        &["--gc-interval", "500ms", "--node-gc-threshold", "1s"],
    );
    let mut client = ClientAgent::start(&cluster.server, "client-a", &[]).unwrap();
    cluster
        .wait_node_is("client-a", "ready", |s| s == Some("ready"))
        .await;
    client.kill_9();
    cluster
        .wait_node_is("client-a", "gone, never asked", |s| s.is_none())
        .await;
    assert!(
        cluster.server.logs().contains("garbage collected"),
        "{}",
        cluster.server.logs()
    );
}

fn batch_job(name: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"type": "batch", "groups": [{"name": "g", "tasks": [{
            "name": "t",
            "driver": "raw_exec",
            "config": {"command": "/bin/true"},
            "resources": {"cpu": 20, "memoryMB": 16}
        }]}]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_gc_deletes_a_finished_batch_job_with_its_evaluations_and_allocations() {
    let cluster = Cluster::start_dev("gc-job", &["--job-gc-threshold", "2s"]);
    let jobs = cluster.server.url(&collection_path("default", "jobs"));
    create(&cluster.http, &jobs, &batch_job("report")).await;

    let job_path = object_path("default", "jobs", "report");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, job) = cluster.get(&job_path).await;
        if job.pointer("/status/status") == Some(&json!("dead")) {
            break;
        }
        if Instant::now() >= deadline {
            let (_, allocs) = cluster
                .get(&collection_path("default", "allocations"))
                .await;
            let (_, evals) = cluster
                .get(&collection_path("default", "evaluations"))
                .await;
            panic!(
                "the job never finished: {job:#}\n{allocs:#}\n{evals:#}\n{}",
                cluster.server.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let evals = cluster.names_of_job("evaluations", "report").await;
    let allocs = cluster.names_of_job("allocations", "report").await;
    assert!(
        !evals.is_empty() && !allocs.is_empty(),
        "{evals:?} {allocs:?}"
    );

    let report = cluster.gc_until_collected("default/report").await;
    for name in evals.iter().chain(&allocs) {
        assert!(
            report.contains(&format!("default/{name}")),
            "{name}:\n{report}"
        );
    }
    assert_eq!(cluster.get(&job_path).await.0, 404);
    assert!(
        cluster
            .names_of_job("allocations", "report")
            .await
            .is_empty()
    );

    // A job deleted by a user afterwards gets its deregister evaluation: once it exists, the
    // collected job's deletion was handled, and it made none.
    let marker = caravan_e2e::fixtures::small_job("marker");
    let resp = cluster.http.post(&jobs).json(&marker).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let resp = cluster
        .http
        .delete(
            cluster
                .server
                .url(&object_path("default", "jobs", "marker")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let path = format!(
            "{}?fieldSelector=spec.jobName=marker",
            collection_path("default", "evaluations")
        );
        let (_, list) = cluster.get(&path).await;
        let deregistered = list["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|e| e.pointer("/spec/triggeredBy") == Some(&json!("job-deregister")))
        });
        if deregistered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no deregister evaluation: {list:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cluster.names_of_job("evaluations", "report").await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_gc_answers_503_without_controllers() {
    let cluster = Cluster::start("gc-none", &["--no-controllers"]);
    let url = cluster.server.url("/v1/system/gc");
    for method in [reqwest::Method::PUT, reqwest::Method::POST] {
        let resp = cluster.http.request(method, &url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 503);
        let body: Value = resp.json().await.unwrap();
        http::assert_status(&body, 503, "ServiceUnavailable");
    }
    let resp = cluster.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    cluster
        .server
        .caravan(&["system", "gc"])
        .assert_failure()
        .assert_stderr_contains("(ServiceUnavailable): garbage collection runs with");
}
