//! Membership changes: force-leave, a graceful leave, a server that joins later.

use std::time::{Duration, Instant};

use caravan_e2e::Sandbox;
use caravan_e2e::sandbox::free_port;
use serde_json::Value;

use super::{DEADLINE, start};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_named_voter() {
    let cluster = start("transfer", &["s1", "s2", "s3"], |_| Vec::new());
    let leader = cluster.agreed_leader(&[0, 1, 2]).await;
    cluster
        .create_namespace(leader, "before-transfer")
        .await
        .unwrap();
    let target = (leader + 1) % 3;
    // Asked through the third server, a follower: it forwards the request to the leader.
    let asked = (leader + 2) % 3;
    let name = format!("s{}", target + 1);
    let out =
        cluster.servers[asked].caravan(&["operator", "raft", "transfer-leadership", "--to", &name]);
    out.assert_success();
    assert!(out.stdout.contains(&name), "{}", out.stdout);
    assert_eq!(cluster.agreed_leader(&[0, 1, 2]).await, target);
    // Writes go on, through the old leader too.
    cluster
        .create_namespace(leader, "after-transfer")
        .await
        .unwrap();
    let names = ["before-transfer".to_string(), "after-transfer".to_string()];
    for i in 0..3 {
        cluster.wait_holds(i, &names).await;
    }
}
