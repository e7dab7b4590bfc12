//! Regions: a request for another region is answered there.

use std::time::{Duration, Instant};

use caravan_e2e::Sandbox;
use caravan_e2e::http::{self, get_json};
use caravan_e2e::sandbox::free_port;
use serde_json::{Value, json};

use super::DEADLINE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_submitted_through_another_region_runs_in_its_own() {
    let (east_gossip, west_gossip) = (free_port().unwrap(), free_port().unwrap());
    // Region east: a dev agent (server and client). Region west: one server joining east's
    // gossip pool over the WAN.
    let east = Sandbox::builder()
        .name("region-east")
        .client()
        .arg("--region")
        .arg("east")
        .arg("--name")
        .arg("east-1")
        .arg("--gossip-addr")
        .arg(&format!("127.0.0.1:{east_gossip}"))
        .start()
        .unwrap();
    let west = Sandbox::builder()
        .name("region-west")
        .arg("--region")
        .arg("west")
        .arg("--name")
        .arg("west-1")
        .arg("--gossip-addr")
        .arg(&format!("127.0.0.1:{west_gossip}"))
        .arg("--join-wan")
        .arg(&format!("127.0.0.1:{east_gossip}"))
        .start()
        .unwrap();
    caravan_e2e::wait_until(DEADLINE, "west sees both regions", || {
        let out = west.caravan(&["server", "members", "--wan"]);
        let alive = |name: &str| {
            out.stdout
                .lines()
                .any(|l| l.starts_with(name) && l.contains(" alive "))
        };
        out.success() && alive("east-1") && alive("west-1")
    })
    .unwrap();
    let local = west.caravan(&["server", "members"]);
    assert!(!local.stdout.contains("east-1"), "{}", local.stdout);

    // Through west, for east.
    let job = json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": "far"},
        "spec": {"groups": [{"name": "g", "tasks": [{
            "name": "t",
            "driver": "raw_exec",
            "config": {"command": "/bin/sh", "args": ["-c", "exec sleep 3600"]},
            "resources": {"cpu": 20, "memoryMB": 16}
        }]}]}
    });
    let path = west.write_file("far.yaml", &caravan_e2e::fixtures::to_yaml(&job));
    west.caravan(&["--region", "east", "apply", "-f", path.to_str().unwrap()])
        .assert_success();
    let client = http::client();
    let running = |sandbox: &Sandbox| {
        let url = sandbox.url(
            "/apis/caravan.dev/v1/namespaces/default/allocations?fieldSelector=spec.jobName=far",
        );
        let client = client.clone();
        async move {
            let list: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            Some(
                list["items"]
                    .as_array()?
                    .iter()
                    .filter(|a| a["status"]["clientStatus"] == "running")
                    .count(),
            )
        }
    };
    let deadline = Instant::now() + DEADLINE;
    while running(&east).await.unwrap_or(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "the job never ran in east\n{}",
            east.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing is replicated between regions: west holds no such job, but answers for east.
    let west_jobs = get_json(
        &client,
        &west.url("/apis/caravan.dev/v1/namespaces/default/jobs?resourceVersion=0"),
    )
    .await;
    assert_eq!(west_jobs["items"].as_array().map(Vec::len), Some(0));
    let through_west = west.caravan(&["--region", "east", "get", "jobs"]);
    through_west.assert_success();
    assert!(
        through_west.stdout.contains("far"),
        "{}",
        through_west.stdout
    );
}
