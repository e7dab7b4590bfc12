//! Servers as a cluster, end to end: real server processes on loopback, each with its own
//! ports and data dir, finding each other by gossip. This module holds the harness and the
//! core scenarios (bootstrap, replication, leader failover and catch-up, five servers, followers
//! scheduling, an unprivileged server); membership changes, partitions and regions have their
//! own files.

use std::time::{Duration, Instant};

use caravan_e2e::Sandbox;
use caravan_e2e::http::{self, create};
use caravan_e2e::sandbox::free_port;
use serde_json::{Value, json};

mod acl;
mod gossip_encryption;
mod membership;
mod partition;
mod regions;
mod tls;

pub(super) const DEADLINE: Duration = Duration::from_secs(30);

pub(super) struct Servers {
    pub(super) servers: Vec<Sandbox>,
    pub(super) http: reqwest::Client,
}

/// Starts `names.len()` servers expecting each other, all joining through the first one's
/// gossip address; `extra(i)` adds flags to the i-th.
pub(super) fn start(test: &str, names: &[&str], extra: impl Fn(usize) -> Vec<String>) -> Servers {
    start_with(test, names, None, extra)
}

/// [`start`] with mutual TLS between the servers and towards them when `certs` are given.
pub(super) fn start_with(
    test: &str,
    names: &[&str],
    certs: Option<&caravan_e2e::tls::Certs>,
    extra: impl Fn(usize) -> Vec<String>,
) -> Servers {
    let gossip: Vec<u16> = names.iter().map(|_| free_port().unwrap()).collect();
    let servers = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut builder = Sandbox::builder()
                .name(&format!("{test}-{name}"))
                .ready_path("/healthz");
            if let Some(certs) = certs {
                builder = builder.tls(certs);
            }
            let args = [
                "--name".to_string(),
                name.to_string(),
                "--gossip-addr".into(),
                format!("127.0.0.1:{}", gossip[i]),
                "--join".into(),
                format!("127.0.0.1:{}", gossip[0]),
                "--bootstrap-expect".into(),
                names.len().to_string(),
                "--raft-election-timeout".into(),
                "200ms".into(),
            ];
            for arg in args.iter().chain(&extra(i)) {
                builder = builder.arg(arg);
            }
            builder
                .start()
                .unwrap_or_else(|e| panic!("server {name} did not start: {e:#}"))
        })
        .collect();
    Servers {
        servers,
        http: certs.map_or_else(http::client, |c| c.reqwest(Some("cli"))),
    }
}

