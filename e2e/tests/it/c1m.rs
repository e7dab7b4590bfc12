//! Simulated nodes and the C1M benchmark through the real binary: `caravan nodesim` nodes
//! register against a real server and run a job's mock tasks; a tiny `caravan bench c1m`
//! (its own server and simulator) places and runs every allocation exactly once.

use std::process::Command;
use std::time::Duration;

use caravan_e2e::Sandbox;
use caravan_e2e::command::run;
use caravan_e2e::http::{self, collection_path, create, get_json};
use caravan_e2e::paths::caravan_bin;
use caravan_e2e::wait::wait_until_async;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn a_tiny_c1m_places_and_runs_every_allocation_exactly_once() {
    let mut cmd = Command::new(caravan_bin());
    cmd.args([
        "bench",
        "c1m",
        "--jobs",
        "5",
        "--count",
        "20",
        "--nodes",
        "50",
        "--timeout",
        "60s",
    ]);
    let out = run(cmd, Duration::from_secs(90)).unwrap_or_else(|e| panic!("{e:#}"));
    out.assert_success()
        .assert_stdout_contains("nodes: 50 ready")
        .assert_stdout_contains("placed: 100 allocations in")
        .assert_stdout_contains("running: 100 allocations reported running in")
        .assert_stdout_contains("evaluations: 5 of 5 finished")
        .assert_stdout_contains("plan rejections: ")
        .assert_stdout_contains("allocations 100 started, 100 running")
        .assert_stdout_contains(
            "check: passed — 100 allocations of 100 expected, 100 running, 0 not meant to run, \
             0 duplicate indexes, 0 missing indexes, 0 unexpected",
        );
}

#[test]
fn a_c1m_with_a_submit_rate_paces_its_jobs() {
    let mut cmd = Command::new(caravan_bin());
    cmd.args([
        "bench",
        "c1m",
        "--jobs",
        "4",
        "--count",
        "5",
        "--nodes",
        "10",
        "--submit-rate",
        "10",
        "--timeout",
        "60s",
    ]);
    let out = run(cmd, Duration::from_secs(90)).unwrap_or_else(|e| panic!("{e:#}"));
    out.assert_success()
        .assert_stdout_contains("placed: 20 allocations in");
    // The fourth job goes 0.3 s after the first.
    let seconds: f64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("jobs: 4 submitted in "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no submission time: {out}"));
    assert!(seconds >= 0.3, "4 jobs at 10/s took {seconds} s");
}

/// The items of a list at `path`.
async fn items(client: &reqwest::Client, sandbox: &Sandbox, path: &str) -> Vec<Value> {
    let list = get_json(client, &sandbox.url(path)).await;
    list["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_nodes_register_and_run_mock_tasks_like_agents() {
    let sandbox = Sandbox::start("nodesim");
    let client = http::client();
    let base = sandbox.base_url();
    let mut sim = sandbox.spawn_caravan(&[
        "nodesim",
        "--servers",
        &base,
        "--nodes",
        "3",
        "--datacenters",
        "dc1,dc2",
        "--report-every",
        "1s",
        "--run-for",
        "60s",
    ]);
    let nodes_path = "/apis/caravan.dev/v1/nodes?fieldSelector=status.status%3Dready";
    wait_until_async(DEADLINE, "three simulated nodes are ready", || async {
        items(&client, &sandbox, nodes_path).await.len() == 3
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", sim.report()));
    let nodes = items(&client, &sandbox, nodes_path).await;
    let node = nodes
        .iter()
        .find(|n| n["metadata"]["name"] == "sim-00001")
        .expect("sim-00001 registered");
    assert_eq!(node["spec"]["datacenter"], "dc2");
    assert_eq!(node["status"]["drivers"]["mock"]["healthy"], true);
    assert_eq!(node["status"]["attributes"]["driver.mock"], "1");
    assert_eq!(node["status"]["attributes"]["kernel.name"], "linux");
    assert_eq!(node["status"]["resources"]["cpu"], 8000);

    let job = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Job",
        "metadata": {"name": "sim-batch"},
        "spec": {"type": "batch", "datacenters": ["dc1", "dc2"], "groups": [{
            "name": "g", "count": 3,
            "tasks": [{"name": "t", "driver": "mock", "config": {"runFor": "200ms"},
                       "resources": {"cpu": 100, "memoryMB": 64}}]}]}
    });
    create(
        &client,
        &sandbox.url(&collection_path("default", "jobs")),
        &job,
    )
    .await;
    let allocs_path = format!(
        "{}?fieldSelector=spec.jobName%3Dsim-batch",
        collection_path("default", "allocations")
    );
    wait_until_async(DEADLINE, "the three allocations completed", || async {
        let allocs = items(&client, &sandbox, &allocs_path).await;
        allocs.len() == 3
            && allocs
                .iter()
                .all(|a| a["status"]["clientStatus"] == "complete")
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", sim.report()));
    let allocs = items(&client, &sandbox, &allocs_path).await;
    let events: Vec<&str> = allocs[0]["status"]["taskStates"]["t"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["Received", "Task Setup", "Started", "Terminated"]);
    sim.wait_for_stdout(DEADLINE, "the simulator counted three completions", |out| {
        out.contains("3 started, 3 running, 3 complete, 0 failed")
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    sim.kill();
}
