//! Node lifecycle end to end: one server and two client agents as real processes, with
//! shortened heartbeat TTLs. A client killed with `kill -9` misses its heartbeats: its node
//! goes `down`, its allocations become `lost` and run again on the other client; restarted,
//! it is `ready` again and stops the allocations that were replaced. A server restart does
//! not mark live nodes down.

use std::time::{Duration, Instant};

use caravan_e2e::ClientAgent;
use caravan_e2e::cluster::{Cluster, DEADLINE, field};
use serde_json::{Value, json};

fn sleeper(name: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"groups": [{"name": "g", "count": 1, "tasks": [{
            "name": "t",
            "driver": "raw_exec",
            "config": {"command": "/bin/sh", "args": ["-c", "exec sleep 3600"]},
            "resources": {"cpu": 20, "memoryMB": 16}
        }]}]}
    })
}

/// The pid of the task of allocation `uid` run by `client`, from its executor's state.
fn task_pid(client: &ClientAgent, uid: &str) -> Option<u32> {
    let state = client
        .alloc_root()
        .join(uid)
        .join("executor/t/executor.state.json");
    let text = std::fs::read_to_string(state).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    value["taskPid"].as_u64().map(|p| p as u32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_client_loses_its_allocations_to_the_other_and_stops_them_when_back() {
    let cluster = Cluster::start("lost", &[]);
    let mut clients = [
        ClientAgent::start(&cluster.server, "client-a", &[]).unwrap(),
        ClientAgent::start(&cluster.server, "client-b", &[]).unwrap(),
    ];
    cluster.wait_node("client-a", "ready").await;
    cluster.wait_node("client-b", "ready").await;

    cluster.apply(&sleeper("sleeper"));
    let allocs = cluster
        .wait_allocs("sleeper", "the allocation runs", |a| {
            a.iter()
                .any(|a| field(a, "/status/clientStatus") == "running")
        })
        .await;
    let first = allocs
        .iter()
        .find(|a| field(a, "/status/clientStatus") == "running")
        .unwrap()
        .clone();
    let victim_node = field(&first, "/spec/nodeName").to_string();
    let first_uid = field(&first, "/metadata/uid").to_string();
    let first_name = field(&first, "/metadata/name").to_string();
    let (victim, survivor) = if victim_node == "client-a" {
        (0, 1)
    } else {
        (1, 0)
    };
    let pid = task_pid(&clients[victim], &first_uid).expect("the task's pid");
    assert!(caravan_e2e::tasks::pid_alive(pid));

    let killed_at = Instant::now();
    clients[victim].kill_9();
    cluster.wait_node(&victim_node, "down").await;
    let survivor_node = clients[survivor].name().to_string();
    let allocs = cluster
        .wait_allocs("sleeper", "the lost allocation runs again elsewhere", |a| {
            let lost = a.iter().any(|a| {
                field(a, "/metadata/name") == first_name
                    && field(a, "/status/clientStatus") == "lost"
                    && field(a, "/spec/desiredStatus") == "stop"
            });
            let replaced = a.iter().any(|a| {
                field(a, "/spec/nodeName") == survivor_node
                    && field(a, "/status/clientStatus") == "running"
                    && field(a, "/spec/previousAllocation") == first_name
            });
            lost && replaced
        })
        .await;
    // TTL (1–2 s) + grace (1 s) + scheduling; lost allocations have no reschedule delay.
    let took = killed_at.elapsed();
    assert!(took < Duration::from_secs(15), "replacement took {took:?}");
    assert_eq!(
        allocs
            .iter()
            .filter(|a| field(a, "/spec/desiredStatus") == "run")
            .count(),
        1,
        "exactly one replacement: {allocs:#?}"
    );
    // The task kept running on the unreachable machine meanwhile.
    assert!(caravan_e2e::tasks::pid_alive(pid));

    // The machine comes back: its node is ready again and the replaced task is stopped.
    clients[victim].restart().unwrap();
    cluster.wait_node(&victim_node, "ready").await;
    caravan_e2e::wait_until(DEADLINE, "the stale task was stopped", || {
        !caravan_e2e::tasks::pid_alive(pid)
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", clients[victim].logs()));
    // The returning agent reports the stopped task; only the replacement runs.
    let survivor_running = |a: &[Value]| {
        let running: Vec<&Value> = a
            .iter()
            .filter(|a| field(a, "/status/clientStatus") == "running")
            .collect();
        running.len() == 1 && field(running[0], "/spec/nodeName") == survivor_node
    };
    cluster
        .wait_allocs("sleeper", "only the replacement runs", survivor_running)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_does_not_mark_live_nodes_down() {
    let mut cluster = Cluster::start("failover", &[]);
    let _client = ClientAgent::start(&cluster.server, "client-a", &[]).unwrap();
    cluster.wait_node("client-a", "ready").await;
    cluster.server.restart().unwrap();
    // Several TTL + grace periods pass; the client, backing off while the server was away,
    // may not heartbeat for a while: the new leader's failover TTL covers it.
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        assert_eq!(cluster.node_status("client-a").await, "ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ineligible_node_gets_no_new_allocations() {
    let cluster = Cluster::start("eligibility", &[]);
    let _clients = [
        ClientAgent::start(&cluster.server, "client-a", &[]).unwrap(),
        ClientAgent::start(&cluster.server, "client-b", &[]).unwrap(),
    ];
    cluster.wait_node("client-a", "ready").await;
    cluster.wait_node("client-b", "ready").await;
    cluster
        .server
        .caravan(&["node", "eligibility", "client-a", "--disable"])
        .assert_success()
        .assert_stdout_contains("ineligible");
    let listed = cluster.server.caravan(&["node", "status"]);
    listed.assert_success();
    let row = |name: &str| -> Vec<String> {
        listed
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not listed: {}", listed.stdout))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("client-a")[4..], ["false", "ineligible", "ready"]);
    assert_eq!(row("client-b")[4..], ["false", "eligible", "ready"]);

    let mut job = sleeper("spread");
    job["spec"]["groups"][0]["count"] = json!(3);
    cluster.apply(&job);
    let allocs = cluster
        .wait_allocs("spread", "three allocations run", |a| {
            a.iter()
                .filter(|a| field(a, "/status/clientStatus") == "running")
                .count()
                == 3
        })
        .await;
    assert!(
        allocs
            .iter()
            .all(|a| field(a, "/spec/nodeName") == "client-b"),
        "{allocs:#?}"
    );
    cluster
        .server
        .caravan(&["node", "status", "client-b"])
        .assert_success()
        .assert_stdout_contains("spread");
}