impl Servers {
    pub(super) async fn get(&self, i: usize, path: &str) -> Option<Value> {
        let resp = self
            .http
            .get(self.servers[i].url(path))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// The Raft configuration as server `i` sees it.
    pub(super) async fn peers(&self, i: usize) -> Vec<Value> {
        self.get(i, "/v1/operator/raft/configuration")
            .await
            .and_then(|v| v["servers"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Index of the server whose HTTP address is the leader's, as server `i` sees it.
    pub(super) async fn leader_seen_by(&self, i: usize) -> Option<usize> {
        let leader = self
            .peers(i)
            .await
            .into_iter()
            .find(|p| p["leader"] == true)?;
        let addr = leader["address"].as_str()?.to_string();
        self.servers
            .iter()
            .position(|s| s.addr().to_string() == addr)
    }

    /// Waits until every server in `alive` sees the same leader among them.
    pub(super) async fn agreed_leader(&self, alive: &[usize]) -> usize {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let mut seen = Vec::new();
            for &i in alive {
                seen.push(self.leader_seen_by(i).await);
            }
            if let Some(Some(first)) = seen.first()
                && alive.contains(first)
                && seen.iter().all(|s| s == &Some(*first))
            {
                return *first;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader among {alive:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Creates a namespace through server `i`; `Ok` only when acknowledged.
    pub(super) async fn create_namespace(&self, i: usize, name: &str) -> Result<(), String> {
        let body = json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": name}});
        let resp = self
            .http
            .post(self.servers[i].url("/apis/caravan.dev/v1/namespaces"))
            .json(&body)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            201 => Ok(()),
            code => Err(format!("{code}: {}", resp.text().await.unwrap_or_default())),
        }
    }

    /// The namespaces server `i` holds in its own state (`resourceVersion=0`: no forwarding).
    pub(super) async fn local_namespaces(&self, i: usize) -> Vec<String> {
        let path = "/apis/caravan.dev/v1/namespaces?resourceVersion=0";
        self.get(i, path)
            .await
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|n| http::name(n).map(str::to_string))
            .collect()
    }

    pub(super) async fn wait_holds(&self, i: usize, names: &[String]) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let held = self.local_namespaces(i).await;
            let missing: Vec<&String> = names.iter().filter(|n| !held.contains(n)).collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server {i} lacks {missing:?}\n{}",
                self.servers[i].logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_bootstrap_replicate_fail_over_and_catch_up() {
    // A small snapshot threshold: the leader compacts its log while a server is down, so the
    // returning server is brought back by a snapshot install.
    // With mutual TLS between the servers (and from the test), server names checked.
    let dir = tempfile::tempdir().unwrap();
    let certs = caravan_e2e::tls::Certs::create(dir.path());
    let mut cluster = start_with("raft3", &["s1", "s2", "s3"], Some(&certs), |_| {
        vec!["--snapshot-threshold".into(), "20".into()]
    });
    let leader = cluster.agreed_leader(&[0, 1, 2]).await;
    let voters = cluster.peers(leader).await;
    assert_eq!(voters.len(), 3, "{voters:#?}");
    assert!(voters.iter().all(|p| p["voter"] == true), "{voters:#?}");

    // Writes through every server (followers forward), visible on all.
    let mut acked = Vec::new();
    for i in 0..30 {
        let name = format!("ns-{i}");
        cluster
            .create_namespace(i % 3, &name)
            .await
            .unwrap_or_else(|e| panic!("write {name} through server {}: {e}", i % 3));
        acked.push(name);
    }
    for i in 0..3 {
        cluster.wait_holds(i, &acked).await;
    }
    let members = cluster.servers[1].caravan(&["server", "members"]);
    members.assert_success();
    assert_eq!(
        members
            .stdout
            .lines()
            .filter(|l| l.contains("alive"))
            .count(),
        3,
        "{}",
        members.stdout
    );

    // kill -9 of the leader: the others elect a new one within 2 s.
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    cluster.servers[leader].kill_9();
    let killed_at = Instant::now();
    let new_leader = cluster.agreed_leader(&survivors).await;
    let took = killed_at.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "a new leader took {took:?} (election timeout 200 ms)"
    );

    // Writes resume; nothing acknowledged was lost.
    for i in 30..100 {
        let name = format!("ns-{i}");
        let through = survivors[i % 2];
        cluster
            .create_namespace(through, &name)
            .await
            .unwrap_or_else(|e| panic!("write {name} through server {through}: {e}"));
        acked.push(name);
    }
    for &i in &survivors {
        cluster.wait_holds(i, &acked).await;
    }

    // The killed server comes back on its data dir and catches up.
    cluster.servers[leader].restart().unwrap();
    cluster.wait_holds(leader, &acked).await;
    let logs = cluster.servers[leader].logs();
    assert!(
        logs.contains("installed a snapshot"),
        "caught up without a snapshot install:\n{logs}"
    );
    assert_eq!(cluster.agreed_leader(&[0, 1, 2]).await, new_leader);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_servers_survive_two_failures() {
    let mut cluster = start("raft5", &["s1", "s2", "s3", "s4", "s5"], |_| Vec::new());
    let leader = cluster.agreed_leader(&[0, 1, 2, 3, 4]).await;
    assert_eq!(cluster.peers(leader).await.len(), 5);
    // The leader and one follower die.
    let follower = (leader + 1) % 5;
    cluster.servers[leader].kill_9();
    cluster.servers[follower].kill_9();
    let alive: Vec<usize> = (0..5).filter(|i| *i != leader && *i != follower).collect();
    cluster.agreed_leader(&alive).await;
    let mut acked = Vec::new();
    for (n, &through) in alive.iter().cycle().take(9).enumerate() {
        let name = format!("after-{n}");
        cluster
            .create_namespace(through, &name)
            .await
            .unwrap_or_else(|e| panic!("write {name} through server {through}: {e}"));
        acked.push(name);
    }
    for &i in &alive {
        cluster.wait_holds(i, &acked).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_schedule_evaluations_from_the_leaders_broker() {
    // Mutual TLS between the servers, to the follower's workers' client and to the node agent.
    let dir = tempfile::tempdir().unwrap();
    let certs = caravan_e2e::tls::Certs::create(dir.path());
    let cluster = start_with("workers", &["s1", "s2", "s3"], Some(&certs), |_| {
        vec!["--num-schedulers".into(), "1".into()]
    });
    let leader = cluster.agreed_leader(&[0, 1, 2]).await;
    let follower = (leader + 1) % 3;
    // A real node agent, talking to a follower (its heartbeats are forwarded).
    let _client =
        caravan_e2e::ClientAgent::start(&cluster.servers[follower], "client-a", &[]).unwrap();
    // Jobs go in once the node can take them (what this test checks is who schedules them).
    let deadline = Instant::now() + DEADLINE;
    while cluster
        .get(leader, "/apis/caravan.dev/v1/nodes/client-a")
        .await
        .is_none_or(|n| n["status"]["status"] != "ready")
    {
        assert!(Instant::now() < deadline, "client-a never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let jobs = 12;
    for i in 0..jobs {
        let job = json!({
            "apiVersion": "caravan.dev/v1",
            "kind": "Job",
            "metadata": {"name": format!("w{i}")},
            "spec": {"groups": [{"name": "g", "tasks": [{
                "name": "t",
                "driver": "raw_exec",
                "config": {"command": "/bin/sh", "args": ["-c", "exec sleep 3600"]},
                "resources": {"cpu": 10, "memoryMB": 8}
            }]}]}
        });
        let jobs = cluster.servers[i % 3].url("/apis/caravan.dev/v1/namespaces/default/jobs");
        create(&cluster.http, &jobs, &job).await;
    }
    let deadline = Instant::now() + DEADLINE;
    loop {
        let running = cluster
            .get(
                leader,
                "/apis/caravan.dev/v1/namespaces/default/allocations",
            )
            .await
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|a| a["status"]["clientStatus"] == "running")
            .count();
        if running == jobs {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{running} of {jobs} running\n{}",
            cluster.servers[leader].logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let by_followers: usize = (0..3)
        .filter(|i| *i != leader)
        .map(|i| {
            cluster.servers[i]
                .logs()
                .matches("evaluation processed")
                .count()
        })
        .sum();
    assert!(
        by_followers > 0,
        "no evaluation was scheduled on a follower\n{}",
        cluster.servers[(leader + 1) % 3].logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_runs_without_root() {
    // nobody:nogroup
    let server = Sandbox::builder()
        .name("unprivileged")
        .user(65534, 65534)
        .start()
        .unwrap();
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", server.pid().unwrap())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|id| id == "65534"),
        "{uid}"
    );
    let cluster = Servers {
        servers: vec![server],
        http: http::client(),
    };
    cluster.create_namespace(0, "unprivileged").await.unwrap();
    cluster.wait_holds(0, &["unprivileged".to_string()]).await;
}
