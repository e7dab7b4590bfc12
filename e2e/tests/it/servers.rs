//! Servers as a cluster, end to end: real server processes on loopback, each with its own
//! ports and data dir, finding each other by gossip. Three servers bootstrap one Raft cluster;
//! a write through any server is visible on all; `kill -9` of the leader elects a new one
//! quickly and loses no acknowledged write; the killed server rejoins and catches up; a dead
//! server is removed with `force-leave`; a server leaving on SIGINT shrinks the voter set; a
//! job submitted through another region's server runs in its own region.

use std::time::{Duration, Instant};

use caravan_e2e::Sandbox;
use caravan_e2e::http;
use caravan_e2e::sandbox::free_port;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

struct Servers {
    servers: Vec<Sandbox>,
    http: reqwest::Client,
}

/// Starts `names.len()` servers expecting each other, all joining through the first one's
/// gossip address; `extra(i)` adds flags to the i-th.
fn start(test: &str, names: &[&str], extra: impl Fn(usize) -> Vec<String>) -> Servers {
    let gossip: Vec<u16> = names.iter().map(|_| free_port().unwrap()).collect();
    let servers = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut builder = Sandbox::builder()
                .name(&format!("{test}-{name}"))
                .ready_path("/healthz");
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
        http: http::client(),
    }
}

