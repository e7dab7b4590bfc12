//! A rollout outlives its leader: on three servers with two client agents, the leader is
//! killed with -9 while a deployment is half done; the new leader's deployment controller and
//! schedulers carry it to `successful` from what the Raft log holds.

use std::time::{Duration, Instant};

use caravan_e2e::ClientAgent;
use caravan_e2e::cluster::field;
use serde_json::json;

use super::{Api, ROLLOUT, live, running_healthy_at, service, summary, with_greeting};
use crate::servers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_finishes_after_its_leader_is_killed() {
    let mut cluster = servers::start("deploy-failover", &["s1", "s2", "s3"], |_| Vec::new());
    let leader = cluster.agreed_leader(&[0, 1, 2]).await;
    let followers = [(leader + 1) % 3, (leader + 2) % 3];
    // Each client agent talks to a follower, which forwards to whoever leads.
    let _clients = [
        ClientAgent::start(&cluster.servers[followers[0]], "client-a", &[]).unwrap(),
        ClientAgent::start(&cluster.servers[followers[1]], "client-b", &[]).unwrap(),
    ];
    let midway = {
        let api = Api::new(&cluster.servers[followers[0]], &cluster.http);
        let deadline = Instant::now() + ROLLOUT;
        for node in ["client-a", "client-b"] {
            while api
                .get(&format!("/apis/caravan.dev/v1/nodes/{node}"))
                .await
                .1
                .pointer("/status/status")
                .is_none_or(|s| s != "ready")
            {
                assert!(Instant::now() < deadline, "{node} never became ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        let update = json!({
            "maxParallel": 1,
            "healthCheck": "task_states",
            "minHealthyTime": "2s",
            "healthyDeadline": "1m",
            "progressDeadline": "2m"
        });
        let v0 = service("ha", 4, update, "one");
        api.submit("v0.yaml", &v0);
        api.wait_successful("ha-v0").await;
        api.submit("v1.yaml", &with_greeting(&v0, "two"));
        // Half done: some allocations of version 1 are healthy, not all.
        api.wait_deployment("ha-v1", "is under way", |d| {
            let healthy = d["status"]["groups"]["g"]["healthyAllocs"]
                .as_u64()
                .unwrap_or(0);
            field(d, "/status/status") == "running" && (1..4).contains(&healthy)
        })
        .await
    };

    cluster.servers[leader].kill_9();
    let new_leader = cluster.agreed_leader(&followers).await;
    assert_ne!(new_leader, leader);
    let api = Api::new(&cluster.servers[followers[0]], &cluster.http);

    let done = api.wait_successful("ha-v1").await;
    assert_eq!(
        done["status"]["groups"]["g"]["healthyAllocs"], 4,
        "{done:#}"
    );
    api.wait_stable("ha", 1).await;
    let allocs = api.allocs("ha").await;
    let live_allocs: Vec<_> = allocs.iter().filter(|a| live(a)).collect();
    assert_eq!(
        live_allocs.len(),
        4,
        "killed midway at {midway:#}\n{}",
        summary(&allocs)
    );
    assert!(
        live_allocs.iter().all(|a| running_healthy_at(a, 1)),
        "{}",
        summary(&allocs)
    );
}
