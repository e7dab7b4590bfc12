//! Scheduling end to end on a real `caravan agent --dev`: nodes registered through the API (no
//! node agent), jobs of every type applied, placements read back.

use std::collections::BTreeMap;
use std::time::Duration;

use caravan_e2e::Sandbox;
use caravan_e2e::http::{self, collection_path, create};
use caravan_e2e::wait::wait_until_async;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

struct Cluster {
    sandbox: Sandbox,
    client: reqwest::Client,
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        // Nodes registered through the API never heartbeat: give them an hour.
        let sandbox = Sandbox::builder()
            .name(name)
            .arg("--heartbeat-min-ttl")
            .arg("1h")
            .start()
            .unwrap_or_else(|e| panic!("failed to start the sandbox: {e:#}"));
        Cluster {
            sandbox,
            client: http::client(),
        }
    }

    /// Registers a ready node: created, then its fingerprint written through `/status`.
    async fn node(&self, name: &str, dc: &str, cpu: u64, kernel: &str, class: Option<&str>) {
        let mut spec = json!({"datacenter": dc});
        if let Some(class) = class {
            spec["nodeClass"] = json!(class);
        }
        let node = json!({"apiVersion": "caravan.dev/v1", "kind": "Node", "metadata": {"name": name}, "spec": spec});
        create(
            &self.client,
            &self.sandbox.url("/apis/caravan.dev/v1/nodes"),
            &node,
        )
        .await;
        let status = json!({"status": {
            "status": "ready",
            "attributes": {"kernel.name": kernel, "cpu.arch": "amd64"},
            "resources": {"cpu": cpu, "memoryMB": 8192, "diskMB": 100000},
            "drivers": {"mock": {"detected": true, "healthy": true}}
        }});
        let resp = self
            .client
            .patch(
                self.sandbox
                    .url(&format!("/apis/caravan.dev/v1/nodes/{name}/status")),
            )
            .header("content-type", "application/merge-patch+json")
            .body(status.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "{}",
            resp.text().await.unwrap()
        );
    }

    /// Creates or updates a Job by server-side apply.
    async fn apply(&self, job: &Value) {
        let name = job["metadata"]["name"].as_str().unwrap();
        let url = self.sandbox.url(&format!(
            "{}/{name}?fieldManager=e2e&force=true",
            collection_path("default", "jobs")
        ));
        let resp = self
            .client
            .patch(url)
            .header("content-type", "application/apply-patch+yaml")
            .body(job.to_string())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    }

    async fn list(&self, plural: &str) -> Vec<Value> {
        let url = self.sandbox.url(&collection_path("default", plural));
        let list: Value = self
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Allocations of `job` that should run, by node.
    async fn running(&self, job: &str) -> BTreeMap<String, usize> {
        let mut by_node = BTreeMap::new();
        for a in self.list("allocations").await {
            if a["spec"]["jobName"] == job && a["spec"]["desiredStatus"] == "run" {
                *by_node
                    .entry(a["spec"]["nodeName"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        by_node
    }

    /// Names of the allocations that should run.
    async fn running_names(&self) -> Vec<String> {
        self.list("allocations")
            .await
            .iter()
            .filter(|a| a["spec"]["desiredStatus"] == "run")
            .map(|a| a["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    async fn wait_for_placements(&self, job: &str, count: usize) -> BTreeMap<String, usize> {
        wait_until_async(
            DEADLINE,
            &format!("{count} allocations of {job} run"),
            || async { self.running(job).await.values().sum::<usize>() == count },
        )
        .await
        .unwrap();
        self.running(job).await
    }

    async fn evals(&self, job: &str) -> Vec<Value> {
        self.list("evaluations")
            .await
            .into_iter()
            .filter(|e| e["spec"]["jobName"] == job)
            .collect()
    }
}

fn job(name: &str, job_type: &str, count: u64, cpu: u64) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"type": job_type, "groups": [{"name": "g", "count": count, "tasks": [
            {"name": "t", "driver": "mock", "resources": {"cpu": cpu, "memoryMB": 64}}]}]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_job_places_on_feasible_nodes_and_scales() {
    let c = Cluster::start("sched-service");
    c.node("linux-1", "dc1", 4000, "linux", None).await;
    c.node("linux-2", "dc1", 4000, "linux", None).await;
    c.node("win-1", "dc1", 4000, "windows", None).await;
    let mut web = job("web", "service", 4, 500);
    web["spec"]["constraints"] =
        json!([{"attribute": "${attr.kernel.name}", "operator": "=", "value": "linux"}]);
    c.apply(&web).await;
    let placed = c.wait_for_placements("web", 4).await;
    assert!(
        !placed.contains_key("win-1"),
        "the constraint filters win-1: {placed:?}"
    );
    wait_until_async(
        DEADLINE,
        "the job-register evaluation completes",
        || async {
            c.evals("web").await.iter().any(|e| {
                e["status"]["status"] == "complete" && e["spec"]["triggeredBy"] == "job-register"
            })
        },
    )
    .await
    .unwrap();
    let allocs = c.list("allocations").await;
    let metrics = &allocs[0]["status"]["metrics"];
    assert!(
        metrics["nodesEvaluated"].as_u64().unwrap_or(0) >= 1,
        "placement metrics: {metrics}"
    );

    web["spec"]["groups"][0]["count"] = json!(6);
    c.apply(&web).await;
    c.wait_for_placements("web", 6).await;
    let before = c.running_names().await;
    web["spec"]["groups"][0]["count"] = json!(2);
    c.apply(&web).await;
    c.wait_for_placements("web", 2).await;
    let after = c.running_names().await;
    assert!(
        after.iter().all(|a| before.contains(a)),
        "scaling down keeps the remaining allocations: {before:?} → {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_evaluation_unblocks_when_a_node_joins() {
    let c = Cluster::start("sched-blocked");
    c.node("small", "dc1", 2000, "linux", None).await;
    c.apply(&job("big", "service", 4, 1000)).await;
    c.wait_for_placements("big", 2).await;
    wait_until_async(DEADLINE, "a blocked evaluation", || async {
        c.evals("big")
            .await
            .iter()
            .any(|e| e["status"]["status"] == "blocked")
    })
    .await
    .unwrap();
    let failed = c
        .evals("big")
        .await
        .into_iter()
        .find(|e| !e["status"]["failedGroupAllocs"].is_null())
        .expect("failed placements are recorded");
    assert!(
        failed["status"]["failedGroupAllocs"]["g"]["nodesExhausted"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{failed}"
    );
    c.node("second", "dc1", 2000, "linux", None).await;
    let placed = c.wait_for_placements("big", 4).await;
    assert_eq!(placed.get("second"), Some(&2), "{placed:?}");
    let blocked = c
        .evals("big")
        .await
        .into_iter()
        .filter(|e| e["status"]["status"] == "blocked")
        .count();
    assert_eq!(blocked, 0, "the blocked evaluation completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_and_sysbatch_jobs_run_once_per_node_including_new_ones() {
    let c = Cluster::start("sched-system");
    c.node("n1", "dc1", 4000, "linux", None).await;
    c.node("n2", "dc1", 4000, "linux", None).await;
    c.apply(&job("logs", "system", 1, 100)).await;
    c.apply(&job("setup", "sysbatch", 1, 100)).await;
    let logs = c.wait_for_placements("logs", 2).await;
    assert_eq!(logs.values().copied().collect::<Vec<_>>(), [1, 1]);
    c.wait_for_placements("setup", 2).await;
    c.node("n3", "dc1", 4000, "linux", None).await;
    let logs = c.wait_for_placements("logs", 3).await;
    assert_eq!(logs.get("n3"), Some(&1));
    c.wait_for_placements("setup", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_jobs_spreads_and_affinities_place_as_asked() {
    let c = Cluster::start("sched-placement");
    for (name, dc, class) in [
        ("a1", "dc1", "slow"),
        ("a2", "dc1", "slow"),
        ("b1", "dc2", "fast"),
        ("b2", "dc2", "fast"),
    ] {
        c.node(name, dc, 8000, "linux", Some(class)).await;
    }
    c.apply(&job("report", "batch", 2, 200)).await;
    c.wait_for_placements("report", 2).await;
    let mut spread = job("spread", "service", 4, 200);
    spread["spec"]["datacenters"] = json!(["dc1", "dc2"]);
    spread["spec"]["spreads"] = json!([{"attribute": "${node.datacenter}", "weight": 100, "targets": [{"value": "dc1", "percent": 50}, {"value": "dc2", "percent": 50}]}]);
    c.apply(&spread).await;
    let placed = c.wait_for_placements("spread", 4).await;
    let dc1 = placed.get("a1").unwrap_or(&0) + placed.get("a2").unwrap_or(&0);
    assert_eq!(dc1, 2, "half of the allocations in dc1: {placed:?}");
    let mut fast = job("fast", "service", 3, 200);
    fast["spec"]["affinities"] =
        json!([{"attribute": "${node.class}", "operator": "=", "value": "fast", "weight": 100}]);
    c.apply(&fast).await;
    let placed = c.wait_for_placements("fast", 3).await;
    assert!(
        placed.keys().all(|n| n.starts_with('b')),
        "the affinity prefers fast nodes: {placed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_never_oversubscribe_a_node() {
    let c = Cluster::start("sched-capacity");
    c.node("n1", "dc1", 3000, "linux", None).await;
    c.node("n2", "dc1", 3000, "linux", None).await;
    let applies = (0..6).map(|i| {
        let c = &c;
        async move { c.apply(&job(&format!("j{i}"), "service", 3, 500)).await }
    });
    futures::future::join_all(applies).await;
    // 18 allocations of 500 MHz want 9,000 MHz; the nodes have 6,000: exactly 12 fit.
    wait_until_async(DEADLINE, "12 placements", || async {
        c.list("allocations")
            .await
            .iter()
            .filter(|a| a["spec"]["desiredStatus"] == "run")
            .count()
            == 12
    })
    .await
    .unwrap();
    let mut cpu: BTreeMap<String, u64> = BTreeMap::new();
    for a in c.list("allocations").await {
        if a["spec"]["desiredStatus"] == "run" {
            let used: u64 = a["spec"]["allocatedResources"]["tasks"]
                .as_object()
                .unwrap()
                .values()
                .map(|t| t["cpu"].as_u64().unwrap_or(0))
                .sum();
            *cpu.entry(a["spec"]["nodeName"].as_str().unwrap().to_string())
                .or_default() += used;
        }
    }
    assert!(
        cpu.values().all(|c| *c <= 3000),
        "no node over capacity: {cpu:?}"
    );
}