impl Servers {
    async fn get(&self, i: usize, path: &str) -> Option<Value> {
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
    async fn peers(&self, i: usize) -> Vec<Value> {
        self.get(i, "/v1/operator/raft/configuration")
            .await
            .and_then(|v| v["servers"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Index of the server whose HTTP address is the leader's, as server `i` sees it.
    async fn leader_seen_by(&self, i: usize) -> Option<usize> {
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
    async fn agreed_leader(&self, alive: &[usize]) -> usize {
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
    async fn create_namespace(&self, i: usize, name: &str) -> Result<(), String> {
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
    async fn local_namespaces(&self, i: usize) -> Vec<String> {
        let path = "/apis/caravan.dev/v1/namespaces?resourceVersion=0";
        self.get(i, path)
            .await
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|n| http::name(n).map(str::to_string))
            .collect()
    }

    async fn wait_holds(&self, i: usize, names: &[String]) {
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
    let mut cluster = start("raft3", &["s1", "s2", "s3"], |_| {
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
async fn force_leave_removes_a_dead_server_and_a_leaving_server_shrinks_the_voters() {
    let mut cluster = start("leave", &["s1", "s2", "s3"], |i| {
        if i == 1 {
            vec!["--leave-on-interrupt".into()]
        } else {
            Vec::new()
        }
    });
    cluster.agreed_leader(&[0, 1, 2]).await;

    // s3 dies; an operator removes it.
    cluster.servers[2].kill_9();
    cluster.agreed_leader(&[0, 1]).await;
    cluster.servers[0]
        .caravan(&["server", "force-leave", "s3"])
        .assert_success();
    let ids = |peers: &[Value]| -> Vec<String> {
        let mut names: Vec<String> = peers
            .iter()
            .map(|p| p["name"].as_str().unwrap_or("?").to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(ids(&cluster.peers(0).await), ["s1", "s2"]);

    // s2 leaves on SIGINT: it exits only once it is out of the voters.
    let status = cluster.servers[1].signal_and_wait("INT").unwrap();
    assert!(status.success(), "s2 exited with {status}");
    assert_eq!(ids(&cluster.peers(0).await), ["s1"]);
    // s1 alone is a quorum: writes go on.
    assert_eq!(cluster.agreed_leader(&[0]).await, 0);
    cluster.create_namespace(0, "after-leave").await.unwrap();
    let listed = cluster.servers[0].caravan(&["operator", "raft", "list-peers"]);
    listed.assert_success();
    assert!(listed.stdout.contains("leader"), "{}", listed.stdout);
}

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
    let west_jobs: Value = client
        .get(west.url("/apis/caravan.dev/v1/namespaces/default/jobs?resourceVersion=0"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(west_jobs["items"].as_array().map(Vec::len), Some(0));
    let through_west = west.caravan(&["--region", "east", "get", "jobs"]);
    through_west.assert_success();
    assert!(
        through_west.stdout.contains("far"),
        "{}",
        through_west.stdout
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_schedule_evaluations_from_the_leaders_broker() {
    let cluster = start("workers", &["s1", "s2", "s3"], |_| {
        vec!["--num-schedulers".into(), "1".into()]
    });
    let leader = cluster.agreed_leader(&[0, 1, 2]).await;
    let follower = (leader + 1) % 3;
    // A real node agent, talking to a follower (its heartbeats are forwarded).
    let _client =
        caravan_e2e::ClientAgent::start(&cluster.servers[follower], "client-a", &[]).unwrap();
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
        let resp = cluster
            .http
            .post(cluster.servers[i % 3].url("/apis/caravan.dev/v1/namespaces/default/jobs"))
            .json(&job)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            201,
            "{}",
            resp.text().await.unwrap()
        );
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

/// Runs curl inside network namespace `netns`: the HTTP code of `method url` with `body`.
fn curl_in(netns: &str, method: &str, url: &str, body: Option<&str>) -> String {
    let mut cmd = std::process::Command::new("ip");
    cmd.args([
        "netns", "exec", netns, "curl", "-s", "-m", "20", "-X", method,
    ]);
    cmd.args(["-o", "/dev/null", "-w", "%{http_code}"]);
    if let Some(body) = body {
        cmd.args(["-H", "content-type: application/json", "-d", body]);
    }
    let out = cmd.arg(url).output().expect("curl runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_refuses_writes_and_rejoins_when_healed() {
    // Declared first, dropped last: the servers stop before their namespaces go.
    let lan = caravan_e2e::netns::Lan::create(3).expect("network namespaces (needs root)");
    let servers = (0..3)
        .map(|i| {
            Sandbox::builder()
                .name(&format!("partition-s{i}"))
                .ready_path("/healthz")
                .netns(&lan.netns(i), lan.ip(i))
                .arg("--name")
                .arg(&format!("s{i}"))
                .arg("--gossip-addr")
                .arg(&format!("{}:4648", lan.ip(i)))
                .arg("--join")
                .arg(&format!("{}:4648", lan.ip(0)))
                .arg("--bootstrap-expect")
                .arg("3")
                .arg("--raft-election-timeout")
                .arg("200ms")
                .start()
                .unwrap_or_else(|e| panic!("server s{i} did not start: {e:#}"))
        })
        .collect();
    let cluster = Servers {
        servers,
        http: http::client(),
    };
    let leader = cluster.agreed_leader(&[0, 1, 2]).await;
    let minority = (leader + 1) % 3;
    let majority: Vec<usize> = (0..3).filter(|i| *i != minority).collect();

    lan.cut(minority).unwrap();
    let mut acked = Vec::new();
    for n in 0..10 {
        let name = format!("during-{n}");
        let through = majority[n % 2];
        cluster
            .create_namespace(through, &name)
            .await
            .unwrap_or_else(|e| panic!("the majority refused {name} through {through}: {e}"));
        acked.push(name);
    }
    // The cut-off server refuses writes (it reaches no leader) and has none of the majority's.
    let ns = lan.netns(minority);
    let base = cluster.servers[minority].base_url();
    let body =
        r#"{"apiVersion":"caravan.dev/v1","kind":"Namespace","metadata":{"name":"minority"}}"#;
    let code = curl_in(
        &ns,
        "POST",
        &format!("{base}/apis/caravan.dev/v1/namespaces"),
        Some(body),
    );
    assert_eq!(code, "503", "a write through the partitioned minority");
    let code = curl_in(
        &ns,
        "GET",
        &format!("{base}/apis/caravan.dev/v1/namespaces/during-0?resourceVersion=0"),
        None,
    );
    assert_eq!(
        code, "404",
        "the minority's replica cannot have the majority's writes"
    );

    // Healed: it rejoins and catches up; the refused write never happened.
    lan.heal(minority).unwrap();
    cluster.wait_holds(minority, &acked).await;
    let all = cluster.local_namespaces(majority[0]).await;
    assert!(!all.contains(&"minority".to_string()), "{all:?}");
    cluster.agreed_leader(&[0, 1, 2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_later_joins_as_a_learner_then_a_voter() {
    let mut cluster = start("late", &["s1", "s2", "s3"], |_| Vec::new());
    let leader = cluster.agreed_leader(&[0, 1, 2]).await;
    cluster.create_namespace(leader, "before-s4").await.unwrap();
    // s4 knows one server's gossip address and nothing else: the leader adds it.
    let s1_gossip = cluster
        .get(0, "/v1/agent/members")
        .await
        .and_then(|v| {
            v["members"]
                .as_array()?
                .iter()
                .find(|m| m["name"] == "s1")
                .and_then(|m| m["gossipAddr"].as_str().map(str::to_string))
        })
        .expect("s1's gossip address");
    let late = Sandbox::builder()
        .name("late-s4")
        .ready_path("/healthz")
        .arg("--name")
        .arg("s4")
        .arg("--gossip-addr")
        .arg(&format!("127.0.0.1:{}", free_port().unwrap()))
        .arg("--join")
        .arg(&s1_gossip)
        .arg("--raft-election-timeout")
        .arg("200ms")
        .start()
        .unwrap();
    cluster.servers.push(late);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let peers = cluster.peers(leader).await;
        let voters = peers.iter().filter(|p| p["voter"] == true).count();
        if peers.len() == 4 && voters == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "s4 is not a voter: {peers:#?}\n{}",
            cluster.servers[3].logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.wait_holds(3, &["before-s4".to_string()]).await;
}
